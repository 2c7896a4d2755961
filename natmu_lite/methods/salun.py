"""SalUn (Fan et al. 2024): Amnesiac fine-tuning restricted to the most forget-salient weights.

1. Saliency: with the model in eval mode, sum the gradients of -CE (batch mean) over the batches of
   D_f and take the absolute value. Rank every trainable element globally (conv, BN, linear, biases in
   one pool); the top ``fraction`` stays trainable (official ``threshold``: 0.05 -> 5% updated).
2. Fine-tune on the Amnesiac set. Frozen weights are restored after every step, so they stay
   bit-identical (SalUn's fix of 2026, PR #33: AdamW's decoupled weight decay otherwise moves them,
   as it did in the NatMU baseline; ``restore_frozen=False`` gives that gradient-masking-only
   behaviour). BN running statistics are buffers and update everywhere, as in both codes.

Where NatMU's baseline code and SalUn's own code differ, this version follows NatMU's, the SalUn of
the paper's tables, unless a knob says otherwise:

- labels: NatMU's draws a random *wrong* label (``allow_true_label=False``); SalUn's draws uniformly
  from all classes, the true one included (``allow_true_label=True``);
- saliency batches: NatMU's sums D_f in its stored order in batches of 500; SalUn's in shuffled batches
  of its training batch size (256 by default). A sum of batch means differs only in the weight of a
  last, smaller batch, so the two masks are identical where each code's batches are all of one size
  (a D_f of at most 256 images, for instance);
- when the labels are drawn: NatMU's once per run; SalUn's anew every epoch;
- the training stream: NatMU's is one shuffled stream of D_r and the relabelled D_f, as is SalUn's for
  CIFAR-100 and TinyImageNet; SalUn's CIFAR-10 (and SVHN) branch runs all the relabelled forget batches
  first and then the retain batches, every epoch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..datasets import Dataset
from ..splits import Split
from ..train import Recipe
from .amnesiac import amnesiac_labels
from .base import check_number, fit_with_retain, register, summed_batch_gradients, training_space, working_copy


def saliency_mask(model: nn.Module, images: Tensor, labels: Tensor, fraction: float,
                  batch_size: int = 500) -> dict[str, Tensor]:
    """Per-parameter boolean masks, True for the globally top-``fraction`` salient elements."""
    check(fraction=fraction)
    grads, _ = summed_batch_gradients(model, images, labels, batch_size, transform=lambda g: g, sign=-1.0)
    scores = torch.cat([g.abs().flatten() for g in grads.values()])
    keep = int(len(scores) * fraction)
    chosen = torch.zeros_like(scores, dtype=torch.bool)
    chosen[scores.argsort(descending=True, stable=True)[:keep]] = True
    masks, start = {}, 0
    for n, g in grads.items():
        masks[n] = chosen[start:start + g.numel()].view_as(g)
        start += g.numel()
    return masks


def check(*, fraction: float, num_classes: int | None = None, **_) -> None:
    check_number("SalUn", "fraction", fraction, "in (0, 1] (the share of weights that may move)", lambda v: 0 < v <= 1)


def space(trial) -> dict:
    return {**training_space(trial), "fraction": trial.suggest_float("fraction", 0.01, 1.0, log=True)}


@register("salun", display="SalUn", color="#E69F00", order=6, space=space, check=check)
def salun(model: nn.Module, data: Dataset, split: Split, recipe: Recipe, *, fraction: float = 0.5,
          allow_true_label: bool = False, restore_frozen: bool = True, augment_retain: bool = False,
          seed: int = 0, callback: Callable | None = None, progress: bool = True) -> nn.Module:
    """Saliency-masked random-label fine-tuning; ``fraction`` of the weights may move."""
    student = working_copy(model)
    forget_x, forget_y = data.train_x[split.forget], data.train_y[split.forget]
    masks = saliency_mask(student, forget_x, forget_y, fraction)
    if allow_true_label:
        y_rand = torch.randint(0, data.num_classes, (len(forget_y),), generator=torch.Generator().manual_seed(seed))
    else:
        y_rand = amnesiac_labels(data, split, "uniform", seed)
    params = dict(student.named_parameters())
    frozen = {n: (~m, params[n].detach().clone()) for n, m in masks.items()}

    def mask_gradients(grad_mask: Tensor) -> Callable[[Tensor], Tensor]:
        return lambda grad: grad * grad_mask

    hooks = [params[n].register_hook(mask_gradients(m.to(params[n].dtype))) for n, m in masks.items()]

    def restore(model: nn.Module) -> None:
        with torch.no_grad():
            for n, (is_frozen, original) in frozen.items():
                params[n].copy_(torch.where(is_frozen, original, params[n]))

    try:
        return fit_with_retain(student, data, split, recipe, forget_x, y_rand, augment_retain=augment_retain,
                               seed=seed, desc="salun", callback=callback, progress=progress,
                               after_step=restore if restore_frozen else None)
    finally:
        for h in hooks:
            h.remove()
