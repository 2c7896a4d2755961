"""The checkpoint cache (cache.py): the same model back, keyed by everything that determines it, a damaged
entry rebuilt."""

from dataclasses import fields, replace

import pytest
import torch

import natmu_lite.cache as cache_module
from natmu_lite.cache import cached_model, model_key
from natmu_lite.models import model_for
from natmu_lite.setting import Setting, load_setting_data, make_scenario_split
from natmu_lite.settings import DEFAULT
from natmu_lite.train import Recipe

from .conftest import same_weights
from .test_methods import record_inits

TINY = replace(DEFAULT, name="tiny", train_size=600, test_size=600, train=DEFAULT.train.with_(epochs=2),
               unlearn=DEFAULT.unlearn.with_(epochs=1), recipe_changes={"ga": dict(lr=1e-3, epochs=1)},
               scenarios={"random-5%": dict(kind="random", ratio=0.05),
                          "full-class": dict(kind="full-class", target="Bag")})


@pytest.fixture(scope="module")
def tiny_data():
    return load_setting_data(TINY)


def count_training(monkeypatch) -> list:
    calls = []
    real = cache_module.train_original
    monkeypatch.setattr(cache_module, "train_original", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


@pytest.mark.slow
def test_cache_returns_the_same_model_and_rebuilds_on_a_change(cache, tiny_data, monkeypatch):
    calls = count_training(monkeypatch)
    a, _ = cached_model("original", TINY, tiny_data, 0, progress=False)
    b, _ = cached_model("original", TINY, tiny_data, 0, progress=False)
    assert len(calls) == 1 and same_weights(a, b)  # the second came from disk
    for changed in (replace(TINY, train=TINY.train.with_(lr=0.04)), replace(TINY, train_size=590)):
        c, _ = cached_model("original", changed, load_setting_data(changed), 0, progress=False)
        assert not same_weights(a, c)
    d, _ = cached_model("original", TINY, tiny_data, 1, progress=False)
    assert len(calls) == 4 and not same_weights(a, d)
    assert len(list(cache.glob("original-*.pt"))) == 4  # one entry each


# A different valid value for every field. Each field is classified below by whether it determines
# the weights of an original or retrained model; a new field fails the test until it is classified.


RECIPE_CHANGES = {
    "optimizer": lambda r: "adamw" if r.optimizer == "sgd" else "sgd", "lr": lambda r: r.lr * 2,
    "weight_decay": lambda r: r.weight_decay + 1e-4, "epochs": lambda r: r.epochs + 1,
    "batch_size": lambda r: r.batch_size * 2, "schedule": lambda r: "cosine" if r.schedule != "cosine" else "step",
    "warmup_epochs": lambda r: r.warmup_epochs + 1, "momentum": lambda r: r.momentum / 2,
    "crop_padding": lambda r: r.crop_padding + 2, "flip": lambda r: not r.flip, "bf16": lambda r: not r.bf16,
    "compile": lambda r: "" if r.compile else "reduce-overhead",
}


RECIPE_SPEED_ONLY = {"compile"}  # compiling changes the speed, not the weights: it shares the eager entry


SETTING_CHANGES = {
    "name": lambda s: "renamed", "dataset": lambda s: "fashion-mnist-super", "model": lambda s: "resnet18",
    "train": None,  # field by field, RECIPE_CHANGES
    "unlearn": lambda s: s.unlearn.with_(lr=s.unlearn.lr * 2), "train_size": lambda s: s.train_size - 10,
    "test_size": lambda s: s.test_size - 10, "scenarios": lambda s: {"random-2%": dict(kind="random", ratio=0.02)},
    "knobs": lambda s: {"natmu": dict(delta=-0.1)}, "recipe_changes": lambda s: {"natmu": dict(lr=1e-4)},
    "original_seed": lambda s: s.original_seed + 3, "split_seed": lambda s: s.split_seed + 1,
    "validation": lambda s: {"random-5%": dict(seed=1)}, "table_classes": lambda s: {"full-class": ("Bag", "Coat")},
    "replication": lambda s: {"random-5%": (dict(seed=3),)}, "subset_seed": lambda s: s.subset_seed + 1,
    "avoid_subset": lambda s: 0,
}


DETERMINES = {"original": {"dataset", "model", "train", "train_size", "subset_seed", "avoid_subset"},  # + the seed
              "retrain": {"dataset", "model", "train", "train_size", "subset_seed", "avoid_subset",
                          "original_seed"}}  # + the split, the seed


DOES_NOT = {"name", "unlearn", "scenarios", "knobs", "recipe_changes", "split_seed", "validation", "table_classes",
            "replication"}
# test_size (and original_seed for the original, whose seed is an argument) determine no weights; the key
# may include them: that rebuilds a model needlessly but never returns a wrong one.


@pytest.mark.parametrize("kind", ["original", "retrain"])
def test_cache_key_changes_with_every_field_that_determines_the_weights(kind, tiny_data):
    assert set(SETTING_CHANGES) == {f.name for f in fields(Setting)}
    assert set(RECIPE_CHANGES) == {f.name for f in fields(Recipe)}
    split = make_scenario_split(TINY, tiny_data, "random-5%") if kind == "retrain" else None
    base = model_key(kind, TINY, 0, split)
    for name, change in SETTING_CHANGES.items():
        if change is None:
            continue
        changed = replace(TINY, **{name: change(TINY)})
        assert getattr(changed, name) != getattr(TINY, name)
        if name in DETERMINES[kind]:
            assert model_key(kind, changed, 0, split) != base, name
        elif name in DOES_NOT:
            assert model_key(kind, changed, 0, split) == base, name
    for name, change in RECIPE_CHANGES.items():
        changed = replace(TINY, train=TINY.train.with_(**{name: change(TINY.train)}))
        assert (model_key(kind, changed, 0, split) == base) == (name in RECIPE_SPEED_ONLY), name
        unlearn = replace(TINY, unlearn=TINY.unlearn.with_(**{name: change(TINY.unlearn)}))
        assert model_key(kind, unlearn, 0, split) == base, name  # the unlearning recipe trains neither
    assert model_key(kind, TINY, 1, split) != base
    if kind == "retrain":
        assert model_key(kind, TINY, 0, make_scenario_split(TINY, tiny_data, "random-5%", seed=1)) != base
        assert model_key(kind, TINY, 0, make_scenario_split(TINY, tiny_data, "full-class")) != base


@pytest.mark.slow
def test_cached_retrain_starts_from_the_originals_init(cache, tiny_data, monkeypatch):
    """Through the cache: a setting whose original seed (3) is neither 0 nor the run's seed (1);
    the retrained model starts from the weights the original started from, all of them."""
    setting = replace(TINY, original_seed=3)
    inits = record_inits(monkeypatch)
    cached_model("original", setting, tiny_data, setting.original_seed, progress=False)
    cached_model("retrain", setting, tiny_data, 1, make_scenario_split(setting, tiny_data, "random-5%"),
                 progress=False)
    assert len(inits) == 2
    o, r = inits
    assert o.keys() == r.keys() and [k for k in o if not torch.equal(o[k], r[k])] == []
    for seed in (0, 1):
        assert not torch.equal(model_for(setting.model, tiny_data, seed).state_dict()["hidden.weight"],
                               o["hidden.weight"])


@pytest.mark.slow
def test_retrain_cache_is_keyed_by_the_split(cache, tiny_data):
    s1 = make_scenario_split(TINY, tiny_data, "random-5%", seed=0)
    s2 = make_scenario_split(TINY, tiny_data, "random-5%", seed=1)
    r1, _ = cached_model("retrain", TINY, tiny_data, 0, s1, progress=False)
    r2, _ = cached_model("retrain", TINY, tiny_data, 0, s2, progress=False)
    assert not same_weights(r1, r2)
    assert len(list(cache.glob("retrain-*.pt"))) == 2
    with pytest.raises(ValueError, match="with a split"):
        cached_model("retrain", TINY, tiny_data, 0, progress=False)


@pytest.mark.slow
def test_corrupted_cache_file_is_detected_and_rebuilt(cache, tiny_data, monkeypatch):
    a, _ = cached_model("original", TINY, tiny_data, 0, progress=False)
    (weights,) = cache.glob("original-*.pt")
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    calls = count_training(monkeypatch)
    with pytest.warns(UserWarning, match="unusable.*checksum"):
        b, _ = cached_model("original", TINY, tiny_data, 0, progress=False)
    assert len(calls) == 1 and same_weights(a, b)  # rebuilt, deterministically the same
    c, _ = cached_model("original", TINY, tiny_data, 0, progress=False)
    assert len(calls) == 1 and same_weights(a, c)  # and the rebuilt entry is good
