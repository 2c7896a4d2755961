"""The method interface and the registry of the book's rows.

Every method is a function ``fn(model, data, split, recipe, *, seed=0, callback=None,
progress=True, **knobs) -> nn.Module``: it takes the original model (left untouched), the dataset,
the split and a :class:`~natmu_lite.train.Recipe`, and returns the unlearned model. ``knobs`` are the
method's own hyperparameters (NatMU's ``delta``, SalUn's saliency fraction, ...), keyword-only
arguments whose defaults are the method's defaults, so a benchmark setting is just ``(recipe, knobs)``
per method and lists only the knobs it changes.

A method is one file: its function, decorated with :func:`register`, which records everything the
rest of the package needs to know about it: its name in tables and figures, its colour, its place in
the book's order (optional: a method without one comes after the package's own), its search space for
tuning, the rule for its knobs' values and whether it trains in epochs. The tables, the figures' palette,
the tuning's search spaces and the protocols' method lists are live views of this registry
(:class:`RowView`), so a new method appears in all of them. Rows that are not methods (the original
model, NatMU's ablation) get a :class:`Row` of their own.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import numbers
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..datasets import Dataset
from ..splits import Split
from ..train import Recipe, fit, to_input

UnlearnFn = Callable[..., nn.Module]
SearchSpace = Callable[[Any], dict]  # an Optuna trial -> the run's parameters (recipe fields and knobs)
NOT_KNOBS = {"seed", "callback", "progress"}  # keyword arguments of every method that are not its knobs


@dataclass(frozen=True)
class Row:
    """One row of the book's tables and one colour of its figures."""

    name: str  # the name in code, results files and the CLI
    display: str  # the name in tables and figures
    color: str  # a matplotlib colour, the same in every figure
    order: float = math.inf  # its place in every table and legend (the book's order): rows sort by it, then by
    # name, so a row joins between two others without renumbering them, or by default after all of them
    reference: bool = False  # Retrain and the original model: shown in tables, never ranked or tuned


@dataclass(frozen=True)
class Method(Row):
    """A registered unlearning method: a row with its function, search space and knob rule."""

    fn: UnlearnFn | None = None
    space: SearchSpace | None = None  # None: never tuned (Retrain)
    check: Callable[..., None] | None = None  # check(num_classes=..., **knobs) raises ValueError
    epochs: bool = True  # trains in epochs, calling callback(epoch, model) after each; False (SSD): called once,
    # as epoch 0, and a tuning trial has no epoch to be pruned after

    @property
    def defaults(self) -> dict:
        """The knobs and their defaults, read off the function's keyword-only arguments."""
        params = inspect.signature(self.fn).parameters.values()
        return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.name not in NOT_KNOBS}


ROWS: dict[str, Row] = {}  # every row, methods included
ORIGINS: dict[str, str] = {}  # row -> the module that registered it, named in a clash
METHODS: dict[str, UnlearnFn] = {}  # method -> its function (knobs checked before it runs)


class RowView(Mapping):
    """A live view of one field of the registered rows, in the book's order: ``METHOD_NAMES["ssd"]`` is
    ``"SSD"``, iterating gives the names in order. ``where`` keeps only some rows (e.g. the tuned ones)."""

    def __init__(self, field: str, where: Callable[[Row], bool] = lambda row: True):
        self.field, self.where = field, where

    def _rows(self) -> list[Row]:
        return sorted((r for r in ROWS.values() if self.where(r)), key=lambda r: (r.order, r.name))

    def __getitem__(self, name: str):
        row = ROWS.get(name)
        if row is None or not self.where(row):
            raise KeyError(name)
        return getattr(row, self.field)

    def __iter__(self) -> Iterator[str]:
        return iter([r.name for r in self._rows()])

    def __len__(self) -> int:
        return len(self._rows())

    def __repr__(self) -> str:
        return f"RowView({self.field}: {dict(self)})"


def origin(module: str) -> str:
    """A module as a clash names it: the package's by name, any other (a user's file) by its file."""
    if module.startswith("natmu_lite."):
        return module
    return getattr(sys.modules.get(module), "__file__", None) or module


