"""Each baseline does what its paper says, checked on a tiny model and a small real dataset."""

import copy
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import natmu_lite as nl
import natmu_lite.methods.amnesiac as amnesiac_module
from natmu_lite.classroom.references import ref_accuracy
from natmu_lite.data import Dataset, Split
from natmu_lite.methods.amnesiac import amnesiac_labels
from natmu_lite.methods.badteacher import incompetent_teacher
from natmu_lite.methods.salun import saliency_mask
from natmu_lite.methods.ssd import fisher_importance
from natmu_lite.runs import run_method
from natmu_lite.settings import DEFAULT

from .conftest import synthetic
from .test_references import ref_logits


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
def test_every_method_runs_on_the_default_setting(method, fmnist, fmnist_original, monkeypatch):
    """Through ``run_method``: the method gets the setting's recipe and knobs, returns a model of its own
    (the original untouched), whose reported RA and FA are its own (against a plain forward pass), and
    it never teaches the forget set: FA does not rise above the original's (which memorised it)."""
    setting = replace(DEFAULT, train=DEFAULT.train.with_(epochs=1), unlearn=DEFAULT.unlearn.with_(epochs=1))
    s = nl.make_split(fmnist, "random", ratio=0.05, seed=1)  # 100 samples, as 1% of the default
    got, real = {}, nl.METHODS[method]
    monkeypatch.setitem(nl.METHODS, method, lambda *a, **k: got.update(recipe=a[3], kwargs=k) or real(*a, **k))
    before = {k: v.clone() for k, v in fmnist_original.state_dict().items()}
    run = run_method(method, fmnist_original, fmnist, s, setting, seed=1, progress=False)
    assert got["recipe"] == setting.recipe_for(method)
    assert {k: v for k, v in got["kwargs"].items() if k not in ("seed", "callback", "progress")} \
        == setting.knobs.get(method, {}) and got["kwargs"]["seed"] == 1
    assert all(torch.equal(v, fmnist_original.state_dict()[k]) for k, v in before.items())
    assert any(not torch.equal(v, before[k]) for k, v in run.model.state_dict().items())
    ra, ra_slack = ref_accuracy(ref_logits(run.model, fmnist.test_x), fmnist.test_y)
    fa, fa_slack = ref_accuracy(ref_logits(run.model, fmnist.train_x[s.forget]), fmnist.train_y[s.forget])
    assert abs(run.metrics["RA"] - ra) <= ra_slack + 1e-4 and abs(run.metrics["FA"] - fa) <= fa_slack + 1e-4
    original_fa, _ = ref_accuracy(ref_logits(fmnist_original, fmnist.train_x[s.forget]), fmnist.train_y[s.forget])
    assert fa <= original_fa + fa_slack
