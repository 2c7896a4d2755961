"""The method registry and interface (methods/base.py), Retrain and Finetune (methods/retrain.py)."""

import importlib.metadata
import importlib.util
import math
import os
import re
import subprocess
import sys
from dataclasses import replace

import optuna
import pandas as pd
import pytest
import torch

import natmu_lite as nl
import natmu_lite.methods.base as base
import natmu_lite.methods.retrain as retrain_module
import natmu_lite.train as train_module
from natmu_lite import audit, cli, plots, protocol, tables, tune
from natmu_lite.classroom.references import ref_accuracy
from natmu_lite.methods import (
    COLORS,
    ENTRY_POINTS,
    FILES_VARIABLE,
    METHOD_NAMES,
    METHOD_ORDER,
    METHODS,
    SEARCH_SPACES,
    load_entry_points,
    load_file,
)
from natmu_lite.methods.base import check_knobs, spec, unregister
from natmu_lite.runs import run_method
from natmu_lite.settings import DEFAULT

from .conftest import ROOT, same_weights, synthetic
from .test_references import ref_logits


def state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
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
        epochs = [0, 1] if spec(name).epochs else [0]  # SSD trains nothing: one call, as epoch 0
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


@pytest.mark.slow
def test_retrain_and_finetune_forget_a_class(fmnist, fmnist_original):
    split = nl.make_split(fmnist, "full-class", target="Sandal")
    recipe = nl.Recipe("sgd", lr=0.05, weight_decay=5e-4, epochs=6, schedule="step", warmup_epochs=1)
    retrained = nl.METHODS["retrain"](fmnist_original, fmnist, split, recipe, progress=False)
    r = nl.evaluate(retrained, fmnist, split)
    assert r["FATrain"] == 0 and r["FATest"] == 0  # a class never seen is never predicted
    assert r["RA"] > 75


@pytest.mark.slow
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


# ---------------------------------------------------------------------------------------------
# the registry: one file makes a method, everything else is a view of it

TOY = """# A throw-away method, in a file of its own as a user writes one
from natmu_lite.methods import register
from natmu_lite.methods.base import check_number, working_copy


def space(trial):
    return {"lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True), "strength": trial.suggest_float("strength", 0, 1)}


def check(*, strength, num_classes=None, **_):
    check_number("Toy method", "strength", strength, "in [0, 1]", lambda v: 0 <= v <= 1)


@register("toy", display="Toy method", color="#123456", space=space, check=check)
def toy(model, data, split, recipe, *, strength: float = 0.25, seed=0, callback=None, progress=True):
    student = working_copy(model)
    for epoch in range(recipe.epochs):
        if callback is not None:
            callback(epoch, student)
    return student
"""


@pytest.fixture
def toy_method(toy_file):
    assert load_file(toy_file) == ["toy"]
    return toy_file


def test_a_method_registered_in_one_file_appears_in_tables_figures_tuning_and_protocols(toy_method):
    """Everything the package lists methods in sees the new file's method, with no other file edited: it has
    no place in the book's order, so it comes after every built-in row; the committed protocol keeps the methods
    its export compares, another protocol takes it."""
    order = list(METHOD_ORDER)
    assert all(order.index(n) < order.index("toy") for n, m in base.ORIGINS.items() if m.startswith("natmu_lite."))
    assert METHOD_NAMES["toy"] == "Toy method"
    assert plots.palette()["Toy method"] == "#123456" == COLORS["toy"]
    assert "toy" in SEARCH_SPACES and set(tune.search_distributions("toy")) == {"lr", "strength"}
    assert tune.default_params(DEFAULT, "toy") == {"lr": DEFAULT.unlearn.lr, "strength": 0.25}  # the signature's
    assert "toy" not in protocol.protocol_methods("default") and "toy" in protocol.protocol_methods("another")
    assert "toy" in audit.AUDITED and spec("toy").epochs
    rows = [dict(scenario="random-1%", target="1%", method=m, seed=0, RA=90.0, FATrain=80.0, FATest=None, MIA=60.0)
            for m in ("toy", "natmu", "retrain")]
    assert list(tables.paper_table(pd.DataFrame(rows)).columns) == ["Retrain", "NatMU", "Toy method"]  # book order
    with pytest.raises(ValueError, match=re.escape("Toy method strength must be a number in [0, 1], got 2")):
        check_knobs("toy", {"strength": 2})


