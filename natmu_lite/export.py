"""A fair protocol's results as one committed file: every evaluation run, every study's budget, search
curve and selection, the replica runs, the pinned original models, and the provenance, refused when the
runs mix devices, precisions or torch versions (``natmu-lite protocol`` writes it; the chapters read it
through :mod:`natmu_lite.results`)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.trial import TrialState

from . import decisions, selection
from .cache import atomic_write, pinned_files
from .methods import REFERENCE_METHODS
from .metrics import as_row, collapsed
from .protocol import (
    BUDGET_METHODS,
    BUDGETS,
    QUEUES,
    REPLICATION_SEEDS,
    SAMPLER_SEED,
    SECOND_RUN_SEED,
    TEST_PHASE,
    TRANSFER,
    VALIDATION_SEEDS,
    VARIANTS,
    Plan,
    Protocol,
    RunKey,
    best_within_budget,
    budget_trials,
    run_rows,
)
from .protocol.queue import SINCE, counted
from .provenance import record
from .tune import search_distributions


def tuning_summary(proto: Protocol) -> list[dict]:
    """Per study: its validation replicas, the budget's best trial (the single-stage choice), the
    setting values' score, the search curve (best so far after each trial) and the selection."""
    rows, replicas = [], run_rows(proto.queue("replicas"))
    for p, scenario, method in proto.studies():
        study = proto.study(p, scenario, method)
        budget = budget_trials(study, proto.trials)
        best = best_within_budget(study, proto.trials)
        chosen = proto.selection(p, scenario, method, replicas)
        rows.append({"setting": p.setting.name, "scenario": scenario, "method": method,
                     "validation": [p.split_args[r] for r in p.validation[scenario]],
                     "trials": proto.trials, "best_trial": best.number, "best_avg_gap": best.value,
                     "best_params": best.params, "default_avg_gap": budget[0].value,
                     "search_curve": selection.best_so_far([t.value for t in budget]),
                     "trial_avg_gap": [t.value for t in budget],
                     "trial_progress": budget_progress(p, scenario, budget, replicas), "selection": chosen})
    return rows


def budget_progress(p: Plan, scenario: str, budget: list[optuna.trial.FrozenTrial],
                    replicas: dict) -> list[float | None]:
    """Per budget trial, its forgetting progress on the study's own request
    (:func:`natmu_lite.selection.forgetting_progress`; None for a diverged trial, or before the replica's
    reference runs are done): shows how many of a study's trials unlearned at all."""
    original, retrain = Protocol.replica_references(p, scenario, 0, replicas)
    if original is None or retrain is None:
        return [None] * len(budget)
    return [None if t.user_attrs.get("diverged") else
            selection.forgetting_progress(as_row(t.user_attrs), original, retrain) for t in budget]

def kinds(trials: list[optuna.trial.FrozenTrial]) -> set[tuple]:
    """The (device, precision, torch version) of the finished trials."""
    return {(t.user_attrs.get("device"), t.user_attrs.get("precision"), t.user_attrs.get("torch"))
            for t in trials if t.state == TrialState.COMPLETE}


def check_one_device(trials: list[optuna.trial.FrozenTrial], storage: str = "the storage") -> dict:
    """The one device, precision and torch version every finished trial of the export ran with;
    ``ValueError`` when they are several (runs of other kernels and precisions are not one export)."""
    kinds_ = kinds(trials)
    if len(kinds_) > 1:
        listed = "; ".join(f"{d}, {pr}, torch {v}" for d, pr, v in sorted(kinds_, key=str))
        raise ValueError(f"{storage} mixes devices, precisions or torch versions ({listed}): "
                         "one export runs on one of each; use another --storage for another device")
    return as_device(next(iter(kinds_), (None, None, None)))


def as_device(kind: tuple) -> dict:
    return dict(zip(("device", "precision", "torch"), kind))

