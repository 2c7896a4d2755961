"""Bad input is refused before anything trains, with a message that names the argument or file (exit 2,
no traceback), results files shared by processes never lose a row, and a run is reused only by the
configuration that made it.

The CLI cases run the real command in a subprocess. ``refused`` runs it (through ``runpy``, as
``python -m natmu_lite.cli`` does) with the optimisers disabled, so that a check that only came after
training had started fails at once with exit 1 ("TRAINING STARTED") instead of passing after a run.
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import natmu_lite as nl
import natmu_lite.datasets as data_module
import natmu_lite.grid as grid
from natmu_lite.grid import result_row, run_grid
from natmu_lite.runs import Run
from natmu_lite.setting import resized
from natmu_lite.settings import DEFAULT

from .conftest import synthetic

ROOT = Path(__file__).resolve().parents[1]
NO_TRAINING = ("import runpy, sys, torch\n"
               "def refuse(*args, **kwargs):\n    sys.exit('TRAINING STARTED')\n"
               "torch.optim.Optimizer.__init__ = refuse\n"
               "runpy.run_module('natmu_lite.cli', run_name='__main__', alter_sys=True)\n")


def env(tmp_path: Path) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "NATMU_CACHE": str(tmp_path / "cache")}


def refused(tmp_path: Path, *args: str, prefix: tuple[str, ...] = ()) -> str:
    """Run ``natmu-lite *args`` without training; assert exit 2 and no traceback; return stderr."""
    result = subprocess.run([*prefix, sys.executable, "-c", NO_TRAINING, *args], cwd=ROOT, env=env(tmp_path),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


ROWS = [dict(setting="x", scenario="random-1%", target="1%", method=m, seed=0, RA=90.0, FATrain=88.0, FATest=None,
             MIA=70.0, RetainAcc=99.0, seconds=1.0) for m in ("retrain", "natmu")]
FILES = {
    "notjson.json": "this is not JSON",
    "shape.json": json.dumps({"setting": "x"}),
    "nomia.json": json.dumps([{k: v for k, v in r.items() if k != "MIA"} for r in ROWS]),
    "rows.json": json.dumps(ROWS),
    "list-setting.json": json.dumps([{"base": "default"}]),
    "param-setting.json": json.dumps({"base": "default", "methods": {"natmu": {"lr": 1e-3, "foo": 1}}}),
    "epochs-setting.json": json.dumps({"base": "default", "methods": {"natmu": {"epochs": -1}}}),
    "delta-setting.json": json.dumps({"base": "default", "methods": {"natmu": {"delta": -5}}}),
    "base-setting.json": json.dumps({"base": "nope", "methods": {}}),
}
QUICK = ["--train-size", "200", "--epochs", "1", "--quiet"]
CASES = {  # id: (arguments, {tmp} for the folder, words the message must hold)
    "epochs -1": (["bench", "--epochs", "-1"], ["argument --epochs", "got -1"]),
    "epochs 0": (["bench", "--epochs", "0"], ["argument --epochs", "got 0"]),
    "unlearn-epochs -1": (["bench", "--unlearn-epochs", "-1"], ["argument --unlearn-epochs"]),
    "train-size 0": (["demo", "--train-size", "0"], ["argument --train-size"]),
    "seeds 0": (["bench", "--seeds", "0"], ["argument --seeds"]),
    "demo seed -1": (["demo", "--seed", "-1"], ["argument --seed", "got -1"]),
    "demo unknown scenario": (["demo", "--scenario", "everything"], ["unknown scenario 'everything'"]),
    "bench unknown scenario": (["bench", "--scenarios", "everything", "--out", "{tmp}/r.json"],
                               ["unknown scenario 'everything'", "valid: random-1%"]),
    "out in a missing folder": (["bench", "--out", "{tmp}/nope/r.json"], ["--out", "nope/r.json", "does not exist"]),
    "out a directory": (["bench", "--out", "{tmp}"], ["--out", "is a directory"]),
    "out not JSON": (["bench", "--out", "{tmp}/notjson.json"], ["notjson.json is not JSON"]),
    "out wrong shape": (["bench", "--out", "{tmp}/shape.json"], ["shape.json: expected a JSON list"]),
    "out row without MIA": (["bench", "--out", "{tmp}/nomia.json"], ["nomia.json: row 0", "lacks MIA"]),
    "table on a directory": (["table", "{tmp}"], ["is a directory"]),
    "table not JSON": (["table", "{tmp}/notjson.json"], ["notjson.json is not JSON"]),
    "table wrong shape": (["table", "{tmp}/shape.json"], ["shape.json: expected a JSON list"]),
    "table row without MIA": (["table", "{tmp}/nomia.json"], ["lacks MIA"]),
    "table unknown setting": (["table", "{tmp}/rows.json", "--setting", "nope"], ["--setting 'nope'", "holds: x"]),
    "tune storage not a URL": (["tune", "--method", "ssd", "--storage", "notaurl"],
                               ["--storage 'notaurl' is not a database URL"]),
    "tune storage without driver": (["tune", "--method", "ssd", "--storage", "postgresql+pg8000://u@h/db"],
                                    ["--storage", "driver is not installed"]),
    "tune sqlite in a missing folder": (["tune", "--method", "ssd", "--storage", "sqlite:///{tmp}/nope/s.db"],
                                        ["--storage", "nope does not exist"]),
    "tune unknown scenario": (["tune", "--method", "ssd", "--scenario", "everything", "--storage",
                               "sqlite:///{tmp}/s.db"], ["unknown scenario 'everything'"]),
    "tune save-setting not a setting": (["tune", "--method", "ssd", "--storage", "sqlite:///{tmp}/s.db",
                                       "--save-setting", "{tmp}/shape.json"], ["--save-setting", "expected a JSON"]),
    "transfer never tuned": (["transfer", "--method", "ssd", "--from-scenario", "random-1%", "--to-scenario",
                              "random-10%", "--storage", "sqlite:///{tmp}/s.db", "--out", "{tmp}/t.json"],
                             ["--storage", "s.db does not exist", "natmu-lite tune"]),
    "transfer unknown scenario": (["transfer", "--method", "ssd", "--from-scenario", "random-1%", "--to-scenario",
                                   "everything"], ["unknown scenario 'everything'"]),
    "setting file missing": (["bench", "--setting-file", "{tmp}/nope.json"], ["--setting-file", "does not exist"]),
    "setting file not JSON": (["bench", "--setting-file", "{tmp}/notjson.json"], ["--setting-file", "is not JSON"]),
    "setting file a list": (["bench", "--setting-file", "{tmp}/list-setting.json"],
                           ["--setting-file", "list-setting.json", "expected a JSON object"]),
    "setting file unknown parameter": (["bench", "--setting-file", "{tmp}/param-setting.json"],
                                      ["param-setting.json", "natmu has no parameter 'foo'"]),
    "setting file unknown base": (["bench", "--setting-file", "{tmp}/base-setting.json"],
                                  ["unknown base setting 'nope'"]),
    "setting file epochs -1": (["bench", "--setting-file", "{tmp}/epochs-setting.json", *QUICK],
                              ["epochs-setting.json", "recipe epochs must be an integer >= 1, got -1"]),
    "setting file delta -5": (["bench", "--setting-file", "{tmp}/delta-setting.json", *QUICK],
                             ["delta-setting.json", "delta must be a number in [-1, 1]"]),
    "protocol storage not a URL": (["protocol", "--storage", "notaurl"], ["--storage 'notaurl'"]),
    "audit models 5": (["audit", "--method", "natmu", "--models", "5"], ["argument --models", "got 5"]),
    "audit unknown method": (["audit", "--method", "unlearn"], ["argument --method", "invalid choice: 'unlearn'"]),
    "audit out in a missing folder": (["audit", "--method", "natmu", "--out", "{tmp}/nope/a.json"],
                                      ["--out", "nope/a.json", "does not exist"]),
    "audit setting file unknown parameter": (["audit", "--method", "natmu", "--setting-file",
                                              "{tmp}/param-setting.json"],
                                            ["param-setting.json", "natmu has no parameter 'foo'"]),
    "audit tuned by a missing export": (["audit", "--method", "natmu", "--tuned-by", "{tmp}/none.json"],
                                         ["--tuned-by", "none.json", "no exported protocol results"]),
    "audit tuned by an unknown protocol": (["audit", "--method", "natmu", "--tuned-by", "nope"],
                                           ["--tuned-by nope", "nope.json"]),
    "audit workers 0": (["audit", "--method", "all", "--workers", "0"], ["argument --workers"]),
}


@pytest.mark.slow  # a process per case
@pytest.mark.parametrize("case", list(CASES))
def test_the_cli_refuses_bad_input_before_training(case, tmp_path):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    args, words = CASES[case]
    before = sorted(tmp_path.rglob("*"))
    err = refused(tmp_path, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    for word in words:
        assert word.replace("{tmp}", str(tmp_path)) in err, (word, err)
    assert sorted(tmp_path.rglob("*")) == before  # no database, results or lock file left behind


@pytest.mark.slow
def test_transfer_from_a_study_that_is_not_in_the_storage(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="default/random-10%/ssd", storage=storage)
    err = refused(tmp_path, "transfer", "--method", "ssd", "--from-scenario", "random-1%", "--to-scenario",
                  "random-10%", "--storage", storage, "--out", str(tmp_path / "t.json"))
    assert "holds no study 'default/random-1%/ssd'" in err and "it holds: default/random-10%/ssd" in err
    assert not (tmp_path / "t.json").exists()


@pytest.mark.slow
def test_out_on_a_read_only_file_system(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    mount = ["unshare", "-m", "sh", "-c", f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} "
             '&& exec "$@"', "sh"]
    if shutil.which("unshare") is None or subprocess.run([*mount, "true"], capture_output=True).returncode:
        pytest.skip("cannot mount a read-only folder here (needs unshare and root)")
    err = refused(tmp_path, "bench", "--out", str(folder / "r.json"), prefix=tuple(mount))
    assert "--out" in err and "Read-only file system" in err


@pytest.mark.slow
def test_concurrent_bench_processes_never_lose_a_row(tmp_path):
    """Two real `natmu-lite bench` processes on one --out, with a run in common (ssd) and one each:
    every run of both is in the file exactly once."""
    out = tmp_path / "r.json"
    args = ["bench", "--train-size", "200", "--test-size", "200", "--epochs", "1", "--unlearn-epochs", "1",
            "--scenarios", "random-10%", "--out", str(out), "--quiet"]
    procs = [subprocess.Popen([sys.executable, "-m", "natmu_lite.cli", *args, "--methods", "ssd", other], cwd=ROOT,
                              env=env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for other in ("finetune", "ga")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    runs = [(r["method"], r["seed"]) for r in json.loads(out.read_text())]
    assert sorted(runs) == [("finetune", 0), ("ga", 0), ("retrain", 0), ("ssd", 0)]


# ---------------------------------------------------------------------------------------------
# the library: recipes, knobs, splits, sizes, configurations, collapse

@pytest.mark.parametrize("changes, words", [
    (dict(epochs=0), "epochs must be an integer >= 1, got 0"), (dict(epochs=-1), "epochs"),
    (dict(epochs=2.5), "epochs must be an integer"), (dict(batch_size=0), "batch_size must be an integer >= 1"),
    (dict(lr=-1.0), "lr must be a number >= 0"),
    (dict(lr=float("nan")), "lr"), (dict(weight_decay=-1e-4), "weight_decay"), (dict(momentum=1.5), "momentum"),
    (dict(warmup_epochs=-1), "warmup_epochs"), (dict(crop_padding=-4), "crop_padding"),
    (dict(optimizer="lion"), "unknown optimizer 'lion'; valid: sgd, adamw"),
    (dict(schedule="linear"), "unknown schedule 'linear'"), (dict(compile="fast"), "unknown compile 'fast'"),
])
def test_recipes_are_checked_when_made(changes, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[")):
        nl.Recipe(**changes)
    with pytest.raises(ValueError, match=words.replace("[", r"\[")):
        nl.Recipe().with_(**changes)
    with pytest.raises(ValueError, match="no field 'epoch'"):
        nl.Recipe().with_(epoch=3)


def test_avg_gap_refuses_a_missing_metric():
    full = {"RA": 90.0, "FA": 80.0, "MIA": 70.0}
    assert nl.avg_gap(full, full) == 0
    with pytest.raises(ValueError, match="the result lacks MIA"):
        nl.avg_gap({"RA": 90.0, "FA": 80.0}, full)
    with pytest.raises(ValueError, match="Retrain lacks FATest"):
        nl.avg_gap({**full, "FATrain": 1.0, "FATest": 2.0}, {**full, "FATrain": 1.0})


def test_a_collapsed_run_is_flagged_with_a_warning():
    data = synthetic()
    split = nl.make_split(data, "random", ratio=0.1)
    setting = replace(DEFAULT, scenarios={"r": dict(kind="random", ratio=0.1)})
    metrics = {"RA": 10.0, "FA": 10.0, "MIA": 0.0, "RetainAcc": 10.0}
    with pytest.warns(UserWarning, match="collapsed"):
        row = result_row(setting, "r", split, Run("ga", None, metrics, 1.0), 0, data.num_classes)
    assert row["collapsed"] is True and row["config"] == grid.run_config(setting, "r", "ga")
    ok = result_row(setting, "r", split, Run("ga", None, {**metrics, "RetainAcc": 20.0}, 1.0), 0, data.num_classes)
    assert ok["collapsed"] is False  # 200 / K = 20%: exactly twice chance is not collapsed


def test_splits_refuse_a_ratio_or_target_of_the_wrong_type():
    data = synthetic()
    with pytest.raises(ValueError, match="number ratio in \\(0, 1\\), got '0.1'"):
        nl.make_split(data, "random", ratio="0.1")
    with pytest.raises(ValueError, match="target must be a class name .* got 3"):
        nl.make_split(data, "full-class", target=3)


def test_natmu_knobs_out_of_range():
    data = synthetic(k=4, n_per_class=8)
    model = nl.model_for("small_cnn", data)
    split = nl.make_split(data, "full-class", target="c0")
    for delta in (5, -5, float("nan")):
        with pytest.raises(ValueError, match=r"delta must be a number in \[-1, 1\]"):
            nl.build_unlearning_set(model, data, split, delta=delta)
    with pytest.raises(ValueError, match="between 1 and K - 1 = 3, got 5"):
        nl.build_unlearning_set(model, data, split, n=5)
    with pytest.raises(ValueError, match="got 0"):
        nl.METHODS["natmu"](model, data, split, nl.Recipe(), n=0, progress=False)


def test_a_subset_smaller_than_asked_is_reported(monkeypatch):
    monkeypatch.setitem(data_module.LOADERS, "tiny", lambda root: synthetic())
    with pytest.warns(UserWarning, match=r"train_size=15 gives 10 images.*15 // 10 = 1 per class"):
        assert len(nl.load_dataset("tiny", train_size=15).train_y) == 10
    with pytest.warns(UserWarning, match="more than the 200 train images"):
        nl.load_dataset("tiny", train_size=500)
    with pytest.raises(ValueError, match="test_size must be a positive integer"):
        nl.load_dataset("tiny", test_size=-1)


TINY = replace(DEFAULT, name="tiny", dataset="synthetic", train=nl.Recipe("sgd", lr=0.05, epochs=1, batch_size=64),
               unlearn=nl.Recipe("adamw", lr=1e-3, epochs=1, batch_size=64), recipe_changes={}, knobs={},
               scenarios={"r": dict(kind="random", ratio=0.1)})


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*collapsed")
def test_runs_of_another_configuration_are_never_reused(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(grid, "load_setting_data", lambda setting: synthetic())
    calls, real = [], grid.run_method
    monkeypatch.setattr(grid, "run_method", lambda method, *a, **k: calls.append(method) or real(method, *a, **k))
    out = tmp_path / "r.json"
    first = run_grid(TINY, ["r"], ["finetune"], [0], out, progress=False)
    longer = run_grid(resized(TINY, unlearn_epochs=2), ["r"], ["finetune"], [0], out, progress=False)
    assert calls == ["finetune", "finetune"]  # the longer unlearning is a run of its own
    assert first.config[0] == longer.config[0] and first.config[1] != longer.config[1]  # Retrain is shared
    assert len(run_grid(TINY, ["r"], ["finetune"], [0], out, progress=False)) == 2 and len(calls) == 2
    other = replace(TINY, train=TINY.train.with_(lr=0.04))
    run_grid(other, ["r"], ["finetune"], [0], out, progress=False)
    rows = json.loads(out.read_text())
    assert len(calls) == 3 and len(rows) == 5  # a new original recipe: new Retrain and finetune rows
    assert len({grid.run_id(r) for r in rows}) == 5


def test_unknown_knobs_are_refused_before_anything_runs(monkeypatch):
    monkeypatch.setattr(grid, "load_setting_data", lambda setting: pytest.fail("data loaded"))
    with pytest.raises(ValueError, match="method salun has no parameter 'delta'"):
        run_grid(replace(TINY, knobs={"salun": {"delta": 0.1}}), ["r"], ["salun"], progress=False)
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        run_grid(TINY, ["nope"], ["salun"], progress=False)
