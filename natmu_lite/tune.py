"""Fair hyperparameter search with Optuna: one study per (setting, scenario, method).

The objective is the paper's criterion, the AvgGap to the (cached) retrained model. Each method
searches the space it registered (:data:`~natmu_lite.methods.SEARCH_SPACES`; :func:`search_distributions`
lists it): most search the shared recipe fields (lr, weight decay, epochs) and their own knobs. Methods that
train in epochs report their gap after every epoch, so a median pruner stops hopeless trials early; a
method registered without epochs (SSD) is never pruned.

Studies live in any storage Optuna accepts: a SQLite file for one machine (the default), or a
PostgreSQL URL that many processes on many machines share. Each worker asks the storage for new
trials, so running the same command on several workers splits the trials between them.
"""

from __future__ import annotations

import os
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import optuna
import sqlalchemy
from torch import nn

from .datasets import Dataset
from .grid import run_grid
from .methods import SEARCH_SPACES
from .methods.base import spec
from .metrics import avg_gap, evaluate
from .runs import experiment, run_method
from .setting import Setting, split_params, with_params
from .splits import Split

DIVERGED_GAP = 100.0  # the AvgGap given to a trial whose training diverged: the largest gap in percent
DEFAULT_STORAGE = "sqlite:///natmu-tune.db"
def search_distributions(method: str) -> dict:
    """The distributions a method's space suggests (read off a throw-away in-memory trial)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trial = optuna.create_study().ask()
    SEARCH_SPACES[method](trial)
    return dict(trial.distributions)


def searched_names(method: str) -> list[str]:
    return list(search_distributions(method))


def default_params(setting: Setting, method: str) -> dict:
    """The setting's current values of the searched parameters (the warm start of a study)."""
    recipe = setting.recipe_for(method)
    values = {**{f.name: getattr(recipe, f.name) for f in fields(recipe)}, **spec(method).defaults,
              **setting.knobs.get(method, {})}
    return {k: values[k] for k in searched_names(method) if k in values}


