"""The fair benchmark: every method tuned with the same budget on a held-out request, then evaluated
on the tables' requests over five seeds, tuned and untuned.

Why: choosing a method's knobs on the very request (and seed) it is scored on flatters that method,
and one seed cannot tell a ranking from noise. So, for each scenario of a protocol:

1. **Tune** each method (Retrain excepted) in an Optuna study of exactly :data:`TRIALS` completed
   trials on the scenario's *validation request*: a random forget set drawn with another split seed,
   or a class that is not in the table (``Setting.validation``). Every study uses the same TPE seed
   and starts from the setting's values (trial 0), with the search spaces of ``tune.SEARCH_SPACES``.
   A trial's score is its AvgGap to Retrain (seed 0) on the validation request.
2. **Evaluate** on the test requests (``Setting.targets`` for class scenarios, the setting's forget
   set for random ones) with seeds 0-4, each against the same seed's Retrain, three ways: ``tuned``
   (the study's best), ``untuned`` (the setting's values), and for random 1% ``transfer`` (the best
   of the random-10% study: the paper's Fig. 4 question, can parameters found at 10% serve 1%?).

All state lives in one Optuna storage (SQLite here, PostgreSQL to share): the tuning studies, and a
study of queued trials, one per evaluation run, which workers pop atomically, with heartbeats so
that a dead worker's run is queued again. Start :func:`work` in as many processes or machines as you
like; :func:`export` writes the finished results, with their provenance, as JSON.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
from optuna.trial import TrialState
from torch import nn
from tqdm.auto import tqdm

from .cache import atomic_write, cached_model, locked, model_key, read_model, write_model
from .data import Dataset
from .methods import REFERENCE_METHODS
from .metrics import accuracy, as_row, collapsed, evaluate
from .models import model_for
from .provenance import machine, record
from .runs import run_method
from .settings import Setting, get_setting, load_setting_data, make_scenario_split, resized
from .train import default_device, predict
from .tune import (
    SEARCH_SPACES,
    default_params,
    objective,
    open_storage,
    open_study,
    search_distributions,
    split_params,
    study_name,
)

TRIALS = 24  # completed trials per (scenario, method) study, the same for every method
SEEDS = (0, 1, 2, 3, 4)  # run seeds of the tables; seed s of a method is compared with seed s of Retrain
SAMPLER_SEED = 0  # one TPE seed for every study
PROTOCOLS = {"default": ("default", "default-subclass")}  # protocol -> the settings whose scenarios it runs
PROTOCOL_METHODS: dict[str, tuple[str, ...]] = {}  # protocol -> a subset of the tuned methods, where it has one
TRANSFER = {"random-1%": "random-10%"}  # scenario -> the scenario whose tuned parameters it also tries
VARIANTS = ("tuned", "untuned", "transfer")


@dataclass(frozen=True)
class Plan:
    """One setting expanded into the protocol's requests, each a named scenario of ``setting``:
    ``requests[scenario]`` are the requests of the scenario's table (one per forget class of a class
    scenario), ``validation[scenario]`` the request its methods are tuned on."""

    setting: Setting
    requests: dict[str, tuple[str, ...]]
    validation: dict[str, str]


def default_storage(name: str) -> str:
    """Where a protocol keeps its state unless told otherwise: ``results/<name>.db`` (SQLite)."""
    return f"sqlite:///results/{name}.db"


def plan(setting: Setting) -> Plan:
    """Expand a setting's scenarios into its protocol requests (see ``Setting.validation/targets``)."""
    scenarios, requests, validation = {}, {}, {}
    for name, request in setting.scenarios.items():
        if name not in setting.validation:
            raise ValueError(f"setting {setting.name}: scenario {name!r} names no validation request")
        targets = setting.targets.get(name)
        requests[name] = tuple(f"{name}: {t}" for t in targets) if targets else (name,)
        for test, target in zip(requests[name], targets or (None,)):
            scenarios[test] = {**request, "target": target} if target else request
        validation[name] = f"{name} (validation)"
        scenarios[validation[name]] = {**request, **setting.validation[name]}
    return Plan(replace(setting, scenarios=scenarios), requests, validation)


