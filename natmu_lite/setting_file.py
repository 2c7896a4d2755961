"""Setting files: a named setting and the tuned parameters of some of its methods, as
``natmu-lite tune --save-setting`` writes them and ``--setting-file`` reads them::

    {"base": "default", "methods": {"natmu": {"lr": 0.0011, "delta": -0.1}}}

A file is checked whole when it is read (its shape, its base, its methods, each parameter a recipe
field or a knob of its method, each value in range) so that a typo is refused before anything trains.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from .cache import atomic_write
from .methods import METHODS
from .methods.base import knob_names, refuse_unknown
from .setting import RECIPE_FIELDS, Setting, check_grid, with_params
from .settings import SETTINGS, get_setting

SHAPE = '{"base": <setting>, "methods": {<method>: {<parameter>: <value>}}}'


def _json(path: str | Path, what: str):
    """A JSON file's content; a missing, unreadable or non-JSON file is an error that names it."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{what} {path} {'is a directory' if file.is_dir() else 'does not exist'}")
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} {path} is not JSON ({e})") from None


def read(path: str | Path, what: str = "--setting-file") -> dict:
    """A setting file's content, checked: its shape, a known base, known methods and parameters.
    ``what`` names the file in messages (the option it came from)."""
    doc = _json(path, what)
    if not (isinstance(doc, dict) and isinstance(doc.get("base"), str) and isinstance(doc.get("methods"), dict)
            and all(isinstance(p, dict) for p in doc["methods"].values())):
        raise ValueError(f"{what} {path}: expected a JSON object {SHAPE}, as `natmu-lite tune --save-setting` "
                         f"writes; got {json.dumps(doc)[:60]}")
    if doc["base"] not in SETTINGS:
        raise ValueError(f"{what} {path}: unknown base setting {doc['base']!r}; valid: {', '.join(SETTINGS)}")
    unknown = sorted(set(doc["methods"]) - set(METHODS))
    if unknown:
        raise ValueError(f"{what} {path}: unknown method {unknown[0]!r}; valid: {', '.join(sorted(METHODS))}")
    for method, params in doc["methods"].items():
        refuse_unknown(method, params, RECIPE_FIELDS | knob_names(method), where=f"{what} {path}: ")
    return doc


def load(path: str | Path) -> Setting:
    """The setting of a file: its base with each method's saved parameters, every value checked."""
    doc = read(path)
    setting = get_setting(doc["base"])
    for method, params in doc["methods"].items():
        setting = with_params(setting, method, params)
    setting = replace(setting, name=f"{doc['base']}+{Path(path).stem}")
    try:
        check_grid(setting, [], list(doc["methods"]))
    except ValueError as e:
        raise ValueError(f"--setting-file {path}: {e}") from None
    return setting


def check_save(path: str | Path, setting: Setting) -> None:
    """Refuse, before a study runs, a file the result could not be saved to: an existing file that is not
    a setting file of the same base, or a base that is itself a setting file."""
    if setting.name not in SETTINGS:
        raise ValueError(f"--save-setting needs a --setting as the base, not a setting file ({setting.name})")
    if Path(path).exists() and (base := read(path, "--save-setting")["base"]) != setting.name:
        raise ValueError(f"--save-setting {path} is based on setting {base!r}, not {setting.name!r}")


def save(path: str | Path, setting: Setting, method: str, params: dict) -> None:
    """Add (or replace) ``method``'s parameters in the setting file of base ``setting``."""
    path = Path(path)
    doc = read(path, "--save-setting") if path.exists() else {"base": setting.name, "methods": {}}
    if doc["base"] != setting.name:
        raise ValueError(f"{path} is based on setting {doc['base']!r}, not {setting.name!r}")
    doc["methods"][method] = params
    atomic_write(path, lambda p: p.write_text(json.dumps(doc, indent=1)))
