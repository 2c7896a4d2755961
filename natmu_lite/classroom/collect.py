"""A class's submissions: every notebook or ``.py`` file in a folder, or in a zip such as a learning platform's
download, with whose it is and which assignment it answers, whatever the files are called.

- The assignment comes from the mapping file, else ``--assignment``, else the file's content (the hand-out's
  notebooks carry their assignment in their metadata; otherwise the functions the file defines decide), else
  the assignment's name in the file's name. A file that answers none (a helper module, a report) is skipped,
  with a warning.
- The student comes from the mapping file, else ``--student-pattern`` (a regular expression with a group named
  ``student``, searched in the file's path inside the folder), else the folder the file sits in (one folder per
  student), else the file's name without the assignment's name and what platforms add ("Copy of", "(1)").

Everything is decided before any grading starts: a file whose student cannot be told, or two files of one
student for one assignment, is an error that names them.
"""

from __future__ import annotations

import csv
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .checks import ASSIGNMENTS, load

SUFFIXES = (".ipynb", ".py")
SKIPPED_FOLDERS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}
NOISE = re.compile(r"copy of|- copy\b|\(\d+\)", re.I)  # what Colab, Windows and browsers add to a file's name


@dataclass(frozen=True)
class Submission:
    student: str
    assignment: str
    path: Path  # the file
    name: str  # its path inside the class folder, as messages and the gradebook show it


def unpack(archive: Path, into: Path) -> Path:
    """Extract a zip (and the zips inside it, each into a folder of its name) into ``into``; refuses paths that
    would land outside it."""
    try:
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if not (into / name).resolve().is_relative_to(into.resolve()):
                    raise ValueError(f"{archive}: refusing the path {name!r}, which leads outside the archive")
            z.extractall(into)
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


def student_of(rel: Path, assignment: str, pattern: re.Pattern | None) -> str | None:
    """Whose file it is, from its path inside the class folder (see the module's docstring)."""
    if pattern is not None:
        m = pattern.search(rel.as_posix())
        return m["student"].strip() if m and m["student"] else None
    if len(rel.parts) > 1:
        return rel.parts[0].strip()
    name = re.sub(re.escape(assignment), " ", rel.stem, flags=re.I)
    return NOISE.sub(" ", name).strip(" _-.") or None


def find(root: Path, assignment: str | None = None, mapping: Path | None = None, pattern: str | None = None,
         source: str | None = None) -> tuple[list[Submission], list[str]]:
    """The submissions under ``root`` (unpacked from ``source``, which messages name), and a warning for each file
    skipped; ValueError for what is ambiguous."""
    source = source or str(root)
    if assignment is not None and assignment not in ASSIGNMENTS:
        raise ValueError(f"--assignment {assignment!r}: unknown; valid: {', '.join(ASSIGNMENTS)}")
    regex = compile_pattern(pattern)
    mapped = read_mapping(mapping) if mapping else {}
    found, skipped, unknown = [], [], []
    for path in candidates(root):
        rel = path.relative_to(root)
        key = rel.as_posix() if rel.as_posix() in mapped else path.name
        student, task = mapped.pop(key, ("", ""))
        task = task or assignment or recognise(path)
        if task is None:
            skipped.append(f"skipped {rel}: it answers none of the assignments (name it in --mapping to grade it)")
            continue
        student = student or student_of(rel, task, regex)
        if not student:
            unknown.append(str(rel))
            continue
        found.append(Submission(student, task, path, rel.as_posix()))
    if mapped:
        raise ValueError(f"--mapping {mapping} names files that are not in {source}: {', '.join(sorted(mapped))}")
    if unknown:
        raise ValueError(f"cannot tell whose these files are: {', '.join(unknown)}. Put each student's files in a "
                         "folder named after the student, add the name to the file's name, or list the files in "
                         "--mapping")
    check_unique(found)
    if not found:
        raise ValueError(f"{source} holds no submissions (.ipynb or .py files of an assignment)")
    return found, skipped


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


def check_unique(found: list[Submission]) -> None:
    """One file per student and assignment: two would be two grades for one piece of work."""
    by_key: dict[tuple[str, str], list[str]] = {}
    for s in found:
        by_key.setdefault((s.student, s.assignment), []).append(s.name)
    twice = [f"{student} ({assignment}): {', '.join(names)}" for (student, assignment), names in by_key.items()
             if len(names) > 1]
    if twice:
        raise ValueError("more than one file for one student and assignment (keep one, or tell them apart in "
                         "--mapping): " + "; ".join(twice))
