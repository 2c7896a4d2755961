"""``natmu-lite verdict``: a method from a file judged against the committed ten. Bad arguments are refused
before anything runs, naming the argument; a quick verdict at tiny sizes names the method in its report,
gives its row and decisions, labels itself quick, and leaves the committed results as they were."""

import hashlib
import json

import pandas as pd
import pytest

from natmu_lite import cli, methods, results, verdict, verdict_report
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
    (["verdict", "toy", "--quick", "--audit"], "--audit is for a full verdict"),
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


def test_on_another_device_a_full_verdict_runs_the_test_phase_again_decided_once_per_folder(tmp_path, monkeypatch):
    from natmu_lite.protocol import TEST_PHASE

    cpu = {"device": "cpu", "precision": "fp32", "torch": "2.14.1"}
    monkeypatch.setattr(verdict, "this_machine", lambda: {**cpu, "device": "NVIDIA H100", "precision": "bf16"})
    v = verdict.Verdict("natmu", tmp_path)
    assert v.protocol().rerun == ()
    machine = verdict.compare_machine(v, None, {"device": cpu}, cells=())
    assert machine["rerun"] and machine["why"].startswith("this machine is {'device': 'NVIDIA H100', 'precision': "
                                                          "'bf16'") and machine["cells"] == []
    monkeypatch.setattr(verdict, "this_machine", lambda: cpu)
    assert verdict.compare_machine(v, None, {"device": cpu}, cells=()) == machine  # a resumed command: as decided
    assert v.protocol().rerun == TEST_PHASE  # and so do its worker processes
    (tmp_path / "here").mkdir()
    assert not verdict.compare_machine(verdict.Verdict("natmu", tmp_path / "here"), None, {"device": cpu}, ())["rerun"]


@pytest.mark.slow
def test_a_committed_cell_this_machine_does_not_reproduce_makes_the_test_phase_run_again(tmp_path):
    """The mismatch path, with a deliberately perturbed committed cell: every seed's RA 30 points off, as
    if the committed machine computed it otherwise. Re-run here, its seed 0 falls outside the noise band."""
    from natmu_lite.protocol import Protocol

    doc, cell = results.load_protocol("default"), ("random-10%", "ssd", "tuned")
    for row in doc["runs"]:
        if (row["scenario"], row["method"], row["variant"]) == cell:
            row["RA"] += 30
    proto = Protocol("default", "sqlite:///:memory:", pins=results.RESULTS / "default-originals")
    machine = verdict.compare_machine(verdict.Verdict("toy", tmp_path), proto, doc, cells=(cell,))
    assert machine["rerun"] and machine["why"] == "1 re-run metrics fell outside their noise band (ssd RA (random-10%))"
    assert [c["metric"] for c in machine["cells"] if not c["within"]] == ["RA"]


def test_the_report_renders_the_same_blocks_as_markdown_and_html():
    frame = pd.DataFrame({"AvgGap": ["**1.0 [0.5, 1.5]**"]}, index=pd.Index(["Toy"], name="method"))
    report = [("h1", "Verdict: Toy <b>"), ("p", "see `x`"), ("table", frame)]
    md, page = verdict_report.markdown(report), verdict_report.to_html(report)
    assert md.startswith("# Verdict: Toy <b>") and "| method | AvgGap |" in md and "| Toy | **1.0 [0.5, 1.5]** |" in md
    assert "<h1>Verdict: Toy &lt;b&gt;</h1>" in page and "<code>x</code>" in page and "<b>1.0 [0.5, 1.5]</b>" in page