def add_row(row: Row, module: str | None = None) -> Row:
    """Register a row; ``module``, the one registering it, defaults to the caller's. A name registered
    twice is refused, naming both modules, since the second would silently replace the first."""
    module = module or sys._getframe(1).f_globals["__name__"]
    if row.name in ROWS:
        raise ValueError(f"{origin(module)} registers {row.name!r}, which {origin(ORIGINS[row.name])} registers "
                         "already: rename one of them")
    ROWS[row.name], ORIGINS[row.name] = row, module
    return row


def register(name: str, *, display: str, color: str, order: float = math.inf, space: SearchSpace | None = None,
             check: Callable[..., None] | None = None, reference: bool = False, epochs: bool = True
             ) -> Callable[[UnlearnFn], UnlearnFn]:
    """Register a method (see the module's description); returns the function with its knobs checked
    (:func:`check_knobs`) before it does anything, however it is called."""
    def deco(fn: UnlearnFn) -> UnlearnFn:
        add_row(Method(name, display, color, order, reference, fn=fn, space=space, check=check, epochs=epochs),
                fn.__module__)

        @functools.wraps(fn)
        def checked(model: nn.Module, data: Dataset, split: Split, recipe: Recipe, **kwargs) -> nn.Module:
            check_knobs(name, {k: v for k, v in kwargs.items() if k not in NOT_KNOBS}, data.num_classes)
            return fn(model, data, split, recipe, **kwargs)

        METHODS[name] = checked
        return checked
    return deco


def unregister(name: str) -> None:
    """Remove a row (and its method): a file's, before it runs again, or a test's own."""
    ROWS.pop(name, None)
    METHODS.pop(name, None)
    ORIGINS.pop(name, None)


def get_method(name: str) -> UnlearnFn:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def spec(name: str) -> Method:
    get_method(name)
    return ROWS[name]


def knob_names(name: str) -> set[str]:
    """The knobs a method accepts: its keyword-only arguments."""
    return set(spec(name).defaults)


def refuse_unknown(method: str, names, valid, where: str = "") -> None:
    """Refuse the first of ``names`` that ``method`` does not take (``valid``: its knobs, and where a whole
    parameter dict is read, the recipe's fields too), in one message wherever parameters are read;
    ``where`` prefixes it (a file's name)."""
    unknown = sorted(set(names) - set(valid))
    if unknown:
        raise ValueError(f"{where}method {method} has no parameter {unknown[0]!r}; "
                         f"valid: {', '.join(sorted(valid)) or '-'}")


def check_knobs(name: str, knobs: dict, num_classes: int | None = None) -> None:
    """Refuse unknown knob names and bad values before anything trains, instead of a TypeError or a
    silently meaningless run after the original model was trained: each value must be of its default's
    kind (a bool for a bool, a number for a number, text for text), and the method's own ``check``
    gets every knob, defaults included. ``num_classes`` enables the checks that depend on the data."""
    method = spec(name)
    defaults = method.defaults
    refuse_unknown(name, knobs, defaults)
    for knob, value in knobs.items():
        kind = next((k for k in (bool, numbers.Integral, numbers.Real, str) if isinstance(defaults[knob], k)), None)
        if kind is not None and (not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
            what = {bool: "True or False", numbers.Integral: "an integer", numbers.Real: "a number", str: "text"}
            raise ValueError(f"{method.display} {knob} must be {what[kind]}, got {value!r}")
    if method.check is not None:
        method.check(num_classes=num_classes, **{**defaults, **knobs})


def check_choice(method: str, name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{method} {name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def training_space(trial, lr: tuple[float, float] = (1e-5, 1e-2)) -> dict:
    """The recipe fields every trained method searches: learning rate, weight decay and epochs."""
    return {"lr": trial.suggest_float("lr", *lr, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 0.0, 1e-3),
            "epochs": trial.suggest_int("epochs", 2, 6)}  # the settings use 5-6


add_row(Row("original", "Original", "silver", 1, reference=True))  # the model before unlearning: the floor


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
