"""The fair benchmark: every method tuned with the same budget on held-out requests, its choice re-checked
before it counts, then evaluated on the tables' requests over five seeds, each seed with its own
original model.

Why: choosing a method's parameters on the very request (and seed) it is scored on flatters that method, one
seed cannot tell a ranking from noise, and one original model shared by every seed hides how much the
starting model matters. So, for each scenario of a protocol:

1. **Tune** each method (Retrain excepted) in an Optuna study of exactly :data:`TRIALS` completed
   trials on the scenario's first *validation replica*: a random forget set drawn with another split
   seed, or a class that is not in the table (``Setting.validation``), with an original model, Retrain
   and run seed of its own (:data:`VALIDATION_SEEDS`). Every study uses the same TPE seed and starts from
   the setting's values (trial 0). A trial's score is its AvgGap to Retrain.
2. **Select** (:mod:`natmu_lite.selection`): the study's best trials and its trial 0 run again on the
   other validation replicas (other requests, originals and seeds); the parameters with the lowest mean
   AvgGap over all replicas win, unless their model collapsed or did nothing. Every method gets the same
   number of replica runs.
3. **Evaluate** on the test requests (``Setting.table_classes`` for class scenarios, the setting's forget set
   for random ones) with seeds 0-4. Seed s has its own original model (initialised and trained with seed
   s), Retrain from the same initialisation, and the unlearning runs start from it. Variants: ``tuned``
   (the selected parameters), ``single-stage`` (the study's best trial, the choice without re-checking),
   ``untuned`` (the setting's values), ``transfer`` for random 1% (random 10%'s selected parameters: the
   paper's Fig. 4 question), and ``best of 8``/``best of 16`` (the best trial within a smaller budget)
   for the :data:`BUDGET_METHODS` best methods of each scenario, for the budget figure. Each test request
   and seed also has a second Retrain (another run seed): the floor of :mod:`natmu_lite.decisions`.
4. **Decide, adding seeds where undecided**: after the five seeds, the comparisons with NatMU that
   :mod:`natmu_lite.decisions` cannot decide get more seeds, five at a time, up to its last look.
5. **Replicate** (:func:`replication_plan`): every method, with its chosen parameters untouched, on an
   independent training subset and on requests no table or replica uses, over :data:`REPLICATION_SEEDS`.

All runs of an export happen on one device, precision and torch version: :func:`natmu_lite.export.export`
refuses a storage that mixes them. All state lives in one Optuna storage (SQLite here, PostgreSQL to
share): the tuning studies, and one study of queued trials per kind of run (:data:`QUEUES`)
which workers pop atomically, with heartbeats so that a dead worker's run is queued again. The original
models are pinned beside a SQLite storage (:meth:`Protocol.original`), so that a protocol resumed on
another machine starts from the same models. Start :meth:`Protocol.work` in as many processes or
machines as you like (``natmu-lite protocol --workers N``); :func:`natmu_lite.export.export` writes the finished
results, with their provenance, as JSON.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import TrialState
from torch import nn
from tqdm.auto import tqdm

from . import decisions, selection
from .cache import cache_dir, cached_model, load_pinned, locked, model_key, pin_original, pinned_files
from .datasets import Dataset
from .methods import REFERENCE_METHODS, SEARCH_SPACES
from .metrics import as_row, evaluate
from .models import model_for
from .provenance import machine, machine_name
from .runs import run_method
from .setting import Setting, load_setting_data, resized, split_params
from .settings import get_setting
from .splits import Split, make_split, ratio_target
from .train import default_device, precision
from .tune import DIVERGED_GAP, default_params, objective, open_storage, open_study, study_name

TRIALS = 24  # completed trials per (scenario, method) study, the same for every method
SEEDS = (0, 1, 2, 3, 4)  # seed s: original model s, Retrain s (from original s's initialisation), unlearning run s
VALIDATION_SEEDS = (100, 101, 102)  # validation replica i: its original, Retrain and run seed (never a test seed)
SAMPLER_SEED = 0  # one TPE seed for every study
BUDGETS = (8, 16)  # the budget figure's smaller budgets (with TRIALS), as "best of 8" / "best of 16" runs
BUDGET_METHODS = 2  # per scenario, the methods (best by validation) whose smaller-budget choices are evaluated
PROTOCOLS = {"default": ("default", "default-subclass")}  # protocol -> the settings whose scenarios it runs
# protocol -> its methods, where it pins them. The committed protocol pins the ones its export compares, so that a
# method registered later (a new file, a --method-file) leaves it and its export as they are
PROTOCOL_METHODS: dict[str, tuple[str, ...]] = {
    "default": ("amnesiac", "badteacher", "finetune", "ga", "l1sparse", "natmu", "neggradplus", "salun", "scrub",
                "ssd")}
TRANSFER = {"random-1%": "random-10%"}  # scenario -> the scenario whose selected parameters it also tries
RETRIES = 3  # a run that raised is queued again this many times at most (a deterministic error stops the protocol)
VARIANTS = ("tuned", "single-stage", "untuned", "transfer", *(f"best of {b}" for b in BUDGETS))
SECOND_RUN_SEED = 1000  # the second Retrain of seed s trains with run seed s + 1000 (same initial weights)
REPLICATION_SEEDS = (200, 201, 202)  # the replication set's seeds: each its own original, Retrain and second one
REPLICATION_SUBSET_SEED = 1  # its training subset, drawn from the images the setting's own subset leaves out
QUEUES = ("replicas", "runs", "replication")  # the queued runs, in the order workers take them


@dataclass(frozen=True)
class Plan:
    """One setting expanded into the protocol's named requests: ``requests[scenario]`` names the requests of
    the scenario's table (one per table class of a class scenario), ``validation[scenario]`` its validation
    replicas (the first is the one it is tuned on), and ``split_args[request]`` gives each named request's
    arguments to :func:`~natmu_lite.splits.make_split`."""

    setting: Setting
    requests: dict[str, tuple[str, ...]]
    validation: dict[str, tuple[str, ...]]
    split_args: dict[str, dict]

    def split(self, data: Dataset, request: str) -> Split:
        """The index sets of one of the plan's requests (split seed 0 unless the request pins its own)."""
        return make_split(data, **{"seed": 0, **self.split_args[request]})


