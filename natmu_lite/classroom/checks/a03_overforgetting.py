"""Assignment 3: the callback against ``nl.metrics.accuracy`` on untrained models, and the two curve
summaries against their definitions; independently of the package and of those definitions, the callback against
a plain float64 forward pass and the summaries against curves worked out by hand. (The figure and the explanation
are graded by the instructor.)"""

import torch

import natmu_lite as nl

from ..checking import check, graded
from ..references import ref_accuracy, ref_logits
from . import tiny_dataset

FUNCTIONS = ("make_fa_callback", "first_crossing", "overforgetting")  # what the student writes
RUBRIC = {"figure": 1, "curves described": 1, "mechanism": 2, "early stopping": 1}  # graded by hand: points

CURVES = [([95, 90, 80, 70], 85), ([95, 90, 80, 70], 80), ([95, 96], 85), ([60, 90], 70), ([88.5], 88.5),
          ([92.0, 85.0, 86.0, 79.0, 81.0], 85.0)]


@graded(4)
def check_callback_records_forget_accuracy_each_epoch(student):
    data = tiny_dataset()
    images, labels = data.train_x[:40], data.train_y[:40]
    curve = []
    record = student("make_fa_callback", curve, images, labels)
    check(callable(record), "make_fa_callback should return a function, called as fn(epoch, model)")
    models = [nl.model_for("small_cnn", data, seed=s) for s in (0, 1, 2)]
    want = [nl.metrics.accuracy(nl.predict(m, images), labels) for m in models]
    for epoch, model in enumerate(models):
        student(record, epoch, model)
    check(len(curve) == 3, f"after 3 epochs the curve should hold 3 values; yours holds {len(curve)}")
    got = [float(v) for v in curve]
    if max(abs(g * 100 - w) for g, w in zip(got, want)) < 1e-3 and max(want) > 0:
        check(False, f"the accuracies should be in percent (0-100); yours look like fractions: {got}")
    check(max(abs(g - w) for g, w in zip(got, want)) < 1e-3,
          f"for three models the accuracies should be {[round(w, 2) for w in want]}; yours are "
          f"{[round(g, 2) for g in got]}. Measure the model the callback is given, on the images it was made with.")


@graded(3, "curve,reference", CURVES)
def check_first_crossing(student, curve, reference):
    want = next((i + 1 for i, v in enumerate(curve) if v <= reference), None)
    got = student("first_crossing", list(curve), reference)
    check(got == want, f"first_crossing({curve}, {reference}) should be {want}" +
          (" (epochs count from 1)" if want is not None and got == want - 1 else "") +
          (" (at or below counts)" if curve.count(reference) else "") + f"; yours is {got}")


@graded(3, "curve,reference", CURVES)
def check_overforgetting(student, curve, reference):
    want = max(0.0, reference - min(curve))
    got = student("overforgetting", list(curve), reference)
    check(isinstance(got, int | float) and abs(got - want) < 1e-9,
          f"overforgetting({curve}, {reference}) should be {want}" +
          (" (0 when the curve never goes below)" if want == 0 else "") + f"; yours is {got}")


@graded(3)
def check_summaries_on_random_curves(student):
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        curve, reference = (torch.rand(8, generator=g) * 100).tolist(), float(torch.rand(1, generator=g) * 100)
        want = (next((i + 1 for i, v in enumerate(curve) if v <= reference), None), max(0.0, reference - min(curve)))
        got = (student("first_crossing", curve, reference), student("overforgetting", curve, reference))
        check(got[0] == want[0] and isinstance(got[1], int | float) and abs(got[1] - want[1]) < 1e-6,
              f"for curve {[round(v, 1) for v in curve]} and reference {reference:.1f}, (first_crossing, "
              f"overforgetting) should be ({want[0]}, {want[1]:.2f}); yours are {got}")


# ---------------------------------------------------------------------------------------------
# independent of the package and of the definitions above


@graded(4)
def check_callback_against_a_plain_forward_pass(student):
    """The accuracies against a plain float64 forward pass and argmax (references.ref_logits, ref_accuracy), not
    against the package's predict and accuracy; on 60 images that three models get partly right."""
    data = tiny_dataset()
    images, labels = data.train_x[::3][:60], data.train_y[::3][:60]
    curve = []
    record = student("make_fa_callback", curve, images, labels)
    check(callable(record), "make_fa_callback should return a function, called as fn(epoch, model)")
    models = [nl.model_for("small_cnn", data, seed=s) for s in (3, 4, 5)]
    want = [ref_accuracy(ref_logits(m, images), labels) for m in models]  # (percent, slack for near-ties)
    assert all(0 < w < 100 for w, _ in want), "the autograder's models should get some images right and some wrong"
    for epoch, model in enumerate(models, 1):
        student(record, epoch, model)
    check(len(curve) == 3, f"after 3 epochs the curve should hold 3 values; yours holds {len(curve)}")
    got = [float(v) for v in curve]
    check(all(abs(g - w) <= slack + 1e-4 for g, (w, slack) in zip(got, want)),
          f"for three models, the percentage of the 60 images whose highest logit is their label's should be "
          f"{[round(w, 2) for w, _ in want]}; yours are {[round(g, 2) for g in got]}")


# curve, reference, and the two summaries worked out by hand: the first epoch (from 1) at or below the reference,
# and how far the lowest value lies below it
BY_HAND = [([95, 90, 80, 70], 85, 3, 15),  # 80 <= 85 at epoch 3; lowest 70 = 85 - 15
           ([95, 90, 80, 70], 80, 3, 10),  # 80 is at the reference: it counts; 80 - 70 = 10
           ([95, 96], 85, None, 0),  # never at or below: no crossing, no over-forgetting
           ([60, 90], 70, 1, 10),  # below from the first epoch; 70 - 60 = 10
           ([88.5], 88.5, 1, 0),  # at the reference, never below it
           ([92.0, 85.0, 86.0, 79.0, 81.0], 85.0, 2, 6.0),  # 85 at epoch 2 counts; 85 - 79 = 6
           ([50.0, 40.0, 45.0], 30.0, None, 0)]  # falls, but stays above the reference


@graded(3, "curve,reference,crossing,below", BY_HAND)
def check_summaries_worked_out_by_hand(student, curve, reference, crossing, below):
    got = (student("first_crossing", list(curve), reference), student("overforgetting", list(curve), reference))
    check(got[0] == crossing, f"first_crossing({curve}, {reference}) should be {crossing}; yours is {got[0]}")
    check(isinstance(got[1], int | float) and abs(got[1] - below) < 1e-9,
          f"overforgetting({curve}, {reference}) should be {below}; yours is {got[1]}")
