"""A class's submissions: every notebook or ``.py`` file in a folder, or in a zip such as a learning platform's
download, with whose it is and which assignment it answers, whatever the files are called.

- The assignment comes from the mapping file, else ``--assignment``, else the file's content (the hand-out's
  notebooks carry their assignment in their metadata; otherwise the functions the file defines decide), else
  the assignment's name in the file's name. A file that answers none (a helper module, a report) is skipped,
  with a warning.
- The student comes from the mapping file, else ``--student-pattern`` (a regular expression with a group named
  ``student``, and optionally ``id`` and ``late``, searched in the file's path inside the folder), else Canvas's
  names (``smithalice_late_1001_70001_file.ipynb``: the student, the late marker and Canvas's student id), else
  the folder the file sits in (one folder per student), else the file's name without the assignment's name and
  what platforms add ("Copy of", "(1)").
- Two files of one student for one assignment: the one modified last (a platform's zip dates each file with its
  submission) is graded, and the note names the others; two of the same time are an error that names them.

Everything is decided before any grading starts, and every file is accounted for: a file that answers no
assignment, or whose student cannot be told, is listed (:class:`Skipped`) for the gradebook's notes.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from .checks import ASSIGNMENTS, load

SUFFIXES = (".ipynb", ".py")
SKIPPED_FOLDERS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}
NOISE = re.compile(r"copy of|- copy\b|\(\d+\)", re.I)  # what Colab, Windows and browsers add to a file's name
CANVAS = re.compile(r"^(?P<student>[a-z0-9]+?)(?P<late>_late)?_(?P<id>\d+)_\d+_", re.I)


@dataclass(frozen=True)
class Submission:
    student: str
    assignment: str
    path: Path  # the file
    name: str  # its path inside the class folder, as messages and the gradebook show it
    lms_id: str = ""  # the learning platform's id of the student, where its names carry one
    late: bool = False  # the platform marked it late
    note: str = ""  # about how it was collected (other files of the same student and assignment)


@dataclass(frozen=True)
class Skipped:
    """A file not graded, and why: the gradebook lists it under its student (or its own name)."""

    student: str
    name: str
    why: str


def printable(text: str) -> str:
    """A name as the gradebook can hold it (a file name that is not UTF-8 keeps a replacement character)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def unpack(archive: Path, into: Path) -> Path:
    """Extract a zip (and the zips inside it, each into a folder of its name) into ``into``; refuses paths that
    would land outside it."""
    try:
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if not (into / name).resolve().is_relative_to(into.resolve()):
                    raise ValueError(f"{archive}: refusing the path {name!r}, which leads outside the archive")
            z.extractall(into)
            for info in z.infolist():  # the platform's date of each file (its submission), for duplicates
                when = time.mktime((*info.date_time, 0, 0, -1))
                os.utime(into / info.filename, (when, when))
    except zipfile.BadZipFile as e:
        raise ValueError(f"{archive} is not a readable zip file ({e})") from None
    for inner in sorted(into.rglob("*.zip")):
        unpack(inner, inner.with_suffix(""))
        inner.unlink()
    return into


