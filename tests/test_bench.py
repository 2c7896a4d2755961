"""The checkpoint cache, resumable grids, and the paper's table."""

import json
from dataclasses import replace

import pandas as pd
import pytest
import torch

import natmu_lite.bench as bench
from natmu_lite.bench import DEFAULT, cached_model, load_setting_data, make_scenario_split, run_grid
from natmu_lite.tables import avg_gaps, paper_table, to_latex, to_markdown, to_styler

TINY = replace(DEFAULT, name="tiny", train_size=600, test_size=600, train=DEFAULT.train.with_(epochs=2),
               unlearn=DEFAULT.unlearn.with_(epochs=1), recipes={"ga": dict(lr=1e-3, epochs=1)},
               scenarios={"random-5%": dict(scenario="random", ratio=0.05),
                          "full-class": dict(scenario="full-class", target="Bag")})


@pytest.fixture(scope="module")
def tiny_data():
    return load_setting_data(TINY)


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def count_training(monkeypatch) -> list:
    calls = []
    real = bench.train_original
    monkeypatch.setattr(bench, "train_original", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_cache_returns_the_same_model_and_rebuilds_on_any_change(cache, tiny_data, monkeypatch):
    calls = count_training(monkeypatch)
    a, _ = cached_model("original", TINY, tiny_data, 0, progress=False)
    b, _ = cached_model("original", TINY, tiny_data, 0, progress=False)
    assert len(calls) == 1 and same_weights(a, b)  # the second came from disk
    for changed in (replace(TINY, train=TINY.train.with_(lr=0.04)), replace(TINY, model="small_cnn", train_size=590)):
        data = load_setting_data(changed)
        c, _ = cached_model("original", changed, data, 0, progress=False)
        assert not same_weights(a, c)
    d, _ = cached_model("original", TINY, tiny_data, 1, progress=False)
    assert len(calls) == 4 and not same_weights(a, d)
    # compiling changes the speed, not the weights: it shares the eager model's entry
    assert bench.model_key("original", replace(TINY, train=TINY.train.with_(compile="reduce-overhead")), 0) \
        == bench.model_key("original", TINY, 0)
    assert bench.model_key("original", replace(TINY, train=TINY.train.with_(bf16=False)), 0) \
        != bench.model_key("original", TINY, 0)


def test_retrain_cache_is_keyed_by_the_split(cache, tiny_data):
    s1 = make_scenario_split(TINY, tiny_data, "random-5%", seed=0)
    s2 = make_scenario_split(TINY, tiny_data, "random-5%", seed=1)
    r1, _ = cached_model("retrain", TINY, tiny_data, 0, s1, progress=False)
    r2, _ = cached_model("retrain", TINY, tiny_data, 0, s2, progress=False)
    assert not same_weights(r1, r2)
    assert len(list(cache.glob("retrain-*.pt"))) == 2
    with pytest.raises(ValueError, match="with a split"):
        cached_model("retrain", TINY, tiny_data, 0, progress=False)


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


def test_interrupted_grid_resumes_without_redoing_or_losing_runs(cache, tmp_path, monkeypatch):
    out = tmp_path / "results.json"
    real, calls = bench.run_method, []

    def flaky(method, *args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(method)
        return real(method, *args, **kwargs)

    monkeypatch.setattr(bench, "run_method", flaky)
    methods = ["natmu", "amnesiac", "finetune"]
    with pytest.raises(KeyboardInterrupt):
        run_grid(TINY, ["random-5%"], methods, [0, 1], out, progress=False)
    saved = json.loads(out.read_text())
    assert [r["method"] for r in saved] == ["retrain", "natmu", "amnesiac", "finetune", "retrain"]
    monkeypatch.setattr(bench, "run_method", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    frame = run_grid(TINY, ["random-5%"], methods, [0, 1], out, progress=False)
    assert calls[3:] == ["natmu", "amnesiac", "finetune"]  # only seed 1's unlearning runs were left
    assert len(frame) == 8 and not frame.duplicated(["method", "seed"]).any()
    assert set(frame.columns) >= {"setting", "scenario", "target", "method", "seed", "RA", "FATrain", "FATest",
                                  "MIA", "seconds"}
    assert frame[frame.method == "retrain"].seconds.gt(0).all()


def hand_made() -> pd.DataFrame:
    rows = []
    for seed, (ra_r, fa_r, mia_r), (ra_n, fa_n, mia_n), (ra_a, fa_a, mia_a) in [
        (0, (90, 88, 70), (89, 90, 66), (88, 60, 10)),
        (1, (92, 90, 74), (91, 92, 68), (90, 50, 20)),
    ]:
        for method, (ra, fa, mia) in [("retrain", (ra_r, fa_r, mia_r)), ("natmu", (ra_n, fa_n, mia_n)),
                                      ("amnesiac", (ra_a, fa_a, mia_a))]:
            rows.append(dict(setting="x", scenario="random-1%", target="1%", method=method, seed=seed, RA=ra,
                             FATrain=fa, FATest=None, MIA=mia, RetainAcc=99.0, seconds=1.0))
    return pd.DataFrame(rows)


def test_paper_table_means_stds_and_gaps():
    table = paper_table(hand_made())
    assert list(table.columns) == ["Retrain", "Amnesiac", "NatMU"]
    assert table.loc[("random-1%", "RA"), "Retrain"] == "91.00±1.41"
    assert table.loc[("random-1%", "FA"), "NatMU"] == "91.00±1.41 (2.00)"
    assert table.loc[("random-1%", "MIA"), "Amnesiac"] == "15.00±7.07 (57.00)"
    # AvgGap: NatMU (1 + 2 + 5) / 3 = 2.67, best, in bold; Amnesiac (2 + 34 + 57) / 3 = 31.00
    assert table.loc[("random-1%", "AvgGap"), "NatMU"] == "**2.67**"
    assert table.loc[("random-1%", "AvgGap"), "Amnesiac"] == "31.00"
    gaps = avg_gaps(hand_made())
    assert gaps.loc[("random-1%", "1%"), "natmu"] == pytest.approx(8 / 3)
    assert "| random-1% | RA | 91.00±1.41 |" in to_markdown(table)
    assert r"\textbf{2.67}" in to_latex(table) and r"$\pm$" in to_latex(table)
    html = to_styler(table).to_html()
    assert "font-weight: bold" in html and "**" not in html and ">2.67<" in html


def test_paper_table_needs_retrain():
    with pytest.raises(ValueError, match="no Retrain"):
        paper_table(hand_made().query("method != 'retrain'"))