def default_storage(name: str) -> str:
    """Where a protocol keeps its state unless told otherwise: ``results/<name>.db`` (SQLite)."""
    return f"sqlite:///results/{name}.db"


def plan(setting: Setting) -> Plan:
    """Expand a setting's scenarios into its protocol requests (see ``Setting.validation/table_classes``)."""
    split_args, requests, validation = {}, {}, {}
    for name, request in setting.scenarios.items():
        replicas = setting.validation.get(name)
        if not replicas:
            raise ValueError(f"setting {setting.name}: scenario {name!r} names no validation request")
        if len(replicas) > len(VALIDATION_SEEDS):
            raise ValueError(f"setting {setting.name}: scenario {name!r} has {len(replicas)} validation replicas; "
                             f"at most {len(VALIDATION_SEEDS)} (one per validation seed)")
        classes = setting.table_classes.get(name)
        requests[name] = tuple(f"{name}: {c}" for c in classes) if classes else (name,)
        for test, forget_class in zip(requests[name], classes or (None,)):
            split_args[test] = {**request, "target": forget_class} if forget_class else request
        validation[name] = tuple(f"{name} (validation {i + 1})" for i in range(len(replicas)))
        for replica, changes in zip(validation[name], replicas):
            split_args[replica] = {**request, **changes}
    return Plan(setting, requests, validation, split_args)


