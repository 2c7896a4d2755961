"""Assignment 2: ``reassign_labels`` and ``build_unlearning_set`` against the package's reference, and against
independent references (a brute-force ranking in plain Python, a case worked out by hand, the hybrid set rebuilt
from the paper's definition with NumPy masks and exact truncated blends); ``draw_retain`` against its contract
(right class, no image twice, seeded, uniform), since any correct random draw is accepted."""

import numpy as np
import torch

import natmu_lite as nl

from ..checking import check, graded
from ..references import ref_masks, ref_relevant_labels, truncation_check
from . import tiny_dataset

FUNCTIONS = ("reassign_labels", "draw_retain", "build_unlearning_set")  # what the student writes
RUBRIC = {"question 1, relevant labels": 1, "question 2, distinct images": 1, "question 3, the cap": 1}


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


@graded(2, "k,n", [(10, 4), (10, 1), (5, 4), (20, 3)])
def check_top_n_without_the_true_class(student, k, n):
    probs, true = random_probs(k + n, 50, k)
    compare_labels(student("reassign_labels", probs, true, n), nl.reassign_labels(probs, true, n), probs, true)


@graded(2, "seed", [0, 1, 2])
def check_caps_fall_through_to_the_next_ranked_class(student, seed):
    probs, true = random_probs(seed, 40, 8, skew=4.0)
    caps = torch.tensor([12, 14, 16, 25, 40, 40, 40, 40])
    want = nl.reassign_labels(probs, true, 3, caps)
    compare_labels(student("reassign_labels", probs, true, 3, caps), want, probs, true, caps)


@graded(1)
def check_caps_that_cannot_be_met_raise(student):
    probs, true = random_probs(0, 10, 4)
    check(student.raises(ValueError, "reassign_labels", probs, true, 3, torch.tensor([9, 9, 1, 9])),
          "with caps [9, 9, 1, 9], 10 samples and n=3, some sample cannot get 3 labels: reassign_labels should "
          "raise a ValueError (it returned instead)")


@graded(2)
def check_drawn_images_have_the_requested_class_and_are_distinct(student):
    g = torch.Generator().manual_seed(0)
    retain_labels = torch.randint(0, 6, (300,), generator=g)
    requested = torch.randint(0, 6, (120,), generator=g)
    pos = student("draw_retain", requested, retain_labels, torch.Generator().manual_seed(0))
    check(isinstance(pos, torch.Tensor) and pos.shape == requested.shape and pos.dtype == torch.long,
          "draw_retain should return one long (int64) position per request, shape (len(requested),)")
    check(pos.min() >= 0 and pos.max() < len(retain_labels), "the positions should index retain_labels")
    wrong = (retain_labels[pos] != requested).nonzero().flatten()
    if len(wrong):
        i = wrong[0].item()
        check(False, f"request {i} asks for class {requested[i].item()} but your position {pos[i].item()} holds "
                     f"class {retain_labels[pos[i]].item()}")
    values, counts = pos.unique(return_counts=True)
    check(len(values) == len(pos), f"position {values[counts.argmax()].item()} is drawn {counts.max().item()} "
                                   "times: no remaining image may be used twice")


@graded(2)
def check_draws_follow_the_generator(student):
    retain_labels, requested = torch.arange(4).repeat(50), torch.tensor([0, 1, 2, 3, 0, 1])
    a = student("draw_retain", requested, retain_labels, torch.Generator().manual_seed(7))
    b = student("draw_retain", requested, retain_labels, torch.Generator().manual_seed(7))
    check(torch.equal(a, b), "two draws with generators of the same seed differ: draw with the generator "
                             "you are given (e.g. torch.randperm(..., generator=generator))")
    draws = [student("draw_retain", requested, retain_labels, torch.Generator().manual_seed(s)) for s in range(300)]
    share = torch.stack(draws)[:, 0].bincount(minlength=200)[retain_labels == 0].float() / 300
    check(share.max() < 0.1, f"for a class with 50 images one image was picked {share.max():.0%} of the time: "
                             "the draw should be uniform over the class's images")


@graded(1)
def check_asking_for_more_images_than_there_are_raises(student):
    check(student.raises(ValueError, "draw_retain", torch.tensor([1, 1, 1]), torch.tensor([0, 1, 1, 2]),
                         torch.Generator().manual_seed(0)),
          "class 1 is requested 3 times but retain_labels holds 2 images of it: draw_retain should raise a "
          "ValueError (it returned instead)")


