"""NatMU's steps against their definitions, and the method against its purpose."""

from collections import Counter

import numpy as np
import pytest
import torch

import natmu_lite as nl
import natmu_lite.methods.natmu as natmu_module
from natmu_lite.methods.natmu import draw_retain, label_cap

from .conftest import synthetic
from .test_references import (
    assert_rank_j_labels,
    assert_truncates,
    blend_values,
    official_blend,
    ref_logits,
    ref_masks,
)


def masks_by_the_formula(h: int, w: int, delta: float) -> torch.Tensor:
    """The masks' definition (natmu_lite.methods.natmu.natmu_masks), written out pixel by pixel."""
    out = torch.zeros(4, h, w)
    for r in range(h):
        for c in range(w):
            m1 = min(r, h - 1 - r) / (h / 2)
            m2 = min(c, w - 1 - c) / (w / 2)
            vals = [m1, m2, (h / 2 - 1) / (h / 2) - m1, (w / 2 - 1) / (w / 2) - m2]
            for j, v in enumerate(vals):
                out[j, r, c] = min(max(v + delta, 0.0), 1.0)
    return out


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("delta", [-0.19, -0.053, 0.0, 0.045, 0.3, 1.0])
def test_masks_equal_the_formula(size, delta):
    got = nl.natmu_masks(size, size, delta)
    assert got.shape == (4, size, size) and got.dtype == torch.float32
    torch.testing.assert_close(got, masks_by_the_formula(size, size, delta), rtol=0, atol=1e-6)


def test_masks_on_a_rectangle_and_their_known_means():
    torch.testing.assert_close(nl.natmu_masks(8, 12, 0.1), masks_by_the_formula(8, 12, 0.1), rtol=0, atol=1e-6)
    m = nl.natmu_masks(32, 32)
    torch.testing.assert_close(m.mean((1, 2)), torch.full((4,), 0.46875))  # (b-1)/(2b) for b = 16
    torch.testing.assert_close(m[0] + m[2], torch.full((32, 32), 15 / 16))
    assert torch.equal(nl.natmu_masks(32, 32, 1.0), torch.ones(4, 32, 32))  # the degenerate official default


def test_reassigned_labels_are_top_n_without_the_true_class():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(200, 10, generator=g).softmax(1)
    true = torch.randint(0, 10, (200,), generator=g)
    labels = nl.reassign_labels(probs, true, n=4)
    assert labels.shape == (200, 4)
    assert (labels != true[:, None]).all()
    assert all(len(set(row)) == 4 for row in labels.tolist())
    p = probs.clone()
    p[torch.arange(200), true] = -1
    expected = p.topk(4, dim=1).indices  # ranked: rank j pairs with mask j
    assert torch.equal(labels, expected)


def test_cap_moves_overflow_to_the_next_ranked_class():
    probs = torch.tensor([[0.1, 0.5, 0.3, 0.1]] * 5)  # everybody's top choice (class 1) is the same
    true = torch.zeros(5, dtype=torch.long)
    caps = torch.tensor([9, 2, 9, 9])
    labels = nl.reassign_labels(probs, true, n=2, caps=caps)
    assert torch.bincount(labels.flatten(), minlength=4)[1] == 2
    assert labels[:2].tolist() == [[1, 2], [1, 2]]  # the first two samples keep class 1 ...
    assert labels[2:].tolist() == [[2, 3]] * 3  # ... the rest fall through in rank order
    assert (labels != 0).all()
    with pytest.raises(ValueError, match="fewer than 3 classes"):
        nl.reassign_labels(probs, true, n=3, caps=torch.tensor([9, 9, 1, 9]))
    with pytest.raises(ValueError, match="between 1 and K-1"):
        nl.reassign_labels(probs, true, n=4)


def test_official_cap_value():
    assert label_cap(45_000, 10) == 4410 and label_cap(45_000, 100) == 441  # the official code's worked constants


def test_drawn_retain_samples_are_distinct_and_of_the_asked_class():
    retain_labels = torch.arange(5).repeat(6)
    requested = torch.tensor([0, 1, 1, 4, 0, 0, 2, 1])
    pos = draw_retain(requested, retain_labels, torch.Generator().manual_seed(0))
    assert torch.equal(retain_labels[pos], requested)
    assert len(pos.unique()) == len(pos)
    with pytest.raises(ValueError, match="requested 7 times"):
        draw_retain(torch.zeros(7, dtype=torch.long), retain_labels, torch.Generator())


