"""Grids of runs, saved as they finish: :func:`run_grid` writes each finished run to its results file
at once, under a lock and keyed by its configuration (:func:`run_config`), so an interrupted grid
resumes where it stopped, processes may share the file, and runs of another configuration are never
reused."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .cache import atomic_write, cached_model, digest, locked, run_key
from .methods import METHODS
from .metrics import COLLAPSE_FACTOR, as_row, collapsed, evaluate
from .runs import Run, run_method
from .setting import Setting, check_grid, load_setting_data, make_scenario_split
from .splits import Split


def run_config(setting: Setting, scenario: str, method: str) -> str:
    """A short hash of everything besides the setting's name and the seed that determines one run of
    ``method`` on ``scenario``: the data and its sizes, the network, the original's recipe, the
    method's recipe and knobs, the request. A results file skips a run only when this matches, so runs
    of other sizes, epochs or setting files are never taken for this configuration's."""
    return digest({**run_key(setting, method), "split_seed": setting.split_seed,
                   "request": setting.scenarios[scenario]}, 12)



RESULT_KEYS = ("setting", "scenario", "target", "method", "seed", "RA", "FATrain", "MIA")  # never missing or null


def result_row(setting: Setting, scenario: str, split: Split, run: Run, seed: int, num_classes: int) -> dict:
    """One tidy row; in random forgetting FA is stored as FATrain and FATest is empty. ``config`` is
    :func:`run_config`; ``collapsed`` flags, with a warning, a run whose model lost its retain set
    (:func:`~natmu_lite.metrics.collapsed`: RetainAcc below twice chance, ``200 / K`` percent): its
    metrics are those of a destroyed model, not an unlearning result."""
    m = run.metrics
    row = {"setting": setting.name, "scenario": scenario, "target": split.target, "method": run.method,
           "seed": seed, "config": run_config(setting, scenario, run.method), **as_row(m),
           "collapsed": collapsed(m["RetainAcc"], num_classes), "seconds": run.seconds}
    if row["collapsed"]:
        floor = COLLAPSE_FACTOR * 100 / num_classes
        warnings.warn(f"{setting.name} {scenario} {run.method} seed {seed}: the model collapsed (retain accuracy "
                      f"{m['RetainAcc']:.1f}% < {floor:.0f}%, {COLLAPSE_FACTOR}x chance); its row is flagged "
                      "'collapsed'", stacklevel=2)
    return row


def run_id(row: dict) -> tuple:
    """What makes a run: rows with the same id are the same run (rows without a config, written before
    configs were recorded, match no run and are left as they are)."""
    return row["setting"], row["scenario"], row["method"], row["seed"], row.get("config")


def load_results(path: str | Path) -> list[dict]:
    """The rows of a results file, [] if it does not exist. Anything but a JSON list of result rows,
    each with :data:`RESULT_KEYS`, is an error that names the file (never a partial table)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"results file {path} is a directory")
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"results file {path} is not JSON ({e})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        hint = " (a protocol export: its rows are under \"runs\")" if isinstance(rows, dict) and "runs" in rows else ""
        raise ValueError(f"results file {path}: expected a JSON list of result rows (objects), got "
                         f"{type(rows).__name__}{hint}")
    for i, row in enumerate(rows):
        missing = [k for k in RESULT_KEYS if row.get(k) is None]
        if missing:
            raise ValueError(f"results file {path}: row {i} ({row.get('method')}, seed {row.get('seed')}) lacks "
                             f"{', '.join(missing)}")
    return rows


def check_output(path: str | Path, what: str = "results file", make_folder: bool = False) -> Path:
    """Refuse, before anything trains, a file that could not be written: a directory, a missing
    folder (unless ``make_folder``: the nearest existing one is checked), a folder we cannot write in
    (permissions, a read-only file system). Probes with a temporary file it removes."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a directory, not a file")
    folder = path.parent
    while make_folder and not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{what} {path}: folder {folder} does not exist")
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise ValueError(f"{what} {path}: cannot write in {folder} ({e.strerror})") from None
    return path