def export(proto: Protocol, out: str | Path, command: str = "", partial: bool = False, exported_by: str = "") -> dict:
    """Write the results (every evaluation run, every study's budget, search curve and selection, the
    replica runs, the pinned originals, provenance) as JSON. ``command`` produces the runs (and
    resumes them); ``exported_by`` wrote this file, when that was another command (``--export-only``).
    Raises if the runs mix devices, or if a study lacks its budget or a run is missing, unless
    ``partial``: then the finished runs are written with ``"complete": false``, the missing runs, and
    per scenario the seeds whose runs are all finished (the only ones :func:`natmu_lite.results.runs`
    reads)."""
    summaries = tuning_summary(proto)
    tuning = [t for p, scenario, method in proto.studies() for t in proto.study(p, scenario, method).trials]
    queues = {which: proto.queue(which) for which in QUEUES}
    trials = {which: counted(q) for which, q in queues.items()}  # a marked queue's from its mark on
    tested = [t for which in TEST_PHASE for t in trials[which]]
    chose = tuning + trials["replicas"]
    # one device for every compared number: the whole export, or where the test phase ran again (a verdict on
    # another machine), the test phase, with the devices that chose the knobs listed beside it
    device = check_one_device(tested if proto.rerun else chose + tested, proto.storage)
    rows = {which: run_rows(q) for which, q in queues.items()}
    every = [*proto.plans.values(), *proto.replications.values()]
    classes = {p.setting.name: proto.data(p).num_classes for p in every}
    for row in (r for rs in rows.values() for r in rs.values() if "RetainAcc" in r):
        row["collapsed"] = collapsed(row["RetainAcc"], classes[row["setting"]])  # one place, one rule
    tests, aliases = proto.test_names()
    replication = proto.replication_names()  # (both record the parameters each run must have had)
    for which, done in rows.items():  # a run whose parameters changed since it ran is stale: not exported
        rows[which] = {q: row for q, row in done.items() if proto.ran_as_expected(q, row)}
    for alias, primary in aliases.items():  # a variant with another's parameters: that run's row, marked
        if primary in rows["runs"]:
            rows["runs"][alias] = {**rows["runs"][primary], "variant": RunKey.parse(alias).variant,
                                   "same_as": RunKey.parse(primary).variant, "seconds": 0.0}
    names = {"replicas": proto.replica_names(), "runs": sorted([*tests, *aliases], key=lambda q: _order(proto, q)),
             "replication": replication}
    missing = [q for which, qs in names.items() for q in qs if q not in rows[which]]
    unknown = [f"{m} on {sc}" for p, sc, m in proto.studies() if proto.selection(p, sc, m, rows["replicas"]) is None]
    if (missing or unknown) and not partial:
        what = f"{len(missing)} runs are not finished (e.g. {missing[0]})" if missing else \
            f"the choice of {unknown[0]} is not known yet ({len(unknown)} in all)"
        raise ValueError(f"{what}; run the protocol again to finish them")
    doc = {"protocol": proto.name, "methods": list(proto.methods), "sizes": proto.sizes, "device": device,
           **({"rerun": {which: queues[which].user_attrs.get(SINCE, 0) for which in proto.rerun},
               "tuned_on": [as_device(k) for k in sorted(kinds(chose), key=str)]} if proto.rerun else {}),
           "complete": not missing, "missing": missing,
           "complete_seeds": complete_seeds(proto, [*names["runs"], *missing], missing),
           "provenance": record(command, exported_by=exported_by or command, optuna=optuna.__version__,
                                tuning=phase_summary(tuning), replicas=phase_summary(trials["replicas"]),
                                evaluation=phase_summary(trials["runs"]),
                                replication=phase_summary(trials["replication"])),
           "originals": originals(proto),
           "design": {"seeds": list(proto.seeds), "validation_seeds": list(VALIDATION_SEEDS),
                      "variants": list(VARIANTS), "candidates": selection.CANDIDATES,
                      "min_progress": selection.MIN_PROGRESS, "budgets": [*BUDGETS, proto.trials],
                      "budget_methods": BUDGET_METHODS, "transfer": TRANSFER,
                      "decisions": {"alpha": decisions.ALPHA, "looks": list(proto.looks), "level": decisions.level(
                          proto.looks or (1,)), "power": decisions.POWER,
                          "paper_baselines": list(decisions.PAPER_BASELINES),
                          "second_run_seed": f"seed + {SECOND_RUN_SEED}"},
                      "replication": {"seeds": list(REPLICATION_SEEDS), "settings": {
                          source: {"setting": r.setting.name, "subset_seed": r.setting.subset_seed,
                                   "avoid_subset": r.setting.avoid_subset, "requests": r.split_args}
                          for source, r in proto.replications.items()}}},
           "budget": {"trials": proto.trials, "sampler": f"TPE (seed {SAMPLER_SEED}), trial 0 = setting",
                      "search_spaces": {m: {k: repr(d) for k, d in search_distributions(m).items()}
                                        for m in proto.methods}, "seeds": list(proto.seeds)},
           "studies": summaries,
           "replicas": [rows["replicas"][q] for q in names["replicas"] if q in rows["replicas"]],
           "runs": [rows["runs"][q] for q in names["runs"] if q in rows["runs"]],
           "replication": [rows["replication"][q] for q in names["replication"] if q in rows["replication"]]}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda f: f.write_text(json.dumps(doc, indent=1)))
    return doc


