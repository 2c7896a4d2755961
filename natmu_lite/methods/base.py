"""The method interface and registry.

Every method is a function ``fn(model, data, split, recipe, *, seed=0, callback=None,
progress=True, **knobs) -> nn.Module``: it takes the original model (left untouched), the dataset,
the split and a :class:`~natmu_lite.train.Recipe`, and returns the unlearned model. ``knobs`` are the
method's own hyperparameters (NatMU's ``delta``, SalUn's saliency fraction, ...), so a benchmark
preset is just ``(recipe, knobs)`` per method.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from torch import nn

UnlearnFn = Callable[..., nn.Module]
METHODS: dict[str, UnlearnFn] = {}


def register(name: str) -> Callable[[UnlearnFn], UnlearnFn]:
    def deco(fn: UnlearnFn) -> UnlearnFn:
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        METHODS[name] = fn
        return fn
    return deco


def get_method(name: str) -> UnlearnFn:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def working_copy(model: nn.Module) -> nn.Module:
    """A trainable copy of the original (methods never modify the model they are given)."""
    return copy.deepcopy(model).train()
