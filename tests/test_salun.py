"""SalUn (methods/salun.py): Amnesiac on the most forget-salient weights only."""

import pytest
import torch
import torch.nn.functional as F

import natmu_lite as nl
from natmu_lite.methods.salun import saliency_mask

from .conftest import synthetic


@pytest.mark.slow
def test_salun_leaves_every_masked_weight_bit_identical(fmnist, fmnist_original, split):
    recipe = nl.Recipe("adamw", lr=3e-3, weight_decay=0.1, epochs=2)  # weight decay would move frozen weights
    masks = saliency_mask(fmnist_original, fmnist.train_x[split.forget], fmnist.train_y[split.forget], 0.2)
    model = nl.METHODS["salun"](fmnist_original, fmnist, split, recipe, fraction=0.2, progress=False)
    before, after = dict(fmnist_original.named_parameters()), dict(model.named_parameters())
    trainable = sum(m.sum().item() for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    assert trainable == int(total * 0.2)
    moved = 0
    for name, m in masks.items():
        assert torch.equal(after[name][~m], before[name][~m]), name
        moved += (after[name][m] != before[name][m]).sum().item()
    assert moved > 0.5 * trainable


def test_saliency_mask_picks_the_largest_gradients():
    data = synthetic(n_per_class=4)
    model = nl.model_for("small_cnn", data)
    masks = saliency_mask(model, data.train_x, data.train_y, 0.1)
    model.zero_grad()
    (-F.cross_entropy(model.eval()(data.train_x.float() / 255), data.train_y)).backward()
    g = model.fc.weight.grad.abs()  # one batch: the sum of batch gradients is this gradient
    smallest_kept = g[masks["fc.weight"]].min() if masks["fc.weight"].any() else float("inf")
    largest_dropped = g[~masks["fc.weight"]].max()
    assert masks["fc.weight"].any()
    all_scores = torch.cat([p.grad.abs().flatten() for p in model.parameters()])
    cut = all_scores.sort(descending=True).values[int(len(all_scores) * 0.1) - 1]
    assert smallest_kept >= cut * (1 - 1e-5) and largest_dropped <= cut * (1 + 1e-5)