def test_a_method_file_is_a_choice_of_every_command_that_takes_methods(toy_file, capsys):
    """``natmu-lite --method-file FILE``: the file is loaded before the commands' choices are made, tuning
    samples its space, and the terminal table's first column fits its name (wider than the built-ins')."""
    for command in (["bench", "--methods"], ["tune", "--method"], ["demo", "--methods"], ["audit", "--method"],
                    ["transfer", "--method"]):
        with pytest.raises(SystemExit) as e:
            cli.main(["--method-file", str(toy_file), *command[:1], "--help"])
        assert e.value.code == 0 and "toy" in capsys.readouterr().out, command
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    assert 0 <= SEARCH_SPACES["toy"](trial)["strength"] <= 1
    rows = {m: {"RA": 90.0, "FA": 80.0, "MIA": 60.0} for m in ("retrain", "toy", "a method named at length")}
    lines = tables.format_table(rows, {m: 1.0 for m in rows}).splitlines()
    assert len({len(line) for line in lines}) == 1 and lines[-1].startswith("a method named at length ")


def test_a_worker_process_registers_the_loaded_files_methods(toy_method):
    """The protocol's workers are ``python -m natmu_lite.cli ... --worker`` processes with this one's
    environment (Protocol.launch), and the audit's a spawned pool: importing the package registers the
    files that :data:`FILES_VARIABLE` lists, so they know the method without being told."""
    assert os.environ[FILES_VARIABLE] == str(toy_method.resolve())
    out = subprocess.run([sys.executable, "-m", "natmu_lite.cli", "tune", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "toy" in out


def test_a_name_taken_or_a_missing_file_is_refused_before_anything_runs(toy_file, tmp_path, capsys):
    """A file that registers a built-in's name, or one another file registered, is refused naming the method
    and both files, and registers none of its methods; a missing file exits 2 naming the option."""
    clash = tmp_path / "clash.py"
    clash.write_text(TOY.replace('"toy"', '"fine"') + TOY.split("\n\n\n", 1)[1].replace('"toy"', '"ssd"'))
    with pytest.raises(ValueError, match=f"{re.escape(str(clash))} registers 'ssd', which natmu_lite.methods.ssd"):
        load_file(clash)
    assert "fine" not in METHODS and spec("ssd").display == "SSD" and FILES_VARIABLE not in os.environ
    load_file(toy_file)
    again = tmp_path / "again.py"
    again.write_text(TOY)
    with pytest.raises(ValueError, match=f"{re.escape(str(again))} registers 'toy', which {re.escape(str(toy_file))}"):
        load_file(again)
    for path in (tmp_path / "missing.py", clash):
        with pytest.raises(SystemExit) as e:
            cli.main(["--method-file", str(path), "settings"])
        assert e.value.code == 2 and "argument --method-file" in capsys.readouterr().err


def test_an_installed_packages_entry_point_registers_its_methods(tmp_path, monkeypatch):
    (tmp_path / "toy_package.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    point = importlib.metadata.EntryPoint("toy", "toy_package", ENTRY_POINTS)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [point] if group == ENTRY_POINTS else [])
    try:
        load_entry_points()
        assert "toy" in METHODS and base.ORIGINS["toy"] == "toy_package"
    finally:
        unregister("toy")
        sys.modules.pop("toy_package", None)


CHECKS = ["test_methods.py", "test_tune.py", "test_tables.py", "test_cli.py", "test_protocol.py", "test_audit.py",
          "test_settings.py", "test_grid.py", "test_stats.py", "test_decisions.py"]  # where methods are listed


@pytest.mark.slow
def test_the_fast_checks_pass_with_a_method_file_loaded(tmp_path):
    """`make check`'s tests of the modules that list methods, run again in a process that loads a throw-away
    method's file on import (as a worker does): the tests over every method take it, and nothing else needs
    an edit."""
    path = tmp_path / "throwaway.py"
    path.write_text(TOY.replace('"toy"', '"throwaway"'))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-o", "addopts=", "-m", "not slow", "-p",
                          "no:cacheprovider", *CHECKS], cwd=ROOT / "tests", capture_output=True, text=True,
                         env={**os.environ, FILES_VARIABLE: str(path)})
    assert run.returncode == 0, run.stdout[-4000:]
    assert "test_every_method_refuses_a_bad_knob_before_anything_trains[throwaway]" in run.stdout


def test_the_books_method_list_is_made_from_the_registry(toy_method):
    """book/api.md documents the module of every registered method of the package (tools/methods_api.py), a
    user's file left out: a method's new file needs no line of its own there."""
    spec_ = importlib.util.spec_from_file_location("methods_api", ROOT / "tools" / "methods_api.py")
    api = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(api)
    built_in = {spec(m).fn.__module__ for m in METHODS if base.ORIGINS[m].startswith("natmu_lite.")}
    assert set(api.method_modules()) == built_in and api.method_modules()[0] == "natmu_lite.methods.retrain"
    assert ".. registered-methods::" in (ROOT / "book" / "api.md").read_text()


def bad_values(method: str) -> list[dict]:
    """For each knob a value of the wrong kind (text for a number, a number for a bool or for text), and
    an unknown knob: each must be refused."""
    wrong = {bool: 1, str: 1.5}
    out = [{"no_such_knob": 1}]
    for knob, default in spec(method).defaults.items():
        if default is not None:
            out.append({knob: wrong.get(type(default), "many")})
    return out


@pytest.mark.parametrize("method", sorted(nl.METHODS))
def test_every_method_refuses_a_bad_knob_before_anything_trains(method, monkeypatch):
    data = synthetic(n_per_class=6)
    split = nl.make_split(data, "random", ratio=0.2)
    original = nl.build_model("small_cnn", num_classes=10, in_channels=1, image_size=12, seed=0)

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(torch.optim.Optimizer, "__init__", no_training)
    monkeypatch.setattr(base, "working_copy", no_training)
    for knobs in bad_values(method):
        with pytest.raises(ValueError, match=f"{spec(method).display}|{method}"):
            nl.METHODS[method](original, data, split, nl.Recipe(epochs=1), progress=False, **knobs)


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(nl.METHODS))
def test_every_method_runs_on_the_default_setting(method, fmnist, fmnist_original, monkeypatch):
    """Through ``run_method``: the method gets the setting's recipe and knobs, returns a model of its own
    (the original untouched), whose reported RA and FA are its own (against a plain forward pass), and
    it never teaches the forget set: FA does not rise above the original's (which memorised it)."""
    setting = replace(DEFAULT, train=DEFAULT.train.with_(epochs=1), unlearn=DEFAULT.unlearn.with_(epochs=1))
    s = nl.make_split(fmnist, "random", ratio=0.05, seed=1)  # 100 samples, as 1% of the default
    got, real = {}, nl.METHODS[method]
    monkeypatch.setitem(nl.METHODS, method, lambda *a, **k: got.update(recipe=a[3], kwargs=k) or real(*a, **k))
    before = {k: v.clone() for k, v in fmnist_original.state_dict().items()}
    run = run_method(method, fmnist_original, fmnist, s, setting, seed=1, progress=False)
    assert got["recipe"] == setting.recipe_for(method)
    assert {k: v for k, v in got["kwargs"].items() if k not in ("seed", "callback", "progress")} \
        == setting.knobs.get(method, {}) and got["kwargs"]["seed"] == 1
    assert all(torch.equal(v, fmnist_original.state_dict()[k]) for k, v in before.items())
    assert any(not torch.equal(v, before[k]) for k, v in run.model.state_dict().items())
    ra, ra_slack = ref_accuracy(ref_logits(run.model, fmnist.test_x), fmnist.test_y)
    fa, fa_slack = ref_accuracy(ref_logits(run.model, fmnist.train_x[s.forget]), fmnist.train_y[s.forget])
    assert abs(run.metrics["RA"] - ra) <= ra_slack + 1e-4 and abs(run.metrics["FA"] - fa) <= fa_slack + 1e-4
    original_fa, _ = ref_accuracy(ref_logits(fmnist_original, fmnist.train_x[s.forget]), fmnist.train_y[s.forget])
    assert fa <= original_fa + fa_slack


