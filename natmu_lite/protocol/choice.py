"""Each study's choice, re-checked before it counts: its candidates run again on the scenario's other
validation replicas, and the rules of :mod:`natmu_lite.selection` choose among them (this module gathers
the rows those rules read)."""

from __future__ import annotations

import optuna

from .. import selection
from ..metrics import as_row
from ..tune import DIVERGED_GAP
from .design import VALIDATION_SEEDS, Plan
from .queue import run_rows
from .studies import budget_trials, candidates, next_round


class Choice:
    """The selections of the protocol's studies (part of :class:`~natmu_lite.protocol.Protocol`)."""

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
        rows = run_rows(self.queue("replicas")) if rows is None else rows
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
            name = p.run_name(request, method, VALIDATION_SEEDS[i], f"trial {trial.number}")
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
        return tuple(rows.get(p.run_name(request, ref, seed, "reference"))  # type: ignore[return-value]
                     for ref in ("original", "retrain"))
