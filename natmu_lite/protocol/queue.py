"""The job queue, built on Optuna: one study per kind of run (:data:`~natmu_lite.protocol.design.QUEUES`),
one queued trial per run (its ``run`` attribute names it). Workers pop queued trials atomically, so each run
goes to one worker, and a dead worker's run is queued again by the heartbeat; the completed trials hold
the runs' rows. A queue may carry a mark (:data:`SINCE`, :meth:`Queues.mark_rerun`): then only the trials from
the mark on count, and the runs before it are run again."""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ..cache import cache_dir, locked
from ..provenance import machine_name
from ..tune import open_storage
from .design import RETRIES, RunKey
from .studies import count, tagged

SINCE = "since"  # a queue's attribute: the number of its first trial that counts (absent: all count)


def counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """A queue's trials that count: all, unless it is marked (:meth:`Queues.mark_rerun`: a verdict that runs
    the committed test phase again on its machine), then those from the mark on; the rest stay, unread."""
    since = study.user_attrs.get(SINCE, 0)
    return [t for t in study.get_trials(deepcopy=False) if t.number >= since]


def run_of(trial: optuna.trial.FrozenTrial) -> str | None:
    """The name of the run a queued trial carries (None: a trial popped from an empty queue)."""
    return trial.user_attrs.get("run")


def failures(trials: list[optuna.trial.FrozenTrial]) -> Counter:
    """How many times each run raised (its failed trials): a run is queued again :data:`RETRIES` times at most."""
    return Counter(run_of(t) for t in trials if t.state == TrialState.FAIL)


def run_rows(study: optuna.Study) -> dict[str, dict]:
    """The last completed trial of each run, with the machine it ran on: a run two workers raced for is
    kept once, and a run queued again because its parameters changed (:meth:`Protocol.ran_as_expected`)
    replaces its stale row."""
    rows = {}
    for t in sorted((t for t in counted(study) if t.state == TrialState.COMPLETE), key=lambda t: t.number):
        rows[t.user_attrs["run"]] = {**t.user_attrs["row"], "machine": machine_name(t.user_attrs)}
    return rows


class Queues:
    """The protocol's queues: opening one, filling them with the runs known so far, running what they
    hold (part of :class:`~natmu_lite.protocol.Protocol`)."""

    def queue(self, which: str) -> optuna.Study:
        """The study whose trials are the protocol's runs of one of :data:`QUEUES`, one queued trial
        (``enqueue_trial``) per run. Workers pop queued trials atomically, so each run goes to one worker;
        a dead worker's run is queued again by the heartbeat."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=f"protocol/{self.name}/{which}", storage=open_storage(self.storage),
                                    load_if_exists=True)
        sizes = study.user_attrs.get("sizes")
        if sizes is None:
            study.set_user_attr("sizes", self.sizes)
        elif sizes != self.sizes:
            raise ValueError(f"storage {self.storage} holds this protocol with sizes {sizes}, not {self.sizes}; "
                             "use another --storage")
        return study

    def enqueue(self) -> int:
        """Queue every run known so far that is neither finished, running nor queued (new ones: a study
        done, a selection known, a method added; and those whose run raised, :data:`RETRIES` times at
        most; and those that ran with parameters their variant no longer has), seed by seed, so that a
        protocol stopped half-way has whole seeds of every scenario. Under
        a lock, so that workers never queue a run twice. Returns how many it queued."""
        queued = 0
        with locked(self._lock_path()):
            for which, names in (("replicas", self.replica_names()), ("runs", self.test_names()[0]),
                                 ("replication", self.replication_names())):
                study = self.queue(which)
                trials = counted(study)
                done = run_rows(study)
                live = {run_of(t) for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)}
                live |= {q for q, row in done.items() if self.ran_as_expected(q, row)}
                failed = failures(trials)
                wanted = self.wanted(names, which)
                todo = [q for q in names if q not in live and failed[q] < RETRIES and q in wanted]
                for name in sorted(todo, key=lambda q: RunKey.parse(q).seed):
                    study.enqueue_trial({}, user_attrs={"run": name})
                queued += len(todo)
        return queued

    def mark_rerun(self) -> None:
        """Mark the queues of :attr:`rerun` (the test phase, :data:`TEST_PHASE`, in a verdict's copy whose
        committed runs do not compare with this machine's): every run in them is run again here, and the
        rows before the mark are no longer read. Once: a resumed command keeps its first mark."""
        for which in self.rerun:
            study = self.queue(which)
            if SINCE not in study.user_attrs:
                study.set_user_attr(SINCE, len(study.get_trials(deepcopy=False)))

    def _lock_path(self) -> Path:
        local = self.storage.startswith("sqlite:///") and not self.storage.endswith(":memory:")
        return Path(self.storage.removeprefix("sqlite:///")) if local else cache_dir() / f"protocol-{self.name}"

    def drain(self, which: str) -> int:
        """Run queued runs of one queue until none is waiting; returns how many this worker ran."""
        study, ran = self.queue(which), 0
        since = study.user_attrs.get(SINCE, 0)
        everything = self.only is None or which in self.rerun
        wanted: set[str] = set()
        looked = [-math.inf]  # when the known runs were last listed (costly: they are read from the storage)

        def is_wanted(name: str) -> bool:  # known runs change as others finish: look again, at most once a minute
            if not everything and name not in wanted and time.monotonic() - looked[0] > 60:
                wanted.update(self.wanted(self.known(which), which))
                looked[0] = time.monotonic()
            return everything or name in wanted

        def trial_fn(trial: optuna.Trial) -> float:
            name = trial.user_attrs.get("run")
            if name is None:  # another worker took the last queued run meanwhile
                raise optuna.TrialPruned("the queue is empty")
            if trial.number < since:  # queued before the mark: enqueue() queues the run again after it
                raise optuna.TrialPruned(f"{name} was queued before the queue's mark")
            if not is_wanted(name):  # queued by the protocol this one is a copy of (a verdict): left, not run
                raise optuna.TrialPruned(f"{name} is not among this protocol's runs")
            row = self.result_row(name)
            trial.set_user_attr("row", row)
            return row["seconds"]

        while count(study, TrialState.WAITING):
            study.optimize(tagged(trial_fn, which), n_trials=1, catch=(Exception,))
            ran += 1
        return ran
