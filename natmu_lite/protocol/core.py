"""The :class:`Protocol` object: one protocol in one storage, its data and models, and one run's result.
Its other parts each have a module: the studies (:mod:`.studies`), the choices (:mod:`.choice`), the run
lists (:mod:`.runs`), the queues (:mod:`.queue`) and the workers (:mod:`.work`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from torch import nn

from .. import decisions
from ..cache import cached_model, pinned_original, pins_beside
from ..datasets import Dataset
from ..methods import REFERENCE_METHODS
from ..metrics import as_row, evaluate
from ..runs import run_method
from ..setting import Setting, load_setting_data, resized, split_params
from ..settings import get_setting
from .choice import Choice
from .design import (
    PROTOCOLS,
    SECOND_RUN_SEED,
    SEEDS,
    TEST_PHASE,
    TRIALS,
    VALIDATION_SEEDS,
    Plan,
    RunKey,
    plans,
    protocol_methods,
    replication_plan,
)
from .queue import Queues
from .runs import RunLists
from .studies import Tuning
from .work import Work


class Protocol(Tuning, Choice, RunLists, Queues, Work):
    """One protocol in one storage: what every worker process runs (:meth:`work`) and what the
    results are exported from (:mod:`natmu_lite.export`). Keeps the data and original models it loaded.

    ``sizes`` (``train_size``, ``epochs``, ... of :func:`~natmu_lite.setting.resized`) shrink it for
    quick runs and tests; a storage remembers its sizes and refuses to mix runs of other sizes.
    ``pins`` is the folder where the protocol pins its original models (see :meth:`original`);
    by default the one beside a SQLite storage file, named after it (``results/default.db``:
    ``results/default-originals``),
    else one in the checkpoint cache, which the workers of one machine share (workers on several machines
    sharing a server storage should be given one shared folder, or each pins the original its CPU trained).
    ``methods``: the methods it compares, when not :func:`~natmu_lite.protocol.protocol_methods`'s (a verdict's
    copy of a committed protocol adds one, :mod:`natmu_lite.verdict`); ``only``: the methods whose runs (with
    the references) it runs and waits for, when not all (a verdict runs its method's, not the committed
    protocol's unfinished ones); ``rerun``: the queues (:data:`~natmu_lite.protocol.design.TEST_PHASE`) whose
    every run it runs again, whoever's, from their marks on (:meth:`~.queue.Queues.mark_rerun`: a verdict on
    a machine whose runs do not compare with the committed ones)."""

    def __init__(self, name: str, storage: str, trials: int = TRIALS, seeds: tuple[int, ...] = SEEDS,
                 sizes: dict | None = None, pins: str | Path | None = None,
                 looks: tuple[int, ...] | None = None, methods: tuple[str, ...] | None = None,
                 only: tuple[str, ...] | None = None, rerun: tuple[str, ...] = ()):
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
        self.methods = protocol_methods(name) if methods is None else tuple(methods)
        self.only = None if only is None else {*only, *REFERENCE_METHODS}
        if set(rerun) - set(TEST_PHASE):
            raise ValueError(f"rerun: {sorted(set(rerun) - set(TEST_PHASE))} are not test-phase queues {TEST_PHASE}")
        self.rerun = tuple(rerun)
        self._data: dict[str, Dataset] = {}
        self._originals: dict[tuple[str, int], nn.Module] = {}
        self._selected: dict[tuple[str, str, str], dict] = {}  # complete selections (they never change)

    def known(self, which: str) -> list[str]:
        """Every run of queue ``which`` known so far."""
        return {"replicas": self.replica_names, "runs": lambda: self.test_names()[0],
                "replication": self.replication_names}[which]()

    def wanted(self, names: list[str], which: str) -> set[str]:
        """Which of queue ``which``'s runs ``names`` this protocol runs (and waits for): all, unless ``only``
        says whose (and the queue is not one it runs again); then the references too, but only where a run
        of those methods needs them (same request and seed): a verdict leaves the committed protocol's
        unfinished runs, its references included, and runs those its method's further seeds need."""
        if self.only is None or which in self.rerun:
            return set(names)
        keys = {q: RunKey.parse(q) for q in names}
        own = {q for q, k in keys.items() if k.method in self.only and k.method not in REFERENCE_METHODS}
        needed = {(keys[q].setting, keys[q].request, keys[q].seed) for q in own}
        return own | {q for q, k in keys.items() if k.method in REFERENCE_METHODS
                      and (k.setting, k.request, k.seed) in needed}

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
        """Seed ``seed``'s original model, pinned (:func:`~natmu_lite.cache.pinned_original`): a protocol
        resumed on another machine, or a test that re-runs a committed row, starts from exactly the model
        the committed runs started from, not from one trained again."""
        if (p.setting.name, seed) not in self._originals:
            self._originals[p.setting.name, seed] = pinned_original(self.pins, self.seeded(p, seed), self.data(p),
                                                                    seed)
        return self._originals[p.setting.name, seed]

    def retrained(self, p: Plan, seed: int, request: str, second: bool = False) -> tuple[nn.Module, float]:
        """Retrain of seed ``seed`` (from original ``seed``'s initial weights); ``second``: the floor's second
        Retrain, trained with another run seed (:data:`SECOND_RUN_SEED`)."""
        data = self.data(p)
        split = p.split(data, request)
        run_seed = seed + SECOND_RUN_SEED if second else seed
        return cached_model("retrain", self.seeded(p, seed), data, run_seed, split, progress=False)

    # -- evaluation
    def result_row(self, name: str, params: dict | None = None) -> dict:
        """One run as a results row; ``params`` replace the variant's parameters (to re-run a committed
        row with the parameters it records)."""
        q = RunKey.parse(name)
        p = self.plan_of(q.setting)
        data, seed = self.data(p), q.seed
        split = p.split(data, q.request)
        row = {"setting": p.setting.name, "scenario": p.scenario_of(q.request), "target": split.target,
               "request": q.request, "method": q.method, "seed": seed, "variant": q.variant}
        if q.method == "retrain":
            model, seconds = self.retrained(p, seed, q.request, second=q.variant == decisions.SECOND)
            return {**row, "params": {}, **as_row(evaluate(model, data, split)), "seconds": seconds}
        if q.method == "original":
            return {**row, "params": {}, **as_row(evaluate(self.original(p, seed), data, split)), "seconds": 0.0}
        if params is None and p.setting.name not in self.plans:  # a replication run: the parameters chosen for it
            if name not in self.expected:
                self.replication_names()
            params = self.expected[name]
        params = self.params(p, q.request, q.method, q.variant) if params is None else params
        recipe, knobs = split_params(params)
        try:
            result = run_method(q.method, self.original(p, seed), data, split, self.seeded(p, seed), seed=seed,
                                progress=False, recipe_changes=recipe, **knobs)
        except FloatingPointError:  # a diverging run is a result, not a crash: recorded, never a winner
            return {**row, "params": params, "diverged": True, "seconds": 0.0}
        return {**row, "params": params, **as_row(result.metrics), "seconds": result.seconds}
