"""Grade submissions, each in a process of its own with a time and a memory limit, and score them by the points
of their assignment's checks.

A student's imports, class bodies and default arguments run when their definitions are loaded, so they run in
:mod:`~natmu_lite.classroom.worker`, never here: in a scratch folder holding only a copy of the submission, with
an environment of a few variables (no tokens or settings of the grader's), no GPU, one thread, the address
space capped and a wall-clock limit, after which the process and anything it started are killed. A submission
that hangs or eats the memory fails its remaining checks with a note saying so; the class's grading goes on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .checking import Check, checks
from .checks import load
from .collect import Submission
from .student import CALL_TIMEOUT


@dataclass(frozen=True)
class Limits:
    seconds: float = 300.0  # wall-clock time for one submission (loading and every check)
    memory_mb: int = 6144  # address space of its process (torch alone maps about 3.5 GB of it)
    call_timeout: float = CALL_TIMEOUT  # one call of a student's function, or one cell's definitions


@dataclass
class Graded:
    """One submission's outcome: each case's result, and a note when it could not be graded in full."""

    submission: Submission
    checks: list[Check]
    cases: dict[tuple[str, str], tuple[bool, str]] = field(default_factory=dict)  # (check, case) -> passed, message
    note: str = ""
    seconds: float = 0.0

    def points(self) -> dict[str, float]:
        """Points per check: its points times the share of its cases passed."""
        out = {}
        for c in self.checks:
            passed = [self.cases.get((c.name, label), (False, ""))[0] for label, _ in c.cases]
            out[c.name] = round(c.points * sum(passed) / len(passed), 2)
        return out

    def total(self) -> float:
        return round(sum(self.points().values()), 2)

    def possible(self) -> float:
        return sum(c.points for c in self.checks)


def environment(scratch: Path) -> dict[str, str]:
    """The worker's environment: where Python finds this package, and nothing else of the grader's."""
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT") if k in os.environ}
    paths = [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
    return {**keep, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "MPLBACKEND": "Agg", "TMPDIR": str(scratch),
            "NATMU_CACHE": str(scratch / "cache"), "PYTHONDONTWRITEBYTECODE": "1"}


def run_worker(submission: Submission, limits: Limits, scratch: Path) -> tuple[list[dict], str]:
    """Run the worker on a copy of the submission; its records, and a note if it did not finish."""
    work = scratch / "work"
    work.mkdir()
    copy = work / submission.path.name
    shutil.copyfile(submission.path, copy)
    command = [sys.executable, "-m", "natmu_lite.classroom.worker", submission.assignment, copy.name,
               "--call-timeout", str(limits.call_timeout), "--memory-mb", str(limits.memory_mb)]
    results, log = scratch / "results.jsonl", scratch / "log.txt"
    with results.open("w") as out, log.open("w") as err:
        proc = subprocess.Popen(command, cwd=work, env=environment(scratch), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=limits.seconds)
            timed_out = False
        except subprocess.TimeoutExpired:
            kill(proc)
            timed_out = True
    records = []
    for line in results.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            break  # a line cut short by the end of the process
    return records, outcome(timed_out, proc.returncode, records, log, limits)


def kill(proc: subprocess.Popen) -> None:
    """The worker and whatever it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (AttributeError, OSError):
        proc.kill()
    proc.wait()


def outcome(timed_out: bool, returncode: int, records: list[dict], log: Path, limits: Limits) -> str:
    """What kept a submission from being graded in full: cells that could not run, and why the worker did not
    report every check ("" if nothing did)."""
    problems = "; ".join(p for r in records for p in r.get("problems", []))
    if any("done" in r for r in records):
        return problems
    return "; ".join(filter(None, [problems, stopped(timed_out, returncode, records, log, limits)]))


def stopped(timed_out: bool, returncode: int, records: list[dict], log: Path, limits: Limits) -> str:
    """Why the worker stopped before the end."""
    error = next((r["error"] for r in records if "error" in r), None)
    if error:
        return error
    if timed_out:
        return (f"grading stopped after {limits.seconds:g} s, the time limit for one submission: look for code that "
                "never ends (in a class body, a default argument or a function)")
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
    if "MemoryError" in tail[0]:
        return f"grading stopped: your code needed more than {limits.memory_mb} MB of memory"
    how = f"was killed by {signal.Signals(-returncode).name}" if returncode < 0 else f"exited with status {returncode}"
    return f"grading stopped: the grading process {how}" + (f" ({tail[0][:200]})" if tail[0] else "")


def grade_one(submission: Submission, limits: Limits) -> Graded:
    """One submission, in a worker process of its own (in a scratch folder, removed afterwards)."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="natmu-grade-", ignore_cleanup_errors=True) as scratch:
        records, note = run_worker(submission, limits, Path(scratch))
    graded = Graded(submission, checks(load(submission.assignment)), note=note)
    for r in records:
        if "check" in r:
            graded.cases[(r["check"], r["case"])] = (r["passed"], r["message"])
    graded.seconds = time.perf_counter() - start
    return graded


def grade_all(submissions: list[Submission], limits: Limits | None = None, workers: int = 1,
              progress: bool = True) -> list[Graded]:
    """Grade every submission (``workers`` at a time), sorted by student and assignment."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(grade_one, s, limits or Limits()) for s in submissions]
        done = [f.result() for f in tqdm(as_completed(futures), total=len(futures), desc="grading",
                                         unit="submission", disable=not progress)]
    return sorted(done, key=lambda g: (g.submission.student.lower(), g.submission.assignment))
