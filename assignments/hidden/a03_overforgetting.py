"""Hidden checks of assignment 3: the callback on other images and models, the summaries on other curves (longer,
integer, a crossing at the last epoch) than the public checks use."""


import natmu_lite as nl
from natmu_lite.classroom.checking import check, graded
from natmu_lite.classroom.checks import tiny_dataset

CURVES = [([99, 97, 93, 91, 89, 87, 86, 84], 84), ([70.5, 60.25, 65.0], 61.0), ([100.0, 100.0], 0.0),
          ([10, 20, 30, 5], 25)]


@graded(2)
def check_callback_on_other_models(student):
    data = tiny_dataset(n_per_class=6, seed=8)
    images, labels = data.train_x[-25:], data.train_y[-25:]
    curve = []
    record = student("make_fa_callback", curve, images, labels)
    models = [nl.model_for("small_cnn", data, seed=s) for s in (11, 12)]
    for epoch, model in enumerate(models, 1):
        student(record, epoch, model)
    want = [nl.metrics.accuracy(nl.predict(m, images), labels) for m in models]
    check(len(curve) == 2 and all(abs(float(g) - w) < 1e-3 for g, w in zip(curve, want)),
          "the callback records other accuracies than the reference")


@graded(2, "curve,reference", CURVES)
def check_summaries_on_other_curves(student, curve, reference):
    crossing = next((i + 1 for i, v in enumerate(curve) if v <= reference), None)
    below = max(0.0, reference - min(curve))
    got = (student("first_crossing", list(curve), reference), student("overforgetting", list(curve), reference))
    check(got[0] == crossing and isinstance(got[1], int | float) and abs(got[1] - below) < 1e-9,
          "first_crossing or overforgetting differs from the definition")