def plans(protocol: str, sizes: dict | None = None) -> list[Plan]:
    """The protocol's settings, expanded; ``sizes`` are :func:`~natmu_lite.setting.resized`'s overrides."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    return [plan(resized(get_setting(name), **(sizes or {}))) for name in PROTOCOLS[protocol]]


def protocol_methods(protocol: str) -> tuple[str, ...]:
    """The methods a protocol compares: those it pins in :data:`PROTOCOL_METHODS` (the committed one), else
    every registered method with a search space (a method registered since joins it; resuming the protocol
    then runs just that method)."""
    methods = PROTOCOL_METHODS.get(protocol, tuple(sorted(SEARCH_SPACES)))
    unknown = sorted(set(methods) - set(SEARCH_SPACES))
    if unknown:
        raise ValueError(f"protocol {protocol!r} lists {unknown[0]!r}, which has no search space (not a tuned method)")
    return tuple(methods)


# ---------------------------------------------------------------------------------------------
# a run is named by one string: a queued trial's name, the key of its exported row

def run_name(setting: str, request: str, method: str, seed: int, variant: str) -> str:
    return "|".join([setting, request, method, str(seed), variant])


def parse_run_name(name: str) -> dict:
    setting, request, method, seed, variant = name.split("|")
    return dict(setting=setting, request=request, method=method, seed=int(seed), variant=variant)


def scenario_of(p: Plan, request: str) -> str:
    return next(s for s, requests in p.requests.items() if request in requests or request in p.validation.get(s, ()))


def replication_plan(setting: Setting) -> Plan | None:
    """A setting's replication set (``Setting.replication``), as a plan of its own: the same recipes on
    an independent training subset, disjoint from the setting's (so with originals of its own), and per
    scenario requests that neither the tables nor the validation replicas use. The methods run there with
    the parameters the protocol chose, untouched: data no choice has seen. None when the setting has none."""
    if not set(setting.replication) & set(setting.scenarios):
        return None
    split_args, requests = {}, {}
    for name, changes in ((n, c) for n, c in setting.replication.items() if n in setting.scenarios):
        requests[name] = tuple(f"{name} (replication)" + (f": {c['target']}" if "target" in c else "")
                               for c in changes)
        split_args.update({r: {**setting.scenarios[name], **c} for r, c in zip(requests[name], changes)})
    other = replace(setting, name=f"{setting.name}-replication", validation={}, table_classes={}, replication={},
                    subset_seed=REPLICATION_SUBSET_SEED, avoid_subset=setting.subset_seed)
    return Plan(other, requests, {}, split_args)


# ---------------------------------------------------------------------------------------------
# tuning

def _count(study: optuna.Study, *states: TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def budget_trials(study: optuna.Study, trials: int = TRIALS) -> list[optuna.trial.FrozenTrial]:
    """The study's first ``trials`` completed trials (by number): the budget. Concurrent workers can
    overshoot a study by a trial; the extra ones are ignored so that every method gets exactly as many."""
    done = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number)
    if len(done) < trials:
        raise ValueError(f"study {study.study_name} has {len(done)} completed trials, fewer than {trials}")
    return done[:trials]


def best_within_budget(study: optuna.Study, trials: int = TRIALS) -> optuna.trial.FrozenTrial:
    return min(budget_trials(study, trials), key=lambda t: (t.value, t.number))


def candidates(study: optuna.Study, trials: int = TRIALS) -> list[optuna.trial.FrozenTrial]:
    """The trials a study's choice is re-checked among: its :data:`~natmu_lite.selection.CANDIDATES`
    best trials within the budget (a diverged one never), and its trial 0 (the untuned parameters)."""
    budget = budget_trials(study, trials)
    ranked = sorted((t for t in budget if not t.user_attrs.get("diverged")), key=lambda t: (t.value, t.number))
    picked = {t.number: t for t in ranked[:selection.CANDIDATES]}
    picked.setdefault(budget[0].number, budget[0])
    return sorted(picked.values(), key=lambda t: t.number)


def next_round(study: optuna.Study, assessed: dict, original: dict, retrain: dict, num_classes: int,
               trials: int = TRIALS) -> list[optuna.trial.FrozenTrial]:
    """When every candidate so far was excluded: the :data:`~natmu_lite.selection.CANDIDATES` best budget
    trials not yet re-checked that pass the exclusion rules on the study's own request (``original`` and
    ``retrain``: its reference rows), so that the fallback to the untuned parameters, which may fail the rules
    themselves, is the last resort (an empty list: no trial of the study passes)."""
    budget = budget_trials(study, trials)
    ranked = sorted((t for t in budget if t.number not in assessed and not t.user_attrs.get("diverged")),
                    key=lambda t: (t.value, t.number))
    passing = [t for t in ranked if selection.passes(as_row(t.user_attrs), original, retrain, num_classes)]
    return passing[:selection.CANDIDATES]


def tuned_params(doc: dict, setting: str, ratio: float) -> dict[str, dict]:
    """From an exported protocol (``results.load_protocol``): the parameters its ``tuned`` variant used for
    each method on a setting's random-forgetting scenario of ``ratio``, which the U-LiRA audit of
    :mod:`natmu_lite.audit` then attacks. Read off the runs themselves, so it holds for any selection
    rule the export was made with."""
    target = ratio_target(ratio)
    rows = [r for r in doc["runs"] if r["setting"] == setting and r["variant"] == "tuned" and r["target"] == target]
    if not rows:
        raise ValueError(f"protocol {doc['protocol']!r} has no tuned runs of random forgetting {target} on {setting}")
    return {r["method"]: r["params"] for r in rows}


class Protocol:
    """One protocol in one storage: what every worker process runs (:meth:`work`) and what the
    results are exported from (:mod:`natmu_lite.export`). Keeps the data and original models it loaded.

    ``sizes`` (``train_size``, ``epochs``, ... of :func:`~natmu_lite.setting.resized`) shrink it for
    quick runs and tests; a storage remembers its sizes and refuses to mix runs of other sizes.
    ``originals`` is the folder where the protocol pins its original models (see :meth:`original`);
    by default the one beside a SQLite storage file, named after it (``results/default.db``:
    ``results/default-originals``),
    else one in the checkpoint cache, which the workers of one machine share (workers on several machines
    sharing a server storage should be given one shared folder, or each pins the original its CPU trained)."""

    def __init__(self, name: str, storage: str, trials: int = TRIALS, seeds: tuple[int, ...] = SEEDS,
                 sizes: dict | None = None, pins: str | Path | None = None,
                 looks: tuple[int, ...] | None = None):
        if trials < 1 or not seeds:
            raise ValueError("a protocol needs at least one trial and one seed")
        if set(seeds) & set(VALIDATION_SEEDS):
            raise ValueError(f"seeds {sorted(set(seeds) & set(VALIDATION_SEEDS))} are validation seeds")
        self.name, self.storage, self.trials, self.seeds = name, storage, trials, tuple(seeds)
        # the further looks of decisions.LOOKS: seeds added for the undecided comparisons (none unless the
        # first look is the protocol's own seeds 0..n-1)
        looks = decisions.LOOKS if looks is None else tuple(looks)
        self.looks = looks if looks and self.seeds == tuple(range(looks[0])) else ()
        self.expected: dict[str, dict] = {}  # test run -> the parameters it must have run with (test_names)
        self.pins: Path = Path(pins) if pins else pins_beside(storage, name)  # the folder of pinned originals
        self.sizes = {k: v for k, v in (sizes or {}).items() if v is not None}
        self.plans = {p.setting.name: p for p in plans(name, self.sizes)}
        # the replication set of each setting that has one, by the setting it replicates
        self.replications = {source: r for source in PROTOCOLS[name]
                             if (r := replication_plan(resized(get_setting(source), **self.sizes)))}
        self.methods = protocol_methods(name)
        self._data: dict[str, Dataset] = {}
        self._originals: dict[tuple[str, int], nn.Module] = {}
        self._selected: dict[tuple[str, str, str], dict] = {}  # complete selections (they never change)

    # -- models: seed s has its own original, Retrain from the same initialisation, and run seed
    def data(self, p: Plan) -> Dataset:
        if p.setting.name not in self._data:
            self._data[p.setting.name] = load_setting_data(p.setting)
        return self._data[p.setting.name]

    @staticmethod
    def seeded(p: Plan, seed: int) -> Setting:
        """The setting whose original model is initialised (and trained) with ``seed``."""
        return replace(p.setting, original_seed=seed)

    def original(self, p: Plan, seed: int) -> nn.Module:
        """Seed ``seed``'s original model, pinned: read from the protocol's ``originals`` folder (checksum
        verified) when it is there, else taken from the checkpoint cache (trained if need be) and written
        there. Training is not bit-reproducible across CPUs (see :mod:`natmu_lite.provenance`), so a
        protocol resumed on another machine, or a test that re-runs a committed row, starts from exactly
        the model the committed runs started from, not from one trained again."""
        if (p.setting.name, seed) not in self._originals:
            self._originals[p.setting.name, seed] = self._pinned(p, seed)
        return self._originals[p.setting.name, seed]

    def _pinned(self, p: Plan, seed: int) -> nn.Module:
        data, setting = self.data(p), self.seeded(p, seed)
        weights, meta = pinned_files(self.pins, p.setting.name, seed)
        key = model_key("original", setting, seed)
        with locked(weights):
            if not weights.exists():
                model, seconds = cached_model("original", setting, data, seed, progress=False)
                pin_original(model, weights, meta, data, key=key, seconds=seconds)
            return load_pinned(weights, meta, model_for(p.setting.model, data, seed).to(default_device()), key)

    def retrained(self, p: Plan, seed: int, request: str, second: bool = False) -> tuple[nn.Module, float]:
        """Retrain of seed ``seed`` (from original ``seed``'s initial weights); ``second``: the floor's second
        Retrain, trained with another run seed (:data:`SECOND_RUN_SEED`)."""
        data = self.data(p)
        split = p.split(data, request)
        run_seed = seed + SECOND_RUN_SEED if second else seed
        return cached_model("retrain", self.seeded(p, seed), data, run_seed, split, progress=False)

    # -- tuning, on each scenario's first validation replica
    def study(self, p: Plan, scenario: str, method: str) -> optuna.Study:
        return open_study(p.setting, p.validation[scenario][0], method, self.storage, prune=False,
                          sampler_seed=SAMPLER_SEED)

    def tune(self, p: Plan, scenario: str, method: str, wait: bool = False) -> tuple[optuna.Study, bool]:
        """Run the study's trials until it has its budget, one at a time so that TPE sees every
        earlier result; returns (study, done). A study where another worker has a trial running is
        left to that worker, or with ``wait`` waited for (a dead worker's trial is failed by the
        heartbeat, queued again, and run here)."""
        study, run = self.study(p, scenario, method), None
        while True:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            complete, running = _count(study, TrialState.COMPLETE), _count(study, TrialState.RUNNING)
            if complete >= self.trials:
                return study, True
            if (running and not _count(study, TrialState.WAITING)) or complete + running >= self.trials:
                if not wait:
                    return study, False
                time.sleep(5)
                continue
            if run is None:
                seed, request = VALIDATION_SEEDS[0], p.validation[scenario][0]
                data = self.data(p)
                split = p.split(data, request)
                reference = evaluate(self.retrained(p, seed, request)[0], data, split)
                run = objective(self.seeded(p, seed), data, split, self.original(p, seed), reference, method,
                                seed=seed, prune=False)
            study.optimize(_tagged(run, "tune"), n_trials=1)

    def studies(self) -> Iterator[tuple[Plan, str, str]]:
        """(plan, scenario, method) of every tuning study."""
        for p in self.plans.values():
            for scenario in p.requests:
                for method in self.methods:
                    yield p, scenario, method

    def tune_all(self, until_done: bool = True) -> None:
        """Take the studies nobody is working on, in an order of this process's own (so that
        workers spread over the studies); with ``until_done``, repeat until every study is done."""
        pending = list(self.studies())
        random.Random(os.getpid()).shuffle(pending)
        while pending:
            pending = [s for s in pending if not self.tune(*s)[1]]
            if not until_done:
                return
            if pending:
                time.sleep(5)

    def tuned_study(self, p: Plan, scenario: str, method: str) -> optuna.Study | None:
        """The study, when it has its budget (else None)."""
        study = self.study(p, scenario, method)
        return study if _count(study, TrialState.COMPLETE) >= self.trials else None

    # -- selection: the candidates re-run on the other replicas
    def selection(self, p: Plan, scenario: str, method: str, rows: dict | None = None) -> dict | None:
        """The study's candidates assessed over every validation replica, and the chosen one (see
        :mod:`natmu_lite.selection`); None until the study and the candidates' replica runs are done.
        ``rows``: the replica queue's rows, when the caller has read them already."""
        key = (p.setting.name, scenario, method)
        if key in self._selected:
            return self._selected[key]
        study = self.tuned_study(p, scenario, method)
        if study is None:
            return None
        rows = _rows(self.queue("replicas")) if rows is None else rows
        chosen = self._rounds(p, scenario, method, study, rows)[0]
        if chosen is not None:
            self._selected[key] = chosen
        return chosen

    def _rounds(self, p: Plan, scenario: str, method: str, study: optuna.Study,
                rows: dict) -> tuple[dict | None, list[optuna.trial.FrozenTrial]]:
        """The selection, round by round: the candidates (:func:`candidates`), then, while every trial
        re-checked so far is excluded, the next best trials that pass the rules on the study's own request
        (:func:`next_round`). Returns the selection (None until its replica runs are done) and every trial
        whose replica runs it needs so far."""
        budget, num_classes = budget_trials(study, self.trials), self.data(p).num_classes
        assessed, needed, pool, rounds = {}, [], candidates(study, self.trials), 0
        while pool:
            rounds += 1
            needed += pool
            for trial in pool:
                assessed[trial.number] = self._assess(p, scenario, method, trial, rows, num_classes)
            if any(a is None for a in assessed.values()):
                return None, needed
            chosen, fallback = selection.choose(assessed, untuned=budget[0].number)
            if not fallback:
                break
            original, retrain = self.replica_references(p, scenario, 0, rows)
            pool = next_round(study, assessed, original, retrain, num_classes, self.trials)
        return {"candidates": assessed, "chosen": chosen, "no_valid_candidate": fallback, "rounds": rounds,
                "params": assessed[chosen]["params"]}, needed

    def _assess(self, p: Plan, scenario: str, method: str, trial, rows: dict, num_classes: int) -> dict | None:
        """One re-checked trial over the validation replicas (None until its replica runs are done)."""
        if trial.user_attrs.get("diverged"):
            out = {"score": DIVERGED_GAP, "excluded": True, "diverged": True}
        else:
            replicas = self._replicas(p, scenario, method, trial, rows)
            if replicas is None:
                return None
            if any(r["run"].get("diverged") for r in replicas):
                out = {"score": DIVERGED_GAP, "excluded": True, "diverged": True}
            else:
                out = selection.assess(replicas, num_classes)
        return {**out, "params": trial.params, "value": trial.value}

    def _replicas(self, p: Plan, scenario: str, method: str, trial, rows: dict) -> list[dict] | None:
        """Per replica: the candidate's row (replica 0: the trial itself), Retrain's and the original's."""
        out = []
        for i, request in enumerate(p.validation[scenario]):
            seed = VALIDATION_SEEDS[i]
            name = run_name(p.setting.name, request, method, seed, f"trial {trial.number}")
            run = as_row(trial.user_attrs) if i == 0 else rows.get(name)
            original, retrain = self.replica_references(p, scenario, i, rows)
            if run is None or retrain is None or original is None:
                return None
            out.append({"run": run, "retrain": retrain, "original": original})
        return out

    @staticmethod
    def replica_references(p: Plan, scenario: str, i: int, rows: dict) -> tuple[dict | None, dict | None]:
        """The original model's and Retrain's rows on a scenario's validation replica ``i`` (from the
        replica queue's ``rows``; None until they have run)."""
        request, seed = p.validation[scenario][i], VALIDATION_SEEDS[i]
        return tuple(rows.get(run_name(p.setting.name, request, ref, seed, "reference"))  # type: ignore[return-value]
                     for ref in ("original", "retrain"))

    # -- the queues: replica runs, replication runs, evaluation runs
    def queue(self, which: str) -> optuna.Study:
        """The study whose trials are the protocol's runs of one of :data:`QUEUES`, one queued trial
        (``enqueue_trial``) per run. Workers pop queued trials atomically, so each run goes to one worker;
        a dead worker's run is queued again by the heartbeat."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=f"protocol/{self.name}/{which}", storage=open_storage(self.storage),
                                    load_if_exists=True)
        sizes = study.user_attrs.get("sizes")
        if sizes is None:
            study.set_user_attr("sizes", self.sizes)
        elif sizes != self.sizes:
            raise ValueError(f"storage {self.storage} holds this protocol with sizes {sizes}, not {self.sizes}; "
                             "use another --storage")
        return study

    def replica_names(self) -> list[str]:
        """Every replica run known so far: Retrain and the original on each validation replica, and each
        tuned study's re-checked trials (every round so far, :meth:`_rounds`) on the replicas after the
        first (the first is the study's own)."""
        out, rows = [], _rows(self.queue("replicas"))
        for p in self.plans.values():
            for replicas in p.validation.values():
                for request, seed in zip(replicas, VALIDATION_SEEDS):
                    out += [run_name(p.setting.name, request, ref, seed, "reference") for ref in REFERENCE_METHODS]
            for scenario, method in ((sc, m) for sc in p.requests for m in self.methods):
                study = self.tuned_study(p, scenario, method)
                if study is None:
                    continue
                for trial in self._rounds(p, scenario, method, study, rows)[1]:
                    if not trial.user_attrs.get("diverged"):
                        out += [run_name(p.setting.name, request, method, seed, f"trial {trial.number}")
                                for request, seed in list(zip(p.validation[scenario], VALIDATION_SEEDS))[1:]]
        return out

    def test_names(self) -> tuple[list[str], dict[str, str]]:
        """Every evaluation run known so far, and its aliases. Per test request and seed: the references
        (the original, Retrain, and the floor's second Retrain), then, once the scenario's selections are
        known (and its transfer source's), each method in each variant. Variants whose parameters coincide (the
        selected parameters are often the best trial's) are one run: the first in :data:`VARIANTS` order is
        queued, the others are aliases of it (``{alias: run}``). Then the further looks' seeds
        (:meth:`next_look`, once the replication set has run): references and the undecided methods'
        ``tuned`` runs. Records each queued
        method run's parameters in :attr:`expected`."""
        rows, tests, out, aliases = _rows(self.queue("replicas")), None, [], {}
        for p in self.plans.values():
            for scenario, requests in p.requests.items():
                knobs = self._variant_params(p, scenario, rows)
                names = [q for seed in self.seeds for q in self._seed_names(p, requests, seed, knobs, aliases)]
                if knobs is not None and self.looks and self.replicated():
                    tests = _rows(self.queue("runs")) if tests is None else tests
                    while (look := self.next_look(scenario, names, tests)) is not None:
                        only = {m: {"tuned": knobs[m]["tuned"]} for m in look[1]}
                        names += [q for seed in look[0] for q in self._seed_names(p, requests, seed, only, aliases)]
                out += names
        return out, aliases

    def _seed_names(self, p: Plan, requests: tuple[str, ...], seed: int, knobs: dict | None,
                    aliases: dict[str, str]) -> list[str]:
        """One seed's runs on a scenario's test requests (see :meth:`test_names`)."""
        out = []
        for request in requests:
            out += [run_name(p.setting.name, request, ref, seed, "reference") for ref in REFERENCE_METHODS]
            out.append(run_name(p.setting.name, request, "retrain", seed, decisions.SECOND))
            for method, variants in (knobs or {}).items():
                first: dict[str, str] = {}
                for variant, params in variants.items():
                    name = run_name(p.setting.name, request, method, seed, variant)
                    key = json.dumps(params, sort_keys=True)
                    if key in first:
                        aliases[name] = first[key]
                    else:
                        first[key] = name
                        self.expected[name] = params
                        out.append(name)
        return out

    def replication_names(self) -> list[str]:
        """Every run of the replication sets known so far: per replication request and seed of
        :data:`REPLICATION_SEEDS`, the references (the second Retrain too) and, once the scenario's
        selections are known, every method with its ``tuned`` parameters."""
        rows, out = _rows(self.queue("replicas")), []
        for source, r in self.replications.items():
            p = self.plans[source]
            for scenario, requests in r.requests.items():
                chosen = {m: self.selection(p, scenario, m, rows) for m in self.methods}
                knobs = None if any(c is None for c in chosen.values()) else {
                    m: {"tuned": c["params"]} for m, c in chosen.items()}
                out += [q for seed in REPLICATION_SEEDS for q in self._seed_names(r, requests, seed, knobs, {})]
        return out

    def replicated(self) -> bool:
        """Whether every replication run has finished: the further looks' seeds wait for it, so that the
        replication set, whose runs are fewer and answer another question, is never starved by them."""
        if not self.replications:
            return True
        rows = _rows(self.queue("replication"))
        names = self.replication_names()
        return bool(names) and all(q in rows for q in names)

    def plan_of(self, setting: str) -> Plan:
        """The plan of a setting's runs: a protocol setting's, or a replication set's."""
        return self.plans.get(setting) or next(r for r in self.replications.values() if r.setting.name == setting)

    def next_look(self, scenario: str, names: list[str], tests: dict) -> tuple[range, list[str]] | None:
        """A scenario's next look, as (seeds, methods), when it is due: every run so far (``names``) has
        finished and some decision is still open (:func:`natmu_lite.decisions.contenders`, taken on all
        those seeds); it runs the undecided methods on the next seeds of :attr:`looks`. None when a run is
        not finished, every decision is taken, or the last look is done."""
        end = 1 + max(parse_run_name(q)["seed"] for q in names)
        if end not in self.looks[:-1] or any(q not in tests or not self.ran_as_expected(q, tests[q]) for q in names):
            return None
        frame = pd.DataFrame([tests[q] for q in names])
        methods = decisions.contenders(frame[frame.variant.isin(["tuned", "reference", decisions.SECOND])])
        if scenario not in methods:
            return None
        return range(end, self.looks[self.looks.index(end) + 1]), methods[scenario]

    def ran_as_expected(self, name: str, row: dict) -> bool:
        """Whether a finished run used the parameters its variant has now (a selection that changed,
        e.g. by a new rule, makes its earlier runs stale: they are run again)."""
        return name not in self.expected or row.get("params") == self.expected[name]

    def _variant_params(self, p: Plan, scenario: str, rows: dict) -> dict[str, dict[str, dict]] | None:
        """Per method, the parameters of each variant of a scenario's runs; None until they are all known."""
        sources = [scenario, *([TRANSFER[scenario]] if scenario in TRANSFER else [])]
        chosen = {(sc, m): self.selection(p, sc, m, rows) for sc in sources for m in self.methods}
        if any(c is None for c in chosen.values()):
            return None
        picked = self.budget_methods(p, scenario, rows)
        out = {}
        for method in self.methods:
            study = self.study(p, scenario, method)
            out[method] = {"tuned": chosen[scenario, method]["params"],
                           "single-stage": best_within_budget(study, self.trials).params,
                           "untuned": default_params(p.setting, method)}
            if scenario in TRANSFER:
                out[method]["transfer"] = chosen[TRANSFER[scenario], method]["params"]
            if method in picked:
                out[method].update({f"best of {b}": best_within_budget(study, b).params
                                    for b in BUDGETS if b < self.trials})
        return out

    def budget_methods(self, p: Plan, scenario: str, rows: dict) -> list[str]:
        """The scenario's :data:`BUDGET_METHODS` best methods by their selected validation score ([]
        until every selection of the scenario is known)."""
        scores = {}
        for method in self.methods:
            chosen = self.selection(p, scenario, method, rows)
            if chosen is None:
                return []
            scores[method] = chosen["candidates"][chosen["chosen"]]["score"]
        return sorted(scores, key=lambda m: (scores[m], m))[:BUDGET_METHODS]

    def run_names(self) -> list[str]:
        """The name of every run known so far (aliases included)."""
        tests, aliases = self.test_names()
        return self.replica_names() + tests + list(aliases)

    def enqueue(self) -> int:
        """Queue every run known so far that is neither finished, running nor queued (new ones: a study
        done, a selection known, a method added; and those whose run raised, :data:`RETRIES` times at
        most; and those that ran with parameters their variant no longer has), seed by seed, so that a
        protocol stopped half-way has whole seeds of every scenario. Under
        a lock, so that workers never queue a run twice. Returns how many it queued."""
        queued = 0
        with locked(self._lock_path()):
            for which, names in (("replicas", self.replica_names()), ("runs", self.test_names()[0]),
                                 ("replication", self.replication_names())):
                study = self.queue(which)
                trials = study.get_trials(deepcopy=False)
                done = _rows(study)
                live = {_run_name(t) for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)}
                live |= {q for q, row in done.items() if self.ran_as_expected(q, row)}
                failed = _failures(trials)
                todo = [q for q in names if q not in live and failed[q] < RETRIES]
                for name in sorted(todo, key=lambda q: parse_run_name(q)["seed"]):
                    study.enqueue_trial({}, user_attrs={"run": name})
                queued += len(todo)
        return queued

    def _lock_path(self) -> Path:
        local = self.storage.startswith("sqlite:///") and not self.storage.endswith(":memory:")
        return Path(self.storage.removeprefix("sqlite:///")) if local else cache_dir() / f"protocol-{self.name}"

    def drain(self, which: str) -> int:
        """Run queued runs of one queue until none is waiting; returns how many this worker ran."""
        study, ran = self.queue(which), 0

        def trial_fn(trial: optuna.Trial) -> float:
            name = trial.user_attrs.get("run")
            if name is None:  # another worker took the last queued run meanwhile
                raise optuna.TrialPruned("the queue is empty")
            row = self.result_row(name)
            trial.set_user_attr("row", row)
            return row["seconds"]

        while _count(study, TrialState.WAITING):
            study.optimize(_tagged(trial_fn, which), n_trials=1, catch=(Exception,))
            ran += 1
        return ran

    def finished(self) -> bool:
        """Every study tuned, every selection known, every run finished."""
        if any(self.tuned_study(*s) is None for s in self.studies()):
            return False
        rows = {which: _rows(self.queue(which)) for which in QUEUES}
        if any(self.selection(*s, rows["replicas"]) is None for s in self.studies()):
            return False
        names = {"replicas": self.replica_names(), "runs": self.test_names()[0],
                 "replication": self.replication_names()}
        return all(q in rows[w] and self.ran_as_expected(q, rows[w][q]) for w, qs in names.items() for q in qs)

    def work(self, phase: str = "all") -> None:
        """Tune (``"tune"``: until every study is done), evaluate, or both (``"all"``). A worker takes
        what it can: the studies nobody is tuning, then the queued runs (the replica runs first, which
        the selections and so the evaluation runs wait for), queueing new runs as they become known,
        until the protocol is finished."""
        if phase == "tune":
            self.tune_all(until_done=True)
            return
        while True:
            if phase == "all":
                self.tune_all(until_done=False)
            queued = self.enqueue()
            ran = sum(self.drain(which) for which in QUEUES)
            if self.finished():
                return
            if not (ran or queued or self._busy()) and (stuck := self._given_up()):
                raise RuntimeError(f"protocol {self.name}: {stuck} failed {RETRIES} times, so it cannot finish "
                                   f"(see its failed trials in {self.storage})")
            if not ran:
                time.sleep(10)  # what is left runs on other workers, or needs what they are doing

    def _given_up(self) -> str | None:
        """A run that failed :data:`RETRIES` times and never finished, if any (its name)."""
        for which in QUEUES:
            trials = self.queue(which).get_trials(deepcopy=False)
            done = {_run_name(t) for t in trials if t.state == TrialState.COMPLETE}
            failed = _failures(trials)
            stuck = [q for q, n in failed.items() if n >= RETRIES and q not in done]
            if stuck:
                return stuck[0]
        return None

    def _busy(self) -> bool:
        """Whether any worker is tuning or running something (or something is queued)."""
        states = (TrialState.RUNNING, TrialState.WAITING)
        return any(_count(self.queue(w), *states) for w in QUEUES) or \
            any(_count(self.study(*s), *states) for s in self.studies()) or \
            any(self.tuned_study(*s) is None for s in self.studies())

    # -- evaluation
    def params(self, p: Plan, request: str, method: str, variant: str) -> dict:
        """The parameters a run of ``variant`` uses (a run is queued only once they are known)."""
        if variant == "untuned":
            return default_params(p.setting, method)
        scenario = scenario_of(p, request)
        study = self.study(p, scenario, method)
        if variant.startswith("trial "):
            return next(t for t in budget_trials(study, self.trials) if t.number == int(variant.split()[1])).params
        if variant in ("single-stage", *(f"best of {b}" for b in BUDGETS)):
            budget = self.trials if variant == "single-stage" else int(variant.split()[-1])
            return best_within_budget(study, budget).params
        chosen = self.selection(p, TRANSFER[scenario] if variant == "transfer" else scenario, method)
        if chosen is None:
            raise ValueError(f"{method} on {scenario}: its selection is not known yet, so no {variant} run")
        return chosen["params"]

    def run_name_of(self, row: dict) -> str:
        """The run name of an exported row (rows exported before they recorded their ``request`` name
        it by scenario and target)."""
        request = row.get("request") or next(r for r in self.plan_of(row["setting"]).requests[row["scenario"]]
                                             if r == row["scenario"] or r.endswith(f": {row['target']}"))
        return run_name(row["setting"], request, row["method"], row["seed"], row["variant"])

    def result_row(self, name: str, params: dict | None = None) -> dict:
        """One run as a results row; ``params`` replace the variant's parameters (to re-run a committed
        row with the parameters it records)."""
        q = parse_run_name(name)
        p = self.plan_of(q["setting"])
        data, seed = self.data(p), q["seed"]
        split = p.split(data, q["request"])
        row = {"setting": p.setting.name, "scenario": scenario_of(p, q["request"]), "target": split.target,
               "request": q["request"], "method": q["method"], "seed": seed, "variant": q["variant"]}
        if q["method"] == "retrain":
            model, seconds = self.retrained(p, seed, q["request"], second=q["variant"] == decisions.SECOND)
            return {**row, "params": {}, **as_row(evaluate(model, data, split)), "seconds": seconds}
        if q["method"] == "original":
            return {**row, "params": {}, **as_row(evaluate(self.original(p, seed), data, split)), "seconds": 0.0}
        if params is None and p.setting.name not in self.plans:  # a replication run: the parameters chosen for it
            if name not in self.expected:
                self.replication_names()
            params = self.expected[name]
        params = self.params(p, q["request"], q["method"], q["variant"]) if params is None else params
        recipe, knobs = split_params(params)
        try:
            result = run_method(q["method"], self.original(p, seed), data, split, self.seeded(p, seed), seed=seed,
                                progress=False, recipe_changes=recipe, **knobs)
        except FloatingPointError:  # a diverging run is a result, not a crash: recorded, never a winner
            return {**row, "params": params, "diverged": True, "seconds": 0.0}
        return {**row, "params": params, **as_row(result.metrics), "seconds": result.seconds}

    # -- how much is done
    def completion(self) -> tuple[int, int]:
        """(finished, total) of the budgeted tuning trials and the runs known so far, for progress bars."""
        store = open_storage(self.storage)
        names = {s.study_name for s in optuna.get_all_study_summaries(store)}
        done = total = 0
        for p, scenario, method in self.studies():
            total += self.trials
            name = study_name(p.setting, p.validation[scenario][0], method)
            if name in names:
                done += min(self.trials, _count(optuna.load_study(study_name=name, storage=store), TrialState.COMPLETE))
        for which in QUEUES:
            if f"protocol/{self.name}/{which}" in names:
                done += len(_rows(self.queue(which)))
        return done, total + len(self.replica_names()) + len(self.test_names()[0]) + len(self.replication_names())

    def launch(self, workers: int, command: list[str], phase: str = "all", progress: bool = True) -> None:
        """Run what is left of the protocol in ``workers`` processes of this machine (one torch thread
        each when there are several: more would slow every one down), with a progress bar; ``command``
        is the ``natmu-lite`` command's arguments from ``protocol`` on, which each worker gets with
        ``--worker``. Raises if a worker fails (running the command again resumes)."""
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        done, total = self.completion()  # opens the storage: a bad one fails here, before any training
        if self.finished():
            return
        argv = [sys.executable, "-m", "natmu_lite.cli", *(["--threads", "1"] if workers > 1 else []), *command,
                "--worker"]
        procs = [subprocess.Popen(argv) for _ in range(workers)]
        with tqdm(total=total, initial=done, desc=f"protocol {self.name}", disable=not progress) as bar:
            while any(p.poll() is None for p in procs):
                time.sleep(120)  # completion() reads every study and queue: polling it often costs a worker CPU
                done, total = self.completion()
                bar.total = total
                bar.update(done - bar.n)
        failed = [p.returncode for p in procs if p.returncode]
        if failed:
            raise RuntimeError(f"{len(failed)} worker(s) failed (exit {failed[0]}); run the command again to resume")

