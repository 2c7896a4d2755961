"""Hidden checks of assignment 2: the labels on other class counts, n and caps, the draw on another class
layout, and the hybrid set with another delta, n and seed than the public checks use."""

import torch

import natmu_lite as nl
from natmu_lite.classroom.checking import check, graded
from natmu_lite.classroom.checks import tiny_dataset
from natmu_lite.classroom.checks.a02_hybrid_set import compare_labels, random_probs


@graded(2, "k,n,cap", [(7, 2, None), (12, 5, None), (9, 2, 9)])
def check_labels_on_other_class_counts(student, k, n, cap):
    probs, true = random_probs(300 + k, 30, k, skew=3.0 if cap else 0.0)
    caps = None if cap is None else torch.full((k,), cap)
    compare_labels(student("reassign_labels", probs, true, n, caps), nl.reassign_labels(probs, true, n, caps),
                   probs, true, caps)


@graded(2, "seed", [5, 6])
def check_draw_on_another_layout(student, seed):
    g = torch.Generator().manual_seed(seed)
    retain_labels = torch.randint(0, 3, (40,), generator=g)
    requested = retain_labels[torch.randperm(40, generator=g)[:25]]  # every class asked for at most its supply
    pos = student("draw_retain", requested, retain_labels, torch.Generator().manual_seed(seed))
    check(isinstance(pos, torch.Tensor) and pos.shape == requested.shape, "draw_retain gives one position per request")
    check(torch.equal(retain_labels[pos], requested) and len(pos.unique()) == len(pos),
          "draw_retain gives a wrong class or an image twice")


@graded(2)
def check_hybrid_set_with_other_knobs(student):
    data = tiny_dataset(seed=4)
    split = nl.make_split(data, kind="random", ratio=0.05, seed=2)
    original = nl.model_for("small_cnn", data, seed=7)
    got = student("build_unlearning_set", original, data, split, delta=-0.2, n=2, seed=9)
    want = nl.build_unlearning_set(original, data, split, delta=-0.2, n=2, seed=9)
    for field in ("labels", "forget_pos", "mask_id", "masks"):
        check(torch.equal(getattr(got, field), getattr(want, field)), f"{field} differs from the reference")
    check(torch.equal(data.train_y[got.retain_index], got.labels), "a blend's label is not its remaining image's")
