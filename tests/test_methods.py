"""The method registry and interface, Retrain and Finetune."""

from dataclasses import replace

import torch

import natmu_lite as nl
from natmu_lite.bench import DEFAULT, run_method
from natmu_lite.models import build_model

from .conftest import synthetic


def test_registry_has_the_core_methods_with_one_signature():
    assert {"retrain", "finetune", "natmu"} <= set(nl.METHODS)
    data = synthetic(n_per_class=6)
    split = nl.make_split(data, "full-class", target="c1")
    original = nl.model_for("small_cnn", data)
    for name, fn in nl.METHODS.items():
        model = fn(original, data, split, nl.Recipe(epochs=1), seed=0, callback=None, progress=False)
        assert model is not original
        assert nl.predict(model, data.test_x).shape == (len(data.test_y), data.num_classes), name


def test_retrain_starts_from_the_originals_init():
    data = synthetic(n_per_class=6)
    split = nl.make_split(data, "random", ratio=0.2)
    original = nl.train_original(data, "small_cnn", nl.Recipe("sgd", lr=0.05, epochs=2), seed=7, progress=False)
    seen = []
    nl.METHODS["retrain"](original, data, split, nl.Recipe(lr=0.0, epochs=1), progress=False,
                          callback=lambda e, m: seen.append(m.fc.weight.detach().clone()))
    torch.testing.assert_close(seen[0], build_model(**original.spec).fc.weight)  # lr 0: still the init
    assert original.spec["seed"] == 7


def test_retrain_and_finetune_forget_a_class(fmnist, fmnist_original):
    split = nl.make_split(fmnist, "full-class", target="Sandal")
    recipe = nl.Recipe("sgd", lr=0.05, weight_decay=5e-4, epochs=6, schedule="step", warmup_epochs=1)
    retrained = nl.METHODS["retrain"](fmnist_original, fmnist, split, recipe, progress=False)
    r = nl.evaluate(retrained, fmnist, split)
    assert r["FATrain"] == 0 and r["FATest"] == 0  # a class never seen is never predicted
    assert r["RA"] > 75


def test_run_method_evaluates_and_times(fmnist, fmnist_original):
    split = nl.make_split(fmnist, "random", ratio=0.01)
    setting = replace(DEFAULT, unlearn=DEFAULT.unlearn.with_(epochs=1))
    run = run_method("finetune", fmnist_original, fmnist, split, setting, progress=False)
    assert set(run.metrics) == {"RA", "FA", "MIA", "RetainAcc"} and run.seconds > 0


def test_every_setting_names_real_methods_knobs_and_recipe_fields():
    import dataclasses
    import inspect

    from natmu_lite.bench import SETTINGS

    recipe_fields = {f.name for f in dataclasses.fields(nl.Recipe)}
    for setting in SETTINGS.values():
        for method, knobs in setting.knobs.items():
            params = inspect.signature(nl.METHODS[method]).parameters
            assert set(knobs) <= set(params), (setting.name, method, knobs)
        for method, changes in setting.recipes.items():
            assert method in nl.METHODS and set(changes) <= recipe_fields, (setting.name, method)
        assert setting.recipe_for("retrain") == setting.train
    paper = SETTINGS["cifar10-random"]
    assert paper.recipe_for("natmu").lr == 1e-3 and paper.recipe_for("natmu").weight_decay == 2e-3
    assert paper.knobs["natmu"]["delta"] == -0.19 and paper.model == "vgg16_bn"
