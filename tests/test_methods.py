"""The method registry and interface, Retrain and Finetune."""

from dataclasses import replace

import torch

import natmu_lite as nl
import natmu_lite.methods.retrain as retrain_module
import natmu_lite.train as train_module
from natmu_lite.runs import run_method
from natmu_lite.settings import DEFAULT

from .conftest import synthetic


def state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_registry_methods_share_one_interface_and_its_promises():
    """Every registered method takes the one signature and keeps its promises: the original is left
    untouched, the result is a model of its own (no shared storage), the same seed gives the same
    weights, and ``callback(epoch, model)`` is called with the model being trained."""
    assert {"retrain", "finetune", "natmu"} <= set(nl.METHODS)
    data = synthetic(n_per_class=6)
    split = nl.make_split(data, "full-class", target="c1")
    original = nl.train_original(data, "small_cnn", nl.Recipe(epochs=1), seed=0, progress=False)
    before = state(original)
    storage = {p.data_ptr() for p in original.parameters()}
    for name, fn in nl.METHODS.items():
        calls = []
        model = fn(original, data, split, nl.Recipe(epochs=2), seed=0, callback=lambda e, m, calls=calls:
                   calls.append((e, m)), progress=False)
        again = fn(original, data, split, nl.Recipe(epochs=2), seed=0, callback=None, progress=False)
        assert all(torch.equal(v, original.state_dict()[k]) for k, v in before.items()), name
        assert model is not original and not storage & {p.data_ptr() for p in model.parameters()}, name
        assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items()), name
        epochs = [0] if name == "ssd" else [0, 1]  # SSD trains nothing: one call, as epoch 0
        assert [e for e, _ in calls] == epochs and all(m is model for _, m in calls), name
        assert nl.predict(model, data.test_x).shape == (len(data.test_y), data.num_classes), name


def record_inits(monkeypatch) -> list[dict]:
    """The weights (parameters and buffers) every original or retrained model starts training from."""
    inits, real = [], retrain_module.train_on

    def spy(model, *args, **kwargs):
        inits.append(state(model))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(retrain_module, "train_on", spy)  # Retrain
    monkeypatch.setattr(train_module, "train_on", spy)  # the original (train.train_original)
    return inits


def test_retrain_starts_from_the_originals_init(monkeypatch):
    """Retrain starts from exactly the weights the original started from, every parameter and buffer,
    read off both training runs; the original's seed (7) is neither 0 nor the run's seed, so an init
    drawn with any other seed fails."""
    data = synthetic(n_per_class=6)
    split = nl.make_split(data, "random", ratio=0.2)
    inits = record_inits(monkeypatch)
    original = nl.train_original(data, "small_cnn", nl.Recipe("sgd", lr=0.05, epochs=2), seed=7, progress=False)
    nl.METHODS["retrain"](original, data, split, nl.Recipe(epochs=1), seed=0, progress=False)
    assert len(inits) == 2
    o, r = inits
    assert o.keys() == r.keys() and [k for k in o if not torch.equal(o[k], r[k])] == []
    for seed in (0, 1):  # the seed matters: the inits of other seeds differ
        assert not torch.equal(nl.model_for("small_cnn", data, seed).state_dict()["hidden.weight"], o["hidden.weight"])


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

    from natmu_lite.settings import SETTINGS

    recipe_fields = {f.name for f in dataclasses.fields(nl.Recipe)}
    for setting in SETTINGS.values():
        for method, knobs in setting.knobs.items():
            params = inspect.signature(nl.METHODS[method]).parameters
            assert set(knobs) <= set(params), (setting.name, method, knobs)
        for method, changes in setting.recipe_changes.items():
            assert method in nl.METHODS and set(changes) <= recipe_fields, (setting.name, method)
        assert setting.recipe_for("retrain") == setting.train
    paper = SETTINGS["cifar10-random"]
    assert paper.recipe_for("natmu").lr == 1e-3 and paper.recipe_for("natmu").weight_decay == 2e-3
    assert paper.knobs["natmu"]["delta"] == -0.19 and paper.model == "vgg16_bn"
