"""Grade submissions, each by a checking process of its own (:mod:`~natmu_lite.classroom.worker`), which calls the
student's functions in a jailed student process (:mod:`~natmu_lite.classroom.sandbox`), and score them by the points
of their assignment's checks, public and hidden.

The student's code never runs in the grader or in the checking process, and cannot reach the pipe the results come
through: what the gradebook records comes from the checks alone. A submission that hangs, crashes or eats the
memory fails the cases it was in with a note saying so; the class's grading goes on.
"""

from __future__ import annotations

import dataclasses
import json
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
from .checks import hidden_module, load
from .collect import Submission
from .student import CALL_TIMEOUT


@dataclass(frozen=True)
class Limits:
    seconds: float = 300.0  # wall-clock time for one submission (loading and every check)
    memory_mb: int = 6144  # address space of each student process, and memory held by all of them together
    call_timeout: float = CALL_TIMEOUT  # one call of a student's function, or one cell of the file
    cells: float = 120.0  # running the file's cells in full, all together (then only their definitions)
    load_timeout: float = 120.0  # starting the student's process and running the definitions, beyond ``cells``
    file_mb: int = 64  # any file the student's code writes, its printed output included
    result_mb: int = 256  # what one call returns


@dataclass
class Graded:
    """One submission's outcome: each case's result, and a note when it could not be graded in full."""

    submission: Submission
    checks: list[Check]
    cases: dict[tuple[str, str], tuple[bool, str]] = field(default_factory=dict)  # (check, case) -> passed, message
    note: str = ""
    seconds: float = 0.0
    flags: list[str] = field(default_factory=list)  # what the teacher should look at (the feedback does not say)
    jail: str = ""
    cells: list[str] = field(default_factory=list)  # the cells of the file that did not run in full, why

    def points(self) -> dict[str, float]:
        """Points per check: its points times the share of its cases passed."""
        out = {}
        for c in self.checks:
            passed = [self.cases.get((c.name, label), (False, ""))[0] for label, _ in c.cases]
            out[c.name] = round(c.points * sum(passed) / len(passed), 2)
        return out

    def total(self, hidden: bool | None = None) -> float:
        """Points of every check, or of the public (``hidden=False``) or hidden ones only."""
        return round(sum(p for c, p in zip(self.checks, self.points().values()) if hidden in (None, is_hidden(c))), 2)

    def possible(self, hidden: bool | None = None) -> float:
        return sum(c.points for c in self.checks if hidden in (None, is_hidden(c)))


HIDDEN = "hidden: "  # the name of a hidden check starts so


def is_hidden(check: Check) -> bool:
    return check.name.startswith(HIDDEN)


def all_checks(assignment: str, hidden: Path | None = None) -> list[Check]:
    """The public checks of ``assignment``, then the hidden ones of the folder ``hidden``."""
    secret = hidden_module(assignment, hidden) if hidden else None
    return [*checks(load(assignment)),
            *(dataclasses.replace(c, name=HIDDEN + c.name) for c in (checks(secret) if secret else []))]


def run_worker(submission: Submission, limits: Limits, hidden: Path | None, log: Path) -> tuple[list[dict], str]:
    """Run the checking process; its records, and a note if it did not finish."""
    command = [sys.executable, "-m", "natmu_lite.classroom.worker", submission.assignment,
               str(submission.path.resolve()), "--limits", json.dumps(dataclasses.asdict(limits)),
               *(["--hidden", str(hidden.resolve())] if hidden else [])]
    with log.open("w") as err:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=limits.seconds)
            timed_out = False
        except subprocess.TimeoutExpired:
            out, timed_out = stop(proc), True
    records = []
    for line in out.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            break  # a line cut short by the end of the process
    return records, outcome(timed_out, proc.returncode, records, log, limits)


def stop(proc: subprocess.Popen) -> str:
    """Ask the checking process to end (it kills the student's processes), then make it; what it wrote."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=15)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]


def outcome(timed_out: bool, returncode: int, records: list[dict], log: Path, limits: Limits) -> str:
    """Why the checks did not all run ("" if they did)."""
    return "" if any("done" in r for r in records) else stopped(timed_out, returncode, records, log, limits)


def stopped(timed_out: bool, returncode: int, records: list[dict], log: Path, limits: Limits) -> str:
    """Why the checking process stopped before the end."""
    error = next((r["error"] for r in records if "error" in r), None)
    if error:
        return error
    if timed_out:
        return (f"grading stopped after {limits.seconds:g} s, the time limit for one submission: look for code that "
                "never ends (in a class body, a default argument or a function)")
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
    return f"grading stopped: the checking process ended with status {returncode}" + (f" ({tail[0][:200]})"
                                                                                     if tail[0] else "")


def grade_one(submission: Submission, limits: Limits, hidden: Path | None = None) -> Graded:
    """One submission, by a checking process of its own."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="natmu-grade-", ignore_cleanup_errors=True) as scratch:
        records, note = run_worker(submission, limits, hidden, Path(scratch) / "checker.log")
    graded = Graded(submission, all_checks(submission.assignment, hidden), note=note)
    for r in records:
        if "check" in r:
            graded.cases[(HIDDEN * r.get("hidden", False) + r["check"], r["case"])] = (r["passed"], r["message"])
        graded.flags += r.get("flags", [])
        graded.jail = r.get("jail", graded.jail)
        graded.cells += r.get("cells", [])
    graded.seconds = time.perf_counter() - start
    return graded


def grade_all(submissions: list[Submission], limits: Limits | None = None, workers: int = 1,
              progress: bool = True, hidden: Path | None = None) -> list[Graded]:
    """Grade every submission (``workers`` at a time), sorted by student and assignment."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(grade_one, s, limits or Limits(), hidden) for s in submissions]
        done = [f.result() for f in tqdm(as_completed(futures), total=len(futures), desc="grading",
                                         unit="submission", disable=not progress)]
    return sorted(done, key=lambda g: (g.submission.student.lower(), g.submission.assignment))
