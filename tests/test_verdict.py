"""``natmu-lite verdict``: a method from a file judged against the committed ten. Bad arguments are refused
before anything runs, naming the argument; a quick verdict at tiny sizes names the method in its report,
gives its row and decisions, labels itself quick, and leaves the committed results as they were."""

import hashlib
import json

import pandas as pd
import pytest

from natmu_lite import cli, results, verdict, verdict_report
from natmu_lite.protocol import PROTOCOLS
from natmu_lite.settings import SETTINGS

TOY = '''
from natmu_lite.methods import register
from natmu_lite.methods.base import working_copy
from natmu_lite.train import fit


def space(trial):
    return {"lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True)}


@register("toy", display="Toy method", color="#123456", space=space)
def toy(model, data, split, recipe, *, seed=0, callback=None, progress=True):
    """Fine-tuning on the retain set: a method that forgets by forgetting to look."""
    return fit(working_copy(model), data.train_x[split.retain], data.train_y[split.retain], recipe, seed=seed,
               callback=callback, progress=progress, desc="toy")
'''
TINY = ["--trials", "2", "--seeds", "2", "--train-size", "1000", "--test-size", "200", "--epochs", "1",
        "--unlearn-epochs", "1"]


def committed_state() -> dict:
    """Every file under results/ with its checksum: what a verdict must leave as it is."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(results.RESULTS.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("argv, names", [
    (["verdict", "nope"], "METHOD 'nope'"),
    (["verdict", "natmu"], "METHOD 'natmu' is one of the committed ten"),
    (["verdict", "toy", "--trials", "3"], "--trials is for --quick only"),
    (["verdict", "toy", "--quick", "--rivals", "natmu", "toy"], "--rivals natmu toy: 'toy' is not one of the"),
    (["verdict", "toy", "--rivals", "natmu"], "--rivals natmu: only with --quick"),
])
def test_a_bad_method_or_option_is_refused_naming_it(toy_file, tmp_path, capsys, argv, names):
    out = tmp_path / "out"
    assert cli.main(["--method-file", str(toy_file), *argv, "--out", str(out)]) == 2
    assert names in capsys.readouterr().err and not out.exists()


def test_a_folder_holding_another_verdict_or_other_files_is_refused(toy_file, tmp_path, capsys):
    taken, other = tmp_path / "taken", tmp_path / "other"
    taken.mkdir()
    (taken / verdict.STAMP).write_text(json.dumps({"method": "mine", "quick": True, "sizes": {}, "against": "default"}))
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    for out, says in ((taken, "holds the quick verdict of 'mine'"), (other, "holds files and no verdict")):
        assert cli.main(["--method-file", str(toy_file), "verdict", "toy", "--quick", "--out", str(out)]) == 2
        assert f"--out {out} {says}" in capsys.readouterr().err
    assert sorted(p.name for p in taken.iterdir()) == [verdict.STAMP]


def test_a_folder_inside_the_committed_results_is_refused(toy_file, capsys):
    out = results.RESULTS / "verdict-toy"
    assert cli.main(["--method-file", str(toy_file), "verdict", "toy", "--quick", "--out", str(out)]) == 2
    assert f"--out {out} is inside the committed results" in capsys.readouterr().err and not out.exists()


def test_a_full_verdict_refuses_a_machine_whose_runs_would_not_compare():
    with pytest.raises(ValueError, match="would not be comparable"):
        verdict.check_comparable({"device": "NVIDIA H100", "precision": "bf16", "torch": "0.0"})


def test_the_report_renders_the_same_blocks_as_markdown_and_html():
    frame = pd.DataFrame({"AvgGap": ["**1.0 [0.5, 1.5]**"]}, index=pd.Index(["Toy"], name="method"))
    report = [("h1", "Verdict: Toy <b>"), ("p", "see `x`"), ("table", frame)]
    md, page = verdict_report.markdown(report), verdict_report.to_html(report)
    assert md.startswith("# Verdict: Toy <b>") and "| method | AvgGap |" in md and "| Toy | **1.0 [0.5, 1.5]** |" in md
    assert "<h1>Verdict: Toy &lt;b&gt;</h1>" in page and "<code>x</code>" in page and "<b>1.0 [0.5, 1.5]</b>" in page


@pytest.mark.slow
def test_a_quick_verdict_names_the_method_gives_its_row_and_decisions_and_leaves_results_alone(
        toy_file, tmp_path, monkeypatch):
    monkeypatch.setenv("NATMU_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(SETTINGS, verdict.QUICK_PROTOCOL, verdict.quick_setting())  # removed afterwards
    monkeypatch.setitem(PROTOCOLS, verdict.QUICK_PROTOCOL, (verdict.QUICK_PROTOCOL,))
    before, out = committed_state(), tmp_path / "verdict"
    assert cli.main(["--method-file", str(toy_file), "verdict", "toy", "--quick", "--out", str(out), "--quiet",
                     "--rivals", "natmu", "ssd", *TINY]) == 0
    report, doc = (out / "verdict.md").read_text(), json.loads((out / verdict.EXPORT).read_text())
    assert report.startswith("# Verdict (QUICK): Toy method against NatMU, SSD")
    assert "| → Toy method |" in report and "vs NatMU" in report and "Against the best" in report
    assert doc["verdict"]["method"] == "toy" and doc["verdict"]["quick"] and "QUICK" in doc["verdict"]["compared"]
    assert "toy" in doc["methods"] and {"toy", "natmu"} <= {r["method"] for r in doc["runs"]}
    assert "<h1>Verdict (QUICK): Toy method" in (out / "verdict.html").read_text()
    assert cli.main(["--method-file", str(toy_file), "verdict", "toy", "--quick", "--out", str(out), "--quiet",
                     "--rivals", "natmu", "ssd", *TINY]) == 0  # resumed: finished, nothing runs again
    assert committed_state() == before


def test_a_full_verdict_runs_its_methods_runs_and_the_references_only():
    """The copy of the committed storage may hold runs the committed protocol has not finished: a verdict's
    protocol neither runs nor waits for them (``only``), only its method's and the references."""
    from natmu_lite.protocol import Protocol

    proto = Protocol("default", "sqlite:///:memory:", only=("natmu",))
    assert [proto.wanted(f"default|random-1%|{m}|0|tuned") for m in ("natmu", "ssd", "retrain", "original")] == \
        [True, False, True, True]
    assert Protocol("default", "sqlite:///:memory:").wanted("default|random-1%|ssd|0|tuned")


def test_a_run_queued_for_the_committed_protocol_is_left_not_run(tmp_path):
    """A copy's queue holds the committed protocol's queued runs: a verdict's worker pops and leaves them."""
    from optuna.trial import TrialState

    from natmu_lite.protocol import Protocol

    proto = Protocol("default", f"sqlite:///{tmp_path / 'copy.db'}", only=("natmu",))
    proto.queue("runs").enqueue_trial({}, user_attrs={"run": "default|random-1%|ssd|0|tuned"})
    assert proto.drain("runs") == 1
    assert [t.state for t in proto.queue("runs").get_trials()] == [TrialState.PRUNED]
