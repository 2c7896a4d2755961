"""What a setting is: :class:`Setting`, everything a run needs besides its seed, and what is done with one
(smaller copies, a method's tuned parameters applied, its data loaded, a scenario's split, its grid checked).
The package's named settings, the offline default and the paper's, are :mod:`natmu_lite.settings`.

A setting fixes the data (and its subset size), the network, the recipe of the original and retrained
models, each method's recipe changes and knobs, and its scenarios: each a named kind of forgetting with its
size or class, given as its request (:func:`~natmu_lite.splits.make_split`'s arguments). As in the paper,
one original model and one forget set per scenario are shared by all seeds; a seed varies Retrain and the
unlearning run. The words are those of CONTRIBUTING.md's table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from .datasets import Dataset, load_dataset
from .methods.base import check_knobs, get_method
from .splits import Split, make_split
from .train import Recipe


@dataclass(frozen=True)
class Setting:
    """One experimental setting: data, model, recipes, method knobs and scenarios."""

    name: str
    dataset: str
    model: str
    train: Recipe  # the original and the retrained model
    unlearn: Recipe  # the default for every unlearning method
    train_size: int | None = None
    test_size: int | None = None
    scenarios: dict[str, dict] = field(default_factory=dict)  # scenario -> its request (make_split's arguments)
    knobs: dict[str, dict] = field(default_factory=dict)  # method -> its own hyperparameters
    recipe_changes: dict[str, dict] = field(default_factory=dict)  # method -> changes to ``unlearn``
    original_seed: int = 0  # one original model per setting, as in the paper
    split_seed: int = 0  # one forget set per scenario (the paper's fixed index files); seeds vary the runs
    # The fair protocol (natmu_lite.protocol): per scenario, the changes to its request that give its
    # validation replicas (never shown in a table; the first is the one methods are tuned on, the others
    # re-check the choice), and the forget classes of its table.
    validation: dict[str, tuple[dict, ...]] = field(default_factory=dict)  # scenario -> make_split changes
    table_classes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # class scenario -> its table's classes
    # The replication set (natmu_lite.protocol): per scenario, the requests that re-check its decisions on a
    # training subset of their own; and that subset: drawn with subset_seed from the images that the
    # subset of avoid_subset leaves out (None: the usual subset).
    replication: dict[str, tuple[dict, ...]] = field(default_factory=dict)  # scenario -> make_split changes
    subset_seed: int = 0
    avoid_subset: int | None = None

    def recipe_for(self, method: str) -> Recipe:
        if method == "retrain":
            return self.train
        return self.unlearn.with_(**self.recipe_changes.get(method, {}))


def resized(setting: Setting, train_size: int | None = None, test_size: int | None = None,
            epochs: int | None = None, unlearn_epochs: int | None = None, compile: str | None = None) -> Setting:
    """The setting with smaller data or fewer epochs (quick runs and tests); ``None`` keeps a value.
    ``unlearn_epochs`` replaces every method's epochs, also where a method's recipe sets its own."""
    for name, value in (("train_size", train_size), ("test_size", test_size), ("epochs", epochs),
                        ("unlearn_epochs", unlearn_epochs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    changes = {k: v for k, v in (("train_size", train_size), ("test_size", test_size)) if v is not None}
    if epochs is not None:
        changes["train"] = setting.train.with_(epochs=epochs)
    if unlearn_epochs is not None:
        changes["unlearn"] = setting.unlearn.with_(epochs=unlearn_epochs)
        changes["recipe_changes"] = {m: {**r, "epochs": unlearn_epochs} if "epochs" in r else r
                              for m, r in setting.recipe_changes.items()}
    if compile:
        for name in ("train", "unlearn"):
            changes[name] = changes.get(name, getattr(setting, name)).with_(compile=compile)
    return replace(setting, **changes) if changes else setting


def load_setting_data(setting: Setting) -> Dataset:
    return load_dataset(setting.dataset, train_size=setting.train_size, test_size=setting.test_size,
                        subset_seed=setting.subset_seed, avoid_subset=setting.avoid_subset)


def check_scenario(setting: Setting, scenario: str) -> None:
    if scenario not in setting.scenarios:
        raise ValueError(f"unknown scenario {scenario!r} for setting {setting.name}; "
                         f"valid: {', '.join(setting.scenarios)}")


def make_scenario_split(setting: Setting, data: Dataset, scenario: str, seed: int = 0) -> Split:
    """The split of a scenario's request, drawn with ``seed`` unless the request pins its own."""
    check_scenario(setting, scenario)
    return make_split(data, **{"seed": seed, **setting.scenarios[scenario]})  # a scenario may pin its seed


def check_grid(setting: Setting, scenarios: list[str], methods: list[str], num_classes: int | None = None) -> None:
    """Refuse unknown scenarios and methods, invalid recipes and unknown or out-of-range knobs before
    any data is loaded or model trained (``num_classes``: also the checks that need the data)."""
    for scenario in scenarios:
        check_scenario(setting, scenario)
    for method in methods:
        get_method(method)
        try:
            setting.recipe_for(method)
            check_knobs(method, setting.knobs.get(method, {}), num_classes)
        except ValueError as e:
            raise ValueError(f"setting {setting.name}, method {method}: {e}") from None


# ---------------------------------------------------------------------------------------------
# a method's parameters: recipe changes and knobs in one flat dict (what a tuning trial proposes, a run
# records and a setting file keeps)

RECIPE_FIELDS = frozenset(f.name for f in fields(Recipe))  # a parameter of one of these names changes the recipe


def split_params(params: dict) -> tuple[dict, dict]:
    """Separate a flat parameter dict into recipe changes and method knobs."""
    recipe = {k: v for k, v in params.items() if k in RECIPE_FIELDS}
    return recipe, {k: v for k, v in params.items() if k not in RECIPE_FIELDS}


def with_params(setting: Setting, method: str, params: dict, name: str | None = None) -> Setting:
    """The setting with ``params`` as ``method``'s recipe changes and knobs."""
    recipe, knobs = split_params(params)
    changes = {**setting.recipe_changes, method: {**setting.recipe_changes.get(method, {}), **recipe}}
    return replace(setting, name=name or setting.name, recipe_changes=changes,
                   knobs={**setting.knobs, method: {**setting.knobs.get(method, {}), **knobs}})
