"""The protocol's run lists: every run known so far (the replica runs, the evaluation runs with their
variants and further looks, the replication runs), and the parameters each must run with."""

from __future__ import annotations

import json

import pandas as pd

from .. import decisions
from ..methods import REFERENCE_METHODS
from ..tune import default_params
from .design import BUDGET_METHODS, BUDGETS, REPLICATION_SEEDS, TRANSFER, VALIDATION_SEEDS, Plan, RunKey
from .queue import run_rows
from .studies import best_within_budget, budget_trials


class RunLists:
    """What the protocol runs and with which parameters (part of :class:`~natmu_lite.protocol.Protocol`)."""

    def replica_names(self) -> list[str]:
        """Every replica run known so far: Retrain and the original on each validation replica, and each
        tuned study's re-checked trials (every round so far, :meth:`_rounds`) on the replicas after the
        first (the first is the study's own)."""
        out, rows = [], run_rows(self.queue("replicas"))
        for p in self.plans.values():
            for replicas in p.validation.values():
                for request, seed in zip(replicas, VALIDATION_SEEDS):
                    out += [p.run_name(request, ref, seed, "reference") for ref in REFERENCE_METHODS]
            for scenario, method in ((sc, m) for sc in p.requests for m in self.methods):
                study = self.tuned_study(p, scenario, method)
                if study is None:
                    continue
                for trial in self._rounds(p, scenario, method, study, rows)[1]:
                    if not trial.user_attrs.get("diverged"):
                        out += [p.run_name(request, method, seed, f"trial {trial.number}")
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
        rows, tests, out, aliases = run_rows(self.queue("replicas")), None, [], {}
        for p in self.plans.values():
            for scenario, requests in p.requests.items():
                knobs = self._variant_params(p, scenario, rows)
                names = [q for seed in self.seeds for q in self._seed_names(p, requests, seed, knobs, aliases)]
                if knobs is not None and self.looks and self.replicated():
                    tests = run_rows(self.queue("runs")) if tests is None else tests
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
            out += [p.run_name(request, ref, seed, "reference") for ref in REFERENCE_METHODS]
            out.append(p.run_name(request, "retrain", seed, decisions.SECOND))
            for method, variants in (knobs or {}).items():
                first: dict[str, str] = {}
                for variant, params in variants.items():
                    name = p.run_name(request, method, seed, variant)
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
        rows, out = run_rows(self.queue("replicas")), []
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
        rows = run_rows(self.queue("replication"))
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
        end = 1 + max(RunKey.parse(q).seed for q in names)
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

    def params(self, p: Plan, request: str, method: str, variant: str) -> dict:
        """The parameters a run of ``variant`` uses (a run is queued only once they are known)."""
        if variant == "untuned":
            return default_params(p.setting, method)
        scenario = p.scenario_of(request)
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
        return str(RunKey(row["setting"], request, row["method"], row["seed"], row["variant"]))
