"""Generate both versions of every assignment from its one source: ``python assignments/build.py``.

A source, ``assignments/source/NN_name.py``, is a Python file in the percent format (``# %%`` starts a
code cell, ``# %% [markdown]`` a markdown cell written as ``# `` comments; anything before the first
cell is a note for maintainers). Solutions sit between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
lines, nbgrader-style, in code cells and in the written answers of markdown cells (with what to look for
when grading them). From it come

- the instructor version, ``assignments/solutions/NN_name.ipynb`` (the instructor edition of the book,
  ``make book-instructor``): each exercise as the student sees it (a code block), followed by the solution
  cell, executed but hidden behind a "Show the solution" toggle; written answers sit in a collapsed "A model
  answer" box;
- the student version, ``natmu_lite/classroom/notebooks/NN_name.ipynb`` (the public book's page, and what
  ``natmu-lite handout`` hands out, so it ships with the package): every solution replaced by
  ``# YOUR CODE HERE`` and ``raise NotImplementedError`` (code) or ``*YOUR ANSWER HERE*`` (prose).

Both get the chapters' install cell after the title and end with how the assignment is graded (each check's
points and the rubric's, from its check module ``natmu_lite/classroom/checks/aNN_name.py``) and the cell that
checks the student's work; no outputs, stable cell ids, and the assignment's name in the metadata (which the
grader recognises). Generating them from one source is what keeps them from drifting apart;
tests/test_assignments.py regenerates them and compares with the committed files. ``--out DIR`` writes under
DIR instead of the repository.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package: the check modules give the points
from natmu_lite.classroom.checking import checks  # noqa: E402
from natmu_lite.classroom.checks import load  # noqa: E402

SOURCES = ROOT / "assignments" / "source"
INSTRUCTOR_DIR, STUDENT_DIR = Path("assignments/solutions"), Path("natmu_lite/classroom/notebooks")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def install_cell() -> str:
    """The chapters' install cell, for the repository's address and the package's version in pyproject.toml
    (tools/repository_url.py writes it, there and into the chapters)."""
    spec = importlib.util.spec_from_file_location("repository_url", ROOT / "tools" / "repository_url.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.install_cell(module.repository_url(ROOT), module.version(ROOT))


INSTALL = install_cell()
NOTES = {
    "instructor": "*The instructor edition: each solution is behind a toggle below the exercise, each model "
                  "answer, with what to look for when grading it, in a collapsed box. Students get the exercise "
                  "notebook (`natmu-lite handout`, or the public book's page of this assignment).*",
    "student": "*Replace each `# YOUR CODE HERE` and `raise NotImplementedError` with your code and each "
               "*YOUR ANSWER HERE* with your answer; keep the functions' names and signatures. The last cell "
               "checks your work.*",
}
CHECK = """## Checking your work

The autograder checks your functions against the package's reference and against references computed
another way; your instructor grades the written parts by hand. Run the cell below once you have run the
others: it grades every cell you have run, as the class is graded, and says what to fix (or, in a
terminal, `natmu-lite grade {name}.ipynb` on the saved notebook).

While your work is graded, the package's own {functions} cannot be called from your code (calling
one fails with a message that says so): write your own. Your instructor may also run hidden checks (other
sizes, seeds and cases), so make your functions right in general, not just on the cases below. The
autograder runs your cells in order, as Jupyter does, each for at most a minute: a cell that fails or
runs longer (training, in a grader without your models) stops there and the feedback names it, so keep
what your functions need out of the training cells.

