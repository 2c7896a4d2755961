"""Retrain (the gold standard: train from scratch on D_r) and Finetune (keep training on D_r)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from ..data import Dataset, Split
from ..models import build_model, model_for
from ..train import Recipe, default_device, fit
from .base import register, working_copy


def train_on(model: nn.Module, data: Dataset, indices: Tensor | None, recipe: Recipe, *, seed: int = 0,
             callback: Callable | None = None, progress: bool = True, desc: str = "train") -> nn.Module:
    """Train ``model`` in place on the training images at ``indices`` (all when None)."""
    x, y = (data.train_x, data.train_y) if indices is None else (data.train_x[indices], data.train_y[indices])
    return fit(model, x, y, recipe, seed=seed, callback=callback, progress=progress, desc=desc)


def train_original(data: Dataset, model_name: str, recipe: Recipe, *, seed: int = 0, device=None,
                   callback: Callable | None = None, progress: bool = True) -> nn.Module:
    """The original model: initialised with ``seed`` and trained on the whole training set."""
    model = model_for(model_name, data, seed).to(device or default_device())
    return train_on(model, data, None, recipe, seed=seed, callback=callback, progress=progress, desc="original")


@register("retrain")
def retrain(model: nn.Module, data: Dataset, split: Split, recipe: Recipe, *, seed: int = 0,
            callback: Callable | None = None, progress: bool = True) -> nn.Module:
    """Train from the original's initial weights on D_r only (as the official ``-r`` flag does)."""
    fresh = build_model(**model.spec).to(next(model.parameters()).device)
    return train_on(fresh, data, split.retain, recipe, seed=seed, callback=callback, progress=progress,
                    desc="retrain")


@register("finetune")
def finetune(model: nn.Module, data: Dataset, split: Split, recipe: Recipe, *, seed: int = 0,
             callback: Callable | None = None, progress: bool = True) -> nn.Module:
    """Keep training the original on D_r alone: forgetting only by catastrophic forgetting."""
    return train_on(working_copy(model), data, split.retain, recipe, seed=seed, callback=callback,
                    progress=progress, desc="finetune")