def test_blend_is_the_official_truncated_blend():
    """Against NumPy written from the official code (float32, clip, truncating uint8 cast), with masks
    that do not come from the package, on both mask shapes, and on pixels where truncating, rounding
    and swapping the two images all give different answers."""
    g = np.random.default_rng(0)
    xf = g.integers(0, 256, (4, 3, 28, 28), dtype=np.uint8)
    xr = g.integers(0, 256, (4, 3, 28, 28), dtype=np.uint8)
    m = ref_masks(28, 28, -0.1).astype(np.float32)
    want = official_blend(xf, xr, m)
    got = nl.blend(torch.from_numpy(xf), torch.from_numpy(xr), torch.from_numpy(m))
    assert got.dtype == torch.uint8 and np.array_equal(got.numpy(), want)
    got4 = nl.blend(torch.from_numpy(xf), torch.from_numpy(xr), torch.from_numpy(m)[:, None])
    assert np.array_equal(got4.numpy(), want)
    assert (np.floor(blend_values(xf, xr, m.astype(np.float64)) + 0.5) != want).mean() > 0.3  # rounding differs
    # by hand: 201 * 0.375 + 10 * 0.625 = 81.625 -> 81 (rounding: 82; m on the remaining image: 129.375)
    # and 200 * 0.75 + 103 * 0.25 = 175.75 -> 175 (rounding: 176)
    xf1 = torch.tensor([201, 200], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 2, 2)
    xr1 = torch.tensor([10, 103], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 2, 2)
    one = nl.blend(xf1, xr1, torch.tensor([0.375, 0.75]).view(2, 1, 1).expand(2, 2, 2))
    assert one[0].unique().tolist() == [81] and one[1].unique().tolist() == [175]


def check_unlearning_set(u, model, data, split, *, n: int, delta: float, ranked: bool = True) -> None:
    """Everything an unlearning set must be, against references: forget sample i gives instances
    i*n .. i*n+n-1; instance j of a sample uses mask j (mod 4) of the official code and, where no cap moved it
    (``ranked``), the original model's rank-j class; each is the truncated blend of its forget image
    and a distinct remaining image of its label."""
    nf, (_, h, w) = len(split.forget), data.shape
    masks = ref_masks(h, w, delta)
    assert len(u.labels) == len(u.images) == n * nf and u.images.dtype == torch.uint8
    np.testing.assert_allclose(u.masks.numpy(), masks, rtol=0, atol=1e-6)  # the set's masks are the reference's
    assert torch.equal(u.forget_pos, torch.arange(nf).repeat_interleave(n))
    rank = np.tile(np.arange(n), nf)
    assert torch.equal(data.train_y[u.retain_index], u.labels)  # labelled with the remaining image's class
    assert len(u.retain_index.unique()) == len(u.retain_index)
    assert set(u.retain_index.tolist()) <= set(split.retain.tolist())
    xf = data.train_x[split.forget].numpy()[np.repeat(np.arange(nf), n)]
    xr = data.train_x[u.retain_index].numpy()
    assert_truncates(u.images.numpy(), xf, xr, masks[rank % 4])  # mask j <-> instance j
    assert_truncates(u.forget_parts(data, split).numpy(), xf, np.zeros_like(xf), masks[rank % 4])
    if ranked:
        assert_rank_j_labels(u.labels.view(nf, n), ref_logits(model, data.train_x[split.forget]),
                             data.train_y[split.forget])


def test_unlearning_set_pairs_rank_j_with_mask_j(fmnist, fmnist_original):
    split = nl.make_split(fmnist, "random", ratio=0.02, seed=0)  # 40 x 4 labels, far below the cap (192)
    u = nl.build_unlearning_set(fmnist_original, fmnist, split, delta=-0.0537, seed=0)
    check_unlearning_set(u, fmnist_original, fmnist, split, n=4, delta=-0.0537)
    again = nl.build_unlearning_set(fmnist_original, fmnist, split, delta=-0.0537, seed=0)
    assert torch.equal(again.images, u.images)  # deterministic for a seed ...
    other = nl.build_unlearning_set(fmnist_original, fmnist, split, delta=-0.0537, seed=1)
    assert torch.equal(other.labels, u.labels)  # ... whose seed draws the remaining images, not the labels
    assert not torch.equal(other.retain_index, u.retain_index)
    for i in (0, 17, len(split.forget) - 1):  # the instances of one forget sample, as the book lists them
        assert u.of(i).tolist() == [p for p in range(len(u.labels)) if u.forget_pos[p] == i]
        assert u.mask_id[u.of(i)].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("k, n, used", [(10, 1, [0]), (10, 2, [0, 1]), (10, 3, [0, 1, 2]), (4, None, [0, 1, 2]),
                                        (10, 6, [0, 1, 2, 3, 0, 1])])
def test_masks_used_with_n_labels(k, n, used):
    """With n < 4 labels, rank j still pairs with mask j, so only the first n masks are used (K = 4 allows
    three labels: m1..m3, never m4); above 4 the masks repeat in order."""
    data = synthetic(k=k, n_per_class=8)
    model = nl.model_for("small_cnn", data, seed=3)
    split = nl.make_split(data, "full-class", target="c0")
    u = nl.build_unlearning_set(model, data, split, n=n, delta=0.1037)
    nf = len(split.forget)
    assert u.mask_id.view(nf, len(used)).tolist() == [used] * nf
    if len(used) <= 4:
        check_unlearning_set(u, model, data, split, n=len(used), delta=0.1037)


