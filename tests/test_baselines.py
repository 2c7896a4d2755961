"""Each baseline does what its paper says, checked on a tiny model and a small real dataset."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import natmu_lite as nl
from natmu_lite.bench import DEFAULT, run_method
from natmu_lite.methods.amnesiac import amnesiac_labels
from natmu_lite.methods.badteacher import incompetent_teacher
from natmu_lite.methods.salun import saliency_mask
from natmu_lite.methods.ssd import fisher_importance

from .conftest import synthetic


@pytest.fixture(scope="module")
def split(fmnist):
    return nl.make_split(fmnist, "random", ratio=0.05, seed=0)


def forget_ce(model, data, split):
    logits = nl.predict(model, data.train_x[split.forget])
    return F.cross_entropy(logits, data.train_y[split.forget]).item()


def test_ga_raises_the_forget_loss(fmnist, fmnist_original, split):
    model = nl.METHODS["ga"](fmnist_original, fmnist, split, nl.Recipe("adamw", lr=1e-3, epochs=5), progress=False)
    assert forget_ce(model, fmnist, split) > forget_ce(fmnist_original, fmnist, split) + 0.5


def test_ga_divergence_raises_instead_of_returning_nan():
    data = synthetic(n_per_class=4)
    original = nl.model_for("small_cnn", data)
    s = nl.make_split(data, "random", ratio=0.5)
    with pytest.raises(FloatingPointError):
        nl.METHODS["ga"](original, data, s, nl.Recipe("sgd", lr=1e30, epochs=3, schedule="constant"), progress=False)


def test_amnesiac_labels_are_never_true():
    data = synthetic()
    s = nl.make_split(data, "random", ratio=0.5)
    for rule in ("uniform", "retain"):
        y = amnesiac_labels(data, s, rule, seed=0)
        assert (y != data.train_y[s.forget]).all()
        assert len(y.unique()) == 10
    with pytest.raises(ValueError, match="valid: uniform, retain"):
        amnesiac_labels(data, s, "whatever", 0)


def test_amnesiac_lowers_forget_accuracy(fmnist, fmnist_original, split):
    before = nl.evaluate(fmnist_original, fmnist, split)
    model = nl.METHODS["amnesiac"](fmnist_original, fmnist, split, nl.Recipe("adamw", lr=3e-3, epochs=8),
                                   progress=False)
    after = nl.evaluate(model, fmnist, split)
    assert after["FA"] < before["FA"] - 20
    assert after["RA"] > before["RA"] - 6


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
    assert nl.evaluate(model, fmnist, split)["FA"] < 100


def test_badteacher_moves_forget_predictions_toward_the_bad_teacher(fmnist, fmnist_original, split):
    bad = incompetent_teacher(fmnist_original, seed=0)
    forget_x = fmnist.train_x[split.forget]
    target = nl.predict(bad, forget_x).softmax(1)

    def kl_to_bad(model):
        return F.kl_div(nl.predict(model, forget_x).log_softmax(1), target, reduction="batchmean").item()

    model = nl.METHODS["badteacher"](fmnist_original, fmnist, split, nl.Recipe("adamw", lr=1e-3, epochs=2),
                                     progress=False)
    assert kl_to_bad(model) < 0.5 * kl_to_bad(fmnist_original)
    assert nl.evaluate(model, fmnist, split)["RA"] > 80


def test_bad_knobs_raise():
    data = synthetic(n_per_class=4)
    original = nl.model_for("small_cnn", data)
    s = nl.make_split(data, "random", ratio=0.5)
    with pytest.raises(ValueError, match="fraction"):
        nl.METHODS["salun"](original, data, s, nl.Recipe(epochs=1), fraction=0.0, progress=False)
    with pytest.raises(ValueError, match="valid: batchmean, mean"):
        nl.METHODS["badteacher"](original, data, s, nl.Recipe(epochs=1), reduction="sum", progress=False)
    with pytest.raises(ValueError, match="retain_fraction"):
        nl.METHODS["badteacher"](original, data, s, nl.Recipe(epochs=1), retain_fraction=2, progress=False)


@pytest.mark.parametrize("method", sorted(nl.METHODS))
def test_every_method_runs_on_the_default_setting(method, fmnist, fmnist_original):
    setting = replace(DEFAULT, train=DEFAULT.train.with_(epochs=1), unlearn=DEFAULT.unlearn.with_(epochs=1))
    s = nl.make_split(fmnist, "random", ratio=0.05, seed=1)  # 100 samples, as 1% of the default
    run = run_method(method, fmnist_original, fmnist, s, setting, seed=1, progress=False)
    assert set(run.metrics) == {"RA", "FA", "MIA", "RetainAcc"}
    assert all(v == v for v in run.metrics.values())  # no NaN
    assert run.metrics["RA"] > 30