@pytest.mark.slow
@pytest.mark.parametrize("method, knobs", [("neggradplus", dict(beta=1.0)), ("l1sparse", dict(gamma=0.0))])
def test_the_limit_of_no_forgetting_term_is_exactly_finetune(method, knobs, tiny_request):
    """NegGrad+ with beta = 1 and ℓ1-sparse with gamma = 0 are Finetune: same seed, same weights
    (parameters and BN statistics, so not even a forget batch went through the model); any other value
    changes the run."""
    data, split, original = tiny_request
    recipe = nl.Recipe(epochs=2, batch_size=32)
    finetune = nl.METHODS["finetune"](original, data, split, recipe, seed=1, progress=False)
    assert same_weights(nl.METHODS[method](original, data, split, recipe, seed=1, progress=False, **knobs), finetune)
    other = {"beta": 0.9} if method == "neggradplus" else {"gamma": 1e-4}
    assert not same_weights(nl.METHODS[method](original, data, split, recipe, seed=1, progress=False, **other),
                            finetune)


BAD_KNOBS = [  # (method, knobs, the words of the refusal)
    ("salun", dict(fraction=0.0), "SalUn fraction must be a number in (0, 1]"),
    ("badteacher", dict(reduction="sum"), "BadTeacher reduction must be one of batchmean, mean, got 'sum'"),
    ("badteacher", dict(retain_fraction=2), "BadTeacher retain_fraction must be a number in (0, 1], got 2"),
    ("amnesiac", dict(labels="any"), "Amnesiac labels must be one of uniform, retain, got 'any'"),
    ("ssd", dict(alpha=-1.0), "SSD alpha must be a number > 0"),
    ("neggradplus", dict(beta=1.5), "NegGrad+ beta must be a number in [0, 1]"),
    ("neggradplus", dict(beta=-0.1), "NegGrad+ beta must be a number in [0, 1]"),
    ("neggradplus", dict(beta=float("nan")), "beta must be a number"),
    ("scrub", dict(msteps=-1), "SCRUB msteps must be an integer >= 0"),
    ("scrub", dict(msteps=1.5), "SCRUB msteps must be an integer"),
    ("scrub", dict(msteps=True), "SCRUB msteps must be an integer"),
    ("scrub", dict(temperature=0.0), "SCRUB temperature must be a number > 0"),
    ("scrub", dict(temperature=-4.0), "SCRUB temperature must be a number > 0"),
    ("scrub", dict(alpha=-0.5), "SCRUB alpha must be a number >= 0"),
    ("scrub", dict(gamma=-1.0), "SCRUB gamma must be a number >= 0"),
    ("l1sparse", dict(gamma=-5e-4), "ℓ1-sparse gamma must be a number >= 0"),
    ("l1sparse", dict(gamma=math.inf), "ℓ1-sparse gamma must be a number >= 0"),
    ("l1sparse", dict(alpha=5e-4), "l1sparse has no parameter 'alpha'"),
]


