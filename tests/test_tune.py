"""Hyperparameter search: it finds something no worse than the defaults, workers share one study
(SQLite here, PostgreSQL in CI), transfer and setting files work."""

import os
import subprocess
import sys
from dataclasses import replace

import optuna
import pytest

from natmu_lite import setting_file
from natmu_lite.cache import cached_model
from natmu_lite.methods import SEARCH_SPACES
from natmu_lite.methods.base import check_knobs, knob_names
from natmu_lite.metrics import avg_gap, evaluate
from natmu_lite.runs import run_method
from natmu_lite.setting import RECIPE_FIELDS, load_setting_data, make_scenario_split, split_params, with_params
from natmu_lite.settings import DEFAULT
from natmu_lite.tune import default_params, search_distributions, transfer, tune

# 500 test images (class-balanced), not 10k: every trial evaluates on the test set after each epoch
TINY = replace(DEFAULT, train_size=800, test_size=500, train=DEFAULT.train.with_(epochs=2),
               unlearn=DEFAULT.unlearn.with_(epochs=2), recipe_changes={})
TINY_ARGS = ["--train-size", "800", "--test-size", "500", "--epochs", "2", "--unlearn-epochs", "2"]


def default_gap(setting, scenario, method):
    data = load_setting_data(setting)
    split = make_scenario_split(setting, data, scenario)
    original, _ = cached_model("original", setting, data, 0, progress=False)
    retrained, _ = cached_model("retrain", setting, data, 0, split, progress=False)
    run = run_method(method, original, data, split, setting, progress=False)
    return avg_gap(run.metrics, evaluate(retrained, data, split))


@pytest.mark.slow
def test_a_small_study_is_no_worse_than_the_defaults(cache, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = tune(TINY, "random-10%", "ssd", trials=6, storage=storage, sampler_seed=0)
    assert len(study.trials) == 6 and study.best_trial.user_attrs["worker"] == os.getpid()
    # trial 0 is the setting's own parameters, and the objective reproduces their gap exactly ...
    assert study.trials[0].params == default_params(TINY, "ssd")
    assert study.trials[0].value == pytest.approx(default_gap(TINY, "random-10%", "ssd"), abs=1e-9)
    # the study minimises the gap, and its best trial is real: its recorded parameters, run again
    # outside the study, give its value (so the reported optimum belongs to the reported parameters)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert study.best_value == min(t.value for t in study.trials)
    best = with_params(TINY, "ssd", study.best_params)
    assert study.best_value == pytest.approx(default_gap(best, "random-10%", "ssd"), abs=1e-9)
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 6  # distinct parameters explored
    assert len({round(t.value, 9) for t in study.trials}) > 1  # ... that make a difference
    # a training method runs through the same objective, with per-epoch reports for the pruner
    s2 = tune(TINY, "random-10%", "natmu", trials=2, storage=storage, sampler_seed=0)
    assert len(s2.trials[1].intermediate_values) == s2.trials[1].params["epochs"]


def run_workers(storage: str, study: str, n: int, trials: int, env: dict) -> None:
    cmd = [sys.executable, "-m", "natmu_lite.cli", "tune", *TINY_ARGS, "--method", "ssd", "--scenario",
           "random-10%", "--trials", str(trials), "--storage", storage, "--study", study]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(n)]
    outs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs


def check_shared(storage: str, study: str, n: int, trials: int) -> None:
    s = optuna.load_study(study_name=study, storage=storage)
    assert len(s.trials) == n * trials
    assert len({t.number for t in s.trials}) == n * trials  # every trial is distinct ...
    workers = [t.user_attrs["worker"] for t in s.trials]
    assert len(set(workers)) == n and all(workers.count(w) == trials for w in set(workers))  # ... and run once
    assert all(t.state.name == "COMPLETE" for t in s.trials)


@pytest.mark.slow
def test_two_workers_split_one_sqlite_study(cache, tmp_path):
    data = load_setting_data(TINY)  # warm the shared cache, so that the workers only tune
    cached_model("original", TINY, data, 0, progress=False)
    cached_model("retrain", TINY, data, 0, make_scenario_split(TINY, data, "random-10%"), progress=False)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    run_workers(storage, "shared", n=2, trials=3, env={**os.environ})
    check_shared(storage, "shared", 2, 3)


def test_two_workers_split_one_postgresql_study(cache):
    url = os.environ.get("NATMU_TEST_POSTGRES")
    if not url:  # before warming the cache, which would be wasted on a skip
        if os.environ.get("NATMU_REQUIRE_POSTGRES"):
            pytest.fail("NATMU_REQUIRE_POSTGRES is set but NATMU_TEST_POSTGRES gives no server URL")
        pytest.skip("no PostgreSQL server (CI starts one: .ci/postgres.sh)")
    data = load_setting_data(TINY)
    cached_model("original", TINY, data, 0, progress=False)
    cached_model("retrain", TINY, data, 0, make_scenario_split(TINY, data, "random-10%"), progress=False)
    study = f"ci-{os.getpid()}"
    run_workers(url, study, n=2, trials=2, env={**os.environ})
    check_shared(url, study, 2, 2)
    optuna.delete_study(study_name=study, storage=url)


@pytest.mark.slow
def test_transfer_and_setting_files(cache, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = tune(TINY, "random-10%", "ssd", trials=3, storage=storage, sampler_seed=1)
    frame = transfer(TINY, "random-10%", "random-1%", "ssd", storage, [0], tmp_path / "r.json", progress=False)
    assert set(frame.method) == {"retrain", "ssd"} and set(frame.setting) == {"default@random-10%"}
    assert set(frame.scenario) == {"random-1%"}
    path = tmp_path / "tuned.json"
    setting_file.save(path, TINY, "ssd", study.best_params)
    setting_file.save(path, TINY, "natmu", {"lr": 1e-3, "delta": -0.1})
    loaded = setting_file.load(path)
    assert loaded.knobs["ssd"] == {**DEFAULT.knobs["ssd"], **study.best_params}
    assert loaded.knobs["natmu"]["delta"] == -0.1 and loaded.recipe_for("natmu").lr == 1e-3
    assert with_params(DEFAULT, "ga", {"epochs": 2}).recipe_for("ga").epochs == 2
    with pytest.raises(ValueError, match="based on setting"):
        setting_file.save(path, replace(DEFAULT, name="other"), "ssd", {})


@pytest.mark.parametrize("method", sorted(SEARCH_SPACES))
def test_search_space_starts_at_the_defaults_and_proposes_valid_knobs(method):
    """The warm-start trial holds every searched parameter (so trial 0 is the setting itself), each
    inside its distribution, and every value the space can propose passes the method's checks."""
    distributions = search_distributions(method)
    assert set(distributions) <= RECIPE_FIELDS | knob_names(method)
    start = default_params(DEFAULT, method)
    assert set(start) == set(distributions)
    for name, value in start.items():
        assert distributions[name]._contains(distributions[name].to_internal_repr(value)), (name, value)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        recipe, knobs = split_params(SEARCH_SPACES[method](study.ask()))
        DEFAULT.recipe_for(method).with_(**recipe)
        check_knobs(method, knobs)
