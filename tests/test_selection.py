"""Choosing knobs that survive their noise (selection.py): candidates scored over replicas, and no
collapsed or do-nothing winner."""

import pytest

from natmu_lite import selection


def row(ra: float, fa: float, mia: float, retain: float = 99.0, fa_test: float | None = None) -> dict:
    return {"RA": ra, "FATrain": fa, "FATest": fa_test, "MIA": mia, "RetainAcc": retain}


ORIGINAL, RETRAIN = row(89.0, 99.0, 75.0), row(89.0, 89.0, 70.0)


def replicas(*runs: dict) -> list[dict]:
    return [{"run": r, "retrain": RETRAIN, "original": ORIGINAL} for r in runs]


def test_a_candidate_scores_its_mean_gap_over_the_replicas():
    got = selection.assess(replicas(row(89.0, 90.0, 70.0), row(88.0, 89.0, 73.0)), num_classes=10)
    assert got["gaps"] == pytest.approx([1 / 3, 4 / 3]) and got["score"] == pytest.approx(5 / 6)
    assert got["progress"] == pytest.approx((0.9 + 1.0) / 2) and not got["excluded"]


def test_a_candidate_that_barely_moves_the_forget_accuracy_did_nothing_however_good_its_gap():
    """FA 98 of the original's 99 and Retrain's 89: a tenth of the way. Its MIA matches Retrain's, so its
    AvgGap (3) beats an honest candidate's, but it is excluded."""
    idle = selection.assess(replicas(row(89.0, 98.0, 70.0)) * 3, num_classes=10)
    honest = selection.assess(replicas(row(85.0, 92.0, 66.0)) * 3, num_classes=10)
    assert idle["score"] < honest["score"] and idle["progress"] == pytest.approx(0.1)
    assert idle["did_nothing"] and idle["excluded"] and not honest["excluded"]
    assert selection.choose({0: honest, 7: idle}) == (0, False)


def test_a_collapsed_candidate_is_excluded_and_with_none_left_the_untuned_knobs_stay():
    broken = selection.assess(replicas(row(10.0, 10.0, 0.0, retain=12.0), row(89.0, 89.0, 70.0)), num_classes=10)
    assert broken["collapsed"] and broken["excluded"]
    assert selection.choose({3: broken}, untuned=0) == (0, True)


def test_the_lowest_score_wins_ties_go_to_the_earlier_trial():
    a, b = ({"score": s, "excluded": False} for s in (2.0, 2.0))
    assert selection.choose({5: a, 2: b, 9: {"score": 1.0, "excluded": True}}) == (2, False)


def test_without_a_gap_to_close_a_forget_accuracy_does_not_count():
    """A sub-class request where Retrain still recognises the class as well as the original: no way to
    go, so no verdict on that accuracy (and a class request's forget-test accuracy counts too)."""
    same = row(89.0, 95.0, 70.0, fa_test=60.0)
    assert selection.forgetting_progress(row(89.0, 95.0, 70.0, fa_test=50.0), {**same, "FATest": 90.0}, same) == \
        pytest.approx((90.0 - 50.0) / (90.0 - 60.0))
    assert selection.forgetting_progress(row(89.0, 95.0, 70.0), same, same) is None
    assert selection.best_so_far([5.0, 3.0, 4.0, 1.0]) == [5.0, 3.0, 3.0, 1.0]
