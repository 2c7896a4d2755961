"""SSD (methods/ssd.py): dampening the weights far more important for the forget set."""

import copy

import pytest
import torch
import torch.nn.functional as F

import natmu_lite as nl
from natmu_lite.methods.ssd import fisher_importance

from .conftest import synthetic
from .test_references import ref_logits


@pytest.mark.slow
def test_ssd_dampens_exactly_the_selected_parameters(fmnist, fmnist_original, split):
    alpha, lam = 10.0, 1.0
    full = fisher_importance(fmnist_original, fmnist.train_x, fmnist.train_y, 128)
    forget = fisher_importance(fmnist_original, fmnist.train_x[split.forget], fmnist.train_y[split.forget], 128)
    model = nl.METHODS["ssd"](fmnist_original, fmnist, split, nl.Recipe(batch_size=128), alpha=alpha, lam=lam,
                              progress=False)
    before, after = dict(fmnist_original.named_parameters()), dict(model.named_parameters())
    n_selected = 0
    for name in full:
        sel = forget[name] > alpha * full[name]
        beta = (lam * full[name] / forget[name]).clamp(max=1)
        assert torch.equal(after[name][~sel], before[name][~sel]), name
        torch.testing.assert_close(after[name][sel], before[name][sel] * beta[sel], rtol=1e-6, atol=0)
        n_selected += sel.sum().item()
    assert n_selected > 0

    def ce(m, idx):
        return F.cross_entropy(ref_logits(m, fmnist.train_x[idx]), fmnist.train_y[idx]).item()

    # what the dampening is for: the forget loss rises by a larger factor than the retain loss
    # (measured: x1.54 vs x1.05 here)
    assert ce(model, split.forget) / ce(fmnist_original, split.forget) > \
        ce(model, split.retain) / ce(fmnist_original, split.retain)


def test_fisher_importance_is_the_mean_squared_batch_gradient():
    """Against a per-sample loop with plain autograd in float64: the gradient of a batch-mean CE is the
    mean of the samples' gradients; SSD squares it per batch (uneven last batch included) and averages
    over batches, with the model in eval mode (BN running statistics, so samples do not interact)."""
    data = synthetic(n_per_class=1)  # 10 images: batches of 4, 4 and 2
    model = nl.train_original(data, "small_cnn", nl.Recipe(epochs=2), seed=0, progress=False).train()
    got = fisher_importance(model, data.train_x, data.train_y, 4)
    assert model.training  # the mode is given back
    ref = copy.deepcopy(model).double().eval()
    names, params = zip(*ref.named_parameters())
    grads = [torch.autograd.grad(F.cross_entropy(ref(x[None].double() / 255), y[None]), params)
             for x, y in zip(data.train_x, data.train_y)]
    assert list(got) == list(names)
    for i, name in enumerate(names):
        batch_means = [torch.stack([grads[j][i] for j in b]).mean(0) for b in (range(0, 4), range(4, 8), range(8, 10))]
        want = torch.stack([g ** 2 for g in batch_means]).mean(0)
        assert want.abs().max() > 0, name
        torch.testing.assert_close(got[name].double(), want, rtol=1e-3, atol=1e-5 * want.abs().max().item())
