"""A student checks their own work, graded as the class is and printed as feedback: a saved notebook or ``.py``
file (``natmu-lite grade my_copy.ipynb``), or, inside a running notebook, every cell run so far
(``self_check(In, "01_masks")``, the last cell of each hand-out notebook)."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

from .checks import ASSIGNMENTS
from .collect import Submission, recognise
from .grade import Limits, grade_one
from .gradebook import feedback


def check_file(path: Path, assignment: str | None = None, limits: Limits | None = None) -> str:
    """The feedback on one file, Markdown."""
    assignment = assignment or recognise(path)
    if assignment is None:
        raise ValueError(f"cannot tell which assignment {path} answers: name it with --assignment "
                         f"({', '.join(ASSIGNMENTS)})")
    graded = grade_one(Submission(path.stem, assignment, path, path.name), limits or Limits())
    return feedback(path.name, [graded])


def self_check(cells: list[str], assignment: str) -> None:
    """Grade the cells run so far in a notebook and print the feedback: ``cells`` is IPython's ``In``, the cells in
    the order they ran (``In[0]`` is empty), so that "code cell 5" in a message is the cell shown as ``[5]``. The
    cells already ran in the student's session, so only their imports and definitions run again (in seconds,
    where running them in full would train the notebook's models again); grading runs every cell."""
    code = [{"cell_type": "code", "source": c, "metadata": {}, "outputs": [], "execution_count": None}
            for c in cells[1:]]
    with tempfile.TemporaryDirectory(prefix="natmu-check-") as folder:
        path = Path(folder) / "cells_run_so_far.ipynb"
        path.write_text(json.dumps({"cells": code, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
        print(check_file(path, assignment, dataclasses.replace(Limits(), cells=0.0)))
