"""The checking process of one submission: ``python -m natmu_lite.classroom.worker ASSIGNMENT FILE``.

The grader (:mod:`natmu_lite.classroom.grade`) starts one per submission. It runs the assignment's checks (and the
instructor's hidden ones, ``--hidden``); the student's code never runs here: every call goes to the student's own
jailed process (:mod:`~natmu_lite.classroom.remote`, :mod:`~natmu_lite.classroom.sandbox`). It writes one JSON line
per event on its stdout, a pipe only the grader holds: ``{"jail": ...}``, ``{"loaded": true, "cells": [...]}`` or
``{"error": why}``, then one line per case, ``{"flags": [...]}`` and ``{"done": true}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import torch

from . import sandbox
from .checking import run_checks
from .checks import hidden_module, load
from .remote import Gone, Remote


def main(argv: list[str] | None = None) -> int:
    from .grade import Limits

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("file", type=Path)
    parser.add_argument("--limits", required=True, help="the grader's Limits, as JSON")
    parser.add_argument("--hidden", type=Path, default=None, help="the instructor's folder of hidden checks")
    args = parser.parse_args(argv)
    sandbox.become_subreaper()
    torch.set_num_threads(1)
    results = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(record: dict) -> None:
        results.write(json.dumps(record) + "\n")

    with tempfile.TemporaryDirectory(prefix="natmu-student-", ignore_cleanup_errors=True) as scratch:
        student = Remote(args.file, args.assignment, Limits(**json.loads(args.limits)), Path(scratch),
                         sandbox.choose())
        signal.signal(signal.SIGTERM, lambda *_: (student.stop(), shutil.rmtree(scratch, ignore_errors=True),
                                                  os._exit(3)))  # the grader's time limit: leave nothing behind
        try:
            student.start()
        except Gone as e:
            emit({"error": f"your file {e}"})
            return 0
        finally:
            emit({"jail": student.jail.describe()})
        emit({"loaded": True, "cells": student.problems})
        hidden = hidden_module(args.assignment, args.hidden) if args.hidden else None
        for module, secret in ((load(args.assignment), False), (hidden, True)):
            for record in run_checks(module, student) if module else ():
                emit({**record, "hidden": secret})
        student.stop()
        emit({"flags": sorted(student.flags)})
    emit({"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
