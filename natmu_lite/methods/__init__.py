"""Unlearning methods, one file each, all with one signature (see :mod:`.base`).

Importing this package imports every module in it, so a new method is one new file that decorates
its function with ``@register(...)``: the tables, the figures, tuning and the protocols then know it
through the views below.

A method's file may also live outside the package, in three ways that register it in this process and in
every process it starts (the protocol's workers, the audit's pool):

- a notebook or script: ``natmu_lite.methods.load_file("my_method.py")``;
- the command: ``natmu-lite --method-file my_method.py COMMAND ...`` (repeatable, before the command);
- an installed package: an entry point in the group ``natmu_lite.methods`` naming its module, e.g. in its
  ``pyproject.toml``: ``[project.entry-points."natmu_lite.methods"] mine = "my_package.my_method"``.

A loaded file is listed in the environment variable ``NATMU_LITE_METHOD_FILES`` (``os.pathsep``-separated
absolute paths), which this package reads on import: that is how a worker process, started with this one's
environment, gets the same methods. A name that is registered already, a built-in method's or another
file's, is refused with both files named, before anything runs.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil
import sys
from pathlib import Path

from .base import METHODS, ORIGINS, ROWS, Method, Row, RowView, UnlearnFn, register, unregister

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

METHOD_ORDER = RowView("order")  # every row's name, in the book's order
METHOD_NAMES = RowView("display")  # name -> its name in tables and figures
COLORS = RowView("color")  # name -> its colour in every figure
SEARCH_SPACES = RowView("space", where=lambda r: getattr(r, "space", None) is not None)  # the tuned methods
REFERENCE_METHODS = RowView("name", where=lambda r: r.reference)  # Retrain and the original: never ranked
FILES_VARIABLE = "NATMU_LITE_METHOD_FILES"  # the method files every process loads when it imports this package
ENTRY_POINTS = "natmu_lite.methods"  # the entry-point group of installed packages' methods


def in_book_order(names) -> list[str]:
    """``names`` (each once) in the book's order, the names of no registered row after them, sorted: the
    order of every table's rows, figure's legend and sentence that lists methods."""
    present = set(names)
    return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))


def listed_files() -> list[str]:
    """The method files :data:`FILES_VARIABLE` lists."""
    return [p for p in os.environ.get(FILES_VARIABLE, "").split(os.pathsep) if p]


def load_file(path: str | os.PathLike) -> list[str]:
    """Register the methods (and rows) of a Python file, here and in every process started from here (the
    file joins :data:`FILES_VARIABLE`); returns the names it registered. A file loaded again runs again, its
    rows replaced (an edited file, in a notebook). A missing file (FileNotFoundError), a name registered
    elsewhere (ValueError, naming both files) or any error of the file's own leaves none of its rows
    registered and the file unlisted."""
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise FileNotFoundError(f"{path}: no such method file")
    module = f"_natmu_method_file_{file.stem}_{hashlib.sha256(str(file).encode()).hexdigest()[:8]}"
    _forget(module)
    spec = importlib.util.spec_from_file_location(module, file)
    sys.modules[module] = importlib.util.module_from_spec(spec)  # before it runs: dataclasses and pickle look
    try:
        spec.loader.exec_module(sys.modules[module])
    except BaseException:
        _forget(module)
        _list([p for p in listed_files() if p != str(file)])
        raise
    if str(file) not in listed_files():
        _list([*listed_files(), str(file)])
    return [name for name, m in ORIGINS.items() if m == module]


def _list(files: list[str]) -> None:
    if files:
        os.environ[FILES_VARIABLE] = os.pathsep.join(files)
    else:
        os.environ.pop(FILES_VARIABLE, None)


def _forget(module: str) -> None:
    """Unregister what ``module`` registered and drop the module."""
    for name in [n for n, m in ORIGINS.items() if m == module]:
        unregister(name)
    sys.modules.pop(module, None)


def load_entry_points() -> None:
    """Import the modules that installed packages name in the :data:`ENTRY_POINTS` group."""
    for point in importlib.metadata.entry_points(group=ENTRY_POINTS):
        try:
            point.load()
        except ValueError as e:
            raise ValueError(f"entry point {point.name} = {point.value} ({ENTRY_POINTS}): {e}") from None


load_entry_points()
for _file in listed_files():
    try:
        load_file(_file)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e} (listed in {FILES_VARIABLE})") from None

__all__ = ["COLORS", "ENTRY_POINTS", "FILES_VARIABLE", "METHODS", "METHOD_NAMES", "METHOD_ORDER", "Method",
           "REFERENCE_METHODS", "ROWS", "Row", "RowView", "SEARCH_SPACES", "UnlearnFn", "in_book_order",
           "listed_files", "load_entry_points", "load_file", "register"]