class Constant(torch.nn.Module):
    """A 'model' that scores the classes alike for every image (class 9 first, then 8, ...): every
    forget sample asks for the same classes, so the label cap binds."""

    def __init__(self, k: int):
        super().__init__()
        self.register_buffer("logits", torch.arange(k, dtype=torch.float32))
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.logits.expand(len(x), -1) + 0 * self.dummy


def capped_labels(true: list[int], k: int, n: int, caps: list[int]) -> list[list[int]]:
    """The fixed cap (module docstring): samples served in order, each taking its highest-ranked classes
    (here 9, 8, ... without its own) that have not reached their cap."""
    counts, out = [0] * k, []
    for t in true:
        row = [c for c in range(k - 1, -1, -1) if c != t and counts[c] < caps[c]][:n]
        for c in row:
            counts[c] += 1
        out.append(row)
    return out


def test_label_cap_binds_when_classes_are_overbooked(monkeypatch):
    data = synthetic(k=10, n_per_class=20)
    model = Constant(10)
    rnd = nl.make_split(data, "random", ratio=0.1, seed=0)  # 20 forget, 180 remaining, 18 of each class
    cap = int(0.98 * 180 / 10)
    assert cap == 17  # classes 9, 8, 7 and 6 are each asked for by 18 forget samples: one too many
    true = data.train_y[rnd.forget]
    u = nl.build_unlearning_set(model, data, rnd, delta=0.0371, seed=0)  # default: capped in random forgetting
    labels = u.labels.view(-1, 4)
    assert labels.tolist() == capped_labels(true.tolist(), 10, 4, [cap] * 10)
    counts = torch.bincount(u.labels, minlength=10)
    assert counts.max() == cap and counts[9] == cap
    uncapped_top = [[c for c in range(9, -1, -1) if c != t][:4] for t in true.tolist()]
    assert any(set(row) != set(top) for row, top in zip(labels.tolist(), uncapped_top))  # someone fell through
    check_unlearning_set(u, model, data, rnd, n=4, delta=0.0371, ranked=False)
    off = nl.build_unlearning_set(model, data, rnd, cap=False, seed=0)
    assert off.labels.view(-1, 4).tolist() == uncapped_top and torch.bincount(off.labels)[9] == 18
    # class scenarios: no cap by default (as official), cap=True imposes it
    cls = nl.make_split(data, "full-class", target="c0")  # 20 forget, all asking for 9, 8, 7, 6; cap 17
    assert nl.build_unlearning_set(model, data, cls).labels.view(-1, 4).tolist() == [[9, 8, 7, 6]] * 20
    on = nl.build_unlearning_set(model, data, cls, cap=True).labels.view(-1, 4).tolist()
    assert on == [[9, 8, 7, 6]] * 17 + [[5, 4, 3, 2]] * 3
    # and the method trains on the capped labels
    seen = {}
    monkeypatch.setattr(natmu_module, "fit_with_retain",
                        lambda student, data, split, recipe, images, targets, **kw: seen.update(y=targets) or student)
    nl.METHODS["natmu"](model, data, rnd, nl.Recipe(epochs=1), seed=0, progress=False)
    assert torch.equal(seen["y"], u.labels)
    nl.METHODS["natmu"](model, data, cls, nl.Recipe(epochs=1), cap=True, seed=0, progress=False)
    assert seen["y"].view(-1, 4).tolist() == on


@pytest.mark.slow
def test_blends_are_never_augmented_but_retain_images_are(monkeypatch):
    """Every image the student is trained on, read back from its input: each blend exactly as built,
    the remaining images cropped and flipped (an image is left as it is only when its random crop offset
    is the centre and it is not flipped: 1 time in 9 * 9 * 2 = 162 with padding 4)."""
    data = synthetic(n_per_class=20)
    model = nl.model_for("small_cnn", data, seed=1)
    split = nl.make_split(data, "random", ratio=0.1, seed=0)
    u = nl.build_unlearning_set(model, data, split, seed=0)
    seen = []

    def spy(original, *args):
        student = real(original, *args)
        student.register_forward_pre_hook(
            lambda m, args: seen.append((args[0].detach() * 255).round().to(torch.uint8)) if m.training else None)
        return student

    real = natmu_module.working_copy
    monkeypatch.setattr(natmu_module, "working_copy", spy)
    recipe = nl.Recipe("adamw", lr=1e-4, epochs=2, batch_size=32, crop_padding=4, flip=True)
    nl.METHODS["natmu"](model, data, split, recipe, seed=0, progress=False)
    images = torch.cat(seen)
    assert len(images) == 2 * (len(split.retain) + len(u.images))  # two epochs: every image twice
    seen_count = Counter(x.numpy().tobytes() for x in images)
    assert all(seen_count[x.numpy().tobytes()] == 2 for x in u.images)  # both times as built
    retain = Counter(x.numpy().tobytes() for x in data.train_x[split.retain])
    unchanged = sum(min(seen_count[k], 2 * c) for k, c in retain.items())
    assert unchanged < 0.05 * 2 * len(split.retain)  # expected 2 * 180 / 162, about 2


