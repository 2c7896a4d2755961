"""Assignment 3: the callback against ``nl.metrics.accuracy`` on untrained models, and the two curve
summaries against their definitions. (The figure and the explanation are graded by the instructor.)"""

import pytest
import torch
from grading import check, tiny_dataset

import natmu_lite as nl

CURVES = [([95, 90, 80, 70], 85), ([95, 90, 80, 70], 80), ([95, 96], 85), ([60, 90], 70), ([88.5], 88.5),
          ([92.0, 85.0, 86.0, 79.0, 81.0], 85.0)]


def test_callback_records_forget_accuracy_each_epoch(student):
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


@pytest.mark.parametrize("curve,reference", CURVES)
def test_first_crossing(student, curve, reference):
    want = next((i + 1 for i, v in enumerate(curve) if v <= reference), None)
    got = student("first_crossing", list(curve), reference)
    check(got == want, f"first_crossing({curve}, {reference}) should be {want}" +
          (" (epochs count from 1)" if want is not None and got == want - 1 else "") +
          (" (at or below counts)" if curve.count(reference) else "") + f"; yours is {got}")


@pytest.mark.parametrize("curve,reference", CURVES)
def test_overforgetting(student, curve, reference):
    want = max(0.0, reference - min(curve))
    got = student("overforgetting", list(curve), reference)
    check(isinstance(got, int | float) and abs(got - want) < 1e-9,
          f"overforgetting({curve}, {reference}) should be {want}" +
          (" (0 when the curve never goes below)" if want == 0 else "") + f"; yours is {got}")


def test_summaries_on_random_curves(student):
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        curve, reference = (torch.rand(8, generator=g) * 100).tolist(), float(torch.rand(1, generator=g) * 100)
        want = (next((i + 1 for i, v in enumerate(curve) if v <= reference), None), max(0.0, reference - min(curve)))
        got = (student("first_crossing", curve, reference), student("overforgetting", curve, reference))
        check(got[0] == want[0] and isinstance(got[1], int | float) and abs(got[1] - want[1]) < 1e-6,
              f"for curve {[round(v, 1) for v in curve]} and reference {reference:.1f}, (first_crossing, "
              f"overforgetting) should be ({want[0]}, {want[1]:.2f}); yours are {got}")
