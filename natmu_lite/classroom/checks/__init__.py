"""The checks of each assignment, one module per assignment (``a01_masks`` grades ``01_masks``), each with

- ``FUNCTIONS``: the functions the student writes (they also recognise a submission by its content);
- ``RUBRIC``: what the instructor grades by hand, with its points (empty gradebook columns);
- its checks, each with its points (:func:`~natmu_lite.classroom.checking.graded`).

They ship with the package (not with the repository's tests), so that grading works wherever the package is
installed; :mod:`natmu_lite.classroom.references` holds the independent references they compare with.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import torch

ASSIGNMENTS = tuple(sorted(m.name[1:] for m in pkgutil.iter_modules(__path__) if re.fullmatch(r"a\d\d_\w+", m.name)))


def load(assignment: str) -> ModuleType:
    """The check module of ``assignment`` (e.g. ``"01_masks"``)."""
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {assignment!r}; valid: {', '.join(ASSIGNMENTS)}")
    return importlib.import_module(f"{__name__}.a{assignment}")


def tiny_dataset(n_per_class: int = 20, k: int = 10, size: int = 12, seed: int = 0):
    """A small synthetic :class:`natmu_lite.Dataset` (class c is a bright bar at row 1 + c): no download."""
    from natmu_lite.datasets import Dataset

    g = torch.Generator().manual_seed(seed)

    def make(n):
        y = torch.arange(k).repeat_interleave(n)
        x = torch.randint(0, 60, (len(y), 1, size, size), generator=g)
        x[torch.arange(len(y)), :, 1 + y % (size - 2)] += 150
        return x.clamp(0, 255).to(torch.uint8), y

    (tx, ty), (vx, vy) = make(n_per_class), make(n_per_class // 2)
    return Dataset("tiny", tx, ty, vx, vy, [f"c{i}" for i in range(k)], (0.3,), (0.3,))


def hidden_module(assignment: str, folder: Path) -> ModuleType | None:
    """The instructor's hidden checks of ``assignment``: ``folder/a<assignment>.py`` (not shipped with the package:
    see ``assignments/hidden``), or None where the folder has none for it."""
    path = Path(folder) / f"a{assignment}.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"natmu_lite_hidden_checks.a{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