@pytest.mark.parametrize("method, knobs, words", BAD_KNOBS, ids=[f"{m} {k}" for m, k, _ in BAD_KNOBS])
def test_bad_knobs_are_refused_before_anything_trains(method, knobs, words, tiny_request, monkeypatch):
    """Through the registry's check (what the benchmark and the CLI call first) and through the method
    itself, which refuses the value before it builds an optimiser."""
    data, split, original = tiny_request
    with pytest.raises(ValueError, match=re.escape(words)):
        check_knobs(method, knobs)

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(torch.optim.Optimizer, "__init__", no_training)
    with pytest.raises((ValueError, TypeError)):
        nl.METHODS[method](original, data, split, nl.Recipe(epochs=1), progress=False, **knobs)


def test_boundary_knobs_are_accepted():
    for method, knobs in (("neggradplus", dict(beta=0)), ("neggradplus", dict(beta=1)), ("scrub", dict(msteps=0)),
                          ("scrub", dict(alpha=0, gamma=0, temperature=1e-3)), ("l1sparse", dict(gamma=0))):
        check_knobs(method, knobs)


def test_the_verdict_pages_example_method_registers_and_unlearns(tmp_path, monkeypatch, tiny_request):
    """The method file the book's "Judge your own method" page shows, as a reader copies it: it loads, its
    search space samples, and it returns a model that differs from the original, which it leaves as it was."""
    from pathlib import Path

    from natmu_lite.methods import FILES_VARIABLE, load_file

    page = (Path(__file__).parent.parent / "book" / "verdict.md").read_text()
    path = tmp_path / "my_method.py"
    path.write_text(re.search(r"```python\n(.*?)```", page, re.S).group(1))
    monkeypatch.delenv(FILES_VARIABLE, raising=False)
    try:
        assert load_file(path) == ["mine"]
        assert SEARCH_SPACES["mine"](optuna.trial.FixedTrial({"lr": 0.01})) == {"lr": 0.01}
        data, split, original = tiny_request
        before = {k: v.clone() for k, v in original.state_dict().items()}
        out = METHODS["mine"](original, data, split, nl.Recipe("adamw", lr=1e-2, epochs=1), progress=False)
        assert any(not torch.equal(a, out.state_dict()[k]) for k, a in before.items())
        assert all(torch.equal(v, original.state_dict()[k]) for k, v in before.items())
    finally:
        unregister("mine")


def test_the_committed_verdicts_example_method_trains_its_last_layers_only(tiny_request, monkeypatch):
    """``examples/cf_k.py`` (CF-k, whose verdict the book shows): the last ``layers`` weighted modules change,
    every earlier one keeps the original's weights, and the returned model is trainable again."""
    from pathlib import Path

    from natmu_lite.methods import FILES_VARIABLE, load_file

    monkeypatch.delenv(FILES_VARIABLE, raising=False)
    try:
        assert load_file(Path(__file__).parent.parent / "examples" / "cf_k.py") == ["cfk"]
        data, split, original = tiny_request
        out = METHODS["cfk"](original, data, split, nl.Recipe("adamw", lr=1e-2, epochs=3), layers=2, progress=False)
        changed = [name for name, p in out.named_parameters() if not torch.equal(p, original.get_parameter(name))]
        assert changed == ["hidden.weight", "hidden.bias", "fc.weight", "fc.bias"]
        assert all(p.requires_grad for p in out.parameters())
        with pytest.raises(ValueError, match="CF-k layers must be an integer >= 1"):
            METHODS["cfk"](original, data, split, nl.Recipe("adamw", lr=1e-2, epochs=1), layers=0, progress=False)
    finally:
        unregister("cfk")
