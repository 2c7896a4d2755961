"""The tables' statistics on hand-made results whose answers are known: per-seed gaps pair each run
with its own seed's Retrain, intervals are Student-t, a missing metric or a collapsed run is never
averaged away."""


import pandas as pd
import pytest

from natmu_lite import stats, tables
from natmu_lite.tables import avg_gaps, paper_table, to_latex, to_markdown, to_styler


def rows(method: str, values: dict[int, tuple[float, float, float]], scenario="random-1%", target="1%", **extra):
    return [dict(scenario=scenario, target=target, method=method, seed=s, RA=ra, FATrain=fa, FATest=None, MIA=mia,
                 **extra) for s, (ra, fa, mia) in values.items()]


def frame():
    retrain = rows("retrain", {0: (90, 80, 50), 1: (90, 90, 60), 2: (90, 85, 55)})
    a = rows("a", {0: (90, 83, 50), 1: (90, 93, 60), 2: (90, 85, 55)})  # FA 3 points too high on seeds 0, 1
    b = rows("b", {0: (89, 80, 50), 1: (89, 90, 60), 2: (89, 85, 55)})  # RA 1 point too low, always
    c = rows("c", {0: (90, 83, 50), 1: (90, 87, 60), 2: (90, 85, 55)})  # FA off by 3 both ways: means agree
    return pd.DataFrame(retrain + a + b + c)


def test_fair_summary_ranks():
    summary = stats.fair_summary(frame()).set_index("method")
    assert summary.loc["b", "rank"] == 1 and summary.loc["a", "rank"] == 2 and summary.loc["c", "rank"] == 2
    assert summary.loc["a", "AvgGap"] == pytest.approx(2 / 3)
    table = tables.fair_table(stats.fair_summary(frame()))
    assert table.loc["b", "random-1%"].startswith("**") and not table.loc["a", "random-1%"].startswith("**")


def test_a_missing_metric_is_an_error_not_a_smaller_average():
    broken = frame()
    broken.loc[4, "MIA"] = None
    with pytest.raises(ValueError, match="seed 1 lacks MIA"):
        tables.summarize(broken)
    with pytest.raises(ValueError, match="lacks MIA"):
        stats.seed_gaps(broken)
    with pytest.raises(ValueError, match="no MIA column"):
        tables.summarize(frame().drop(columns="MIA"))


def test_a_collapsed_method_is_marked_and_never_best():
    results = frame()
    results["collapsed"] = False
    assert tables.paper_table(results).loc[("random-1%", "AvgGap"), "c"].startswith("**")
    results.loc[(results.method == "c") & (results.seed == 0), "collapsed"] = True
    table = tables.paper_table(results)
    assert table.loc[("random-1%", "AvgGap"), "c"].endswith("†")
    assert table.loc[("random-1%", "AvgGap"), "b"].startswith("**")  # the best of the others
    summary = stats.fair_summary(results).set_index("method")
    assert summary.loc["c", "collapsed"] == 1 and summary.loc["b", "collapsed"] == 0
    results.loc[results.method == "b", "RA"] = 80  # b drops behind; a and c tie for the lowest mean, c collapsed once
    fair = tables.fair_table(stats.fair_summary(results))
    assert fair.loc["c", "random-1%"].endswith("†") and not fair.loc["c", "random-1%"].startswith("**")
    assert fair.loc["a", "random-1%"].startswith("**") and not fair.loc["a", "random-1%"].endswith("†")


def test_tow_per_seed_beside_avg_gap():
    retain = {"retrain": 99.0, "a": 99.0, "b": 89.0, "c": 99.0}  # b loses 10 points of retain accuracy
    results = frame()
    results["RetainAcc"] = results.method.map(retain)
    gaps = stats.seed_gaps(results, tow=True).set_index(["method", "seed"])
    assert gaps.AvgGap.equals(stats.seed_gaps(frame()).set_index(["method", "seed"]).AvgGap)  # unchanged
    assert [gaps.ToW[("a", s)] for s in range(3)] == pytest.approx([0.97, 0.97, 1.0])  # FA 3 points off, 2 seeds
    assert [gaps.ToW[("b", s)] for s in range(3)] == pytest.approx([0.9 * 0.99] * 3)  # retain 10, test 1 point off
    summary = stats.fair_summary(results, tow=True).set_index("method")
    assert summary.loc["a", "ToW"] == pytest.approx((0.97 + 0.97 + 1.0) / 3)
    assert summary.loc["a", "ToW_rank"] == 1 and summary.loc["b", "ToW_rank"] == 3  # b is worst by ToW...
    assert summary.loc["b", "rank"] == 1  # ...and best by AvgGap, which does not see the retain set
    assert stats.fair_summary(results)[["AvgGap", "low", "high"]].equals(
        stats.fair_summary(results, tow=True)[["AvgGap", "low", "high"]])
    table = tables.fair_table(stats.fair_summary(results, tow=True), metric="ToW")
    assert table.loc["a", "random-1%"].startswith("**0.980 [")  # tied with c; the first is bold
    with pytest.raises(ValueError, match="no ToW column"):
        tables.fair_table(stats.fair_summary(results), metric="ToW")


def test_latex_writes_the_methods_names_in_tex():
    rows = [dict(scenario="random-1%", target="1%", method=m, seed=0, RA=90.0, FATrain=80.0, FATest=None, MIA=50.0)
            for m in ("retrain", "neggradplus", "l1sparse")]
    header = tables.to_latex(tables.paper_table(pd.DataFrame(rows))).splitlines()[2]
    assert r"$\ell_1$-sparse" in header and "NegGrad+" in header


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


def test_the_fair_table_bolds_the_leaders_and_marks_kept_untuned_knobs():
    summary = stats.fair_summary(frame())
    leaders = pd.DataFrame([dict(scenario="random-1%", method=m, leader=m in ("a", "b")) for m in "abc"])
    table = tables.fair_table(summary, leaders=leaders, fallbacks={("random-1%", "c")})
    assert table.loc["a", "random-1%"].startswith("**") and table.loc["b", "random-1%"].startswith("**")
    assert not table.loc["c", "random-1%"].startswith("**") and table.loc["c", "random-1%"].endswith("‡")


def test_the_selection_table_says_what_the_recheck_chose():
    doc = {"studies": [{"scenario": "random-1%", "method": "natmu", "best_trial": 7, "selection": {
        "chosen": 0, "no_valid_candidate": True,
        "candidates": {"0": {"score": 3.0, "excluded": True}, "7": {"score": 1.0, "excluded": True}}}}]}
    row = tables.selection_table(doc).loc[("random-1%", "NatMU")]
    assert row["best trial"] == 7 and row["chosen trial"] == 0 and row["excluded"] == "2 of 2 ‡"


def test_method_words_name_methods_in_the_books_order():
    assert tables.method_words(["natmu", "ga", "ssd"]) == "GA, SSD and NatMU"
    assert tables.method_words(["natmu"]) == "NatMU" and tables.method_words([]) == ""