SCENARIOS = [dict(kind="random", ratio=0.1), dict(kind="full-class", target="c3")]
FIELDS = ("images", "labels", "forget_pos", "retain_index", "mask_id", "masks")


def hybrid_set(student, scenario):
    """The student's hybrid set of the tiny dataset (n=3, delta=0.1, seed 1), with its inputs."""
    data = tiny_dataset()
    split = nl.make_split(data, **scenario)
    original = nl.model_for("small_cnn", data, seed=0)  # untrained: its rankings are as good as any for a test
    got = student("build_unlearning_set", original, data, split, delta=0.1, n=3, seed=1)
    check(all(isinstance(getattr(got, f, None), torch.Tensor) for f in FIELDS),
          f"build_unlearning_set should return an UnlearningSet, with the tensors {', '.join(FIELDS)}")
    return data, split, original, got


@graded(3, "scenario", SCENARIOS)
def check_hybrid_set(student, scenario):
    data, split, original, got = hybrid_set(student, scenario)
    want = nl.build_unlearning_set(original, data, split, delta=0.1, n=3, seed=1)
    for field, what in [("labels", "the relevant labels, flattened sample by sample (with the caps)"),
                        ("forget_pos", "0, 0, 0, 1, 1, 1, ... for n=3"), ("mask_id", "0, 1, 2, 0, 1, 2, ... for n=3"),
                        ("masks", "nl.natmu_masks(height, width, delta)")]:
        mine, ref = getattr(got, field), getattr(want, field)
        if not (isinstance(mine, torch.Tensor) and mine.shape == ref.shape and torch.equal(mine, ref)):
            yours = f"; yours starts {mine[:9].tolist()}" if isinstance(mine, torch.Tensor) and field != "masks" else ""
            check(False, f"{field} should be {what}, shape {tuple(ref.shape)} ({split}, n=3, delta=0.1){yours}")
    check(torch.isin(got.retain_index, split.retain).all(), "retain_index should index remaining training images")
    check(len(got.retain_index.unique()) == len(got.retain_index), "a remaining image is used in two blends")
    check(torch.equal(data.train_y[got.retain_index], got.labels),
          "each blend should be labelled with the class of its remaining image")
    blends = nl.blend(data.train_x[split.forget[got.forget_pos]], data.train_x[got.retain_index],
                      got.masks[got.mask_id])
    check(torch.equal(got.images, blends), "images[i] should blend forget sample forget_pos[i] with training "
                                           "image retain_index[i] under mask mask_id[i]")


# ---------------------------------------------------------------------------------------------
# independent of the package


@graded(2)
def check_relevant_labels_worked_out_by_hand(student):
    """Three samples, four classes, n=2, without and with caps, worked out by hand."""
    probs = torch.tensor([[0.10, 0.50, 0.15, 0.25], [0.40, 0.05, 0.20, 0.35], [0.30, 0.10, 0.20, 0.40]])
    true = torch.tensor([1, 0, 3])
    # the other classes by probability, the true one left out:
    #   sample 0 (true 1): 3 (0.25), 2 (0.15), 0 (0.10) -> [3, 2]
    #   sample 1 (true 0): 3 (0.35), 2 (0.20), 1 (0.05) -> [3, 2]
    #   sample 2 (true 3): 0 (0.30), 2 (0.20), 1 (0.10) -> [0, 2]
    compare_labels(student("reassign_labels", probs, true, 2), torch.tensor([[3, 2], [3, 2], [0, 2]]), probs, true)
    # caps [9, 9, 2, 1]: sample 0 takes 3 (now full) and 2; sample 1 passes over 3 and takes 2 (now full) and 1;
    # sample 2 takes 0, passes over 2 and takes 1
    caps = torch.tensor([9, 9, 2, 1])
    compare_labels(student("reassign_labels", probs, true, 2, caps), torch.tensor([[3, 2], [2, 1], [0, 1]]), probs,
                   true, caps)


@graded(2, "k,n,skew,cap", [(10, 4, 0.0, 17), (5, 4, 0.0, None), (8, 3, 4.0, 20), (20, 3, 4.0, 8),
                                          (10, 1, 0.0, 5)])
