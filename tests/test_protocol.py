"""The fair protocol: its requests keep tuning and tables apart, every method gets the same budget,
concurrent workers lose and duplicate nothing (real processes, SQLite and PostgreSQL), and the
committed results are complete and still what the code produces."""

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import pandas as pd
import pytest

from natmu_lite import export, protocol, results, settings, stats, verdict
from natmu_lite.methods import REFERENCE_METHODS
from natmu_lite.protocol import QUEUES, TEST_PHASE, Protocol, plan
from natmu_lite.settings import get_setting

COMMITTED = results.RESULTS / "default.json"


def test_plan_tunes_on_requests_the_tables_never_use():
    """Every validation replica differs from every test request and from the other replicas: another
    random forget set of the same size, or another class."""
    for name in ("default", "default-subclass"):
        p = plan(get_setting(name))
        for scenario, tests in p.requests.items():
            replicas = [p.split_args[r] for r in p.validation[scenario]]
            assert len(replicas) == 3 and len({json.dumps(r, sort_keys=True) for r in replicas}) == 3
            for validation in replicas:
                for test in tests:
                    request = p.split_args[test]
                    assert request["kind"] == validation["kind"]
                    if request["kind"] == "random":  # another forget set of the same size
                        assert request.get("seed", 0) != validation["seed"] and request["ratio"] == validation["ratio"]
                    else:  # another class
                        assert request["target"] != validation["target"]
    assert plan(get_setting("default")).requests["full-class"] == ("full-class: Trouser", "full-class: Sandal",
                                                                "full-class: Bag")


def test_budget_is_the_first_completed_trials():
    import optuna

    study = optuna.create_study()
    for value in (5.0, 3.0, 4.0, 1.0):  # the 1.0 is beyond a budget of 3 trials
        study.add_trial(optuna.trial.create_trial(value=value, params={}, distributions={}))
    assert [t.value for t in protocol.budget_trials(study, 3)] == [5.0, 3.0, 4.0]
    assert protocol.best_within_budget(study, 3).value == 3.0
    with pytest.raises(ValueError, match="fewer than 5"):
        protocol.budget_trials(study, 5)


WORKER = textwrap.dedent("""
    import sys
    from dataclasses import replace
    import torch
    torch.set_num_threads(1)
    from natmu_lite import export, protocol, settings
    # a small protocol: one random and one class scenario, 300 training images, 1 epoch, two methods
    small = replace(settings.DEFAULT, name="small", train_size=300, test_size=200,
                    train=settings.DEFAULT.train.with_(epochs=1), unlearn=settings.DEFAULT.unlearn.with_(epochs=1),
                    recipe_changes={},
                    scenarios={k: v for k, v in settings.DEFAULT.scenarios.items() if k != "random-1%"},
                    table_classes={"full-class": ("Trouser",)},
                    replication={"random-10%": (dict(seed=0),), "full-class": (dict(target="Dress"),)})
    settings.SETTINGS["small"] = small
    protocol.PROTOCOLS["small"] = ("small",)
    protocol.PROTOCOL_METHODS["small"] = ("finetune", "ssd")
    # "rerun": the test phase again, as a verdict whose machine does not compare runs it (its method: ssd)
    rerun = dict(only=("ssd",), rerun=protocol.TEST_PHASE) if sys.argv[3:] == ["rerun"] else {}
    proto = protocol.Protocol("small", sys.argv[1], trials=2, seeds=(0, 1), **rerun)
    if sys.argv[2] == "queue":
        proto.mark_rerun()
        proto.enqueue()
    elif sys.argv[2] == "work":
        proto.work()
    else:
        print(len(export.export(proto, sys.argv[2])["runs"]))
""")


