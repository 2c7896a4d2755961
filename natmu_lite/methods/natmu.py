"""NatMU (He et al. 2024): fine-tune on D_r plus forget images blended with relevant remaining images.

For each forget image x_f the original model's top-n classes other than its true label are taken; for
each of them one remaining image x_r of that class is drawn (each remaining image at most once) and
blended pixel-wise, ``x_f * m + x_r * (1 - m)``, with one of four "gradual MixUp" masks. The blend is
labelled with x_r's class. The model is then fine-tuned on ``D_r ∪ blends``. Each step below is a
public function, so the book and the assignments can show and test it on its own.

Where the official code is broken this module fixes it, and says so (the book's page "How
natmu-lite differs from the official code", ``book/differences.md``, explains these fixes with the
package's other differences):

- the per-class cap: the cap itself is the official one (``int(0.98 * |D_r| / K)``, sample-wise
  code), but an overflowing label falls through to the sample's next-ranked class with room instead
  of going to a random lower-id "receiver" class (which could be the true label or a duplicate, or
  crash when no receiver exists). A class is also never asked for more images than D_r holds, which
  replaces the official sampler's infinite loop with a clear error;
- the head re-initialisation (``reinit_head``) touches the last Linear layer only.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..datasets import Dataset
from ..splits import Split
from ..train import Recipe, predict
from .base import Row, add_row, fit_with_retain, register, training_space, working_copy


def natmu_masks(height: int, width: int, delta: float = 0.0) -> Tensor:
    """The four gradual-MixUp masks, shape ``(4, height, width)``: the weight of the *forget* image.

    With the tent ``t(i) = min(i, n-1-i) / (n/2)``: m1 = t(row), m2 = t(col), m3 = (h/2-1)/(h/2) - m1,
    m4 = (w/2-1)/(w/2) - m2 (so m1 + m3 is constant); then ``clip(m + delta, 0, 1)`` (paper Eq. 1).
    Negative ``delta`` puts less of the forget image into each blend. ``delta`` must lie in [-1, 1]: at -1
    every mask is 0 (the blends hold no forget content at all), at 1 every mask is 1 for even sizes (the
    official default, no remaining content); beyond, the clipping makes every value the same as at ±1."""
    check_delta(delta)

    def tent(n: int) -> Tensor:
        i = torch.arange(n, dtype=torch.float32)
        return torch.minimum(i, n - 1 - i) / (n / 2)

    rows = tent(height)[:, None].expand(height, width)
    cols = tent(width)[None, :].expand(height, width)
    top_r, top_c = (height / 2 - 1) / (height / 2), (width / 2 - 1) / (width / 2)
    masks = torch.stack([rows, cols, top_r - rows, top_c - cols])
    return (masks + delta).clamp(0, 1)


def check_delta(delta: float) -> None:
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not -1 <= delta <= 1:
        raise ValueError(f"NatMU delta must be a number in [-1, 1] (-1: no forget content in the blends, "
                         f"1: forget images only), got {delta!r}")


def labels_per_sample(n: int | None, num_classes: int | None) -> int | None:
    """NatMU's ``n``: by default the paper's 4, or K - 1 on a dataset with fewer classes (Fashion-MNIST's
    four superclasses allow three labels); an explicit ``n`` must be an integer in [1, K - 1] (only
    its lower bound is checked while ``num_classes`` is unknown)."""
    most = None if num_classes is None else num_classes - 1
    if n is None:
        return None if most is None else min(4, most)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1 or (most is not None and n > most):
        bound = "at least 1" if most is None else f"between 1 and K - 1 = {most}"
        raise ValueError(f"NatMU n (labels per forget sample) must be an integer {bound}, got {n!r}")
    return int(n)


def check(*, delta: float, n: int | None, num_classes: int | None = None, **_) -> None:
    """NatMU's knob values, checked before anything trains (``n``'s upper bound once ``num_classes`` is known)."""
    check_delta(delta)
    labels_per_sample(n, num_classes)


def label_cap(num_retain: int, num_classes: int) -> int:
    """The official per-class cap on how often a class may be reassigned: ``int(0.98 * |D_r| / K)``."""
    return int(0.98 * num_retain / num_classes)


def reassign_labels(probs: Tensor, true_labels: Tensor, n: int = 4, caps: Tensor | None = None) -> Tensor:
    """New labels ``(N_f, n)``: each forget sample's top-n classes by ``probs``, its true class excluded,
    in descending order (rank j pairs with mask j).

    ``caps[c]`` bounds how often class c may be used over the whole forget set. Samples are served in
    order (as the official code scans its flattened label array), and a class that is full is skipped
    for the sample's next-ranked class, so the n labels stay distinct and never the true one."""
    k = probs.shape[1]
    if not 1 <= n <= k - 1:
        raise ValueError(f"n must be between 1 and K-1 = {k - 1}, got {n}")
    masked = probs.float().clone()
    masked[torch.arange(len(probs)), true_labels] = -1.0  # below every probability
    ranking = masked.argsort(dim=1, descending=True, stable=True)[:, : k - 1]
    labels = ranking[:, :n]
    if caps is None or (torch.bincount(labels.flatten(), minlength=k) <= caps).all():
        return labels.clone()
    counts, out = [0] * k, []
    caps_list = caps.tolist()
    for i, row in enumerate(ranking.tolist()):
        chosen = [c for c in row if counts[c] < caps_list[c]][:n]
        if len(chosen) < n:
            raise ValueError(f"forget sample {i}: fewer than {n} classes have remaining images left; "
                             "lower n or the forget-set size")
        for c in chosen:
            counts[c] += 1
        out.append(chosen)
    return torch.tensor(out, dtype=torch.long)


