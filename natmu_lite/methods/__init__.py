"""Unlearning methods, one file each, all with one signature (see :mod:`.base`).

Importing this package imports every module in it, so a new method is one new file that decorates
its function with ``@register("name")``; ``METHODS`` then lists it for the benchmark and the CLI.
"""

import importlib
import pkgutil

from .base import METHODS, UnlearnFn, register

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["METHODS", "UnlearnFn", "register"]