| graded | points |
|---|---|
{rows}"""


def parse(text: str) -> list[tuple[str, str]]:
    """(cell type, source) of each cell of a percent-format file."""
    cells = []
    for chunk in re.split(r"^# %%", text, flags=re.M)[1:]:
        head, _, body = chunk.partition("\n")
        if head.strip() == "[markdown]":
            body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
        cells.append(("markdown" if head.strip() == "[markdown]" else "code", body.strip("\n")))
    return cells


def split_solution(source: str, stub: str, wrap: tuple[str, str] = ("", "")) -> tuple[str, str | None]:
    """(student text, solution text or None when there is no solution): each marked region becomes
    ``stub`` at its indentation in the one, and is kept between the lines ``wrap`` in the other."""
    student, solution, inside = [], [], False
    for line in source.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        if line.strip() in (BEGIN, END):
            inside = line.strip() == BEGIN
            student += [indent + s for s in stub.splitlines()] if inside else []
            solution += wrap[not inside].splitlines()
        else:
            solution.append(line)
            student += [] if inside else [line]
    has_solution = any(line.strip() == BEGIN for line in source.splitlines())
    return "\n".join(student), "\n".join(solution) if has_solution else None


def cell(kind: str, source: str, index: int, metadata: dict | None = None) -> dict:
    out = {"cell_type": kind, "id": f"cell-{index}", "metadata": metadata or {}, "source": source.splitlines(True)}
    return {**out, "execution_count": None, "outputs": []} if kind == "code" else out


ANSWER = (":::{admonition} A model answer\n:class: dropdown", ":::")
HIDDEN = {"tags": ["hide-input"], "mystnb": {"code_prompt_show": "Show the solution",
                                             "code_prompt_hide": "Hide the solution"}}


def grading(name: str) -> list[tuple[str, str, None]]:
    """The closing cells: each check's and rubric item's points, then the cell that checks the student's work."""
    module = load(name)
    rows = [(f"autograder: {c.name.replace('_', ' ')}", c.points) for c in checks(module)]
    rows += [(f"by hand: {item}", points) for item, points in module.RUBRIC.items()]
    table = "\n".join(f"| {what} | {points:g} |" for what, points in rows)
    table += f"\n| **total** | **{sum(p for _, p in rows):g}** |"
    code = f'# Grade every cell run so far, as the class is graded\nfrom natmu_lite.classroom import self_check\n\n' \
           f'self_check(In, "{name}")'
    functions = ", ".join(f"`{f}`" for f in module.FUNCTIONS)
    return [("markdown", CHECK.format(name=name, rows=table, functions=functions), None), ("code", code, None)]


def versions(source: Path) -> dict[str, dict]:
    """The instructor and the student notebook of one source."""
    name, cells = source.stem, parse(source.read_text())
    out = {"instructor": [], "student": []}
    for i, (kind, text) in enumerate(cells):
        if kind == "code":
            student, solution = split_solution(text, "# YOUR CODE HERE\nraise NotImplementedError")
            out["student"].append(("code", student, None))
            if solution is None:
                out["instructor"].append(("code", text, None))
            else:
                out["instructor"] += [("markdown", f"```python\n{student}\n```", None), ("code", solution, HIDDEN)]
        else:
            student, instructor = split_solution(text, "*YOUR ANSWER HERE*", ANSWER)
            instructor = text if instructor is None else instructor
            for version, md in (("instructor", instructor), ("student", student)):
                md = f"{md}\n\n{NOTES[version]}" if i == 0 else md
                out[version].append(("markdown", md, None))
            if i == 0:
                for version in out:
                    out[version].append(("code", INSTALL, None))
    meta = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "natmu_lite": {"assignment": name}}
    return {v: {"cells": [cell(k, s, j, m) for j, (k, s, m) in enumerate(c + grading(name))], "metadata": meta,
                "nbformat": 4, "nbformat_minor": 5} for v, c in out.items()}


def build(out: Path = ROOT) -> list[Path]:
    """Write every assignment's two notebooks under ``out``; returns their paths relative to ``out``."""
    written = []
    for source in sorted(SOURCES.glob("[0-9]*.py")):
        for version, nb in versions(source).items():
            rel = (INSTRUCTOR_DIR if version == "instructor" else STUDENT_DIR) / f"{source.stem}.ipynb"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            written.append(rel)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT, help="write under this folder (default: the repository)")
    for path in build(parser.parse_args().out):
        print(path)
