"""NatMU's steps against their definitions, and the method against its purpose."""

import pytest
import torch

import natmu_lite as nl
from natmu_lite.methods.natmu import draw_remaining, label_cap

from .conftest import synthetic


def masks_by_the_formula(h: int, w: int, delta: float) -> torch.Tensor:
    """The issue's definition, written out pixel by pixel."""
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
    torch.testing.assert_close(m.mean((1, 2)), torch.full((4,), 0.46875))  # (b-1)/(2b), spec section 3.1
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
    assert label_cap(45_000, 10) == 4410 and label_cap(45_000, 100) == 441  # spec's worked constants


def test_drawn_remaining_samples_are_distinct_and_of_the_asked_class():
    retain_labels = torch.arange(5).repeat(6)
    requested = torch.tensor([0, 1, 1, 4, 0, 0, 2, 1])
    pos = draw_remaining(requested, retain_labels, torch.Generator().manual_seed(0))
    assert torch.equal(retain_labels[pos], requested)
    assert len(pos.unique()) == len(pos)
    with pytest.raises(ValueError, match="requested 7 times"):
        draw_remaining(torch.zeros(7, dtype=torch.long), retain_labels, torch.Generator())


def test_blend_matches_the_formula_to_the_pixel():
    g = torch.Generator().manual_seed(0)
    xf = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=g)
    xr = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=g)
    m = nl.natmu_masks(32, 32, -0.1)
    out = nl.blend(xf, xr, m)
    expected = (xf.float() * m[:, None] + xr.float() * (1 - m[:, None])).to(torch.uint8)
    assert torch.equal(out, expected)
    # one pixel by hand: 200 * 0.75 + 101 * 0.25 = 175.25 -> 175 (truncated)
    one = nl.blend(torch.full((1, 1, 2, 2), 200, dtype=torch.uint8), torch.full((1, 1, 2, 2), 101, dtype=torch.uint8),
                   torch.full((1, 2, 2), 0.75))
    assert one.unique().tolist() == [175]


def test_unlearning_set_is_consistent(fmnist, fmnist_original):
    split = nl.make_split(fmnist, "random", ratio=0.02, seed=0)
    u = nl.build_unlearning_set(fmnist_original, fmnist, split, delta=-0.05, seed=0)
    nf = len(split.forget)
    assert len(u.labels) == 4 * nf and u.images.dtype == torch.uint8
    true = fmnist.train_y[split.forget]
    by_sample = u.labels.view(nf, 4)
    assert (by_sample != true[:, None]).all() and all(len(set(r)) == 4 for r in by_sample.tolist())
    assert torch.equal(fmnist.train_y[u.remain_index], u.labels)
    assert len(u.remain_index.unique()) == len(u.remain_index)
    assert not set(u.remain_index.tolist()) & set(split.forget.tolist())  # remaining images only
    assert u.mask_id.tolist() == [0, 1, 2, 3] * nf
    i = 13
    want = nl.blend(fmnist.train_x[split.forget[u.forget_pos[i]]][None], fmnist.train_x[u.remain_index[i]][None],
                    u.masks[u.mask_id[i]][None])
    assert torch.equal(u.images[i], want[0])
    again = nl.build_unlearning_set(fmnist_original, fmnist, split, delta=-0.05, seed=0)
    assert torch.equal(again.images, u.images)  # deterministic for a seed


def test_fewer_classes_than_labels_uses_all_other_classes():
    data = synthetic(k=4, n_per_class=8)
    model = nl.model_for("small_cnn", data)
    split = nl.make_split(data, "full-class", target="c0")
    u = nl.build_unlearning_set(model, data, split, n=4)
    assert len(u.labels) == 3 * len(split.forget)  # n = K - 1 = 3


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


def test_without_injection_the_model_learns_the_forget_parts(fmnist, fmnist_original):
    """The paper's W/O CI ablation: training on x_f*m alone raises PFA (here 12% vs 6% after 3 epochs)."""
    split = nl.make_split(fmnist, "random", ratio=0.05, seed=0)
    u = nl.build_unlearning_set(fmnist_original, fmnist, split, seed=0)
    parts = u.forget_parts(fmnist, split)
    recipe = nl.Recipe("adamw", lr=3e-3, epochs=3)
    with_ci = nl.METHODS["natmu"](fmnist_original, fmnist, split, recipe, seed=0, progress=False)
    without = nl.METHODS["natmu"](fmnist_original, fmnist, split, recipe, seed=0, inject=False, progress=False)
    assert nl.pfa(without, parts, u.labels) > 1.5 * nl.pfa(with_ci, parts, u.labels) + 1
