"""NegGrad+ (Kurmanji et al. 2023, "Towards Unbounded Machine Unlearning"): fine-tune on D_r while
ascending the loss on D_f, ``loss = beta * CE(retain batch) - (1 - beta) * CE(forget batch)``.

As in the SCRUB code (``zip(retain_loader, cycle(forget_loader))``), an epoch is one pass over D_r and
each retain batch is paired with the next forget batch, D_f being cycled as often as D_r needs; the
two batches go through the model separately (train mode, so BN normalises each with its own
statistics). ``beta`` defaults to 0.9999, the SCRUB repository's ``ng_alpha`` in its CIFAR notebooks
(ResNet, VGG; its small-scale notebook uses 0.95); the code of Zhao et al. 2024 sets it per experiment.
Where this version differs:

- the recipe's optimiser and schedule (the official code: plain SGD, constant lr, no weight decay);
- D_f is reshuffled on every pass (``itertools.cycle`` replays the first pass's batches) and batched
  with the recipe's batch size, as D_r;
- the small-scale notebook's pull toward the original weights (``l2_penalty``) is not implemented (the
  other notebooks' ``train_negrad`` has none either).

No augmentation, as in the official notebooks (``augment=False``); ``beta = 1`` skips the forget
batches, so it is exactly Finetune without augmentation (Finetune on the default setting).

A diverging run raises ``FloatingPointError`` (from the trainer), as GA does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..datasets import Dataset
from ..splits import Split
from ..train import ExtraLoss, Recipe, fit, to_input
from .base import check_number, register, training_space, working_copy


def check(*, beta: float, num_classes: int | None = None, **_) -> None:
    check_number("NegGrad+", "beta", beta, "in [0, 1] (1: Finetune, 0: gradient ascent alone)", lambda v: 0 <= v <= 1)


def cycled_batches(n: int, batch_size: int, generator: torch.Generator) -> Callable[[int], Tensor]:
    """``batch(step)``: index batch ``step`` of endless passes over ``range(n)``, each pass in a new random
    order and split like a DataLoader's (the last batch of a pass may be short). Steps must not go back."""
    per_pass, order = math.ceil(n / batch_size), {}  # pass -> its order (the current pass only)

    def batch(step: int) -> Tensor:
        p, j = divmod(step, per_pass)
        if p not in order:
            order.clear()
            order[p] = torch.randperm(n, generator=generator)
        return order[p][j * batch_size:(j + 1) * batch_size]
    return batch


def forget_ascent(images: Tensor, labels: Tensor, weight: float, batch_size: int, seed: int) -> ExtraLoss:
    """The trainer's ``extra_loss``: ``-weight * CE`` of the step's forget batch (unaugmented)."""
    batch = cycled_batches(len(images), batch_size, torch.Generator().manual_seed(seed + 1_000_003))

    def term(model: nn.Module, step: int, total: int) -> Tensor:
        idx = batch(step)
        return -weight * F.cross_entropy(model(to_input(images[idx])), labels[idx])
    return term


# beta on the scale that matters, 1 - beta from 1e-4 to 0.5 (the official 0.9999 and 0.95 among the choices):
# a float range in beta would spend nearly every trial below 0.99
BETAS = (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999)


def space(trial) -> dict:
    return {**training_space(trial), "beta": trial.suggest_categorical("beta", BETAS)}


@register("neggradplus", display="NegGrad+", color="#88CCEE", order=8, space=space, check=check)
def neggradplus(model: nn.Module, data: Dataset, split: Split, recipe: Recipe, *, beta: float = 0.9999, seed: int = 0,
                callback: Callable | None = None, progress: bool = True) -> nn.Module:
    """Descend ``beta`` x the retain loss and ascend ``1 - beta`` x the forget loss, batch by batch."""
    student = working_copy(model)
    device = next(student.parameters()).device
    forget_x, forget_y = data.train_x[split.forget].to(device), data.train_y[split.forget].to(device)
    ascent = None if beta == 1 else forget_ascent(forget_x, forget_y, 1 - beta, recipe.batch_size, seed)
    retain_x, retain_y = data.train_x[split.retain], data.train_y[split.retain]
    return fit(student, retain_x, retain_y, recipe.unaugmented(), seed=seed,
               loss_fn=None if beta == 1 else lambda logits, y: beta * F.cross_entropy(logits, y),
               extra_loss=ascent, callback=callback, progress=progress, desc="neggradplus")