def complete_seeds(proto: Protocol, names: list[str], missing: list[str]) -> dict[str, list[int]]:
    """Per scenario, the seeds (the protocol's, and those of the further looks known so far, among
    ``names``) none of whose evaluation runs is missing."""
    gaps = {(q.setting, q.request, q.seed) for q in map(RunKey.parse, missing)}
    seeds = {(q.setting, q.request, q.seed) for q in map(RunKey.parse, names)}
    return {scenario: [s for s in sorted({s for (st, r, s) in seeds if st == p.setting.name and r in tests})
                       if not any((p.setting.name, r, s) in gaps for r in tests)]
            for p in proto.plans.values() for scenario, tests in p.requests.items()}


def _order(proto: Protocol, name: str) -> tuple:
    """Exported runs in the order of the plans: setting, scenario, request, seed, method, variant."""
    q = RunKey.parse(name)
    p = proto.plans[q.setting]
    scenario = p.scenario_of(q.request)
    rows = [*REFERENCE_METHODS, *proto.methods]
    return (list(proto.plans).index(q.setting), list(p.requests).index(scenario),
            p.requests[scenario].index(q.request), q.seed, rows.index(q.method), VARIANTS.index(
                q.variant) if q.variant in VARIANTS else -1)


def originals(proto: Protocol) -> dict[str, dict]:
    """Pin every original model the protocol's runs start from (training what is not pinned yet: the
    seeds' and the validation replicas'; an added look's or a replication set's is pinned by its first
    run) and describe each for the export: its file, checksum and accuracies, and where it was trained."""
    out = {}
    looks = {(q.setting, q.seed) for q in map(RunKey.parse, proto.test_names()[0])}
    seeds = {p.setting.name: sorted({*proto.seeds, *VALIDATION_SEEDS[:max(len(v) for v in p.validation.values())],
                                     *(s for name, s in looks if name == p.setting.name)})
             for p in proto.plans.values()}
    seeds.update({r.setting.name: REPLICATION_SEEDS for r in proto.replications.values()})
    own = {p.setting.name: (*proto.seeds, *VALIDATION_SEEDS) for p in proto.plans.values()}
    for p in (*proto.plans.values(), *proto.replications.values()):
        for seed in seeds[p.setting.name]:
            weights, meta = pinned_files(proto.pins, p.setting.name, seed)
            if seed not in own.get(p.setting.name, ()) and not weights.exists():
                continue  # an added look's or the replication set's, not started yet: its runs pin it
            proto.original(p, seed)
            info = json.loads(meta.read_text())
            out[f"{p.setting.name}/{seed}"] = {"setting": p.setting.name, "seed": seed,
                                               "file": f"{proto.pins.name}/{weights.name}",
                                               **{k: info[k] for k in ("sha256", "metrics", "seconds",
                                                                       "provenance")}}
    return out


def phase_summary(trials: list[optuna.trial.FrozenTrial]) -> dict:
    """Wall time (first start to last end), summed trial time, and the machines of one phase."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.datetime_start and t.datetime_complete]
    if not done:
        return {}
    keys = ("host", "device", "precision", "cpu", "isa", "cores", "threads", "torch")
    machines = sorted({json.dumps({k: t.user_attrs.get(k) for k in keys}) for t in done})
    wall = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return {"trials": len(done), "wall_seconds": wall.total_seconds(),
            "trial_seconds": sum((t.datetime_complete - t.datetime_start).total_seconds() for t in done),
            "workers": len({(t.user_attrs.get("host"), t.user_attrs.get("pid")) for t in done}),
            "machines": [json.loads(m) for m in machines]}
