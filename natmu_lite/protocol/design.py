"""The protocol's design: its numbers (budget, seeds, variants, queues), its settings expanded into named
requests (:class:`Plan`), and the name of each of its runs (:class:`RunKey`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..datasets import Dataset
from ..methods import SEARCH_SPACES
from ..setting import Setting, resized
from ..settings import get_setting
from ..splits import Split, make_split

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
TEST_PHASE = ("runs", "replication")  # the queues whose rows the tables compare (the replicas choose knobs)


@dataclass(frozen=True)
class RunKey:
    """What names one run: a queued trial's ``run`` attribute and the key of its exported row are
    ``str(key)``, the fields joined by ``|``. That string is stored (Optuna storages, exports), so its
    form never changes: :meth:`parse` reads every name ever written."""

    setting: str
    request: str
    method: str
    seed: int
    variant: str

    def __str__(self) -> str:
        return "|".join([self.setting, self.request, self.method, str(self.seed), self.variant])

    @classmethod
    def parse(cls, name: str) -> RunKey:
        setting, request, method, seed, variant = name.split("|")
        return cls(setting, request, method, int(seed), variant)


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

    def scenario_of(self, request: str) -> str:
        """The scenario a test request or validation replica belongs to."""
        return next(s for s, requests in self.requests.items()
                    if request in requests or request in self.validation.get(s, ()))

    def run_name(self, request: str, method: str, seed: int, variant: str) -> str:
        """The name of a run of this plan's setting (``str`` of its :class:`RunKey`)."""
        return str(RunKey(self.setting.name, request, method, seed, variant))


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


def protocol_methods(protocol: str) -> tuple[str, ...]:
    """The methods a protocol compares: those it pins in :data:`PROTOCOL_METHODS` (the committed one), else
    every registered method with a search space (a method registered since joins it; resuming the protocol
    then runs just that method)."""
    methods = PROTOCOL_METHODS.get(protocol, tuple(sorted(SEARCH_SPACES)))
    unknown = sorted(set(methods) - set(SEARCH_SPACES))
    if unknown:
        raise ValueError(f"protocol {protocol!r} lists {unknown[0]!r}, which has no search space (not a tuned method)")
    return tuple(methods)
