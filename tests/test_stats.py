"""The statistics of the comparisons (stats.py): per-seed gaps, intervals, Holm's adjustment and the
tied leaders."""

import math

import numpy as np
import pandas as pd
import pytest

from natmu_lite import stats, tables
from natmu_lite.results import search_curves, selection_counts, trials

from .test_tables import frame, rows


def test_seed_gaps_pair_each_run_with_its_own_seeds_retrain():
    gaps = stats.seed_gaps(frame()).set_index(["method", "seed"]).AvgGap
    assert [gaps[("a", s)] for s in range(3)] == pytest.approx([1.0, 1.0, 0.0])
    assert [gaps[("b", s)] for s in range(3)] == pytest.approx([1 / 3] * 3)
    assert [gaps[("c", s)] for s in range(3)] == pytest.approx([1.0, 1.0, 0.0])
    # the paper's AvgGap of seed means sees no gap at all for "c", whose errors cancel
    summary = tables.summarize(frame()).set_index(["method", "metric"])["mean"]
    assert summary[("c", "AvgGap")] == pytest.approx(0.0) and summary[("a", "AvgGap")] == pytest.approx(2 / 3)


def test_t_interval_matches_the_textbook():
    mean, low, high = stats.t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, 4) * s / sqrt(n)
    assert (mean, low, high) == pytest.approx((3.0, 3.0 - half, 3.0 + half))
    assert math.isnan(stats.t_interval([2.0])[1])


def test_tow_refuses_rows_without_retain_accuracy():
    with pytest.raises(ValueError, match="random-1%/1%: the a run of seed 0: ToW needs the retain-set accuracy"):
        stats.seed_gaps(frame(), tow=True)  # the frame has no RetainAcc column
    results = frame()
    results["RetainAcc"] = 99.0
    results.loc[results.method == "retrain", "RetainAcc"] = None
    with pytest.raises(ValueError, match="Retrain lacks it"):
        stats.fair_summary(results, tow=True)


def test_holm_multiplies_the_sorted_p_values_and_keeps_them_ordered():
    """The textbook example: p = 0.01, 0.04, 0.03 of 3 tests -> 0.03, 0.06 (0.03 x 2), 0.06 (0.04 x 1,
    raised to the previous)."""
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_budget_and_selection_views_of_the_variants():
    """``best of 8`` and ``single-stage`` runs give the test side of the budget figure; ``tuned`` against
    ``single-stage`` says how much re-checking moved each method."""
    retrain = rows("retrain", {0: (90, 80, 50), 1: (90, 90, 60)}, variant="reference")
    a = [*rows("a", {0: (90, 84, 50), 1: (90, 94, 60)}, variant="single-stage"),
         *rows("a", {0: (90, 81, 50), 1: (90, 91, 60)}, variant="tuned"),
         *rows("a", {0: (90, 86, 50), 1: (90, 96, 60)}, variant="best of 8")]
    b = [r for v in ("single-stage", "tuned") for r in rows("b", {0: (90, 82, 50), 1: (90, 92, 60)}, variant=v)]
    results = pd.DataFrame(retrain + a + b)
    budget = stats.budget_gaps(results, trials=24).groupby(["method", "trials"]).AvgGap.mean()
    assert budget.to_dict() == pytest.approx({("a", 8): 2.0, ("a", 24): 4 / 3})  # b has no smaller budget
    moves = stats.selection_moves(results).set_index("method")
    assert moves.loc["a", "change"] == pytest.approx(1 / 3 - 4 / 3) and moves.loc["a", "rank_single"] == 2
    assert moves.loc["a", "rank_rechecked"] == 1
    curves = search_curves({"studies": [{"scenario": "s", "method": "a", "search_curve": [3.0, 2.0]}]})
    assert curves.AvgGap.tolist() == [3.0, 2.0] and curves.trials.tolist() == [1, 2]


def test_selection_counts_and_trials_read_an_exports_studies():
    """What the re-check did (moved, untuned on merit, fallback, exclusions by reason) and every budget
    trial's forgetting progress, flagged as doing nothing below the selection's least progress."""
    def study(best, chosen, fallback, candidates, progress, rounds=1):
        return {"scenario": "s", "method": f"m{best}{chosen}", "best_trial": best, "trial_avg_gap": [3.0, 1.0],
                "trial_progress": progress, "selection": {"chosen": chosen, "no_valid_candidate": fallback,
                                                          "candidates": candidates, "rounds": rounds}}

    ok, idle, broke = {"excluded": False}, {"excluded": True, "did_nothing": True}, {"excluded": True,
                                                                                      "collapsed": True}
    doc = {"design": {"min_progress": 0.25}, "studies": [
        study(1, 1, False, {"0": ok, "1": ok}, [0.5, 0.1]),  # the best trial stands
        study(1, 0, False, {"0": ok, "1": idle}, [0.3, None]),  # re-checked: the untuned parameters, on merit
        study(1, 0, True, {"0": idle, "1": broke}, [0.0, 1.5], rounds=2)]}  # nothing valid: untuned parameters kept
    counts = selection_counts(doc)
    assert counts == {"studies": 3, "moved": 2, "untuned": 1, "fallback": 1, "candidates": 6, "collapsed": 1,
                      "did_nothing": 2, "rounds": 1}
    budget = trials(doc)
    assert len(budget) == 6 and budget.did_nothing.tolist() == [False, True, False, False, True, False]


def test_a_method_with_the_same_parameters_in_both_variants_has_no_transfer_cost_and_no_say_in_the_verdict():
    retrain = rows("retrain", {s: (90, 80, 50) for s in range(3)}, variant="reference")
    natmu = [*rows("natmu", {s: (90, 81, 50) for s in range(3)}, variant="tuned"),
             *rows("natmu", {s: (90, 81 + 0.3 * (s == 1), 50) for s in range(3)}, variant="transfer")]
    salun = [r for v in ("tuned", "transfer") for r in rows("salun", {s: (90, 83, 50) for s in range(3)}, variant=v)]
    amnesiac = [*rows("amnesiac", {s: (90, 81, 50) for s in range(3)}, variant="tuned"),
                *rows("amnesiac", {s: (90, 89 + s, 50) for s in range(3)}, variant="transfer")]
    runs = pd.DataFrame(retrain + natmu + salun + amnesiac)
    costs = stats.transfer_costs(runs, same={"salun"}).set_index("method")
    assert costs.loc["salun", "same_params"] and math.isnan(costs.loc["salun", "cost"])
    assert costs.loc["amnesiac", "cost"] == pytest.approx(np.mean([8, 9, 10]) / 3) and costs.loc["amnesiac", "low"] > 0
    assert stats.transfer_verdict(costs.reset_index()) == ("borne out: NatMU's parameters transfer, and those of "
                                                          "Amnesiac, which moved, drift")
    # had SalUn counted, with its zero cost it would have "transferred" too
    counted = stats.transfer_costs(runs, same=set())
    assert stats.transfer_verdict(counted).startswith("half borne out") and "SalUn" in stats.transfer_verdict(counted)
