"""Amnesiac (the relabelling variant of Graves et al. 2021, as in BadTeacher/SSD/NatMU):
fine-tune on ``D_r ∪ {(x_f, y_rand)}`` with one random wrong label per forget sample, drawn once.

Label rule: ``labels="uniform"`` draws uniformly from the K-1 other classes (NatMU's sample-wise
code, SSD); ``labels="retain"`` draws them with D_r's class frequencies (NatMU's class-wise code,
which takes the label of a random remaining sample). Augmentation: the official baselines use none,
also on D_r (``augment_retain=False``); ``True`` gives D_r the recipe's augmentation as NatMU does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..datasets import Dataset
from ..splits import Split
from ..train import Recipe
from .base import check_choice, fit_with_retain, random_wrong_labels, register, training_space, working_copy


def amnesiac_labels(data: Dataset, split: Split, rule: str, seed: int) -> torch.Tensor:
    check_choice("Amnesiac", "labels", rule, LABEL_RULES)
    weights = torch.bincount(data.train_y[split.retain], minlength=data.num_classes) if rule == "retain" else None
    return random_wrong_labels(data.train_y[split.forget], data.num_classes, torch.Generator().manual_seed(seed),
                               weights)


LABEL_RULES = ("uniform", "retain")


def check(*, labels: str, num_classes: int | None = None, **_) -> None:
    check_choice("Amnesiac", "labels", labels, LABEL_RULES)


@register("amnesiac", display="Amnesiac", color="#D55E00", order=4, space=training_space, check=check)
def amnesiac(model: nn.Module, data: Dataset, split: Split, recipe: Recipe, *, labels: str = "uniform",
             augment_retain: bool = False, reinit_head: bool = False, seed: int = 0,
             callback: Callable | None = None, progress: bool = True) -> nn.Module:
    """Random-relabel fine-tuning; ``reinit_head`` is the official ``-i`` (used for CIFAR-20 sub-class)."""
    y_rand = amnesiac_labels(data, split, labels, seed)
    student = working_copy(model, reinit_head, seed)
    return fit_with_retain(student, data, split, recipe, data.train_x[split.forget], y_rand,
                           augment_retain=augment_retain, seed=seed, desc="amnesiac", callback=callback,
                           progress=progress)
