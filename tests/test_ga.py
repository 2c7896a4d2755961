"""GA (methods/ga.py): gradient ascent on the forget set."""

import pytest

import natmu_lite as nl

from .conftest import forget_ce, synthetic


def test_ga_raises_the_forget_loss(fmnist, fmnist_original, split):
    model = nl.METHODS["ga"](fmnist_original, fmnist, split, nl.Recipe("adamw", lr=1e-3, epochs=5), progress=False)
    assert forget_ce(model, fmnist, split) > forget_ce(fmnist_original, fmnist, split) + 0.5


def test_ga_divergence_raises_instead_of_returning_nan():
    data = synthetic(n_per_class=4)
    original = nl.model_for("small_cnn", data)
    s = nl.make_split(data, "random", ratio=0.5)
    with pytest.raises(FloatingPointError):
        nl.METHODS["ga"](original, data, s, nl.Recipe("sgd", lr=1e30, epochs=3, schedule="constant"), progress=False)