def draw_retain(requested: Tensor, retain_labels: Tensor, generator: torch.Generator) -> Tensor:
    """For each requested class, a distinct position in D_r holding that class (no image used twice).

    Each class's remaining images are shuffled and dealt out in request order, the distribution of the
    official rejection sampler, without its infinite loop when demand exceeds supply."""
    out = torch.empty_like(requested)
    for c in requested.unique().tolist():
        want = (requested == c).nonzero().flatten()
        pool = (retain_labels == c).nonzero().flatten()
        if len(want) > len(pool):
            raise ValueError(f"class {c} is requested {len(want)} times but D_r holds {len(pool)} images of it")
        out[want] = pool[torch.randperm(len(pool), generator=generator)[: len(want)]]
    return out


def per_channel(masks: Tensor) -> Tensor:
    """Masks ``(N, H, W)`` as ``(N, 1, H, W)``, to broadcast over an image's channels (4-d pass through)."""
    return masks if masks.dim() == 4 else masks[:, None]


def blend(forget_x: Tensor, retain_x: Tensor, masks: Tensor) -> Tensor:
    """``x_f * m + x_r * (1 - m)`` on raw uint8 pixels, truncated back to uint8 as the official code does.

    ``masks`` broadcast over channels: shape ``(N, H, W)`` or ``(N, 1, H, W)``."""
    m = per_channel(masks)
    mixed = forget_x.float() * m + retain_x.float() * (1 - m)
    return mixed.clamp(0, 255).to(torch.uint8)


@dataclass
class UnlearningSet:
    """NatMU's unlearning instances: ``images[i]`` blends forget sample ``split.forget[forget_pos[i]]``
    with training image ``retain_index[i]`` under mask ``mask_id[i]``, labelled ``labels[i]``."""

    images: Tensor
    labels: Tensor
    forget_pos: Tensor
    retain_index: Tensor
    mask_id: Tensor
    masks: Tensor  # (n_masks, H, W), the scaled masks used

    def of(self, i: int) -> Tensor:
        """The positions of forget sample ``i``'s instances, in rank order: the j-th is labelled with
        the original model's j-th most likely wrong class and blended under mask ``j % 4``."""
        return torch.nonzero(self.forget_pos == i).flatten()

    def forget_parts(self, data: Dataset, split: Split) -> Tensor:
        """``x_f * m`` alone (remaining part black): the input of the PFA metric."""
        xf = data.train_x[split.forget[self.forget_pos]]
        return blend(xf, torch.zeros_like(xf), self.masks[self.mask_id])


