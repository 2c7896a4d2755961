"""BadTeacher (Chundawat et al. 2023): distil the original model on D_r and a randomly initialised
"incompetent" teacher on D_f into a copy of the original.

Targets are ``softmax(teacher / T)`` (the original for retain samples, the random model for forget
samples, both frozen in eval mode) and the loss is ``KL(target || softmax(student / T))`` without a
T^2 factor. Choices where NatMU's protocol and the original paper differ:

- ``retain_fraction``: the original uses a random 30% of D_r; NatMU's baseline all of it (1.0, default);
- ``reduction``: NatMU uses ``"batchmean"`` (the true KL, default); the original code ``"mean"``
  (KL averaged over batch x classes, i.e. divided by K as well).

No augmentation: the targets are computed once, on the images the student sees.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..datasets import Dataset
from ..models import build_model
from ..splits import Split
from ..train import Recipe, fit, predict
from .base import check_choice, check_number, register, training_space, working_copy


def incompetent_teacher(model: nn.Module, seed: int) -> nn.Module:
    """A randomly initialised model of the original's architecture (its BN keeps its initial stats)."""
    spec = {**model.spec, "seed": model.spec["seed"] + 1_000_003 + seed}
    return build_model(**spec).to(next(model.parameters()).device).eval()


def distillation_loss(temperature: float, reduction: str) -> Callable[[Tensor, Tensor], Tensor]:
    check_choice("BadTeacher", "reduction", reduction, REDUCTIONS)

    def loss(logits: Tensor, target_probs: Tensor) -> Tensor:
        return F.kl_div((logits.float() / temperature).log_softmax(1), target_probs, reduction=reduction)
    return loss


REDUCTIONS = ("batchmean", "mean")


def check(*, temperature: float, retain_fraction: float, reduction: str, num_classes: int | None = None, **_) -> None:
    check_number("BadTeacher", "temperature", temperature, "> 0", lambda v: v > 0)
    check_number("BadTeacher", "retain_fraction", retain_fraction, "in (0, 1]", lambda v: 0 < v <= 1)
    check_choice("BadTeacher", "reduction", reduction, REDUCTIONS)


def space(trial) -> dict:
    return {**training_space(trial), "temperature": trial.suggest_float("temperature", 0.5, 8.0, log=True)}


@register("badteacher", display="BadTeacher", color="#DD55DD", order=5, space=space, check=check)
def badteacher(model: nn.Module, data: Dataset, split: Split, recipe: Recipe, *, temperature: float = 1.0,
               retain_fraction: float = 1.0, reduction: str = "batchmean", reinit_head: bool = False,
               seed: int = 0, callback: Callable | None = None, progress: bool = True) -> nn.Module:
    """Distil from the competent (original) and incompetent (random) teachers."""
    g = torch.Generator().manual_seed(seed)
    retain = split.retain[torch.randperm(len(split.retain), generator=g)[: round(retain_fraction * len(split.retain))]]
    retain_x, forget_x = data.train_x[retain], data.train_x[split.forget]
    targets = torch.cat([(predict(model, retain_x) / temperature).softmax(1),
                         (predict(incompetent_teacher(model, seed), forget_x) / temperature).softmax(1)])
    student = working_copy(model, reinit_head, seed)
    return fit(student, torch.cat([retain_x, forget_x]), targets, recipe.unaugmented(),
               seed=seed, loss_fn=distillation_loss(temperature, reduction), callback=callback, progress=progress,
               desc="badteacher")