def pins_beside(storage: str, name: str) -> Path:
    """Where a protocol pins its original models by default: beside its SQLite file, named after it
    (``results/default.db``: ``results/default-originals``; another storage, say a GPU's
    ``default-gpu.db``, has pins of its own, trained on its own device), else (a server, or SQLite in
    memory) in the checkpoint cache."""
    if not storage.startswith("sqlite:///") or storage.endswith(":memory:"):
        return cache_dir() / "originals" / name
    file = Path(storage.removeprefix("sqlite:///"))
    return file.parent / f"{file.stem}-originals"


def _tagged(fn, phase: str):
    """Record where each trial ran (for the provenance and the one-device check) before running it."""
    def run(trial: optuna.Trial):
        for k, v in {**machine(), "precision": precision(default_device()), "phase": phase}.items():
            trial.set_user_attr(k, v)
        return fn(trial)
    return run


def _run_name(trial: optuna.trial.FrozenTrial) -> str | None:
    return trial.user_attrs.get("run")


def _failures(trials: list[optuna.trial.FrozenTrial]) -> Counter:
    """How many times each run raised (its failed trials): a run is queued again :data:`RETRIES` times at most."""
    return Counter(_run_name(t) for t in trials if t.state == TrialState.FAIL)


def _rows(study: optuna.Study) -> dict[str, dict]:
    """The last completed trial of each run, with the machine it ran on: a run two workers raced for is
    kept once, and a run queued again because its parameters changed (:meth:`Protocol.ran_as_expected`)
    replaces its stale row."""
    rows = {}
    for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number):
        rows[t.user_attrs["run"]] = {**t.user_attrs["row"], "machine": machine_name(t.user_attrs)}
    return rows
