"""The method interface and registry.

Every method is a function ``fn(model, data, split, recipe, *, seed=0, callback=None,
progress=True, **knobs) -> nn.Module``: it takes the original model (left untouched), the dataset,
the split and a :class:`~natmu_lite.train.Recipe`, and returns the unlearned model. ``knobs`` are the
method's own hyperparameters (NatMU's ``delta``, SalUn's saliency fraction, ...), so a benchmark
setting is just ``(recipe, knobs)`` per method.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Dataset, Split
from ..train import Recipe, fit, to_input

UnlearnFn = Callable[..., nn.Module]
METHODS: dict[str, UnlearnFn] = {}
KNOB_CHECKS: dict[str, Callable[..., None]] = {}  # method -> check(num_classes=..., **knobs), raises ValueError
NOT_KNOBS = {"seed", "callback", "progress"}  # keyword arguments of every method that are not its knobs


def register(name: str, check: Callable[..., None] | None = None) -> Callable[[UnlearnFn], UnlearnFn]:
    """Add a method to ``METHODS``; ``check(num_classes=None, **knobs)`` refuses out-of-range knob values
    before anything trains (see :func:`check_knobs`)."""
    def deco(fn: UnlearnFn) -> UnlearnFn:
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        METHODS[name] = fn
        if check is not None:
            KNOB_CHECKS[name] = check
        return fn
    return deco


def get_method(name: str) -> UnlearnFn:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def knob_names(name: str) -> set[str] | None:
    """The knobs a method accepts: its keyword-only arguments (None: any, it takes ``**kwargs``)."""
    params = inspect.signature(get_method(name)).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is p.KEYWORD_ONLY} - NOT_KNOBS


def check_knobs(name: str, knobs: dict, num_classes: int | None = None) -> None:
    """Refuse unknown knob names and out-of-range values (the method's own ``check``) before anything
    trains, instead of a TypeError or a silently meaningless run after the original model was trained.
    ``num_classes`` enables the checks that depend on the data."""
    names = knob_names(name)
    unknown = sorted(set(knobs) - names) if names is not None else []
    if unknown:
        raise ValueError(f"method {name} has no parameter {unknown[0]!r}; its knobs: {', '.join(sorted(names)) or '-'}")
    if name in KNOB_CHECKS:
        KNOB_CHECKS[name](num_classes=num_classes, **knobs)


def check_number(method: str, name: str, value, rule: str, ok: Callable[[float], bool], integer: bool = False) -> None:
    """Refuse a knob that is not a finite number (an integer if ``integer``; never a bool) for which ``ok``
    holds, with a message that names the method, the knob and ``rule``, the rule in words."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or not ok(value):
        raise ValueError(f"{method} {name} must be {'an integer' if integer else 'a number'} {rule}, got {value!r}")


def working_copy(model: nn.Module, reinit_head: bool = False, seed: int = 0) -> nn.Module:
    """A trainable copy of the original (methods never modify the model they are given); with
    ``reinit_head``, its classifier re-initialised from ``seed`` (:func:`reinit_last_linear`)."""
    student = copy.deepcopy(model).train()
    if reinit_head:
        reinit_last_linear(student, seed)
    return student


def reinit_last_linear(model: nn.Module, seed: int) -> None:
    """Xavier-normal (ReLU gain) re-initialisation of the classifier weight, bias kept: the official
    ``-i`` flag (which touches every Linear; in the paper's ResNets that is the head alone). Drawn
    from ``seed``, not the global RNG, so that a run is reproducible whatever ran before it."""
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    g = torch.Generator(head.weight.device).manual_seed(seed)
    nn.init.xavier_normal_(head.weight, gain=nn.init.calculate_gain("relu"), generator=g)


def random_wrong_labels(true: Tensor, num_classes: int, generator: torch.Generator,
                        weights: Tensor | None = None) -> Tensor:
    """One random label per sample, never its true one, drawn with ``weights`` over the classes
    (uniform by default; the class-wise official code uses D_r's class frequencies)."""
    w = (torch.ones(num_classes) if weights is None else weights.float()).expand(len(true), -1).clone()
    w[torch.arange(len(true)), true] = 0
    return torch.multinomial(w, 1, generator=generator).flatten()


def fit_with_retain(student: nn.Module, data: Dataset, split: Split, recipe: Recipe, images: Tensor,
                    targets: Tensor, *, augment_retain: bool, seed: int, desc: str, **fit_kwargs) -> nn.Module:
    """Fine-tune on ``D_r ∪ (images, targets)`` shuffled together, the common shape of the
    relabelling methods and NatMU. Only D_r may be augmented (``augment_retain``); the
    forget-derived part never is, as in the official code."""
    mask = torch.cat([torch.full((len(split.retain),), augment_retain), torch.zeros(len(images), dtype=torch.bool)])
    all_images = torch.cat([data.train_x[split.retain], images])
    all_targets = torch.cat([data.train_y[split.retain], targets])
    return fit(student, all_images, all_targets, recipe, seed=seed, augment_mask=mask, desc=desc, **fit_kwargs)


def summed_batch_gradients(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int,
                           transform: Callable[[Tensor], Tensor], sign: float = 1.0) -> tuple[dict[str, Tensor], int]:
    """``sum over batches of transform(grad of sign * CE(batch mean))`` per trainable parameter, and the
    number of batches. The model is in eval mode meanwhile (SalUn's saliency and SSD's importances
    are both taken so) and returns to its mode after."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    sums = {n: torch.zeros_like(p) for n, p in params.items()}
    batches = 0
    try:
        for xb, yb in zip(images.split(batch_size), labels.split(batch_size)):
            model.zero_grad(set_to_none=True)
            (sign * F.cross_entropy(model(to_input(xb.to(device))), yb.to(device))).backward()
            for n, p in params.items():
                sums[n] += transform(p.grad.detach())
            batches += 1
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return sums, batches