def candidates(root: Path) -> list[Path]:
    """The notebooks and .py files under ``root``, without hidden files and checkpoint folders."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES
                  and not any(part.startswith(".") or part in SKIPPED_FOLDERS for part in p.relative_to(root).parts))


def read_mapping(path: Path) -> dict[str, tuple[str, str]]:
    """A mapping file: CSV with the columns ``file`` (its path inside the class folder, or its name),
    ``student`` and, optionally, ``assignment``; by file."""
    if not path.is_file():
        raise ValueError(f"--mapping {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"file", "student"} <= set(rows[0]):
        raise ValueError(f"--mapping {path}: expected a CSV file with the columns file, student (and assignment)")
    out = {}
    for row in rows:
        assignment = (row.get("assignment") or "").strip()
        if assignment and assignment not in ASSIGNMENTS:
            raise ValueError(f"--mapping {path}: unknown assignment {assignment!r} for {row['file']}; valid: "
                             f"{', '.join(ASSIGNMENTS)}")
        out[row["file"].strip()] = (row["student"].strip(), assignment)
    return out


def recognise(path: Path) -> str | None:
    """The assignment a file answers, from its content (notebook metadata, else the graded functions it defines
    most of), else from its name; None if nothing tells."""
    text = path.read_text(errors="replace")
    if path.suffix == ".ipynb":
        try:
            notebook = json.loads(text)
            tagged = notebook.get("metadata", {}).get("natmu_lite", {}).get("assignment")
            if tagged in ASSIGNMENTS:
                return tagged
            text = "\n".join("".join(c.get("source", "")) for c in notebook["cells"] if c.get("cell_type") == "code")
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # a damaged notebook: search its raw text
    defined = set(re.findall(r"\bdef\s+(\w+)\s*\(", text))
    counts = {a: len(defined & set(load(a).FUNCTIONS)) for a in ASSIGNMENTS}
    best = max(counts.values())
    found = [a for a, n in counts.items() if n == best and n > 0]
    if len(found) == 1:
        return found[0]
    named = [a for a in ASSIGNMENTS if a.lower() in path.name.lower()]
    return named[0] if len(named) == 1 else None


def student_of(rel: Path, assignment: str, pattern: re.Pattern | None) -> tuple[str | None, str, bool]:
    """Whose file it is, the platform's id of the student and its late marker, from the file's path inside the
    class folder (see the module's docstring)."""
    m = pattern.search(rel.as_posix()) if pattern is not None else CANVAS.match(rel.parts[0])
    if m or pattern is not None:
        groups = m.groupdict() if m else {}
        return (groups.get("student") or "").strip() or None, groups.get("id") or "", bool(groups.get("late"))
    if len(rel.parts) > 1:
        return rel.parts[0].strip(), "", False
    name = re.sub(re.escape(assignment), " ", rel.stem, flags=re.I)
    return NOISE.sub(" ", name).strip(" _-.") or None, "", False


def find(root: Path, assignment: str | None = None, mapping: Path | None = None, pattern: str | None = None,
         source: str | None = None) -> tuple[list[Submission], list[Skipped]]:
    """The submissions under ``root`` (unpacked from ``source``, which messages name), and the files not graded;
    ValueError for what is ambiguous."""
    source = source or str(root)
    if assignment is not None and assignment not in ASSIGNMENTS:
        raise ValueError(f"--assignment {assignment!r}: unknown; valid: {', '.join(ASSIGNMENTS)}")
    regex = compile_pattern(pattern)
    mapped = read_mapping(mapping) if mapping else {}
    found, skipped = [], []
    for path in candidates(root):
        rel = path.relative_to(root)
        key = rel.as_posix() if rel.as_posix() in mapped else path.name
        student, task = mapped.pop(key, ("", ""))
        task = task or assignment or recognise(path)
        who, lms_id, late = student_of(rel, task or "", regex)
        student, name = printable(student or who or ""), printable(rel.as_posix())
        if task is None:
            skipped.append(Skipped(student or name, name, "it answers none of the assignments (name it in --mapping "
                                                          "to grade it)"))
        elif not student:
            skipped.append(Skipped(name, name, "whose it is cannot be told: put it in a folder named after the "
                                               "student, or list it in --mapping"))
        else:
            found.append(Submission(student, task, path, name, lms_id, late))
    if mapped:
        raise ValueError(f"--mapping {mapping} names files that are not in {source}: {', '.join(sorted(mapped))}")
    if not found:
        raise ValueError(f"{source} holds no submissions (.ipynb or .py files of an assignment)" +
                         (f"; not graded: {'; '.join(f'{s.name}: {s.why}' for s in skipped)}" if skipped else ""))
    return latest(found, skipped), skipped


def compile_pattern(pattern: str | None) -> re.Pattern | None:
    if pattern is None:
        return None
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"--student-pattern {pattern!r} is not a regular expression ({e})") from None
    if "student" not in regex.groupindex:
        raise ValueError(f"--student-pattern {pattern!r} needs a group named student, e.g. '^(?P<student>[^_]+)_'")
    return regex


def latest(found: list[Submission], skipped: list[Skipped]) -> list[Submission]:
    """One file per student and assignment: the one modified last; the others join ``skipped``. Two files of the
    same time are an error (nothing tells which counts)."""
    by_key: dict[tuple[str, str], list[Submission]] = {}
    for s in found:
        by_key.setdefault((s.student, s.assignment), []).append(s)
    out, ties = [], []
    for (student, assignment), files in by_key.items():
        files.sort(key=lambda s: s.path.stat().st_mtime, reverse=True)
        if len(files) > 1 and files[0].path.stat().st_mtime == files[1].path.stat().st_mtime:
            ties.append(f"{student} ({assignment}): {', '.join(s.name for s in files)}")
            continue
        others = [s.name for s in files[1:]]
        note = f"also submitted, older, not graded: {', '.join(others)}" if others else ""
        out.append(replace(files[0], note=note))
        skipped += [Skipped(student, s.name, f"an older file of {assignment}, not graded") for s in files[1:]]
    if ties:
        raise ValueError("more than one file of the same time for one student and assignment (keep one, or tell "
                         "them apart in --mapping): " + "; ".join(ties))
    return out
