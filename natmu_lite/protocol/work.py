"""Running a protocol: what each worker does until the protocol is finished (:meth:`Work.work`), and
starting workers on this machine with a progress bar (:meth:`Work.launch`)."""

from __future__ import annotations

import subprocess
import sys
import time

import optuna
from optuna.trial import TrialState
from tqdm.auto import tqdm

from ..tune import open_storage, study_name
from .design import QUEUES, RETRIES
from .queue import counted, failures, run_of, run_rows
from .studies import count


class Work:
    """A protocol's workers (part of :class:`~natmu_lite.protocol.Protocol`)."""

    def finished(self) -> bool:
        """Every study tuned, every selection known, every run finished."""
        if any(self.tuned_study(*s) is None for s in self.studies()):
            return False
        rows = {which: run_rows(self.queue(which)) for which in QUEUES}
        if any(self.selection(*s, rows["replicas"]) is None for s in self.studies()):
            return False
        names = {"replicas": self.replica_names(), "runs": self.test_names()[0],
                 "replication": self.replication_names()}
        return all(q in rows[w] and self.ran_as_expected(q, rows[w][q]) for w, qs in names.items()
                   for q in self.wanted(qs, w))

    def work(self, phase: str = "all") -> None:
        """Tune (``"tune"``: until every study is done), evaluate, or both (``"all"``). A worker takes
        what it can: the studies nobody is tuning, then the queued runs (the replica runs first, which
        the selections and so the evaluation runs wait for), queueing new runs as they become known,
        until the protocol is finished."""
        if phase == "tune":
            self.tune_all(until_done=True)
            return
        while True:
            if phase == "all":
                self.tune_all(until_done=False)
            queued = self.enqueue()
            ran = sum(self.drain(which) for which in QUEUES)
            if self.finished():
                return
            if not (ran or queued or self._busy()) and (stuck := self._given_up()):
                raise RuntimeError(f"protocol {self.name}: {stuck} failed {RETRIES} times, so it cannot finish "
                                   f"(see its failed trials in {self.storage})")
            if not ran:
                time.sleep(10)  # what is left runs on other workers, or needs what they are doing

    def _given_up(self) -> str | None:
        """A run that failed :data:`RETRIES` times and never finished, if any (its name)."""
        for which in QUEUES:
            trials = counted(self.queue(which))
            done = {run_of(t) for t in trials if t.state == TrialState.COMPLETE}
            wanted = self.wanted(self.known(which), which)
            stuck = [q for q, n in failures(trials).items() if n >= RETRIES and q not in done and q in wanted]
            if stuck:
                return stuck[0]
        return None

    def _busy(self) -> bool:
        """Whether any worker is tuning or running something (or something is queued)."""
        states = (TrialState.RUNNING, TrialState.WAITING)
        return any(count(self.queue(w), *states) for w in QUEUES) or \
            any(count(self.study(*s), *states) for s in self.studies()) or \
            any(self.tuned_study(*s) is None for s in self.studies())

    def completion(self) -> tuple[int, int]:
        """(finished, total) of the budgeted tuning trials and the runs known so far, for progress bars."""
        store = open_storage(self.storage)
        names = {s.study_name for s in optuna.get_all_study_summaries(store)}
        done = total = 0
        for p, scenario, method in self.studies():
            total += self.trials
            name = study_name(p.setting, p.validation[scenario][0], method)
            if name in names:
                done += min(self.trials, count(optuna.load_study(study_name=name, storage=store), TrialState.COMPLETE))
        runs = {"replicas": self.replica_names(), "runs": self.test_names()[0], "replication": self.replication_names()}
        for which, known in runs.items():  # only the runs known now count: a copy's store holds others' (a verdict)
            known = self.wanted(known, which)
            rows = run_rows(self.queue(which)) if f"protocol/{self.name}/{which}" in names else {}
            done, total = done + sum(q in rows for q in known), total + len(known)
        return done, total

    def launch(self, workers: int, command: list[str], phase: str = "all", progress: bool = True) -> None:
        """Run what is left of the protocol in ``workers`` processes of this machine (one torch thread
        each when there are several: more would slow every one down), with a progress bar; ``command``
        is the ``natmu-lite`` command's arguments from ``protocol`` on, which each worker gets with
        ``--worker``. Raises if a worker fails (running the command again resumes)."""
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        done, total = self.completion()  # opens the storage: a bad one fails here, before any training
        if self.finished():
            return
        argv = [sys.executable, "-m", "natmu_lite.cli", *(["--threads", "1"] if workers > 1 else []), *command,
                "--worker"]
        procs = [subprocess.Popen(argv) for _ in range(workers)]
        with tqdm(total=total, initial=done, desc=f"protocol {self.name}", disable=not progress) as bar:
            last = time.monotonic()
            while any(p.poll() is None for p in procs):
                time.sleep(1)
                if time.monotonic() - last < 120:  # completion() reads every study and queue: polling it often
                    continue                        # costs a worker CPU
                last = time.monotonic()
                done, total = self.completion()
                bar.total = total
                bar.update(done - bar.n)
        failed = [p.returncode for p in procs if p.returncode]
        if failed:
            raise RuntimeError(f"{len(failed)} worker(s) failed (exit {failed[0]}); run the command again to resume")