def build_unlearning_set(original: nn.Module, data: Dataset, split: Split, *, delta: float = 0.0,
                         n: int | None = None, cap: bool | None = None, seed: int = 0) -> UnlearningSet:
    """Steps 1-3 of NatMU: reassign labels with the original model, draw remaining images, blend.

    ``n`` defaults to the paper's 4, or K - 1 where there are fewer classes (Fashion-MNIST's four
    superclasses allow three labels); an explicit ``n`` above K - 1 is an error. ``cap=None``
    applies the official label cap where the official code does, in random-subset forgetting only;
    a class is never asked for more images than D_r holds either way."""
    check_delta(delta)
    n = labels_per_sample(n, data.num_classes)
    cap = split.kind == "random" if cap is None else cap
    retain_y = data.train_y[split.retain]
    probs = predict(original, data.train_x[split.forget]).softmax(1)
    supply = torch.bincount(retain_y, minlength=data.num_classes)
    caps = supply.clamp(max=label_cap(len(split.retain), data.num_classes)) if cap else supply
    labels = reassign_labels(probs, data.train_y[split.forget], n, caps).flatten()
    g = torch.Generator().manual_seed(seed)
    retain_pos = draw_retain(labels, retain_y, g)
    forget_pos = torch.arange(len(split.forget)).repeat_interleave(n)
    n_masks = 4
    mask_id = torch.arange(n).repeat(len(split.forget)) % n_masks
    masks = natmu_masks(data.shape[1], data.shape[2], delta)
    retain_index = split.retain[retain_pos]
    images = blend(data.train_x[split.forget[forget_pos]], data.train_x[retain_index], masks[mask_id])
    return UnlearningSet(images, data.train_y[retain_index], forget_pos, retain_index, mask_id, masks)


def space(trial) -> dict:
    return {**training_space(trial), "delta": trial.suggest_float("delta", -0.3, 0.3)}


@register("natmu", display="NatMU", color="tab:blue", order=11, space=space, check=check)
def natmu(model: nn.Module, data: Dataset, split: Split, recipe: Recipe, *, delta: float = 0.0,
          n: int | None = None, cap: bool | None = None, reinit_head: bool = False, inject: bool = True,
          seed: int = 0, callback: Callable | None = None, progress: bool = True) -> nn.Module:
    """Fine-tune a copy of ``model`` on ``D_r ∪ blends`` (Eq. 3 of the paper); ``model`` is left as it is.

    Args:
        model: the original model; its predictions choose each forget sample's labels.
        data, split: the data and the request (``split.forget`` to forget, ``split.retain`` to keep).
        recipe: the unlearning recipe; retain images get its augmentation and blends none, as in the
            official code.
        delta: in [-1, 1], shifts the masks (more forget content when positive, see :func:`natmu_masks`).
        n: labels (and blends) per forget sample, default 4, at most K - 1.
        cap: forces the official per-class label cap on or off (default: on for random forgetting, as
            official).
        reinit_head: re-initialises the classifier after the labels are chosen (the official
            full-class setting).
        inject: False is the paper's "W/O CI" ablation (Fig. 3/5): fine-tune on the forget parts
            ``x_f * m`` alone, without the injected retain image, under the same labels.
        seed, callback, progress: as in :func:`~natmu_lite.train.fit`.

    Example (separable synthetic classes, so the forget images stay as recognisable as to Retrain):
        >>> import torch, natmu_lite as nl
        >>> g = torch.Generator().manual_seed(0)
        >>> y = torch.arange(10).repeat(20)
        >>> x = (y[:, None, None, None] * 25 + torch.randint(0, 20, (200, 1, 12, 12), generator=g)).to(torch.uint8)
        >>> data = nl.Dataset("toy", x, y, x, y, [str(c) for c in range(10)], (0.5,), (0.3,))
        >>> split = nl.make_split(data, "random", ratio=0.1, seed=0)
        >>> original = nl.train_original(data, "small_cnn", nl.Recipe("sgd", lr=0.05, epochs=20, batch_size=32),
        ...                              progress=False)
        >>> model = natmu(original, data, split, nl.Recipe("adamw", lr=1e-3, epochs=3, batch_size=32), progress=False)
        >>> model is not original and nl.evaluate(model, data, split)["RA"] > 90
        True
    """
    uset = build_unlearning_set(model, data, split, delta=delta, n=n, cap=cap, seed=seed)
    student = working_copy(model, reinit_head, seed)
    images = uset.images if inject else uset.forget_parts(data, split)
    return fit_with_retain(student, data, split, recipe, images, uset.labels, augment_retain=True,
                           seed=seed, desc="natmu", callback=callback, progress=progress)


add_row(Row("natmu w/o CI", "NatMU w/o CI", "#999933", 12))  # the paper's ablation (inject=False): a row, no method