def plans(protocol: str, sizes: dict | None = None) -> list[Plan]:
    """The protocol's settings, expanded; ``sizes`` are :func:`~natmu_lite.settings.resized`'s overrides."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    return [plan(resized(get_setting(name), **(sizes or {}))) for name in PROTOCOLS[protocol]]


def protocol_methods(protocol: str) -> tuple[str, ...]:
    """The methods a protocol compares: every registered method with a search space (a method added to
    the package joins the protocols; resuming one then runs just that method), unless the protocol
    lists a subset of its own in :data:`PROTOCOL_METHODS`."""
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


def run_names(plans: list[Plan], methods: tuple[str, ...], seeds: tuple[int, ...] = SEEDS) -> list[str]:
    """The name of every evaluation run of a protocol: per test request and seed, the references (Retrain and
    the original) and each method in each variant that applies."""
    out = []
    for p in plans:
        for scenario, requests in p.requests.items():
            variants = ["tuned", "untuned", *(["transfer"] if scenario in TRANSFER else [])]
            for request in requests:
                for seed in seeds:
                    out += [run_name(p.setting.name, request, ref, seed, "reference") for ref in REFERENCE_METHODS]
                    out += [run_name(p.setting.name, request, m, seed, v) for m in methods for v in variants]
    return out


def scenario_of(p: Plan, request: str) -> str:
    return next(s for s, requests in p.requests.items() if request in requests or request == p.validation[s])


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
    return min(budget_trials(study, trials), key=lambda t: t.value)


def tuned_params(name: str, storage: str, setting: str, ratio: float, methods: list[str]) -> dict[str, dict]:
    """The parameters that a protocol's studies chose (within the budget) for each method on a setting's
    random-forgetting scenario of ``ratio``: the fair table's tuned variant, which the U-LiRA audit of
    :mod:`natmu_lite.audit` then attacks. The references (Retrain, the original models) are never tuned,
    so they get no entry. Refuses a study that is missing or short of its budget."""
    proto = Protocol(name, storage)
    if setting not in proto.plans:
        raise ValueError(f"protocol {name!r} has no setting {setting!r}; it has {', '.join(proto.plans)}")
    p = proto.plans[setting]
    scenario = next((sc for sc in p.requests if p.setting.scenarios[p.validation[sc]].get("kind") == "random"
                     and p.setting.scenarios[p.validation[sc]].get("ratio") == ratio), None)
    if scenario is None:
        raise ValueError(f"protocol {name!r} tunes no random-forgetting scenario of ratio {ratio} on {setting}")
    names = {s.study_name for s in optuna.get_all_study_summaries(open_storage(storage))}
    out = {}
    for method in (m for m in methods if m not in REFERENCE_METHODS):
        study = study_name(p.setting, p.validation[scenario], method)
        if study not in names:
            raise ValueError(f"{storage} holds no study {study!r}: run `natmu-lite protocol {name}` first")
        out[method] = best_within_budget(proto.study(p, scenario, method), proto.trials).params
    return out


class Protocol:
    """One protocol in one storage: what every worker process runs (:meth:`work`) and what the
    results are exported from (:meth:`export`). Keeps the data and original models it loaded.

    ``sizes`` (``train_size``, ``epochs``, ... of :func:`~natmu_lite.settings.resized`) shrink it for
    quick runs and tests; a storage remembers its sizes and refuses to mix runs of other sizes.
    ``originals`` is the folder where the protocol pins its original models (see :meth:`original`);
    by default the one beside a SQLite storage file (``results/default.db``: ``results/default-originals``),
    none for other storages."""

    def __init__(self, name: str, storage: str, trials: int = TRIALS, seeds: tuple[int, ...] = SEEDS,
                 sizes: dict | None = None, originals: str | Path | None = None):
        if trials < 1 or not seeds:
            raise ValueError("a protocol needs at least one trial and one seed")
        self.name, self.storage, self.trials, self.seeds = name, storage, trials, tuple(seeds)
        self.originals = Path(originals) if originals else originals_beside(storage, name)
        self.sizes = {k: v for k, v in (sizes or {}).items() if v is not None}
        self.plans = {p.setting.name: p for p in plans(name, self.sizes)}
        self.methods = protocol_methods(name)
        self._data: dict[str, Dataset] = {}
        self._originals: dict[str, nn.Module] = {}

    def run_names(self) -> list[str]:
        return run_names(list(self.plans.values()), self.methods, self.seeds)

    def run_name_of(self, row: dict) -> str:
        """The run name of an exported row."""
        tests = self.plans[row["setting"]].requests[row["scenario"]]
        request = next(r for r in tests if r == row["scenario"] or r.endswith(f": {row['target']}"))
        return run_name(row["setting"], request, row["method"], row["seed"], row["variant"])

    # -- models
    def data(self, p: Plan) -> Dataset:
        if p.setting.name not in self._data:
            self._data[p.setting.name] = load_setting_data(p.setting)
        return self._data[p.setting.name]

    def original(self, p: Plan) -> nn.Module:
        """The setting's original model, pinned: read from the protocol's ``originals`` folder (checksum
        verified) when it is there, else taken from the checkpoint cache (trained if need be) and written
        there. Training is not bit-reproducible across CPUs (see :mod:`natmu_lite.provenance`), so a
        protocol resumed on another machine, or a test that re-runs a committed row, starts from exactly
        the model the committed runs started from, not from one trained again."""
        if p.setting.name not in self._originals:
            self._originals[p.setting.name] = self._pinned(p, p.setting.original_seed)
        return self._originals[p.setting.name]

    def _pinned(self, p: Plan, seed: int) -> nn.Module:
        data = self.data(p)
        if self.originals is None:
            return cached_model("original", p.setting, data, seed, progress=False)[0]
        weights, meta = pinned_files(self.originals, p.setting.name, seed)
        with locked(weights):
            if not weights.exists():
                model, seconds = cached_model("original", p.setting, data, seed, progress=False)
                pin_original(model, weights, meta, data, key=model_key("original", p.setting, seed),
                             seconds=seconds)
            return load_pinned(weights, meta, model_for(p.setting.model, data, seed).to(default_device()),
                               model_key("original", p.setting, seed))

    # -- tuning
    def study(self, p: Plan, scenario: str, method: str) -> optuna.Study:
        return open_study(p.setting, p.validation[scenario], method, self.storage, prune=False,
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
                data, request = self.data(p), p.validation[scenario]
                split = make_scenario_split(p.setting, data, request)
                retrained = cached_model("retrain", p.setting, data, 0, split, progress=False)[0]
                run = objective(p.setting, data, split, self.original(p), evaluate(retrained, data, split), method,
                                seed=0, prune=False)
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

    # -- evaluation
    def params(self, p: Plan, request: str, method: str, variant: str) -> dict:
        if variant == "untuned":
            return default_params(p.setting, method)
        scenario = scenario_of(p, request)
        source = TRANSFER[scenario] if variant == "transfer" else scenario
        return best_within_budget(self.tune(p, source, method, wait=True)[0], self.trials).params

    def result_row(self, name: str, params: dict | None = None) -> dict:
        """One evaluation run as a results row; ``params`` replace the variant's parameters (to
        re-run a committed row with the parameters it records)."""
        q = parse_run_name(name)
        p = self.plans[q["setting"]]
        data = self.data(p)
        split = make_scenario_split(p.setting, data, q["request"])
        if q["method"] == "retrain":
            model, seconds = cached_model("retrain", p.setting, data, q["seed"], split, progress=False)
            metrics, params = evaluate(model, data, split), {}
        elif q["method"] == "original":
            metrics, params, seconds = evaluate(self.original(p), data, split), {}, 0.0
        else:
            params = self.params(p, q["request"], q["method"], q["variant"]) if params is None else params
            recipe, knobs = split_params(params)
            result = run_method(q["method"], self.original(p), data, split, p.setting, seed=q["seed"], progress=False,
                                recipe_changes=recipe, **knobs)
            metrics, seconds = result.metrics, result.seconds
        return {"setting": p.setting.name, "scenario": scenario_of(p, q["request"]), "target": split.target,
                "method": q["method"], "seed": q["seed"], "variant": q["variant"], "params": params,
                **as_row(metrics), "seconds": seconds}

    def evaluate_all(self) -> None:
        """Run queued evaluation runs until the queue is empty."""
        study = self.run_queue(enqueue=False)

        def trial_fn(trial: optuna.Trial) -> float:
            name = trial.user_attrs.get("run")
            if name is None:  # another worker took the last queued run meanwhile
                raise optuna.TrialPruned("the queue is empty")
            row = self.result_row(name)
            trial.set_user_attr("row", row)
            return row["seconds"]

        while _count(study, TrialState.WAITING):
            study.optimize(_tagged(trial_fn, "evaluate"), n_trials=1, catch=(Exception,))

    def run_queue(self, enqueue: bool = True) -> optuna.Study:
        """The study whose trials are the protocol's evaluation runs, one queued (``enqueue_trial``)
        per run. Workers pop queued trials atomically, so each run goes to one worker; a dead worker's
        run is queued again by the heartbeat. With ``enqueue`` (the command that starts the workers,
        never the workers themselves, which would all queue the same runs at once) the runs that are
        neither finished, running nor queued are queued: new ones (a method added to the protocol)
        and those whose run raised."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=f"protocol/{self.name}/runs", storage=open_storage(self.storage),
                                    load_if_exists=True)
        sizes = study.user_attrs.get("sizes")
        if sizes is None:
            study.set_user_attr("sizes", self.sizes)
        elif sizes != self.sizes:
            raise ValueError(f"storage {self.storage} holds this protocol with sizes {sizes}, not {self.sizes}; "
                             "use another --storage")
        if not enqueue:
            return study
        trials = study.get_trials(deepcopy=False)
        live = {_run_name(t) for t in trials
                if t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)}
        todo = [q for q in self.run_names() if q not in live]
        # seed by seed: a protocol stopped half-way has whole seeds of every scenario, not half the table
        todo.sort(key=lambda q: parse_run_name(q)["seed"])
        for name in todo:
            study.enqueue_trial({}, user_attrs={"run": name})
        return study

    def complete_seeds(self, missing: list[str]) -> dict[str, list[int]]:
        """Per scenario, the seeds none of whose runs is missing."""
        gaps = {(q["setting"], q["request"], q["seed"]) for q in map(parse_run_name, missing)}
        return {scenario: [s for s in self.seeds if not any((p.setting.name, r, s) in gaps for r in tests)]
                for p in self.plans.values() for scenario, tests in p.requests.items()}

    def progress(self) -> tuple[int, int]:
        """(finished, total) of the budgeted tuning trials and the evaluation runs, for progress bars."""
        store = open_storage(self.storage)
        names = {s.study_name for s in optuna.get_all_study_summaries(store)}
        done = total = 0
        for p, scenario, method in self.studies():
            total += self.trials
            name = study_name(p.setting, p.validation[scenario], method)
            if name in names:
                done += min(self.trials, _count(optuna.load_study(study_name=name, storage=store), TrialState.COMPLETE))
        if f"protocol/{self.name}/runs" in names:
            done += len(_rows(optuna.load_study(study_name=f"protocol/{self.name}/runs", storage=store)))
        return done, total + len(self.run_names())

    def tuning_summary(self) -> list[dict]:
        """Per study: the validation request, the budget's best trial and the setting values' score."""
        rows = []
        for p, scenario, method in self.studies():
            study = self.study(p, scenario, method)
            best = best_within_budget(study, self.trials)
            rows.append({"setting": p.setting.name, "scenario": scenario, "method": method,
                         "validation": p.setting.scenarios[p.validation[scenario]], "trials": self.trials,
                         "best_trial": best.number, "best_avg_gap": best.value, "best_params": best.params,
                         "default_avg_gap": budget_trials(study, self.trials)[0].value})
        return rows

    def export(self, out: str | Path, command: str = "", partial: bool = False, exported_by: str = "") -> dict:
        """Write the results (every run, every study's budget and best trial, provenance) as JSON.
        ``command`` produces the runs (and resumes them); ``exported_by`` wrote this file, when that
        was another command (``--export-only``).
        Raises if a study lacks its budget or a run is missing, unless ``partial``: then the finished
        runs are written with ``"complete": false``, the missing runs, and per scenario the seeds
        whose runs are all finished (the only ones :func:`runs` reads)."""
        summaries = self.tuning_summary()
        tuning = [t for p, scenario, method in self.studies() for t in self.study(p, scenario, method).trials]
        queue = self.run_queue(enqueue=False)
        rows = _rows(queue)
        classes = {name: self.data(p).num_classes for name, p in self.plans.items()}
        for row in rows.values():  # derived here, in one place, from the retain accuracy
            row["collapsed"] = collapsed(row["RetainAcc"], classes[row["setting"]])
        missing = [q for q in self.run_names() if q not in rows]
        if missing and not partial:
            raise ValueError(f"{len(missing)} of {len(self.run_names())} runs are not finished (e.g. {missing[0]}); "
                             "run the protocol again to finish them")
        doc = {"protocol": self.name, "methods": list(self.methods), "sizes": self.sizes,
               "complete": not missing, "missing": missing, "complete_seeds": self.complete_seeds(missing),
               "provenance": record(command, exported_by=exported_by or command, optuna=optuna.__version__,
                                    tuning=_phase_summary(tuning), evaluation=_phase_summary(queue.trials)),
               "originals": self.pin_originals(),
               "budget": {"trials": self.trials, "sampler": f"TPE (seed {SAMPLER_SEED}), trial 0 = setting",
                          "search_spaces": {m: {k: repr(d) for k, d in search_distributions(m).items()}
                                            for m in self.methods}, "seeds": list(self.seeds)},
               "studies": summaries,
               "runs": [rows[q] for q in self.run_names() if q in rows]}
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda f: f.write_text(json.dumps(doc, indent=1)))
        return doc

    def launch(self, workers: int, command: list[str], phase: str = "all", progress: bool = True) -> None:
        """Run what is left of the protocol in ``workers`` processes of this machine (one torch thread
        each when there are several: more would slow every one down), with a progress bar; ``command``
        is the ``natmu-lite`` command's arguments from ``protocol`` on, which each worker gets with
        ``--worker``. Raises if a worker fails (running the command again resumes)."""
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        done, total = self.progress()  # opens the storage: a bad one fails here, before any training
        if done >= total:
            return
        if phase != "tune":
            self.run_queue()  # queued here, once, not by each worker
        argv = [sys.executable, "-m", "natmu_lite.cli", *(["--threads", "1"] if workers > 1 else []), *command,
                "--worker"]
        procs = [subprocess.Popen(argv) for _ in range(workers)]
        with tqdm(total=total, initial=done, desc=f"protocol {self.name}", disable=not progress) as bar:
            while any(p.poll() is None for p in procs):
                time.sleep(30)  # progress() reads every study: polling it often costs a worker's CPU
                bar.update(self.progress()[0] - bar.n)
        failed = [p.returncode for p in procs if p.returncode]
        if failed:
            raise RuntimeError(f"{len(failed)} worker(s) failed (exit {failed[0]}); run the command again to resume")

    def pin_originals(self) -> dict[str, dict]:
        """Pin every original model the protocol's runs start from (training what is not pinned yet)
        and describe each for the export: its file, checksum and accuracies, and where it was trained."""
        out = {}
        for p in self.plans.values():
            self.original(p)
            if self.originals is not None:
                weights, meta = pinned_files(self.originals, p.setting.name, p.setting.original_seed)
                info = json.loads(meta.read_text())
                out[p.setting.name] = {"file": f"{self.originals.name}/{weights.name}",
                                       **{k: info[k] for k in ("sha256", "metrics", "seconds", "provenance")}}
        return out

    def work(self, phase: str = "all") -> None:
        """Tune (``"tune"``: until every study is done), evaluate, or both (``"all"``: a worker with no
        study left to take evaluates; a run that needs a study still being tuned waits for it)."""
        if phase in ("all", "tune"):
            self.tune_all(until_done=phase == "tune")
        if phase in ("all", "evaluate"):
            self.evaluate_all()


