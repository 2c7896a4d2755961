"""Experiment settings and the runs built from them.

A :class:`Setting` fixes everything an experiment needs besides the seed: the data (and its subset
size), the network, the recipe of the original and retrained models, the recipe and knobs of each
unlearning method, and the named forget requests (scenarios). The notebooks, the CLI and the tests
all go through :func:`load_setting_data`, :func:`make_scenario_split` and :func:`run_method`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from .data import Dataset, Split, load_dataset, make_split
from .methods.base import get_method
from .methods.retrain import train_original
from .metrics import evaluate
from .train import Recipe


@dataclass(frozen=True)
class Setting:
    """One experimental setting: data, model, recipes, method knobs and forget requests."""

    name: str
    dataset: str
    model: str
    train: Recipe  # the original and the retrained model
    unlearn: Recipe  # the default for every unlearning method
    train_size: int | None = None
    test_size: int | None = None
    scenarios: dict[str, dict] = field(default_factory=dict)  # name -> make_split kwargs
    knobs: dict[str, dict] = field(default_factory=dict)  # method -> its own hyperparameters
    recipes: dict[str, dict] = field(default_factory=dict)  # method -> changes to ``unlearn``

    def recipe_for(self, method: str) -> Recipe:
        if method == "retrain":
            return self.train
        return self.unlearn.with_(**self.recipes.get(method, {}))


# The offline default: Fashion-MNIST on two CPU cores. A 10k-image class-balanced subset and a small
# CNN (width 16) that memorises it (~99% train, ~89% test) in 20 SGD epochs, about 30 s here.
# Unlearning follows the paper's recipe (AdamW, per-step cosine), with lr and epochs chosen on this
# setting (see the book's over-forgetting chapter); augmentation is off, as Fashion-MNIST needs none.
DEFAULT = Setting(
    name="default",
    dataset="fashion-mnist",
    model="small_cnn",
    train_size=10_000,
    train=Recipe("sgd", lr=0.05, weight_decay=5e-4, epochs=20, batch_size=128, schedule="step", warmup_epochs=1),
    unlearn=Recipe("adamw", lr=3e-3, weight_decay=0.0, epochs=6, batch_size=128, schedule="cosine"),
    scenarios={
        "random-1%": dict(scenario="random", ratio=0.01),
        "random-10%": dict(scenario="random", ratio=0.10),
        "full-class": dict(scenario="full-class", target="Trouser"),
    },
    knobs={"natmu": dict(delta=0.0)},
)
SETTINGS = {s.name: s for s in (DEFAULT,)}


def get_setting(name: str) -> Setting:
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}; valid: {', '.join(SETTINGS)}")
    return SETTINGS[name]


def load_setting_data(setting: Setting) -> Dataset:
    return load_dataset(setting.dataset, train_size=setting.train_size, test_size=setting.test_size)


def make_scenario_split(setting: Setting, data: Dataset, scenario: str, seed: int = 0) -> Split:
    if scenario not in setting.scenarios:
        raise ValueError(f"unknown scenario {scenario!r} for setting {setting.name}; "
                         f"valid: {', '.join(setting.scenarios)}")
    return make_split(data, seed=seed, **setting.scenarios[scenario])


def train_setting_original(setting: Setting, data: Dataset, seed: int = 0, progress: bool = True) -> nn.Module:
    return train_original(data, setting.model, setting.train, seed=seed, progress=progress)


@dataclass
class Run:
    method: str
    model: nn.Module
    metrics: dict[str, float]
    seconds: float


def run_method(method: str, original: nn.Module, data: Dataset, split: Split, setting: Setting, *,
               seed: int = 0, callback: Callable | None = None, progress: bool = True, **knobs) -> Run:
    """Run one method with the setting's recipe and knobs (``knobs`` override them) and evaluate it."""
    fn = get_method(method)
    start = time.perf_counter()
    model = fn(original, data, split, setting.recipe_for(method), seed=seed, callback=callback,
               progress=progress, **{**setting.knobs.get(method, {}), **knobs})
    seconds = time.perf_counter() - start
    return Run(method, model, evaluate(model, data, split), seconds)
