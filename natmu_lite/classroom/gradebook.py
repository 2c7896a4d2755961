"""What grading hands back: the course's gradebook (CSV, one row per student, a group of columns per assignment), an
export for learning platforms, and one feedback file per student.

For each assignment: the file graded, the points of each check (its maximum in the column's name; hidden checks
start with "hidden:"), the public and hidden totals, the autograder's total, a column per rubric item for the
points given by hand, an override, a note (what kept the file from being graded in full, how it was collected),
and flags for the teacher (what the grader caught the student's code doing). Grading again, or grading another
assignment, into the same gradebook rewrites only the autograder's cells of the submissions graded: every other
student, assignment, hand point, override and column the teacher added stays; so does a cell of the autograder's
that the teacher edited (the grader remembers what it wrote, in ``.gradebook.json`` beside it). Comma or
semicolon CSV is read alike and written back as it came; the file is replaced only once the new one is complete.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from pathlib import Path

from .checks import load
from .collect import Skipped, printable
from .grade import Graded, is_hidden

STUDENT, LMS_ID, FILES = "student", "lms id", "files not graded"


def columns(g: Graded) -> tuple[list[str], list[str]]:
    """(the autograder's columns, the teacher's columns) of one graded assignment, maxima in the names."""
    a = g.submission.assignment
    auto = [f"{a}/file", *(f"{a}/{c.name} ({c.points:g})" for c in g.checks)]
    if g.possible(hidden=True):
        auto += [f"{a}/public ({g.possible(hidden=False):g})", f"{a}/hidden ({g.possible(hidden=True):g})"]
    auto += [f"{a}/autograder ({g.possible():g})", f"{a}/late", f"{a}/note", f"{a}/flags"]
    rubric = [f"{a}/by hand: {item} ({points:g})" for item, points in load(a).RUBRIC.items()]
    return auto, [*rubric, f"{a}/override"]


def values(g: Graded) -> list[str]:
    points = [f"{p:g}" for p in g.points().values()]
    totals = [f"{g.total(hidden=False):g}", f"{g.total(hidden=True):g}"] if g.possible(hidden=True) else []
    note = "; ".join(filter(None, [g.note, g.submission.note]))
    return [g.submission.name, *points, *totals, f"{g.total():g}", "late" * g.submission.late, note,
            "; ".join(g.flags)]


def read_table(path: Path) -> tuple[list[str], list[dict], str]:
    """(header, rows, delimiter) of a CSV written by this grader or saved by a spreadsheet (comma or semicolon)."""
    if not path.exists():
        return [], [], ","
    text = path.read_text(encoding="utf-8-sig")
    first = text.splitlines()[0] if text else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    return list(reader.fieldnames or []), list(reader), delimiter


def write_table(path: Path, header: list[str], rows: list[dict], delimiter: str = ",") -> None:
    """Write to a new file beside ``path``, then put it in its place: a crash leaves the old file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, header, delimiter=delimiter, extrasaction="ignore")
            writer.writeheader()
            writer.writerows([{printable(k): printable(v) if isinstance(v, str) else v for k, v in row.items()}
                              for row in rows])
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_gradebook(results: list[Graded], path: Path, skipped: list[Skipped] = ()) -> None:
    """Merge ``results`` (and the files not graded) into the gradebook at ``path``: see the module's docstring."""
    header, table, delimiter = read_table(path)
    memory = path.with_name(".gradebook.json")
    written = json.loads(memory.read_text()) if memory.exists() else {}
    by_student = {row.get(STUDENT, ""): row for row in table}
    for column in (STUDENT, LMS_ID):
        header += [column] * (column not in header)
    for g in results:
        auto, teacher = columns(g)
        header += [c for c in [*auto, *teacher] if c not in header]
        row = by_student.setdefault(g.submission.student, {STUDENT: g.submission.student})
        row[LMS_ID] = g.submission.lms_id or row.get(LMS_ID, "")
        for column, value in zip(auto, values(g)):
            key = f"{g.submission.student}\t{column}"
            if column in row and key in written and row[column] != written[key]:
                continue  # the teacher changed what the autograder wrote: theirs stays
            row[column] = written[key] = value
    notes: dict[str, list[str]] = {}
    for s in skipped:
        notes.setdefault(s.student, []).append(f"{s.name}: {s.why}")
    if notes:
        header += [FILES] * (FILES not in header)
    for student, lines in notes.items():
        by_student.setdefault(student, {STUDENT: student})[FILES] = "; ".join(lines)
    header = [STUDENT, LMS_ID, *(printable(c) for c in header if c not in (STUDENT, LMS_ID))]
    rows = [by_student[s] for s in sorted(by_student, key=str.lower)]
    write_table(path, header, rows, delimiter)
    memory.write_text(json.dumps(written))


