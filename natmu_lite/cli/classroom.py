"""The classroom's commands: ``handout`` (the student notebooks) and ``grade`` (one student's file, or a
class's submissions into a gradebook)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from ..classroom import ASSIGNMENTS, check_file
from ..classroom.collect import SUFFIXES, find, unpack
from ..classroom.grade import Limits, grade_all
from ..classroom.gradebook import export, summary, write_feedback, write_gradebook
from ..classroom.handout import handout
from .options import POSITIVE, at_least, seconds


def add_handout_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("handout", help="write the assignments' student notebooks: a folder and a zip per assignment")
    p.add_argument("out", help="the folder to write into")
    p.add_argument("--assignments", nargs="+", default=None, choices=ASSIGNMENTS, help="default: all")
    p.set_defaults(func=run_handout)


def run_handout(args: argparse.Namespace) -> int:
    """Write the student notebooks: a folder and a zip per assignment."""
    for path in handout(Path(args.out), args.assignments):
        print(path)
    return 0


def add_grade_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grade", help="grade a student's file, or a class's folder or zip into a gradebook")
    p.add_argument("submissions", help="a notebook or .py file, a folder of them, or a zip (a platform's download)")
    p.add_argument("--assignment", default=None, choices=ASSIGNMENTS, help="default: recognised from each file")
    p.add_argument("--out", default="grades", help="the gradebook and the feedback files (class grading)")
    p.add_argument("--mapping", default=None, help="CSV of file,student[,assignment] for files names cannot tell")
    p.add_argument("--student-pattern", default=None,
                   help="regular expression with a group 'student', searched in each file's path in the class folder")
    p.add_argument("--time-limit", type=seconds, default=Limits.seconds, help="seconds per submission")
    p.add_argument("--memory-mb", type=at_least(2048), default=Limits.memory_mb,
                   help="address space per submission, MB (Linux; torch alone maps about 3.5 GB)")
    p.add_argument("--call-timeout", type=seconds, default=Limits.call_timeout,
                   help="seconds per call of a student's function")
    p.add_argument("--workers", type=POSITIVE, default=max(1, min(4, (os.cpu_count() or 2) // 2)),
                   help="submissions graded at once, one process and one thread each")
    p.add_argument("--hidden", default=None,
                   help="the instructor's folder of hidden checks (assignments/hidden in the repository)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_grade)


def run_grade(args: argparse.Namespace) -> int:
    """One file (a student checking their work): its feedback, printed. A class (a folder, or a zip such as a
    learning platform's download): the gradebook and a feedback file per student, in --out."""
    source, limits = Path(args.submissions), Limits(args.time_limit, args.memory_mb, args.call_timeout)
    if not source.exists():
        raise ValueError(f"{source} does not exist")
    if source.is_file() and source.suffix in SUFFIXES:
        print(check_file(source, args.assignment, limits))
        return 0
    if source.is_file() and source.suffix != ".zip":
        raise ValueError(f"{source}: expected a folder, a .zip, or one .ipynb or .py file")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    mapping = Path(args.mapping) if args.mapping else None
    with tempfile.TemporaryDirectory(prefix="natmu-class-") as folder:
        root = unpack(source, Path(folder)) if source.is_file() else source
        submissions, skipped = find(root, args.assignment, mapping, args.student_pattern, str(source))
        for s in skipped:
            print(f"skipped {s.name}: {s.why}", file=sys.stderr)
        start = time.perf_counter()
        hidden = Path(args.hidden) if args.hidden else None
        if hidden and not hidden.is_dir():
            raise ValueError(f"--hidden {hidden} is not a folder")
        if not hidden:
            print("grading with the public checks only, which students run themselves: add --hidden "
                  "assignments/hidden (the repository's instructor checks) for the hidden ones", file=sys.stderr)
        results = grade_all(submissions, limits, args.workers, progress=not args.quiet, hidden=hidden)
    write_gradebook(results, out / "gradebook.csv", skipped)
    export(out / "gradebook.csv", out / "lms_import.csv")
    feedback = write_feedback(results, out / "feedback")
    print(summary(results, time.perf_counter() - start))
    print(f"gradebook: {out / 'gradebook.csv'}; feedback: {len(feedback)} files in {out / 'feedback'}")
    return 0