def check_labels_against_a_brute_force_ranking(student, k, n, skew, cap):
    """Against each row's classes sorted in plain Python (references.ref_relevant_labels), without caps and with a
    cap per class that binds (with 5 classes and n=4 every sample needs every other class: no cap can bind), not
    against the package."""
    probs, true = random_probs(100 + k, 40, k, skew)
    free = ref_relevant_labels(probs, true, n)
    compare_labels(student("reassign_labels", probs, true, n), torch.tensor(free), probs, true)
    if cap is not None:
        capped = ref_relevant_labels(probs, true, n, [cap] * k)
        assert capped is not None and capped != free, "the autograder's cap should bind and leave every sample n labels"
        caps = torch.full((k,), cap)
        compare_labels(student("reassign_labels", probs, true, n, caps), torch.tensor(capped), probs, true, caps)


@graded(3, "scenario", SCENARIOS)
def check_hybrid_set_from_the_definition(student, scenario):
    """The hybrid set rebuilt from the paper's definition without the package's NatMU functions: sample i's labels are
    its top-3 classes by the original model's probabilities (brute force, with the official cap int(0.98 |D_r| / K)
    in random forgetting), instance 3i + j pairs rank j with mask j, the masks are NumPy's from Eq. 1, and each
    image is the exact truncated blend of its forget and remaining images."""
    data, split, original, got = hybrid_set(student, scenario)
    nf, (_, h, w) = len(split.forget), data.shape
    want_pos, want_mask = [i // 3 for i in range(3 * nf)], [i % 3 for i in range(3 * nf)]
    check(got.forget_pos.tolist() == want_pos, f"forget_pos should be 0, 0, 0, 1, 1, 1, ... (three instances per "
                                               f"forget sample); yours starts {got.forget_pos[:9].tolist()}")
    check(got.mask_id.tolist() == want_mask, f"mask_id should be 0, 1, 2, 0, 1, 2, ... (the label of rank j goes "
                                             f"with mask j); yours starts {got.mask_id[:9].tolist()}")
    masks = ref_masks(h, w, 0.1)
    check(got.masks.shape == masks.shape and np.abs(got.masks.double().numpy() - masks).max() < 1e-5,
          f"masks should be the four gradual-MixUp masks of a {h} x {w} image with delta=0.1, shape {masks.shape}")
    retain_y = data.train_y[split.retain]
    supply = [int((retain_y == c).sum()) for c in range(data.num_classes)]
    cap = int(0.98 * len(split.retain) / data.num_classes) if split.kind == "random" else max(supply)
    probs = nl.predict(original, data.train_x[split.forget]).softmax(1)  # the model's probabilities, as given
    ranked = ref_relevant_labels(probs, data.train_y[split.forget], 3, [min(s, cap) for s in supply])
    want = [c for row in ranked for c in row]
    mine = got.labels.tolist()
    check(len(mine) == len(want), f"labels should hold 3 labels per forget sample, {len(want)} in all; yours holds "
                                  f"{len(mine)}")
    if mine != want:
        i = next(i for i, (a, b) in enumerate(zip(mine, want)) if a != b)
        check(False, f"labels should be each forget sample's top-3 other classes, sample by sample (with the caps): "
                     f"instance {i} should have label {want[i]}; yours starts {mine[:9]}")
    check(torch.isin(got.retain_index, split.retain).all() and torch.equal(data.train_y[got.retain_index], got.labels)
          and len(set(got.retain_index.tolist())) == len(want),
          "each instance's remaining image (retain_index) should be a remaining training image of its label's class, "
          "a different one for every instance")
    xf = data.train_x[split.forget].numpy()[np.repeat(np.arange(nf), 3)]
    xr = data.train_x[got.retain_index].numpy()
    ok, _ = truncation_check(got.images.numpy(), xf, xr, masks[np.array(want_mask) % 4])
    if not ok.all():
        i = int(np.argwhere(~ok)[0][0])
        check(False, f"image {i} should be floor(x_f * m + x_r * (1 - m)) of forget sample {i // 3}, remaining image "
                     f"retain_index[{i}] and mask m{i % 3 + 1}: {int((~ok).any((1, 2, 3)).sum())} images differ")