def check_storage(url: str, must_exist: bool = False, what: str = "storage", make_folder: bool = False) -> None:
    """Refuse a storage URL that cannot work before anything trains, without creating a file: not a
    URL, a database whose driver is not installed, a SQLite file in a missing folder (``make_folder``:
    the folder is made instead), or (``must_exist``, for reading studies) a SQLite file that does not
    exist. ``what`` names it in messages (``--storage``)."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
        dialect = parsed.get_dialect()
    except sqlalchemy.exc.ArgumentError as e:
        raise ValueError(f"{what} {url!r} is not a database URL ({e}); expected e.g. sqlite:///natmu-tune.db "
                         "or postgresql://user:password@host/database") from None
    try:
        dialect.import_dbapi()
    except ImportError as e:
        hint = ("; with psycopg2-binary (natmu-lite[postgres]) write postgresql+psycopg2://..., or install psycopg "
                "for postgresql+psycopg://" if parsed.get_backend_name() == "postgresql" else "")
        raise ValueError(f"{what} {url!r}: its database driver is not installed ({e}){hint}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if make_folder:
            path.parent.mkdir(parents=True, exist_ok=True)
        if not path.parent.is_dir():
            raise ValueError(f"{what} {url!r}: folder {path.parent} does not exist")
        if must_exist and not path.is_file():
            raise ValueError(f"{what} {url!r}: {path} does not exist, so it holds no study (run `natmu-lite tune` "
                             "first)")


_STORAGES: dict[tuple[str, int], optuna.storages.BaseStorage] = {}


def open_storage(url: str, attempts: int = 5) -> optuna.storages.BaseStorage:
    """Connect to an Optuna storage, with heartbeats: a trial whose worker died (no heartbeat for
    ``grace_period`` s) is marked failed and re-queued with the same parameters. Workers that start
    together on an empty database race to create its tables (one gets a duplicate-type error from
    PostgreSQL); the loser retries and then finds the schema in place. One connection pool per URL
    and process: a protocol opens hundreds of studies, and a pool each exhausted PostgreSQL's 100
    connection slots with two workers (an in-memory database stays one per call: a fresh one)."""
    if (url, os.getpid()) in _STORAGES:
        return _STORAGES[url, os.getpid()]
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.8; we rely on them
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
    kwargs = dict(heartbeat_interval=30, grace_period=120, heartbeat_stale_trial_callback=retry)
    in_memory = url.rstrip("/").endswith(":memory:") or url in ("sqlite://", "sqlite:///")
    if in_memory:
        # one process's own database: no worker to outlive, and the heartbeat thread, on a connection of
        # its own, would find another (empty) in-memory database and fail ("no such table")
        kwargs = {}
    sqlite = url.startswith("sqlite")
    if sqlite:  # several processes on one file: wait for the lock (do not fail), see _serialize_sqlite
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120, "isolation_level": None}}
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(url, **kwargs)
            if sqlite:
                _serialize_sqlite(storage.engine)
            if not in_memory:
                _STORAGES[url, os.getpid()] = storage
            return storage
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")


def _serialize_sqlite(engine) -> None:
    """Start every SQLite transaction with ``BEGIN IMMEDIATE`` (SQLAlchemy's recipe for pysqlite).
    Optuna hands a queued trial to a worker by reading it as waiting and then marking it running; in
    SQLite's default deferred transactions two processes can both read it as waiting, and both run
    it (seen with two workers). Immediate transactions take the write lock first, so that read and
    write are one step. PostgreSQL needs none of this (``SELECT ... FOR UPDATE``)."""
    sqlalchemy.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))


def check_study(storage: str, study: str) -> None:
    """Refuse, before anything trains and without creating a database, a study to read that is not in
    the storage or has no completed trial."""
    check_storage(storage, must_exist=True, what="--storage")
    store = open_storage(storage)
    names = optuna.get_all_study_names(store)
    if study not in names:
        raise ValueError(f"--storage {storage} holds no study {study!r} (tune it first with `natmu-lite tune`); "
                         f"it holds: {', '.join(names) or 'none'}")
    if not optuna.load_study(study_name=study, storage=store).get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        raise ValueError(f"study {study!r} in --storage {storage} has no completed trial yet")


def study_name(setting: Setting, scenario: str, method: str) -> str:
    return f"{setting.name}/{scenario}/{method}"


def objective(setting: Setting, data: Dataset, split: Split, original: nn.Module, retrain_metrics: dict,
              method: str, seed: int = 0, prune: bool = True) -> Callable[[optuna.Trial], float]:
    """The trial function: run ``method`` with the trial's parameters, return its AvgGap."""

    def run(trial: optuna.Trial) -> float:
        params = SEARCH_SPACES[method](trial)
        trial.set_user_attr("worker", os.getpid())
        recipe, knobs = split_params(params)

        def report(epoch: int, model: nn.Module) -> None:
            gap = avg_gap(evaluate(model, data, split), retrain_metrics)
            trial.report(gap, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"AvgGap {gap:.2f} after epoch {epoch + 1}")

        callback = report if prune and spec(method).epochs else None
        try:
            result = run_method(method, original, data, split, setting, seed=seed, progress=False,
                                callback=callback, recipe_changes=recipe, **knobs)
        except FloatingPointError:  # a candidate that diverges is a valid, very bad, result
            trial.set_user_attr("diverged", True)
            return DIVERGED_GAP
        for k, v in result.metrics.items():
            trial.set_user_attr(k, v)
        return avg_gap(result.metrics, retrain_metrics)

    return run


def open_study(setting: Setting, scenario: str, method: str, storage: str | None = None, study: str | None = None,
               prune: bool = True, start_from_defaults: bool = True, sampler_seed: int | None = None) -> optuna.Study:
    """Create the study of (setting, scenario, method), or load it if it exists. Creation is atomic in
    the storage: exactly one worker creates it and enqueues the setting's own parameters as trial 0
    (``start_from_defaults``), so the best result is never worse than the defaults."""
    if method not in SEARCH_SPACES:
        raise ValueError(f"no search space for {method!r}; valid: {', '.join(SEARCH_SPACES)}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1) if prune else optuna.pruners.NopPruner()
    kwargs = dict(study_name=study or study_name(setting, scenario, method),
                  storage=open_storage(storage or DEFAULT_STORAGE), pruner=pruner,
                  sampler=optuna.samplers.TPESampler(seed=sampler_seed))
    try:
        s = optuna.create_study(direction="minimize", **kwargs)
        if start_from_defaults:
            s.enqueue_trial(default_params(setting, method))
    except optuna.exceptions.DuplicatedStudyError:
        s = optuna.load_study(**kwargs)
    return s


def tune(setting: Setting, scenario: str, method: str, trials: int, storage: str | None = None,
         study: str | None = None, seed: int = 0, prune: bool = True, start_from_defaults: bool = True,
         sampler_seed: int | None = None) -> optuna.Study:
    """Add ``trials`` trials to the study of (setting, scenario, method) (see :func:`open_study`): each
    trial runs the method with parameters from its search space (:data:`SEARCH_SPACES`) and scores the
    AvgGap to Retrain (seed ``seed``) on the scenario's request. Several processes calling this with
    the same storage and study share the work.

    Args:
        setting, scenario: the setting and the name of its forget request to tune on.
        method: a method with a search space.
        trials: how many trials to add.
        storage: an Optuna storage URL (default ``sqlite:///natmu-tune.db``; PostgreSQL to share).
        study: the study's name (default ``<setting>/<scenario>/<method>``).
        seed: the run seed of every trial and of its Retrain.
        prune: stop unpromising trials after an epoch (median pruner).
        start_from_defaults: trial 0 is the setting's own values, so the best is never worse.
        sampler_seed: TPE's seed (None: random).

    Example (two trials on a small Fashion-MNIST setting, in memory):
        >>> from natmu_lite.setting import resized
        >>> from natmu_lite.settings import get_setting
        >>> tiny = resized(get_setting("default"), train_size=500, test_size=200, epochs=2, unlearn_epochs=1)
        >>> study = tune(tiny, "random-10%", "ssd", trials=2, storage="sqlite:///:memory:", prune=False)
        >>> len(study.trials), study.trials[0].params == default_params(tiny, "ssd")
        (2, True)
    """
    if trials < 1:
        raise ValueError("trials must be at least 1")
    s = open_study(setting, scenario, method, storage, study, prune, start_from_defaults, sampler_seed)
    exp = experiment(setting, scenario, seed, progress=False)
    reference = evaluate(exp.retrained, exp.data, exp.split)
    s.optimize(objective(setting, exp.data, exp.split, exp.original, reference, method, seed, prune), n_trials=trials)
    return s


def best_params(storage: str, study: str) -> dict:
    return optuna.load_study(study_name=study, storage=open_storage(storage)).best_params


def transfer(setting: Setting, from_scenario: str, to_scenario: str, method: str, storage: str,
             seeds: list[int], out: str | Path | None = None, study: str | None = None, progress: bool = True):
    """Evaluate the best parameters found on ``from_scenario`` on ``to_scenario`` (paper Fig. 4).

    The rows carry the setting name ``<setting>@<from_scenario>`` so that they sit beside the
    setting's own runs in one results file."""
    params = best_params(storage, study or study_name(setting, from_scenario, method))
    tuned = with_params(setting, method, params, name=f"{setting.name}@{from_scenario}")
    return run_grid(tuned, [to_scenario], [method], seeds, out, progress=progress)