def run_protocol(storage: str, workers: int, tmp_path, *mode: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    subprocess.run([sys.executable, script, storage, "queue", *mode], check=True, env=env)
    procs = [subprocess.Popen([sys.executable, script, storage, "work", *mode], env=env) for _ in range(workers)]
    assert all(p.wait(timeout=900) == 0 for p in procs)
    out = tmp_path / "small.json"
    subprocess.run([sys.executable, script, storage, str(out), *mode], check=True, env=env)
    return json.loads(out.read_text())


def check_complete(doc: dict, storage: str):
    """Every run exactly once, each study with its budget and its selection, no failed trial; seed s
    started from original model s; the tuned runs used the selected knobs."""
    import optuna

    methods = ["finetune", "ssd"]
    assert doc["methods"] == methods
    # requests x seeds x (Retrain, its second run and the original + 3 variants of each method: tuned,
    # single-stage, untuned); two seeds, so no further looks
    assert len(doc["runs"]) == 2 * 2 * (3 + 3 * len(methods))
    second = {r["seed"]: r for r in doc["runs"] if r["variant"] == "second" and r["target"] == "10%"}
    first = {r["seed"]: r for r in doc["runs"] if r["method"] == "retrain" and r["variant"] == "reference"
             and r["target"] == "10%"}
    assert set(second) == {0, 1} and all(second[s]["method"] == "retrain" for s in second)
    assert any(second[s]["MIA"] != first[s]["MIA"] or second[s]["RA"] != first[s]["RA"] for s in second)
    keys = [(r["scenario"], r["target"], r["method"], r["seed"], r["variant"]) for r in doc["runs"]]
    assert len(set(keys)) == len(keys)
    assert {s["method"] for s in doc["studies"]} == set(methods) and all(s["trials"] == 2 for s in doc["studies"])
    for study in doc["studies"]:  # 2 trials: both are candidates, each re-run on replicas 2 and 3
        chosen = study["selection"]
        assert set(chosen["candidates"]) == {"0", "1"} and chosen["chosen"] in (0, 1)
        tuned = [r for r in doc["runs"] if r["scenario"] == study["scenario"] and r["method"] == study["method"]
                 and r["variant"] == "tuned"]
        assert tuned and all(r["params"] == chosen["params"] for r in tuned)
        # each budget trial's progress on the study's own replica, as the selection measures it there
        assert len(study["trial_progress"]) == len(study["trial_avg_gap"]) == 2
        assert study["trial_avg_gap"][0] == chosen["candidates"]["0"]["value"]
        assert all(isinstance(v, float) for v in study["trial_progress"])  # the replica's references are done
    # replicas: per scenario 3 x (Retrain, original), and 2 candidates x 2 replicas per study
    assert len(doc["replicas"]) == 2 * 3 * 2 + len(doc["studies"]) * 2 * 2
    originals = {(o["setting"], o["seed"]): o["sha256"] for o in doc["originals"].values() if o["setting"] == "small"}
    assert set(originals) == {("small", s) for s in (0, 1, 100, 101, 102)} and len(set(originals.values())) == 5
    original_ra = {r["seed"]: r["RA"] for r in doc["runs"] if r["method"] == "original" and r["target"] == "10%"}
    assert original_ra[0] != original_ra[1]  # two seeds, two original models
    assert doc["device"] == {"device": "cpu", "precision": "fp32", "torch": doc["provenance"]["torch"]}
    # a variant whose knobs another variant already ran is that run: its row is a copy, marked
    aliases = [r for r in doc["runs"] if "same_as" in r]
    for alias in aliases:
        run = next(r for r in doc["runs"] if r["variant"] == alias["same_as"] and r["method"] == alias["method"]
                   and r["target"] == alias["target"] and r["seed"] == alias["seed"])
        assert run["params"] == alias["params"] and run["MIA"] == alias["MIA"] and "same_as" not in run
    ran, replication = len(doc["runs"]) - len(aliases), doc["replication"]
    for which, count in (("runs", ran), ("replicas", len(doc["replicas"])), ("replication", len(replication))):
        queue = optuna.load_study(study_name=f"protocol/small/{which}", storage=storage)
        # a worker that saw a queued run which another took first pops an empty trial and prunes it at once:
        # such trials carry no run; every trial that carries one completed, and none was handed to two workers
        popped = [t for t in queue.trials if "run" in t.user_attrs]
        states = pd.Series([t.state.name for t in popped]).value_counts().to_dict()
        assert states == {"COMPLETE": count}, (which, states)
        assert all(t.state.name == "PRUNED" for t in queue.trials if "run" not in t.user_attrs)
    assert doc["provenance"]["evaluation"]["workers"] >= 2  # the work really was shared
    # the replication set: 2 requests x 3 seeds x (3 references + each method with its tuned knobs), on a
    # training subset of its own, disjoint from the protocol's, with originals of its own
    assert len(replication) == 2 * 3 * (3 + len(methods))
    assert {r["setting"] for r in replication} == {"small-replication"} and {r["target"] for r in replication} == {
        "10%", "Dress"} and {r["seed"] for r in replication} == {200, 201, 202}
    for r in (r for r in replication if r["variant"] == "tuned"):
        study = next(s for s in doc["studies"] if s["scenario"] == r["scenario"] and s["method"] == r["method"])
        assert r["params"] == study["selection"]["params"]
    assert {o["setting"] for o in doc["originals"].values()} == {"small", "small-replication"}
    assert doc["originals"]["small-replication/200"]["sha256"] != doc["originals"]["small/0"]["sha256"]


@pytest.mark.slow
def test_three_workers_share_a_sqlite_protocol_and_can_run_its_test_phase_again(cache, tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'small.db'}"
    first = run_protocol(storage, 3, tmp_path)
    check_complete(first, storage)
    # a verdict on a machine whose runs do not compare: every test-phase run again, every method's (not only
    # its method's), from the queues' marks on; the knobs stay chosen (no tuning trial, no replica run again)
    queues = {w: optuna.load_study(study_name=f"protocol/small/{w}", storage=storage) for w in QUEUES}
    before = {w: len(q.trials) for w, q in queues.items()}
    again = run_protocol(storage, 2, tmp_path, "rerun")
    assert again["rerun"] == {w: before[w] for w in TEST_PHASE} and again["tuned_on"] == [again["device"]]
    assert len(queues["replicas"].trials) == before["replicas"] and again["replicas"] == first["replicas"]
    for which in TEST_PHASE:
        ran = [t for t in queues[which].trials if t.state.name == "COMPLETE"]
        assert {t.user_attrs["run"] for t in ran if t.number >= before[which]} == \
            {t.user_attrs["run"] for t in ran if t.number < before[which]}  # each run once more, after the mark
        key = [(r["target"], r["method"], r["seed"], r["variant"]) for r in first[which]]
        assert key == [(r["target"], r["method"], r["seed"], r["variant"]) for r in again[which]]
    assert {r["method"] for r in again["runs"]} >= {"finetune", "ssd", "retrain"}
    assert [r["RA"] for r in again["runs"] if r["method"] == "ssd"] == \
        [r["RA"] for r in first["runs"] if r["method"] == "ssd"]  # SSD is deterministic: the same rows again


def test_two_workers_share_a_postgresql_protocol(cache, tmp_path):
    url = os.environ.get("NATMU_TEST_POSTGRES")
    if not url:
        if os.environ.get("NATMU_REQUIRE_POSTGRES"):
            pytest.fail("NATMU_REQUIRE_POSTGRES is set but NATMU_TEST_POSTGRES gives no server URL")
        pytest.skip("no PostgreSQL server (CI starts one: .ci/postgres.sh)")
    import optuna

    for s in optuna.get_all_study_summaries(url):  # a fresh protocol in the shared test database
        if s.study_name.startswith("small/") or s.study_name.startswith("protocol/small/"):
            optuna.delete_study(study_name=s.study_name, storage=url)
    check_complete(run_protocol(url, 2, tmp_path), url)


def test_a_storage_refuses_another_size(cache, tmp_path):
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    Protocol("default", storage, sizes={"train_size": 500}).queue("runs")
    with pytest.raises(ValueError, match="sizes"):
        Protocol("default", storage, sizes={"train_size": 600}).queue("runs")


@pytest.mark.slow
def test_a_protocol_pins_its_originals_and_refuses_a_pin_of_another_configuration(cache, tmp_path, monkeypatch):
    import torch

    small = replace(settings.DEFAULT, name="small", train_size=200, test_size=100,
                    train=settings.DEFAULT.train.with_(epochs=1), table_classes={},
                    scenarios={"random-10%": settings.RANDOM["random-10%"]}, validation={"random-10%": (dict(seed=1),)},
                    replication={})
    monkeypatch.setitem(settings.SETTINGS, "small", small)
    monkeypatch.setitem(protocol.PROTOCOLS, "small", ("small",))
    storage = f"sqlite:///{tmp_path / 'small.db'}"
    proto = Protocol("small", storage, seeds=(0, 1))
    p = proto.plans["small"]
    assert proto.pins == tmp_path / "small-originals"
    # another storage (say, a GPU's) pins the originals its own device trains, beside itself
    assert Protocol("small", f"sqlite:///{tmp_path / 'small-gpu.db'}").pins == tmp_path / "small-gpu-originals"
    first = proto.original(p, 0)
    pinned = export.originals(proto)
    assert set(pinned) == {"small/0", "small/1", "small/100"}  # each seed's and the validation replica's
    assert pinned["small/1"]["file"] == "small-originals/small-seed1.pt" and pinned["small/1"]["provenance"]["machine"]
    assert pinned["small/0"]["sha256"] != pinned["small/1"]["sha256"]
    monkeypatch.setattr("natmu_lite.cache.cached_model",
                        lambda *a, **k: pytest.fail("the pinned original was trained again"))
    again = Protocol("small", storage).original(p, 0)  # a new process: read from the pin
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    other = Protocol("small", storage, sizes={"train_size": 150})
    with pytest.raises(ValueError, match="pinned original .* another configuration"):
        other.original(other.plans["small"], 0)


def test_an_export_refuses_runs_of_several_devices(tmp_path):
    import optuna

    def trial(device: str, precision: str):
        return optuna.trial.create_trial(value=1.0, params={}, distributions={},
                                         user_attrs={"device": device, "precision": precision, "torch": "2.14"})

    assert export.check_one_device([trial("cpu", "fp32")] * 2) == {"device": "cpu", "precision": "fp32",
                                                                    "torch": "2.14"}
    with pytest.raises(ValueError, match="mixes devices.*NVIDIA H200, bf16.*cpu, fp32"):
        export.check_one_device([trial("cpu", "fp32"), trial("NVIDIA H200", "bf16")])


def test_candidates_are_the_best_trials_and_the_untuned_one():
    import optuna

    study = optuna.create_study()
    for value, diverged in ((5.0, False), (3.0, False), (1.0, True), (4.0, False), (2.0, False), (0.5, False)):
        study.add_trial(optuna.trial.create_trial(value=value, params={}, distributions={},
                                                  user_attrs={"diverged": True} if diverged else {}))
    # budget: the first 5; the best three that did not diverge (2.0, 3.0, 4.0), and trial 0 (the untuned knobs)
    assert [t.number for t in protocol.candidates(study, 5)] == [0, 1, 3, 4]


def test_a_next_round_re_checks_the_best_trials_that_pass_the_rules_on_the_studys_own_request():
    import optuna

    original = {"FATrain": 100.0, "FATest": None}
    retrain = {"FATrain": 80.0, "FATest": None}
    study = optuna.create_study()
    # (AvgGap, forget accuracy, retain accuracy): trial 1 did nothing, 2 collapsed, 3 and 5 pass, 4 diverged
    for value, fa, ra in ((9.0, 99.0, 99.0), (1.0, 99.0, 99.0), (2.0, 80.0, 15.0), (3.0, 85.0, 98.0),
                          (0.5, None, None), (4.0, 90.0, 98.0), (5.0, 80.0, 98.0)):
        attrs = {"diverged": True} if fa is None else {"FATrain": fa, "RetainAcc": ra, "RA": 90.0, "MIA": 50.0}
        study.add_trial(optuna.trial.create_trial(value=value, params={}, distributions={}, user_attrs=attrs))
    # the first round (trials 0, 1, 2, 3 say) was excluded; the next takes the best passing ones not yet checked
    assert [t.number for t in protocol.next_round(study, {0: {}, 1: {}}, original, retrain, 10, 7)] == [3, 5, 6]
    assert [t.number for t in protocol.next_round(study, {0: {}, 3: {}, 5: {}, 6: {}}, original, retrain, 10, 7)] == []


def test_the_noise_band_widens_the_seeds_range_by_their_spread_and_never_less_than_the_floor():
    assert stats.noise_band([1.0, 2.0, 3.0]) == pytest.approx((1 - 3, 3 + 3))  # sd 1, 3 sds
    assert stats.noise_band([85.96] * 5) == pytest.approx((84.96, 86.96))  # a deterministic method: the floor
    assert stats.noise_band([1.0, 2.0, 3.0], around=2.5) == pytest.approx((2.5 - 3, 2.5 + 3))  # one run's own value


# ---------------------------------------------------------------------------------------------
# the committed results

@pytest.fixture(scope="module")
def committed() -> dict:
    if not COMMITTED.exists():
        pytest.fail(f"{COMMITTED} is missing: run `natmu-lite protocol default --workers 2`")
    return json.loads(COMMITTED.read_text())


def test_committed_protocol_is_consistent(committed):
    """What is committed is well formed: every study has its budget, the provenance is filled in, and in
    each scenario every seed that the export calls finished has the same runs on every request: the
    references and each method in each variant the export holds."""
    methods = committed["methods"]
    assert methods == list(protocol.protocol_methods("default"))
    studies = pd.DataFrame(committed["studies"])
    assert len(studies) == 4 * len(methods) and set(studies.trials) == {committed["budget"]["trials"]}
    assert committed["budget"]["trials"] >= 24
    prov = committed["provenance"]
    for key in ("command", "git_commit", "natmu_lite", "torch", "date"):
        assert prov[key], key
    assert prov["machine"]["cpu"] and prov["machine"]["isa"]  # where it was exported
    for phase in ("tuning", "evaluation"):
        assert prov[phase]["wall_seconds"] > 0 and prov[phase]["machines"], phase
    runs = pd.DataFrame(committed["runs"])
    assert all(isinstance(r["params"], dict) for r in committed["runs"])
    assert set(committed["complete_seeds"]) == {"random-1%", "random-10%", "full-class", "sub-class"}
    for scenario, finished in committed["complete_seeds"].items():
        seeds = [s for s in finished if s in committed["design"]["seeds"]]  # the added looks run fewer methods
        cells = [frozenset(zip(g.method, g.variant)) for _, g in
                 runs[(runs.scenario == scenario) & runs.seed.isin(seeds)].groupby(["target", "seed"])]
        assert len(cells) == len(seeds) * (1 if scenario.startswith("random") else 3), scenario
        assert len(set(cells)) == 1, scenario  # the same runs on every request and seed
        assert {("retrain", "reference"), ("original", "reference"), ("retrain", "second")} <= cells[0], scenario
        assert {(m, v) for m in methods for v in ("tuned", "untuned")} <= cells[0], scenario
    assert committed["complete"] == (not committed["missing"])


def test_committed_protocol_is_complete(committed):
    if not committed["complete"]:
        pytest.skip(f"the committed protocol is still being run: {len(committed['missing'])} runs to go "
                    "(`natmu-lite protocol default` resumes it from results/default.db)")
    runs = pd.DataFrame(committed["runs"])
    methods = committed["methods"]
    assert set(runs.method) == {*REFERENCE_METHODS, *methods}
    own = runs[runs.seed.isin(committed["design"]["seeds"])]
    for variant in ("tuned", "untuned"):
        counts = own[own.variant == variant].groupby(["scenario", "method"]).seed.nunique()
        assert (counts == 5).all() and len(counts) == 4 * len(methods)
    assert set(runs[runs.variant == "transfer"].scenario) == {"random-1%"}
    assert stats.fair_summary(results.runs(committed)).seeds.eq(5).all()


def test_the_committed_audit_ran_with_the_committed_tuned_knobs(committed):
    """What the U-LiRA audit runs with (``--tuned-by default``): per method, the knobs of the committed
    protocol's tuned random-10% runs; the committed audit must have used exactly those."""
    got = protocol.tuned_params(committed, "default", 0.1)
    assert set(got) == set(committed["methods"])
    audit = results.load_audit("ulira-default")
    # only a method whose random-10% choice came from the selection's later rounds (chosen after the audit
    # ran) may differ; chapter 7 names it (results.stale_audit)
    later = {s["method"] for s in committed["studies"] if s["scenario"] == "random-10%"
             and s["selection"].get("rounds", 1) > 1}
    assert set(results.stale_audit(committed, audit)) <= later
    audited = {a["method"]: a["params"] for a in audit["audits"]}
    assert all(audited[m] == got[m] for m in got if m not in later)
    with pytest.raises(ValueError, match="no tuned runs of random forgetting 30%"):
        protocol.tuned_params(committed, "default", 0.3)


RERUN = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)  # as the protocol's workers: the thread count changes float sums, hence weights
    from natmu_lite.protocol import Protocol
    from natmu_lite.results import RESULTS
    rows = json.loads(sys.argv[1])
    proto = Protocol("default", "sqlite:///:memory:", pins=RESULTS / "default-originals")
    print(json.dumps([proto.result_row(proto.run_name_of(r), params=r["params"]) for r in rows]))
