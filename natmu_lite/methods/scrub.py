"""SCRUB (Kurmanji et al., NeurIPS 2023, "Towards Unbounded Machine Unlearning"): a student, started
from the original, moves away from the original (the frozen teacher) on D_f and stays close to it on D_r.

Each epoch is a max pass, then a min pass, as in the official code:

- max pass, in the first ``msteps`` epochs only: over D_f, minimise ``-KL(teacher || student)``;
- min pass, every epoch: over D_r, minimise ``gamma * CE(student, y) + alpha * KL(teacher || student)``;

where ``KL`` is the official ``DistillKL``: ``T^2 * KL(softmax(t / T) || softmax(s / T))`` averaged over
the batch (BadTeacher's :func:`~.badteacher.distillation_loss` times T^2). The teacher is in eval mode,
the student in train mode (BN statistics update in both passes), and both passes share one optimiser.
Defaults are the official large-scale (CIFAR-10, All-CNN) values: ``msteps=2``, ``temperature=4``
(``kd_T``), ``alpha=0.001``, ``gamma=0.99``; its small-scale notebook uses alpha 0.5, gamma 1, msteps 3.
No augmentation, as in the official notebooks (``augment=False``).
Where this version differs:

- the recipe's optimiser and one learning-rate schedule over all steps of both passes (official: SGD,
  momentum 0.9, weight decay 5e-4, a per-epoch step decay that its 3-epoch runs never reach);
- both passes use the recipe's batch size (the official notebooks size each loader on its own: 512 on
  D_f and 256 on D_r in the large-scale one), so a small forget set gets few max steps per epoch;
- not implemented: the official SWA option (``sstart``, off in its notebooks), its feature
  distillation losses (``distill != "kd"``, weighted by its ``beta``), and ``recipe.compile`` (SCRUB
  runs eager: compiling never changes the weights, only the speed).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..datasets import Dataset
from ..splits import Split
from ..train import Recipe, autocast, grad_scaler, lr_multiplier, make_optimizer, precision, to_input
from .badteacher import distillation_loss
from .base import check_number, register, training_space, working_copy


def check(*, msteps: int, temperature: float, alpha: float, gamma: float, num_classes: int | None = None,
          **_) -> None:
    check_number("SCRUB", "msteps", msteps, ">= 0 (the epochs with a max pass)", lambda v: v >= 0, integer=True)
    check_number("SCRUB", "temperature", temperature, "> 0", lambda v: v > 0)
    check_number("SCRUB", "alpha", alpha, ">= 0 (the weight of the retain KL)", lambda v: v >= 0)
    check_number("SCRUB", "gamma", gamma, ">= 0 (the weight of the retain cross-entropy)", lambda v: v >= 0)


def divergence(teacher: nn.Module, temperature: float) -> Callable[[Tensor, Tensor], Tensor]:
    """``(student logits, input) -> T^2 * KL(teacher || student)`` at temperature T, batch mean."""
    kl = distillation_loss(temperature, "batchmean")

    def loss(logits: Tensor, x: Tensor) -> Tensor:
        with torch.no_grad():
            target = (teacher(x).float() / temperature).softmax(1)
        return temperature ** 2 * kl(logits, target)
    return loss


def space(trial) -> dict:
    """msteps up to the longest run (6 epochs); alpha and gamma around the official 0.001-1."""
    return {**training_space(trial), "msteps": trial.suggest_int("msteps", 1, 6),
            "temperature": trial.suggest_float("temperature", 0.5, 8.0, log=True),
            "alpha": trial.suggest_float("alpha", 1e-3, 10.0, log=True),
            "gamma": trial.suggest_float("gamma", 0.1, 10.0, log=True)}


@register("scrub", display="SCRUB", color="#332288", order=9, space=space, check=check)
def scrub(model: nn.Module, data: Dataset, split: Split, recipe: Recipe, *, msteps: int = 2, temperature: float = 4.0,
          alpha: float = 0.001, gamma: float = 0.99, seed: int = 0, callback: Callable | None = None,
          progress: bool = True) -> nn.Module:
    """Alternate max passes on D_f (the first ``msteps`` epochs) and min passes on D_r."""
    student = working_copy(model).to(memory_format=torch.channels_last)
    teacher = copy.deepcopy(student).eval().requires_grad_(False)
    kl = divergence(teacher, temperature)
    device = next(student.parameters()).device
    retain_x, retain_y = data.train_x[split.retain].to(device), data.train_y[split.retain].to(device)
    forget_x = data.train_x[split.forget].to(device)
    bs = recipe.batch_size
    total = (recipe.epochs * math.ceil(len(retain_x) / bs)
             + min(msteps, recipe.epochs) * math.ceil(len(forget_x) / bs))
    warmup = round(recipe.warmup_epochs * total / recipe.epochs)
    opt = make_optimizer(student, recipe)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_multiplier(recipe.schedule, s, total, warmup))
    g = torch.Generator(device).manual_seed(seed)
    arithmetic = precision(device, recipe.bf16)
    scaler = grad_scaler(device, arithmetic, "scrub")

    def away(logits: Tensor, x: Tensor, y: Tensor | None) -> Tensor:  # the max step's loss, on D_f
        return -kl(logits, x)

    def close(logits: Tensor, x: Tensor, y: Tensor) -> Tensor:  # the min step's loss, on D_r
        return gamma * F.cross_entropy(logits, y) + alpha * kl(logits, x)

    def step(x: Tensor, y: Tensor | None, loss_fn: Callable[[Tensor, Tensor, Tensor | None], Tensor]) -> Tensor:
        """One optimiser step on ``loss_fn(student logits, x, y)``; returns the loss times the batch size."""
        with autocast(device, arithmetic):
            loss = loss_fn(student(x), x, y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        return loss.detach() * len(x)

    bar = tqdm(range(recipe.epochs), desc="scrub", disable=not progress, leave=False)
    for epoch in bar:
        forget_sum = retain_sum = torch.zeros((), device=device)
        if epoch < msteps:  # max pass: away from the teacher on D_f
            for idx in torch.randperm(len(forget_x), device=device, generator=g).split(bs):
                forget_sum = forget_sum - step(to_input(forget_x[idx]), None, away)
        for idx in torch.randperm(len(retain_x), device=device, generator=g).split(bs):  # min pass: close on D_r
            retain_sum = retain_sum + step(to_input(retain_x[idx]), retain_y[idx], close)
        kl_f, loss_r = (forget_sum / len(forget_x)).item(), (retain_sum / len(retain_x)).item()
        if not (math.isfinite(kl_f) and math.isfinite(loss_r)):
            raise FloatingPointError(f"scrub: the loss diverged (forget KL {kl_f}, retain loss {loss_r}) in epoch "
                                     f"{epoch + 1}; lower the learning rate")
        bar.set_postfix(kl_f=f"{kl_f:.3f}", loss_r=f"{loss_r:.3f}")
        if callback is not None:
            callback(epoch, student)
    return student
