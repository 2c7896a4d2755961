"""Unlearning methods, one file each, all with one signature (see :mod:`.base`).

Importing this package imports every module in it, so a new method is one new file that decorates
its function with ``@register(...)``: the tables, the figures, tuning and the protocols then know it
through the views below.
"""

import importlib
import pkgutil

from .base import METHODS, ROWS, Method, Row, RowView, UnlearnFn, register

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

METHOD_ORDER = RowView("order")  # every row's name, in the book's order
METHOD_NAMES = RowView("display")  # name -> its name in tables and figures
COLORS = RowView("color")  # name -> its colour in every figure
SEARCH_SPACES = RowView("space", where=lambda r: getattr(r, "space", None) is not None)  # the tuned methods
REFERENCE_METHODS = RowView("name", where=lambda r: r.reference)  # Retrain and the original: never ranked


def in_book_order(names) -> list[str]:
    """``names`` (each once) in the book's order, the names of no registered row after them, sorted: the
    order of every table's rows, figure's legend and sentence that lists methods."""
    present = set(names)
    return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))

__all__ = ["COLORS", "METHODS", "METHOD_NAMES", "METHOD_ORDER", "Method", "REFERENCE_METHODS", "ROWS", "Row",
           "RowView", "SEARCH_SPACES", "UnlearnFn", "in_book_order", "register"]