""")
REPRODUCED, METRICS = verdict.RECHECKED, verdict.METRICS  # the cells a verdict re-runs too (why these: there)


def run_again(rows: list[dict], tmp_path) -> list[dict]:
    env = {**os.environ, "NATMU_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", RERUN, json.dumps(rows)], env=env, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.splitlines()[-1])


@pytest.mark.reproduction
def test_committed_rows_reproduce_within_their_noise(committed, tmp_path):
    """Seed 0 of committed cells re-run from the pinned original model with the parameters they record,
    on whatever CPU runs the test: each metric must land within the committed seeds' noise of seed 0's own
    committed value (:func:`~natmu_lite.stats.noise_band` ``around`` it; each seed has its own original, so
    the seeds' range would also hold how much the starting model matters). Not bit for bit: another
    instruction set gives other last bits, and the trained methods then differ as another run would."""
    runs = pd.DataFrame(committed["runs"])
    cells = [runs[(runs.scenario == sc) & (runs.method == m) & (runs.variant == v)] for sc, m, v in REPRODUCED]
    rows = [cell[cell.seed == 0].iloc[0].to_dict() for cell in cells]
    for cell, row, again in zip(cells, rows, run_again(rows, tmp_path)):
        for metric in METRICS:
            low, high = stats.noise_band(cell[metric], around=row[metric])  # from seed 0's own pinned original
            assert low <= again[metric] <= high, (row["method"], row["scenario"], metric, again[metric], low, high)


RETRAIN = textwrap.dedent("""
    import json
    import torch
    torch.set_num_threads(1)
    from natmu_lite import protocol
    from natmu_lite.metrics import accuracy
    from natmu_lite.train import predict
    proto = protocol.Protocol("default", "sqlite:///:memory:")  # no pinned originals: trained anew
    p = proto.plans["default"]
    model, data = proto.original(p, 0), proto.data(p)
    print(json.dumps({"test_accuracy": accuracy(predict(model, data.test_x), data.test_y),
                      "train_accuracy": accuracy(predict(model, data.train_x), data.train_y)}))
""")


@pytest.mark.reproduction
def test_the_trainer_still_gives_the_pinned_original(committed, tmp_path):
    """The default setting's original trained again from scratch (a fresh cache, one thread, any CPU):
    its test and training accuracies within the committed Retrain's own seed-to-seed noise (the nearest
    committed re-training of the same recipe, from the same initialisation, on 99% of the data) of the
    pinned original's. The pinned model is what the committed runs started from; this checks that the
    trainer still produces such a model."""
    pinned = committed["originals"]["default/0"]["metrics"]
    runs = pd.DataFrame(committed["runs"])
    retrain = runs[(runs.scenario == "random-1%") & (runs.method == "retrain")]
    env = {**os.environ, "NATMU_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    again = json.loads(subprocess.run([sys.executable, "-c", RETRAIN], env=env, capture_output=True, text=True,
                                      check=True).stdout.splitlines()[-1])
    for metric, noise in (("test_accuracy", "RA"), ("train_accuracy", "RetainAcc")):
        margin = max(stats.NOISE_SDS * retrain[noise].std(), 0.5)  # at least half a point
        assert abs(again[metric] - pinned[metric]) <= margin, (metric, again[metric], pinned[metric], margin)


def test_committed_originals_are_pinned_with_their_checksums(committed):
    """Every original model the committed runs started from is committed beside the storage, whole (its
    checksum), and the export says where it was trained (the CPU's instruction set included)."""
    import hashlib

    for name, info in committed["originals"].items():
        path = results.RESULTS / info["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == info["sha256"], name
        assert info["provenance"]["machine"]["isa"] and info["provenance"]["machine"]["cpu"], name
    settings_ = set(protocol.PROTOCOLS["default"])
    assert {info.get("setting", name) for name, info in committed["originals"].items()} == \
        settings_ | {f"{s}-replication" for s in settings_}


def test_chapters_read_the_committed_runs_of_a_covered_setting_only(committed):
    runs = results.committed_runs("default", "random-1%")
    seeds = [s for s in committed["complete_seeds"]["random-1%"] if s in committed["design"]["seeds"]]
    assert set(runs.variant) == {"untuned", "reference"} and set(runs.seed) == set(seeds)
    assert (runs.groupby("method").seed.nunique() == len(seeds)).all()  # references and methods, each seed
    assert (runs[runs.method == "original"].variant == "reference").all()
    assert results.committed_runs("default", "sub-class") is None  # that scenario belongs to default-subclass
    assert results.committed_runs("cifar10-random", "random-1%") is None


def test_the_committed_decisions_follow_from_the_committed_runs(committed):
    """Chapter 6's decisions re-derived from the committed rows by a direct reading of the rule: per
    scenario and rival, the one-sided paired t-tests of NatMU's per-seed AvgGap minus the rival's at the
    look level; supported when every rival is beaten, refuted when a Holm-adjusted test finds a rival closer."""
    from scipy import stats as st

    from natmu_lite import decisions

    runs = results.runs(committed, ("tuned", decisions.SECOND), looks=True)
    level = committed["design"]["decisions"]["level"]
    gaps = decisions.gap_table(runs)
    table = decisions.decision_table(runs)
    for scenario, wide in gaps.groupby(level="scenario", sort=False):
        beaten, farther = [], []
        for rival in (m for m in wide if m != "natmu"):
            d = (wide["natmu"] - wide[rival]).dropna()
            beaten.append(st.ttest_1samp(d, 0, alternative="less").pvalue < level)
            farther.append(st.ttest_1samp(d, 0, alternative="greater").pvalue)
        refuted = min(stats.holm(farther)) < level
        expected = "refuted" if refuted else "supported" if all(beaten) else "undecided"
        assert table.loc[scenario, "every method"] == expected, scenario


def test_no_replication_request_coincides_with_a_table_or_validation_request():
    """The replication set forgets images of its own subset (disjoint from the protocol's) and classes no
    table or validation replica forgets."""
    p = Protocol("default", "sqlite:///:memory:")
    for source, r in p.replications.items():
        plan, data, again = p.plans[source], p.data(p.plans[source]), p.data(r)
        used = {x.numpy().tobytes() for x in data.train_x}
        assert not used & {x.numpy().tobytes() for x in again.train_x}
        for scenario, requests in r.requests.items():
            kwargs = [plan.split_args[q] for q in (*plan.requests[scenario], *plan.validation[scenario])]
            taken = {k.get("target") for k in kwargs} - {None}
            for request in requests:
                target = r.split_args[request].get("target")
                assert target is None or target not in taken, (request, taken)


@pytest.mark.reproduction
def test_committed_replication_rows_reproduce_within_their_noise(committed, tmp_path):
    """The replication set's first seed of NatMU and of SSD on random-10%, re-run from its pinned original
    with the parameters it records: within its own seeds' noise of the committed value."""
    replication = results.replication_runs(committed)
    if replication.empty:
        pytest.skip("the committed export holds no finished replication seed yet")
    cells = [replication[(replication.scenario == "random-10%") & (replication.method == m)] for m in ("natmu", "ssd")]
    rows = [cell.sort_values("seed").iloc[0].to_dict() for cell in cells]
    for cell, row, again in zip(cells, rows, run_again(rows, tmp_path)):
        for metric in METRICS:
            low, high = stats.noise_band(cell[metric], around=row[metric])
            assert low <= again[metric] <= high, (row["method"], "replication", metric, again[metric], low, high)
