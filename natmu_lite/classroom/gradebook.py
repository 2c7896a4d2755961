"""What grading hands back: the gradebook (CSV, one row per student) and one feedback file per student.

The gradebook has, for each assignment graded, the file graded, the points of each check (its maximum in the
column's name), the autograder's total, one empty column per rubric item for the points given by hand, and a note
where a submission could not be graded in full. Grading again into the same folder keeps the rubric points already
entered. The feedback says, per assignment, the points of each check and what failed, in the checks' own words.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from .checking import checks
from .checks import load
from .grade import Graded


def columns(assignment: str) -> tuple[list[str], list[str]]:
    """(the autograder's columns, the rubric's columns) of one assignment, maxima in the names."""
    graded = [f"{assignment}/{c.name} ({c.points:g})" for c in checks(load(assignment))]
    total = sum(c.points for c in checks(load(assignment)))
    rubric = [f"{assignment}/by hand: {item} ({points:g})" for item, points in load(assignment).RUBRIC.items()]
    return [f"{assignment}/file", *graded, f"{assignment}/autograder ({total:g})"], rubric


def rows(results: list[Graded]) -> tuple[list[str], list[dict]]:
    """The gradebook's header and rows."""
    assignments = sorted({g.submission.assignment for g in results})
    header = ["student"]
    for a in assignments:
        auto, rubric = columns(a)
        header += [*auto, *rubric, f"{a}/note"]
    by_student: dict[str, dict] = {}
    for g in results:
        a, row = g.submission.assignment, by_student.setdefault(g.submission.student, {"student": g.submission.student})
        auto, _ = columns(a)
        row.update(zip(auto, [g.submission.name, *(f"{p:g}" for p in [*g.points().values(), g.total()])]))
        row[f"{a}/note"] = g.note
    return header, [by_student[s] for s in sorted(by_student, key=str.lower)]


def write_gradebook(results: list[Graded], path: Path) -> None:
    """Write the CSV; rubric points already in ``path`` (from an earlier grading) are kept."""
    header, table = rows(results)
    kept = read_rubric(path)
    for row in table:
        row.update({k: v for k, v in kept.get(row["student"], {}).items() if k in header})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(table)


def read_rubric(path: Path) -> dict[str, dict[str, str]]:
    """The rubric points entered in an existing gradebook, by student."""
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        entered = {row.get("student"): {k: v for k, v in row.items() if k and "/by hand: " in k and v}
                   for row in csv.DictReader(f)}
    return {student: points for student, points in entered.items() if student and points}


def feedback(student: str, results: list[Graded]) -> str:
    """One student's feedback, as Markdown."""
    out = [f"# Feedback for {student}"]
    for g in results:
        rubric = load(g.submission.assignment).RUBRIC
        out += [f"\n## {g.submission.assignment}: {g.total():g} of {g.possible():g} points from the autograder",
                f"\nGraded file: `{g.submission.name}`."]
        if g.note:
            out.append(f"\n**Not graded in full**: {g.note}")
        out += ["\n| check | points |", "|---|---|"]
        out += [f"| {c.name} | {p:g} of {c.points:g} |" for c, p in zip(g.checks, g.points().values())]
        out += failures(g)
        if rubric:
            items = ", ".join(f"{item} ({points:g})" for item, points in rubric.items())
            out.append(f"\nYour instructor grades by hand: {items}.")
    return "\n".join(out) + "\n"


def failures(g: Graded) -> list[str]:
    """What failed, check by check, with the checks' messages (one line for a message all cases share); nothing
    when no check ran (the note says why)."""
    out = []
    for c, points in zip(g.checks, g.points().values()):
        results = {label: g.cases.get((c.name, label), (False, "")) for label, _ in c.cases}
        failed = [(label, message) for label, (passed, message) in results.items() if not passed]
        if not failed:
            continue
        cases = f", {len(failed)} of {len(c.cases)} cases" if len(c.cases) > 1 else ""
        out.append(f"\n**{c.name}** ({points:g} of {c.points:g}{cases}):")
        said = [message for _, message in failed if message]
        if not said:
            out.append("- not checked (see the note above)")
        elif len(set(said)) == 1:
            out.append(indent(said[0]))
        else:
            out += [indent(f"{label}: {message}" if label else message) for label, message in failed if message]
    if not g.cases:
        return []
    return ["\n### What failed", *out] if out else []


def indent(message: str) -> str:
    first, *rest = message.splitlines() or [""]
    return "\n".join([f"- {first}", *(f"      {line}" for line in rest)])


def file_name(student: str) -> str:
    return re.sub(r"[^\w.-]+", "_", student).strip("._") or "student"


def write_feedback(results: list[Graded], folder: Path) -> list[Path]:
    """One Markdown file per student in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    by_student: dict[str, list[Graded]] = {}
    for g in results:
        by_student.setdefault(g.submission.student, []).append(g)
    written = []
    for student, graded in by_student.items():
        path = folder / f"{file_name(student)}.md"
        while path in written:  # two names that differ only in characters a file name cannot hold
            path = path.with_name(f"{path.stem}_.md")
        path.write_text(feedback(student, graded), encoding="utf-8")
        written.append(path)
    return written


def summary(results: list[Graded], seconds: float) -> str:
    """A few lines for the terminal: per assignment, the mean points, and who was not graded in full."""
    lines = [f"graded {len(results)} submissions of {len({g.submission.student for g in results})} students in "
             f"{seconds:.0f} s"]
    for a in sorted({g.submission.assignment for g in results}):
        graded = [g for g in results if g.submission.assignment == a]
        mean = sum(g.total() for g in graded) / len(graded)
        lines.append(f"{a}: {len(graded)} submissions, mean {mean:.1f} of {graded[0].possible():g} autograder points")
        lines += [f"  {g.submission.student} ({g.submission.name}): {g.note}" for g in graded if g.note]
    return "\n".join(lines)
