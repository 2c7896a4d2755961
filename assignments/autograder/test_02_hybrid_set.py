"""Assignment 2: ``reassign_labels`` and ``build_unlearning_set`` against the package's reference;
``draw_remaining`` against its contract (right class, no image twice, seeded, uniform), since any
correct random draw is accepted."""

import pytest
import torch
from grading import check, tiny_dataset

import natmu_lite as nl


def random_probs(seed: int, n: int, k: int, skew: float = 0.0):
    """Class probabilities (with a shared preference of strength ``skew``, so that caps bind) and labels."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g) + skew * torch.linspace(1, 0, k)
    return logits.softmax(1), torch.randint(0, k, (n,), generator=g)


def compare_labels(got, want, probs, true, caps=None):
    check(isinstance(got, torch.Tensor) and got.shape == want.shape,
          f"reassign_labels should return a tensor of shape {tuple(want.shape)} (samples, n); yours returns "
          f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got)}")
    check(got.dtype == torch.long, f"the labels should be a long (int64) tensor; yours are {got.dtype}")
    for i in range(len(want)):
        if not torch.equal(got[i], want[i]):
            row = got[i].tolist()
            hint = ("it contains the true class" if true[i].item() in row else
                    "a class appears twice" if len(set(row)) < len(row) else
                    "the classes are not in descending order of probability" if sorted(row) == sorted(want[i].tolist())
                    else "")
            if caps is not None and not hint:
                used = torch.bincount(want[:i].flatten(), minlength=len(caps))
                full = [c for c in range(len(caps)) if used[c] >= caps[c]]
                hint = f"before sample {i}, classes {full} had reached their caps, so they are skipped"
            ranked = probs[i].argsort(descending=True).tolist()
            check(False, f"sample {i} (true class {true[i].item()}, classes by probability {ranked}) should get "
                         f"labels {want[i].tolist()}; yours are {row}" + (f": {hint}" if hint else ""))


@pytest.mark.parametrize("k,n", [(10, 4), (10, 1), (5, 4), (20, 3)])
def test_top_n_without_the_true_class(student, k, n):
    probs, true = random_probs(k + n, 50, k)
    compare_labels(student("reassign_labels", probs, true, n), nl.reassign_labels(probs, true, n), probs, true)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_caps_fall_through_to_the_next_ranked_class(student, seed):
    probs, true = random_probs(seed, 40, 8, skew=4.0)
    caps = torch.tensor([12, 14, 16, 25, 40, 40, 40, 40])
    want = nl.reassign_labels(probs, true, 3, caps)
    compare_labels(student("reassign_labels", probs, true, 3, caps), want, probs, true, caps)


def test_caps_that_cannot_be_met_raise(student):
    probs, true = random_probs(0, 10, 4)
    check(student.raises(ValueError, "reassign_labels", probs, true, 3, torch.tensor([9, 9, 1, 9])),
          "with caps [9, 9, 1, 9], 10 samples and n=3, some sample cannot get 3 labels: reassign_labels should "
          "raise a ValueError (it returned instead)")


def test_drawn_images_have_the_requested_class_and_are_distinct(student):
    g = torch.Generator().manual_seed(0)
    retain_labels = torch.randint(0, 6, (300,), generator=g)
    requested = torch.randint(0, 6, (120,), generator=g)
    pos = student("draw_remaining", requested, retain_labels, torch.Generator().manual_seed(0))
    check(isinstance(pos, torch.Tensor) and pos.shape == requested.shape and pos.dtype == torch.long,
          "draw_remaining should return one long (int64) position per request, shape (len(requested),)")
    check(pos.min() >= 0 and pos.max() < len(retain_labels), "the positions should index retain_labels")
    wrong = (retain_labels[pos] != requested).nonzero().flatten()
    if len(wrong):
        i = wrong[0].item()
        check(False, f"request {i} asks for class {requested[i].item()} but your position {pos[i].item()} holds "
                     f"class {retain_labels[pos[i]].item()}")
    values, counts = pos.unique(return_counts=True)
    check(len(values) == len(pos), f"position {values[counts.argmax()].item()} is drawn {counts.max().item()} "
                                   "times: no remaining image may be used twice")


def test_draws_follow_the_generator(student):
    retain_labels, requested = torch.arange(4).repeat(50), torch.tensor([0, 1, 2, 3, 0, 1])
    a = student("draw_remaining", requested, retain_labels, torch.Generator().manual_seed(7))
    b = student("draw_remaining", requested, retain_labels, torch.Generator().manual_seed(7))
    check(torch.equal(a, b), "two draws with generators of the same seed differ: draw with the generator "
                             "you are given (e.g. torch.randperm(..., generator=generator))")
    draws = [student("draw_remaining", requested, retain_labels, torch.Generator().manual_seed(s)) for s in range(300)]
    share = torch.stack(draws)[:, 0].bincount(minlength=200)[retain_labels == 0].float() / 300
    check(share.max() < 0.1, f"for a class with 50 images one image was picked {share.max():.0%} of the time: "
                             "the draw should be uniform over the class's images")


def test_asking_for_more_images_than_there_are_raises(student):
    check(student.raises(ValueError, "draw_remaining", torch.tensor([1, 1, 1]), torch.tensor([0, 1, 1, 2]),
                         torch.Generator().manual_seed(0)),
          "class 1 is requested 3 times but retain_labels holds 2 images of it: draw_remaining should raise a "
          "ValueError (it returned instead)")


@pytest.mark.parametrize("scenario", [dict(scenario="random", ratio=0.1), dict(scenario="full-class", target="c3")])
def test_hybrid_set(student, scenario):
    data = tiny_dataset()
    split = nl.make_split(data, **scenario)
    original = nl.model_for("small_cnn", data, seed=0)  # untrained: its rankings are as good as any for a test
    want = nl.build_unlearning_set(original, data, split, delta=0.1, n=3, seed=1)
    got = student("build_unlearning_set", original, data, split, delta=0.1, n=3, seed=1)
    fields = ("images", "labels", "forget_pos", "remain_index", "mask_id", "masks")
    check(all(isinstance(getattr(got, f, None), torch.Tensor) for f in fields),
          f"build_unlearning_set should return an UnlearningSet, with the tensors {', '.join(fields)}")
    for field, what in [("labels", "the relevant labels, flattened sample by sample (with the caps)"),
                        ("forget_pos", "0, 0, 0, 1, 1, 1, ... for n=3"), ("mask_id", "0, 1, 2, 0, 1, 2, ... for n=3"),
                        ("masks", "nl.natmu_masks(height, width, delta)")]:
        mine, ref = getattr(got, field), getattr(want, field)
        if not (isinstance(mine, torch.Tensor) and mine.shape == ref.shape and torch.equal(mine, ref)):
            yours = f"; yours starts {mine[:9].tolist()}" if isinstance(mine, torch.Tensor) and field != "masks" else ""
            check(False, f"{field} should be {what}, shape {tuple(ref.shape)} ({split}, n=3, delta=0.1){yours}")
    check(torch.isin(got.remain_index, split.retain).all(), "remain_index should index remaining training images")
    check(len(got.remain_index.unique()) == len(got.remain_index), "a remaining image is used in two blends")
    check(torch.equal(data.train_y[got.remain_index], got.labels),
          "each blend should be labelled with the class of its remaining image")
    blends = nl.blend(data.train_x[split.forget[got.forget_pos]], data.train_x[got.remain_index],
                      got.masks[got.mask_id])
    check(torch.equal(got.images, blends), "images[i] should blend forget sample forget_pos[i] with training "
                                           "image remain_index[i] under mask mask_id[i]")
