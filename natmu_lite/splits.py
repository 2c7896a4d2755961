"""Unlearning requests as index sets: :func:`make_split` turns one request (a kind of forgetting with
its forget class or ratio, and a split seed) into the :class:`Split` that every method, metric and
cache key reads. The words (kind, request, target, split) are those of the glossary's table.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass

import torch
from torch import Tensor

from .datasets import Dataset, per_class_draw

KINDS = ("full-class", "sub-class", "random")  # the kinds of forgetting a request can be


@dataclass(frozen=True)
class Split:
    """Index sets of one unlearning request. ``retain``/``forget`` index the training set;
    ``test`` is the set RA is measured on (the test set without the forget class in class
    forgetting) and ``forget_test`` the test images of the forget class (empty for random)."""

    kind: str  # one of KINDS
    target: str  # what the request forgets: its forget class, or in random forgetting its share ("10%")
    seed: int
    retain: Tensor
    forget: Tensor
    test: Tensor
    forget_test: Tensor

    def __repr__(self) -> str:
        return (f"Split({self.kind}, {self.target!r}, retain={len(self.retain)}, "
                f"forget={len(self.forget)}, test={len(self.test)}, forget_test={len(self.forget_test)})")


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def class_index(names: list[str], name: str) -> int:
    """Look a class up by name, ignoring case and punctuation ("ankle boot" finds "Ankle boot")."""
    slugs = [_slug(n) for n in names]
    if _slug(name) not in slugs:
        raise ValueError(f"unknown class {name!r}; valid: {', '.join(names)}")
    return slugs.index(_slug(name))


def ratio_target(ratio: float) -> str:
    """The target of a random request: the share it forgets, as tables and results rows name it ("10%")."""
    return f"{ratio:.0%}"


def _random_forget(labels: Tensor, ratio: float, g: torch.Generator) -> Tensor:
    """Class-balanced random subset, grouped by class in ascending order and shuffled within each
    class: the layout of the official index files (NatMU's label cap depends on this order)."""
    return per_class_draw(labels, lambda n: round(ratio * n), g)


def make_split(data: Dataset, kind: str, target: str | None = None, ratio: float | None = None,
               seed: int = 0) -> Split:
    """Build the index sets of one unlearning request.

    - ``full-class``: forget every training image of class ``target``, the forget class (a name in
      ``data.classes``);
    - ``sub-class``: forget every training image of fine class ``target`` (the forget class) while the model is trained
      on superclass labels (needs a dataset with fine labels, e.g. ``cifar20``);
    - ``random``: forget a class-balanced random ``ratio`` of the training set, drawn with ``seed``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind of request {kind!r}; valid: {', '.join(KINDS)}")
    if target is not None and not isinstance(target, str):
        raise ValueError(f"target must be a class name (a string, e.g. {data.classes[0]!r}), got {target!r}")
    all_test = torch.arange(len(data.test_y))
    if kind == "random":
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not 0 < ratio < 1:
            raise ValueError(f"random forgetting needs a number ratio in (0, 1), got {ratio!r}")
        forget = _random_forget(data.train_y, ratio, torch.Generator().manual_seed(seed))
        if len(forget) == 0:
            raise ValueError(f"ratio {ratio} forgets no sample of a {len(data.train_y)}-image training set; "
                             "use a larger ratio")
        test, forget_test, target = all_test, all_test[:0], ratio_target(ratio)
    else:
        if target is None:
            raise ValueError(f"{kind} forgetting needs a target class name")
        if kind == "full-class":
            c = class_index(data.classes, target)
            in_train, in_test, target = data.train_y == c, data.test_y == c, data.classes[c]
        else:
            if data.fine_classes is None:
                raise ValueError(f"sub-class forgetting needs a dataset with fine labels "
                                 f"(fashion-mnist-super, cifar20); {data.name} has none")
            c = class_index(data.fine_classes, target)
            in_train, in_test, target = data.train_fine == c, data.test_fine == c, data.fine_classes[c]
        forget = in_train.nonzero().flatten()
        if len(forget) == 0:
            raise ValueError(f"class {target!r} has no training images in this dataset")
        test, forget_test = (~in_test).nonzero().flatten(), in_test.nonzero().flatten()
    keep = torch.ones(len(data.train_y), dtype=torch.bool)
    keep[forget] = False
    return Split(kind, target, seed, keep.nonzero().flatten(), forget, test, forget_test)
