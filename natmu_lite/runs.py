"""One unlearning run (:func:`run_method`) and one request with its models (:class:`Experiment`):
what the notebooks, the CLI and the grids all call."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from torch import nn

from .cache import cached_model
from .datasets import Dataset
from .methods.base import get_method
from .metrics import evaluate
from .setting import Setting, load_setting_data, make_scenario_split
from .settings import get_setting
from .splits import Split


@dataclass
class Run:
    method: str
    model: nn.Module
    metrics: dict[str, float]
    seconds: float


def run_method(method: str, original: nn.Module, data: Dataset, split: Split, setting: Setting, *,
               seed: int = 0, callback: Callable | None = None, progress: bool = True,
               recipe_changes: dict | None = None, **knobs) -> Run:
    """Run one method with the setting's recipe and knobs and evaluate it; ``recipe_changes``
    (e.g. ``{"lr": 1e-3}``) and ``knobs`` override the setting's values for this run."""
    fn = get_method(method)
    recipe = setting.recipe_for(method).with_(**(recipe_changes or {}))
    start = time.perf_counter()
    model = fn(original, data, split, recipe, seed=seed, callback=callback,
               progress=progress, **{**setting.knobs.get(method, {}), **knobs})
    seconds = time.perf_counter() - start
    return Run(method, model, evaluate(model, data, split), seconds)



@dataclass
class Experiment:
    """One unlearning request with its models: what every notebook starts from. The retrained model
    is trained (or read from the cache) when first used, so a notebook that needs only the original
    and the runs of one seed does not pay for that seed's Retrain."""

    setting: Setting
    scenario: str
    data: Dataset
    split: Split
    original: nn.Module
    seed: int = 0  # Retrain's seed
    progress: bool = True

    @cached_property
    def retrained(self) -> nn.Module:
        return cached_model("retrain", self.setting, self.data, self.seed, self.split, progress=self.progress)[0]

    def run(self, method: str, seed: int = 0, **kwargs) -> Run:
        """:func:`run_method` on this request (``recipe_changes`` and knobs as keywords)."""
        return run_method(method, self.original, self.data, self.split, self.setting, seed=seed, **kwargs)


def experiment(setting: Setting | str, scenario: str, seed: int = 0, progress: bool = True) -> Experiment:
    """Data, split and the cached original model of one scenario of a setting; ``seed`` is the seed
    of its (lazily trained) Retrain."""
    setting = get_setting(setting) if isinstance(setting, str) else setting
    data = load_setting_data(setting)
    split = make_scenario_split(setting, data, scenario, seed=setting.split_seed)
    original, _ = cached_model("original", setting, data, setting.original_seed, progress=progress)
    return Experiment(setting, scenario, data, split, original, seed, progress)

