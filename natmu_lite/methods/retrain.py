"""Retrain (the gold standard: train from scratch on D_r) and Finetune (keep training on D_r)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..datasets import Dataset
from ..models import build_model
from ..splits import Split
from ..train import Recipe, train_on
from .base import register, training_space, working_copy


@register("retrain", display="Retrain", color="black", order=0, reference=True)
def retrain(model: nn.Module, data: Dataset, split: Split, recipe: Recipe, *, seed: int = 0,
            callback: Callable | None = None, progress: bool = True) -> nn.Module:
    """Train from the original's initial weights on D_r only (as the official ``-r`` flag does)."""
    fresh = build_model(**model.spec).to(next(model.parameters()).device)
    return train_on(fresh, data, split.retain, recipe, seed=seed, callback=callback, progress=progress,
                    desc="retrain")


@register("finetune", display="Finetune", color="#777777", order=2, space=training_space)
def finetune(model: nn.Module, data: Dataset, split: Split, recipe: Recipe, *, seed: int = 0,
             callback: Callable | None = None, progress: bool = True) -> nn.Module:
    """Keep training the original on D_r alone: forgetting only by catastrophic forgetting."""
    return train_on(working_copy(model), data, split.retain, recipe, seed=seed, callback=callback,
                    progress=progress, desc="finetune")