def _add_row(out: Path, row: dict) -> list[dict]:
    """Add one run to a results file that other processes may share: under the file's lock, re-read
    it, add the row unless the run is there already, write it atomically. Returns the file's rows."""
    with locked(out):
        rows = load_results(out)
        if run_id(row) not in {run_id(r) for r in rows}:
            rows.append(row)
            atomic_write(out, lambda p: p.write_text(json.dumps(rows, indent=1)))
    return rows


def run_grid(setting: Setting, scenarios: list[str] | None = None, methods: list[str] | None = None,
             seeds: list[int] | tuple[int, ...] = (0,), out: str | Path | None = None,
             progress: bool = True) -> pd.DataFrame:
    """Run scenario x method x seed and return the results (one row per run) as a DataFrame.

    With ``out`` every finished run is added to that JSON file at once (atomically, under a lock, so
    that processes sharing the file never lose each other's rows), and runs already in it, with the
    same :func:`run_config`, are skipped: an interrupted grid resumes without redoing or losing work.
    Rows of other configurations stay in the file untouched. Every argument is checked before any
    training. Retrain always runs (it is the reference of every gap) and comes from the checkpoint cache.

    Args:
        setting: the data, network, recipes and knobs (:mod:`natmu_lite.settings`).
        scenarios: names of the setting's forget requests (default: all of them).
        methods: names in :data:`~natmu_lite.methods.METHODS` (default: all); Retrain is added.
        seeds: run seeds; seed s of a method is compared with seed s of Retrain.
        out: a JSON results file to resume from and add to (default: keep the rows in memory).
        progress: a progress bar over the runs.

    Example (a small Fashion-MNIST grid):
        >>> from natmu_lite.setting import resized
        >>> from natmu_lite.settings import get_setting
        >>> tiny = resized(get_setting("default"), train_size=500, test_size=200, epochs=2, unlearn_epochs=1)
        >>> rows = run_grid(tiny, ["random-10%"], ["finetune"], seeds=[0], progress=False)
        >>> sorted(rows.method), sorted(rows.columns[:5])
        (['finetune', 'retrain'], ['method', 'scenario', 'seed', 'setting', 'target'])
    """
    scenarios = scenarios or list(setting.scenarios)
    methods = ["retrain", *[m for m in (methods or sorted(METHODS)) if m != "retrain"]]
    check_grid(setting, scenarios, methods)
    out = check_output(out) if out else None
    rows = load_results(out) if out else []
    wanted = list(dict.fromkeys((setting.name, sc, m, s, run_config(setting, sc, m))
                                for sc in scenarios for s in seeds for m in methods))
    done = {run_id(r) for r in rows}
    todo = [key for key in wanted if key not in done]
    data = load_setting_data(setting) if todo else None
    if data is not None:
        check_grid(setting, [], methods, data.num_classes)
    original = None
    bar = tqdm(todo, desc=f"{setting.name} grid", disable=not progress)
    for key in bar:
        _, scenario, method, seed, _ = key
        if out and key in {run_id(r) for r in load_results(out)}:
            continue  # another process sharing the file finished it meanwhile
        bar.set_postfix_str(f"{scenario} {method} seed {seed}")
        if original is None:
            original, _ = cached_model("original", setting, data, setting.original_seed, progress=False)
        split = make_scenario_split(setting, data, scenario, seed=setting.split_seed)
        if method == "retrain":
            model, seconds = cached_model("retrain", setting, data, seed, split, progress=False)
            run = Run("retrain", model, evaluate(model, data, split), seconds)
        else:
            run = run_method(method, original, data, split, setting, seed=seed, progress=False)
        row = result_row(setting, scenario, split, run, seed, data.num_classes)
        rows = _add_row(out, row) if out else [*rows, row]
    rows = load_results(out) if out else rows
    wanted_ids = set(wanted)
    return pd.DataFrame([r for r in rows if run_id(r) in wanted_ids])
