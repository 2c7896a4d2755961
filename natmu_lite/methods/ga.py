"""Gradient ascent: maximise the cross-entropy of the forget set, nothing else.

Not in the official NatMU code; this follows SalUn's ``GA`` (minimise -CE on D_f only, no retain
term). The loss grows without bound, so the only stopping rule is the recipe's length; a diverging
run (NaN/inf) raises ``FloatingPointError`` from the trainer instead of returning a broken model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..datasets import Dataset
from ..splits import Split
from ..train import Recipe, fit
from .base import register, working_copy


def negative_ce(logits: Tensor, targets: Tensor) -> Tensor:
    return -F.cross_entropy(logits, targets)


def space(trial) -> dict:
    """Ascent is sensitive to its step: two more decades of learning rate below the others', up to 8 epochs."""
    return {"lr": trial.suggest_float("lr", 1e-6, 1e-2, log=True), "epochs": trial.suggest_int("epochs", 1, 8)}


@register("ga", display="GA", color="#882255", order=3, space=space)
def ga(model: nn.Module, data: Dataset, split: Split, recipe: Recipe, *, seed: int = 0,
       callback: Callable | None = None, progress: bool = True) -> nn.Module:
    """Gradient ascent on D_f with the recipe's optimiser and schedule (no augmentation)."""
    student = fit(working_copy(model), data.train_x[split.forget], data.train_y[split.forget],
                  recipe.unaugmented(), seed=seed, loss_fn=negative_ce, callback=callback,
                  progress=progress, desc="ga")
    if not all(torch.isfinite(p).all() for p in student.parameters()):
        raise FloatingPointError("gradient ascent produced non-finite weights; lower the learning rate")
    return student