def test_reinit_head_redraws_the_classifier_after_the_labels_are_chosen(fmnist, fmnist_original, monkeypatch):
    """``reinit_head`` (the paper's full-class setting): only the last Linear's weight is redrawn,
    Xavier-normal with ReLU gain, and the labels still come from the original head."""
    split = nl.make_split(fmnist, "random", ratio=0.01, seed=0)
    seen = {}
    monkeypatch.setattr(natmu_module, "fit_with_retain",
                        lambda student, data, split, recipe, images, targets, **kw:
                        seen.update(student=student, y=targets, kw=kw) or student)
    before = {k: v.clone() for k, v in fmnist_original.state_dict().items()}
    nl.METHODS["natmu"](fmnist_original, fmnist, split, nl.Recipe(epochs=1), reinit_head=True, seed=0,
                        progress=False)
    after = seen["student"].state_dict()
    assert [k for k in before if not torch.equal(before[k], after[k])] == ["fc.weight"]  # not hidden.weight
    fan_out, fan_in = after["fc.weight"].shape
    want_std = 2 ** 0.5 * (2 / (fan_in + fan_out)) ** 0.5  # gain sqrt(2) * sqrt(2 / (fan_in + fan_out))
    assert after["fc.weight"].std().item() == pytest.approx(want_std, rel=0.1)  # 1280 draws: ~2% spread
    assert abs(after["fc.weight"].mean().item()) < 3 * want_std / 1280 ** 0.5
    assert torch.equal(seen["y"], nl.build_unlearning_set(fmnist_original, fmnist, split, seed=0).labels)
    assert seen["kw"]["augment_retain"] is True
    nl.METHODS["natmu"](fmnist_original, fmnist, split, nl.Recipe(epochs=1), seed=0, progress=False)
    assert all(torch.equal(before[k], v) for k, v in seen["student"].state_dict().items())  # off: untouched


@pytest.mark.slow
def test_natmu_lowers_forget_accuracy_but_keeps_the_model(fmnist, fmnist_original):
    split = nl.make_split(fmnist, "random", ratio=0.05, seed=0)
    before = nl.evaluate(fmnist_original, fmnist, split)
    state = {k: v.clone() for k, v in fmnist_original.state_dict().items()}
    recipe = nl.Recipe("adamw", lr=3e-3, epochs=4)
    model = nl.METHODS["natmu"](fmnist_original, fmnist, split, recipe, delta=0.0, seed=0, progress=False)
    after = nl.evaluate(model, fmnist, split)
    assert before["FA"] > 97
    assert after["FA"] < before["FA"] - 3  # it forgets ...
    assert after["RA"] > before["RA"] - 5  # ... without wrecking the model
    assert all(torch.equal(v, fmnist_original.state_dict()[k]) for k, v in state.items())  # original untouched


@pytest.mark.slow
def test_without_injection_the_model_learns_the_forget_parts(fmnist, fmnist_original):
    """The paper's W/O CI ablation: training on x_f*m alone, without the injected remaining image, teaches
    the model to read the reassigned labels off the forget parts, so PFA rises.

    Measured over seeds 0-4 (3 epochs, 400 instances): with CI 5.5-8.0%, without 14.0-19.75%; the
    gap was 8.5-13.25 points (mean 11.0, sd 1.9). The threshold, 4 points, is 3.6 sd below the mean
    gap, and about twice the binomial sampling sd of a difference of two PFAs on 400 instances
    (sqrt(0.07 * 0.93 / 400 + 0.18 * 0.82 / 400) = 2.3 points), so chance alone does not pass it."""
    split = nl.make_split(fmnist, "random", ratio=0.05, seed=0)
    u = nl.build_unlearning_set(fmnist_original, fmnist, split, seed=0)
    parts = u.forget_parts(fmnist, split)
    recipe = nl.Recipe("adamw", lr=3e-3, epochs=3)
    with_ci = nl.METHODS["natmu"](fmnist_original, fmnist, split, recipe, seed=0, progress=False)
    without = nl.METHODS["natmu"](fmnist_original, fmnist, split, recipe, seed=0, inject=False, progress=False)
    assert nl.pfa(without, parts, u.labels) > nl.pfa(with_ci, parts, u.labels) + 4
