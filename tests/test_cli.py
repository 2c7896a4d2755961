"""The ``natmu-lite`` command: a reduced demo end to end, and clear errors."""

import natmu_lite.cli as cli


def test_demo_prints_the_three_models(capsys):
    code = cli.main(["demo", "--train-size", "1000", "--epochs", "2", "--quiet", "--scenario", "full-class"])
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