def originals_beside(storage: str, name: str) -> Path | None:
    """Where a protocol pins its original models by default: beside its SQLite file, else nowhere."""
    if not storage.startswith("sqlite:///") or storage.endswith(":memory:"):
        return None
    return Path(storage.removeprefix("sqlite:///")).parent / f"{name}-originals"


def pinned_files(folder: Path, setting: str, seed: int) -> tuple[Path, Path]:
    return folder / f"{setting}-seed{seed}.pt", folder / f"{setting}-seed{seed}.json"


def pin_original(model: nn.Module, weights: Path, meta: Path, data: Dataset, key: dict, seconds: float) -> None:
    """Write a pinned original: its weights, and beside them its key, checksum, accuracies (on the
    setting's test and training sets, which a test compares with a model trained again) and provenance."""
    metrics = {"test_accuracy": accuracy(predict(model, data.test_x), data.test_y),
               "train_accuracy": accuracy(predict(model, data.train_x), data.train_y)}
    write_model(model, weights, meta, {"key": key, "seconds": seconds, "metrics": metrics,
                                       "provenance": record("natmu-lite " + " ".join(sys.argv[1:]))})


def load_pinned(weights: Path, meta: Path, model: nn.Module, key: dict) -> nn.Module:
    """Load a pinned original into ``model``; a pinned file that does not match the setting (another
    configuration) or its checksum is an error, never silently replaced: it is committed data."""
    try:
        state, _ = read_model(weights, meta, key)
    except ValueError as e:
        raise ValueError(f"the pinned original {weights} cannot be used: {e}; it belongs to another "
                         "configuration of the protocol, or is damaged (restore it, or remove it to train "
                         "and pin a new one)") from None
    model.load_state_dict(state)
    return model


