"""Amnesiac (methods/amnesiac.py): random wrong labels for the forget set."""

import math

import pytest
import torch

import natmu_lite as nl
import natmu_lite.methods.amnesiac as amnesiac_module
from natmu_lite.datasets import Dataset
from natmu_lite.methods.amnesiac import amnesiac_labels
from natmu_lite.splits import Split

from .conftest import synthetic


def test_amnesiac_labels_are_never_true():
    data = synthetic()
    s = nl.make_split(data, "random", ratio=0.5)
    for rule in ("uniform", "retain"):
        y = amnesiac_labels(data, s, rule, seed=0)
        assert (y != data.train_y[s.forget]).all()
        assert len(y.unique()) == 10
    with pytest.raises(ValueError, match="Amnesiac labels must be one of uniform, retain"):
        amnesiac_labels(data, s, "whatever", 0)


def test_amnesiac_retain_rule_draws_with_the_retain_class_frequencies(monkeypatch):
    """``labels="retain"`` (the class-wise official code: the label of a random remaining sample) draws a
    wrong class c with probability |D_r of class c| / |D_r without the true class|; ``"uniform"`` with
    1 / (K - 1). Checked per true class, each share within 5 binomial sd; classes with no remaining
    image are never drawn by the retain rule."""
    k, y = 5, torch.arange(5).repeat_interleave(2000)
    data = Dataset("labels", torch.zeros(len(y), 1, 4, 4, dtype=torch.uint8), y, torch.zeros(0, 1, 4, 4,
                   dtype=torch.uint8), torch.zeros(0, dtype=torch.long), [f"c{i}" for i in range(k)], (0.5,), (0.5,))

    def of(c, a, b):
        return (y == c).nonzero().flatten()[a:b]

    forget = torch.cat([of(0, 0, 2000), of(3, 0, 200)])
    retain = torch.cat([of(1, 0, 20), of(2, 0, 180), of(3, 200, 2000)])  # classes 0 and 4: none remaining
    split = Split("random", "custom", 0, retain, forget, torch.arange(0), torch.arange(0))
    supply = {1: 20, 2: 180, 3: 1800}
    for rule in ("retain", "uniform"):
        labels = amnesiac_labels(data, split, rule, seed=0)
        for true_class, rows in ((0, slice(0, 2000)), (3, slice(2000, 2200))):
            others = [c for c in range(k) if c != true_class]
            weight = {c: supply.get(c, 0) if rule == "retain" else 1 for c in others}
            for c in range(k):
                p = weight.get(c, 0) / sum(weight.values())
                share, n = (labels[rows] == c).double().mean().item(), rows.stop - rows.start
                assert abs(share - p) <= 5 * math.sqrt(p * (1 - p) / n), (rule, true_class, c, share, p)
    seen = {}
    monkeypatch.setattr(amnesiac_module, "fit_with_retain", lambda student, data, split, recipe, images, targets, **kw:
                        seen.update(x=images, y=targets, kw=kw) or student)
    model = nl.model_for("small_cnn", data)
    nl.METHODS["amnesiac"](model, data, split, nl.Recipe(epochs=1), labels="retain", seed=3, progress=False)
    assert torch.equal(seen["y"], amnesiac_labels(data, split, "retain", seed=3))  # the method trains on them
    assert torch.equal(seen["x"], data.train_x[forget]) and seen["kw"]["augment_retain"] is False


@pytest.mark.slow
def test_amnesiac_lowers_forget_accuracy(fmnist, fmnist_original, split):
    before = nl.evaluate(fmnist_original, fmnist, split)
    model = nl.METHODS["amnesiac"](fmnist_original, fmnist, split, nl.Recipe("adamw", lr=3e-3, epochs=8),
                                   progress=False)
    after = nl.evaluate(model, fmnist, split)
    assert after["FA"] < before["FA"] - 20
    assert after["RA"] > before["RA"] - 6
