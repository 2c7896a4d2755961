"""ℓ1-sparse (methods/l1sparse.py): Finetune under a decaying ℓ1 penalty."""

import pytest
import torch

import natmu_lite as nl
from natmu_lite.methods.l1sparse import decaying_l1, l1_norm

from .conftest import RECIPE


def test_l1_penalty_is_the_whole_norm_with_a_linearly_decaying_weight(tiny_request):
    """Every trainable parameter in one ℓ1 norm (the official ``torch.linalg.norm(cat(params), 1)``),
    weighted by gamma at the first step, by gamma / 2 half-way, and by gamma / total at the last step.
    Over 10 epochs of 40 steps its mean weight is 0.501 gamma, the official per-epoch decay's 0.550 gamma
    (the docstring's "about 9% less")."""
    _, _, model = tiny_request
    norm = torch.cat([p.detach().flatten() for p in model.parameters()]).abs().sum()
    torch.testing.assert_close(l1_norm(model).detach(), norm)
    term = decaying_l1(1e-3)
    for step, factor in ((0, 1.0), (50, 0.5), (99, 0.01)):
        torch.testing.assert_close(term(model, step, 100).detach(), 1e-3 * factor * norm)
    epochs, steps = 10, 40
    total = epochs * steps
    per_step = sum((term(model, s, total) / (1e-3 * norm)).item() for s in range(total)) / total
    per_epoch = sum(1 - (s // steps) / epochs for s in range(total)) / total  # official: 1 - epoch / epochs
    assert (round(per_step, 3), round(per_epoch, 3)) == (0.501, 0.55) and 0.08 < 1 - per_step / per_epoch < 0.10


@pytest.mark.slow
def test_l1sparse_shrinks_the_weights_but_keeps_the_accuracy(fmnist, fmnist_original, split, finetuned):
    """The same run as Finetune under the penalty: the weights' ℓ1 norm ends well below Finetune's
    (measured 0.6x at gamma 5e-4), test accuracy within 2 points of the original's."""
    model = nl.METHODS["l1sparse"](fmnist_original, fmnist, split, RECIPE, gamma=5e-4, seed=0, progress=False)
    assert l1_norm(model) < 0.8 * l1_norm(finetuned)
    assert nl.evaluate(model, fmnist, split)["RA"] > nl.evaluate(fmnist_original, fmnist, split)["RA"] - 2