def _tagged(fn, phase: str):
    """Record where each trial ran (for the provenance) before running it."""
    def run(trial: optuna.Trial):
        for k, v in {**machine(), "phase": phase}.items():
            trial.set_user_attr(k, v)
        return fn(trial)
    return run


def _run_name(trial: optuna.trial.FrozenTrial) -> str | None:
    return trial.user_attrs.get("run")


def _rows(study: optuna.Study) -> dict[str, dict]:
    """The first completed trial of each run (a run two workers raced for is kept once)."""
    rows = {}
    for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number):
        rows.setdefault(t.user_attrs["run"], t.user_attrs["row"])
    return rows


# ---------------------------------------------------------------------------------------------
# provenance and export

def _phase_summary(trials: list[optuna.trial.FrozenTrial]) -> dict:
    """Wall time (first start to last end), summed trial time, and the machines of one phase."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.datetime_start and t.datetime_complete]
    if not done:
        return {}
    keys = ("host", "device", "cpu", "isa", "cores", "threads", "torch")  # "isa": None where it was not recorded
    machines = sorted({json.dumps({k: t.user_attrs.get(k) for k in keys}) for t in done})
    wall = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return {"trials": len(done), "wall_seconds": wall.total_seconds(),
            "trial_seconds": sum((t.datetime_complete - t.datetime_start).total_seconds() for t in done),
            "workers": len({(t.user_attrs.get("host"), t.user_attrs.get("pid")) for t in done}),
            "machines": [json.loads(m) for m in machines]}