def read_rubric(path: Path) -> dict[str, dict[str, str]]:
    """The points entered by hand (rubric items and overrides) in a gradebook, by student."""
    _, table, _ = read_table(path)
    entered = {row.get(STUDENT): {k: v for k, v in row.items() if k and ("/by hand: " in k or
                                                                          k.endswith("/override")) and v}
               for row in table}
    return {student: points for student, points in entered.items() if student and points}


def export(gradebook: Path, path: Path) -> None:
    """Each assignment's final points (the override, else the autograder's total plus the hand points), in the
    columns a learning platform imports: Canvas's (Student, ID, SIS User ID, Section, then one column per
    assignment); Moodle and others map the columns on import."""
    header, table, _ = read_table(gradebook)
    assignments = sorted({c.split("/")[0] for c in header if "/" in c})
    out = [{"Student": row[STUDENT], "ID": row.get(LMS_ID, ""), "SIS User ID": "", "Section": "",
            **{a: final(row, a) for a in assignments}} for row in table]
    write_table(path, ["Student", "ID", "SIS User ID", "Section", *assignments], out)


def final(row: dict, assignment: str) -> str:
    override = (row.get(f"{assignment}/override") or "").strip()
    if override:
        return override
    parts = [v for k, v in row.items() if k and k.startswith(f"{assignment}/") and
             (k.startswith(f"{assignment}/autograder (") or "/by hand: " in k) and v]
    try:
        return f"{sum(float(v.replace(',', '.')) for v in parts):g}" if parts else ""
    except ValueError:
        return ""


def feedback(student: str, results: list[Graded]) -> str:
    """One student's feedback, as Markdown."""
    out = [f"# Feedback for {student}"]
    for g in results:
        rubric = load(g.submission.assignment).RUBRIC
        out += [f"\n## {g.submission.assignment}: {g.total():g} of {g.possible():g} points from the autograder",
                *([f"\n(public checks {g.total(hidden=False):g} of {g.possible(hidden=False):g}, hidden checks "
                   f"{g.total(hidden=True):g} of {g.possible(hidden=True):g})"] if g.possible(hidden=True) else []),
                f"\nGraded file: `{g.submission.name}`."]
        if g.note:
            out.append(f"\n**Not graded in full**: {g.note}")
        if g.cells:
            out.append("\nCells that did not run in full when the autograder ran your file (each cell runs in "
                       "order, as in Jupyter; after an error or the time limit, the rest of the cell runs only its "
                       "imports and definitions):\n" + "\n".join(indent(c) for c in g.cells))
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
        if is_hidden(c):
            out.append("- failed (the hidden checks' details are for your instructor)")
            continue
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
             f"{seconds:.0f} s; the students' code ran in {' or '.join(sorted({g.jail for g in results})) or '-'}"]
    for a in sorted({g.submission.assignment for g in results}):
        graded = [g for g in results if g.submission.assignment == a]
        mean = sum(g.total() for g in graded) / len(graded)
        lines.append(f"{a}: {len(graded)} submissions, mean {mean:.1f} of {graded[0].possible():g} autograder points")
        lines += [f"  {g.submission.student} ({g.submission.name}): {g.note}" for g in graded if g.note]
    return "\n".join(lines)
