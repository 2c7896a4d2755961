"""The tuning studies: one per (setting, scenario, method), on the scenario's first validation replica,
with exactly :data:`~natmu_lite.protocol.design.TRIALS` completed trials (the budget) and the trials its
choice is re-checked among."""

from __future__ import annotations

import os
import random
import time
import warnings
from collections.abc import Iterator

import optuna
from optuna.trial import TrialState

from .. import selection
from ..metrics import as_row, evaluate
from ..provenance import machine
from ..train import default_device, precision
from ..tune import objective, open_study
from .design import SAMPLER_SEED, TRIALS, VALIDATION_SEEDS, Plan


def count(study: optuna.Study, *states: TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def tagged(fn, phase: str):
    """Record where each trial ran (for the provenance and the one-device check) before running it."""
    def run(trial: optuna.Trial):
        for k, v in {**machine(), "precision": precision(default_device()), "phase": phase}.items():
            trial.set_user_attr(k, v)
        return fn(trial)
    return run


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


class Tuning:
    """The protocol's studies, tuned on each scenario's first validation replica (part of
    :class:`~natmu_lite.protocol.Protocol`)."""

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
            complete, running = count(study, TrialState.COMPLETE), count(study, TrialState.RUNNING)
            if complete >= self.trials:
                return study, True
            if (running and not count(study, TrialState.WAITING)) or complete + running >= self.trials:
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
            study.optimize(tagged(run, "tune"), n_trials=1)

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
        return study if count(study, TrialState.COMPLETE) >= self.trials else None
