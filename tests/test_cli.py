"""The ``natmu-lite`` command: a reduced demo end to end, and clear errors."""

import json

import pytest

import natmu_lite.cli as cli


@pytest.mark.slow
def test_demo_prints_the_three_models(capsys):
    code = cli.main(["demo", "--train-size", "1000", "--test-size", "500", "--epochs", "2", "--quiet", "--scenario",
                     "full-class"])
    out = capsys.readouterr().out
    assert code == 0
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    assert lines["model"][1:5] == ["RA", "FATrain", "FATest", "MIA"]
    assert {"original", "retrain", "natmu"} <= set(lines)
    assert float(lines["retrain"][2]) == 0.0  # Retrain never saw the class


def test_unknown_scenario_is_a_clean_error(capsys):
    code = cli.main(["demo", "--scenario", "everything"])
    assert code == 2
    assert "valid: random-1%" in capsys.readouterr().err


def test_fetch_finds_fashion_mnist(capsys):
    assert cli.main(["fetch"]) == 0
    assert "fashion-mnist" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_table_and_presets_on_a_reduced_default(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NATMU_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "r.json"
    args = ["bench", "--train-size", "600", "--test-size", "500", "--epochs", "1", "--unlearn-epochs", "1",
            "--scenarios", "random-10%", "--methods", "natmu", "ssd", "--seeds", "2", "--out", str(out), "--quiet"]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "NatMU" in text and "AvgGap" in text and "6 runs" in text
    assert cli.main(["table", str(out), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| target | metric | Retrain |")
    assert cli.main(["settings"]) == 0
    assert "cifar20-subclass" in capsys.readouterr().out


def test_bad_arguments_exit_non_zero(tmp_path, capsys):
    assert cli.main(["table", str(tmp_path / "missing.json")]) == 2
    import pytest
    for bad in (["bench", "--setting", "nope"], ["bench", "--seeds", "0"]):  # refused by argparse
        with pytest.raises(SystemExit) as e:
            cli.main(bad)
        assert e.value.code == 2


@pytest.mark.slow
def test_tune_saves_a_setting_file_that_bench_reads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NATMU_CACHE", str(tmp_path / "cache"))
    size = ["--train-size", "600", "--test-size", "500", "--epochs", "1"]
    setting = tmp_path / "tuned.json"
    assert cli.main(["tune", *size, "--method", "ssd", "--scenario", "random-10%", "--trials", "2", "--storage",
                     f"sqlite:///{tmp_path / 's.db'}", "--save-setting", str(setting)]) == 0
    assert "best AvgGap" in capsys.readouterr().out and setting.exists()
    assert cli.main(["bench", "--setting-file", str(setting), *size, "--scenarios", "random-10%", "--methods", "ssd",
                     "--out", str(tmp_path / "r.json"), "--quiet"]) == 0
    assert "default+tuned" in (tmp_path / "r.json").read_text()
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert cli.main(["transfer", *size, "--method", "ssd", "--from-scenario", "random-1%", "--to-scenario",
                     "random-10%", "--storage", storage, "--out", str(tmp_path / "t.json")]) == 2
    assert "natmu-lite: error" in capsys.readouterr().err  # no study was run on random-1%


def test_compile_flag_reaches_every_training_recipe():
    args = cli.parser().parse_args(["bench", "--compile", "reduce-overhead", "--epochs", "3"])
    setting = cli.chosen_setting(args)
    assert setting.train.compile == setting.unlearn.compile == "reduce-overhead"
    assert setting.train.epochs == 3 and setting.recipe_for("salun").compile == "reduce-overhead"


def test_the_old_preset_spellings_still_work():
    """One word, "setting", everywhere; what users typed before stays an alias."""
    p = cli.parser()
    assert p.parse_args(["bench", "--preset", "default-subclass"]).setting == "default-subclass"
    assert p.parse_args(["bench", "--preset-file", "t.json"]).setting_file == "t.json"
    assert p.parse_args(["tune", "--method", "ssd", "--save-preset", "t.json"]).save_setting == "t.json"
    assert p.parse_args(["presets"]).func is p.parse_args(["settings"]).func
    assert p.parse_args(["audit", "--method", "ssd", "--target-fraction", "0.2"]).candidate_fraction == 0.2
    assert p.parse_args(["bench"]).setting == "default" and p.parse_args(["table", "r.json"]).setting is None


def test_the_old_spellings_are_hidden_from_the_help():
    """An old spelling works for one release but is never taught: no --help shows it."""
    p = cli.parser()
    commands = p._subparsers._group_actions[0].choices
    helps = [p.format_help()] + [s.format_help() for name, s in commands.items() if name != "presets"]
    for old in ("--preset", "--preset-file", "--save-preset", "--target-fraction", "presets"):
        assert not any(old in h for h in helps), old


def test_the_cli_runs_neggradplus_scrub_and_l1sparse_and_refuses_their_bad_knobs(tmp_path, capsys):
    args = cli.parser().parse_args(["bench", "--methods", "neggradplus", "scrub", "l1sparse"])
    assert args.methods == ["neggradplus", "scrub", "l1sparse"]
    setting = tmp_path / "bad.json"
    setting.write_text(json.dumps({"base": "default", "methods": {"scrub": {"temperature": -1}}}))
    out = tmp_path / "r.json"
    assert cli.main(["bench", "--setting-file", str(setting), "--methods", "scrub", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "method scrub" in err and "SCRUB temperature must be a number > 0, got -1" in err
    assert not out.exists()