def test_the_report_says_whether_the_committed_runs_were_compared_as_committed_or_run_again():
    cpu = {"device": "cpu", "precision": "fp32", "torch": "2.14.1"}
    cells = [dict(scenario="random-10%", method="ssd", metric=m, committed=1.0, here=h, moved=h - 1, low=0.5,
                  high=1.5, within=0.5 <= h <= 1.5) for m, h in (("RA", 1.2), ("MIA", 9.0))]
    doc = {"runs": [{}] * 7, "replication": [{}] * 3, "tuned_on": [cpu]}
    same = verdict_report.machine_blocks(doc, {"here": cpu, "rerun": False, "why": "", "cells": cells[:1]})
    assert "1 of 1 metrics fell within" in same[1][1] and "compared as committed" in same[1][1]
    moved = verdict_report.machine_blocks(doc, {"here": cpu, "rerun": True, "cells": cells,
                                                "why": "1 re-run metrics fell outside their noise band"})
    said = moved[1][1]
    assert "1 of 2 metrics fell within" in said and "the whole test phase ran again here (7 evaluation runs and 3 " \
        "replication runs" in said and "chosen on cpu, fp32, torch 2.14.1" in said
    assert moved[2][1].loc[("random-10%", "ssd", "MIA"), "within"] == False  # noqa: E712 (a table cell)


def test_the_audited_method_stands_beside_the_committed_audit_compared_with_retrain(toy_file):
    """``--audit``'s block: the method's row among the committed audit's, and a sentence that compares it with
    Retrain candidate by candidate (here the committed NatMU audit plays the new method)."""
    from natmu_lite import ulira

    committed = results.load_audit("ulira-default")
    natmu = next(a for a in committed["audits"] if a["method"] == "natmu")
    methods.load_file(toy_file)  # registers "toy", as the verdict command does
    blocks = verdict_report.privacy_blocks({"protocol": "default", "verdict": {"quick": False}}, "toy",
                                           {"audits": [{**natmu, "method": "toy"}]})
    diff, low, high = ulira.example_difference(committed["audits"], "natmu", "retrain")
    assert blocks[0] == ("h2", "Privacy: U-LiRA")
    assert f"Toy method minus Retrain is {diff:+.3f} [{low:+.3f}, {high:+.3f}]" in blocks[1][1]
    table = blocks[2][1]
    assert "→ Toy method" in table.index and "NatMU" in table.index and "Retrain" in table.index
    assert table.loc["→ Toy method", "ULiRA"] == table.loc["NatMU", "ULiRA"]


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
    protocol neither runs nor waits for them (``only``), only its method's and the references; one that runs
    the test phase again (``rerun``) runs every method's there, and only its method's knob choices."""
    from natmu_lite.protocol import Protocol

    names = [f"default|random-1%|{m}|0|tuned" for m in ("natmu", "ssd")] + \
        [f"default|random-1%|{m}|{s}|reference" for m, s in (("retrain", 0), ("original", 0), ("retrain", 12))]
    proto = Protocol("default", "sqlite:///:memory:", only=("natmu",))
    # the references of seed 12 no natmu run needs: the committed protocol's, left unfinished
    assert proto.wanted(names, "runs") == {names[0], names[2], names[3]}
    assert Protocol("default", "sqlite:///:memory:").wanted(names, "runs") == set(names)
    again = Protocol("default", "sqlite:///:memory:", only=("natmu",), rerun=("runs", "replication"))
    assert again.wanted(names, "runs") == again.wanted(names, "replication") == set(names)
    assert again.wanted(names, "replicas") == {names[0], names[2], names[3]}
    with pytest.raises(ValueError, match=r"rerun: \['replicas'\] are not test-phase queues"):
        Protocol("default", "sqlite:///:memory:", rerun=("replicas",))


def test_a_run_queued_for_the_committed_protocol_is_left_not_run(tmp_path):
    """A copy's queue holds the committed protocol's queued runs: a verdict's worker pops and leaves them."""
    from optuna.trial import TrialState

    from natmu_lite.protocol import Protocol

    proto = Protocol("default", f"sqlite:///{tmp_path / 'copy.db'}", only=("natmu",))
    for name in ("default|random-1%|ssd|0|tuned", "default|random-1%|retrain|12|reference"):  # (no natmu run there)
        proto.queue("runs").enqueue_trial({}, user_attrs={"run": name})
    assert proto.drain("runs") == 2
    assert [t.state for t in proto.queue("runs").get_trials()] == [TrialState.PRUNED] * 2

