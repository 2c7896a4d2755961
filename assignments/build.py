"""Generate both versions of every assignment from its one source: ``python assignments/build.py``.

A source, ``assignments/source/NN_name.py``, is a Python file in the percent format (``# %%`` starts a
code cell, ``# %% [markdown]`` a markdown cell written as ``# `` comments; anything before the first
cell is a note for maintainers). Solutions sit between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
lines, nbgrader-style, in code cells and in the written answers of markdown cells. From it come

- the book version, ``notebooks/assignments/NN_name.ipynb``: each exercise as the student sees it (a
  code block), followed by the solution cell, executed when the book is built but hidden behind a
  "Show the solution" toggle; written answers sit in a collapsed "A model answer" box;
- the student version, ``assignments/student/NN_name.ipynb``: every solution replaced by
  ``# YOUR CODE HERE`` and ``raise NotImplementedError`` (code) or ``*YOUR ANSWER HERE*`` (prose).

Both get the chapters' install cell after the title, no outputs and stable cell ids. Generating them
from one source is what keeps them from drifting apart; tests/test_assignments.py regenerates them and
compares with the committed files. ``--out DIR`` writes under DIR instead of the repository.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "assignments" / "source"
BOOK_DIR, STUDENT_DIR = Path("notebooks/assignments"), Path("assignments/student")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
AUTOGRADER = "pytest assignments/autograder/test_{name}.py --student {path}"


def repository_url() -> str:
    """The repository's address, the one setting in pyproject.toml (read by tools/repository_url.py)."""
    spec = importlib.util.spec_from_file_location("repository_url", ROOT / "tools" / "repository_url.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.repository_url(ROOT)


INSTALL = f"""# Install the package when it is missing (e.g. on Colab); here it is already installed.
try:
    import natmu_lite  # noqa: F401
except ImportError:
    %pip install -q "natmu-lite @ git+{repository_url()}\""""
NOTES = {
    "book": "*Try each exercise before you open its solution (the toggles below). The exercise notebook to "
            "download is `assignments/student/{name}.ipynb`; check your copy with "
            "`" + AUTOGRADER.format(name="{name}", path="your_copy.ipynb") + "`.*",
    "student": "*Replace each `# YOUR CODE HERE` and `raise NotImplementedError` with your code and each "
               "*YOUR ANSWER HERE* with your answer; keep the functions' names and signatures. Check your work "
               "with `" + AUTOGRADER.format(name="{name}", path="assignments/student/{name}.ipynb") + "`.*",
}


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


def versions(source: Path) -> dict[str, dict]:
    """The book and the student notebook of one source."""
    name, cells = source.stem, parse(source.read_text())
    out = {"book": [], "student": []}
    for i, (kind, text) in enumerate(cells):
        if kind == "code":
            student, solution = split_solution(text, "# YOUR CODE HERE\nraise NotImplementedError")
            out["student"].append(("code", student, None))
            if solution is None:
                out["book"].append(("code", text, None))
            else:
                out["book"] += [("markdown", f"```python\n{student}\n```", None), ("code", solution, HIDDEN)]
        else:
            student, book = split_solution(text, "*YOUR ANSWER HERE*", ANSWER)
            book = text if book is None else book
            for version, md in (("book", book), ("student", student)):
                md = f"{md}\n\n{NOTES[version].format(name=name)}" if i == 0 else md
                out[version].append(("markdown", md, None))
            if i == 0:
                for version in out:
                    out[version].append(("code", INSTALL, None))
    meta = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    return {v: {"cells": [cell(k, s, j, m) for j, (k, s, m) in enumerate(c)], "metadata": meta, "nbformat": 4,
                "nbformat_minor": 5} for v, c in out.items()}


def build(out: Path = ROOT) -> list[Path]:
    """Write every assignment's two notebooks under ``out``; returns their paths relative to ``out``."""
    written = []
    for source in sorted(SOURCES.glob("[0-9]*.py")):
        for version, nb in versions(source).items():
            rel = (BOOK_DIR if version == "book" else STUDENT_DIR) / f"{source.stem}.ipynb"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            written.append(rel)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT, help="write under this folder (default: the repository)")
    for path in build(parser.parse_args().out):
        print(path)
