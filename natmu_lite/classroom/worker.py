"""One submission graded in a process of its own: ``python -m natmu_lite.classroom.worker ASSIGNMENT FILE``.

The grader (:mod:`natmu_lite.classroom.grade`) starts one per submission, in a scratch folder, with a small
environment and a wall-clock limit. Here the process first limits its own address space (so that a submission
that allocates without bound gets a MemoryError instead of the machine's memory), then loads the student's
definitions and runs the assignment's checks. It writes one JSON line per event on its stdout: ``{"loaded":
true, "problems": [...]}`` (the cells that could not run) or ``{"error": why}``, then one line per case, then
``{"done": true}``; whatever it wrote before a crash still counts. The student's own prints go to stderr, so
they cannot mix with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from .checking import Failed, run_checks
from .checks import load
from .student import Student


def limit_memory(megabytes: int) -> None:
    """Cap the address space (Linux; elsewhere the call may be refused, and then there is no cap)."""
    try:
        import resource

        limit = megabytes * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("file", type=Path)
    parser.add_argument("--call-timeout", type=float, required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    args = parser.parse_args(argv)
    results = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # fd 1, and print(), now reach stderr
    sys.stdout = sys.stderr

    def emit(record: dict) -> None:
        results.write(json.dumps(record) + "\n")

    limit_memory(args.memory_mb)
    torch.set_num_threads(1)
    module = load(args.assignment)
    try:
        student = Student(args.file, args.call_timeout)
    except Failed as e:
        emit({"error": str(e)})
        return 0
    emit({"loaded": True, "problems": student.problems})
    for record in run_checks(module, student):
        emit(record)
    emit({"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
