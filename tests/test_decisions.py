"""The decisions on the paper's claim (decisions.py): supported, refuted and undecided per scenario, the
whole claim, Retrain's floor, the tied-with-the-best test and the seeds the next look runs."""

import numpy as np
import pandas as pd
import pytest

from natmu_lite import decisions

from .test_tables import rows

SEEDS = range(5)


def gaps(method: str, fa: list[float], scenario: str = "random-1%", **extra) -> list[dict]:
    """Runs whose only gap to Retrain (FA 80 on every seed) is FA's: AvgGap = |fa - 80| / 3."""
    return rows(method, {s: (90, 80 + fa[s], 50) for s in range(len(fa))}, scenario=scenario,
                variant=extra.pop("variant", "tuned"), **extra)


def frame(*groups: list[dict], seeds: int = 5, scenario: str = "random-1%") -> pd.DataFrame:
    retrain = rows("retrain", {s: (90, 80, 50) for s in range(seeds)}, scenario=scenario, variant="reference")
    return pd.DataFrame(retrain + [r for g in groups for r in g])


def test_supported_when_natmu_is_significantly_closer_than_every_rival():
    results = frame(gaps("natmu", [0, 0.3, 0, 0.3, 0]), gaps("a", [6, 7, 6, 8, 6]), gaps("b", [9, 9.5, 9, 10, 9]))
    got = decisions.decide(results).iloc[0]
    assert got.decision == "supported" and sorted(got.beaten) == ["a", "b"] and not got.better
    assert decisions.claim(results) == "supported"


def test_refuted_when_some_rival_is_significantly_closer_after_holm():
    results = frame(gaps("natmu", [6, 7, 6, 8, 6]), gaps("a", [0, 0.3, 0, 0.3, 0]), gaps("b", [9, 9.5, 9, 10, 9]))
    got = decisions.decide(results).iloc[0]
    assert got.decision == "refuted" and got.better == ["a"] and got.beaten == ["b"]
    pair = decisions.compare(results).set_index("rival").loc["a"]
    assert pair.p_farther < decisions.level() and pair.difference == pytest.approx(np.mean([6, 6.7, 6, 7.7, 6]) / 3)
    # against a set that leaves the better rival out, the same seeds support the claim
    assert decisions.decide(results, rivals=("b",)).iloc[0].decision == "supported"


def test_undecided_when_the_seeds_cannot_tell_and_the_detectable_difference_says_how_far_they_see():
    results = frame(gaps("natmu", [1, 4, 2, 6, 0]), gaps("a", [3, 1, 5, 2, 4]))
    got = decisions.decide(results).iloc[0]
    assert got.decision == "undecided" and got.undecided == ["a"]
    d = (np.array([1, 4, 2, 6, 0]) - np.array([3, 1, 5, 2, 4])) / 3
    assert got.detectable == pytest.approx(decisions.detectable(d.std(ddof=1), 5, decisions.level()))
    assert got.nearest == "a" and got.difference == pytest.approx(d.mean())
    row = decisions.decision_table(results).loc["random-1%"]
    assert row["every method"] == "undecided" and row["closer than NatMU"] == "none"
    assert row["nearest undecided"] == f"a {d.mean():+.2f} / {got.detectable:.2f}"
    assert decisions.claim(results) == "undecided"


def test_one_refuted_scenario_refutes_the_claim_in_every_scenario():
    won = frame(gaps("natmu", [0, 0.3, 0, 0.3, 0]), gaps("a", [6, 7, 6, 8, 6]))
    lost = frame(gaps("natmu", [6, 7, 6, 8, 6], "full-class"), gaps("a", [0, 0.3, 0, 0.3, 0], "full-class"),
                 scenario="full-class")
    both = pd.concat([won, lost])
    assert decisions.decide(both).set_index("scenario").decision.to_dict() == {"random-1%": "supported",
                                                                               "full-class": "refuted"}
    assert decisions.claim(both) == "refuted"


def test_the_detectable_difference_matches_the_normal_approximation_for_many_seeds_and_shrinks_with_them():
    from scipy import stats

    z = stats.norm.ppf(0.95) + stats.norm.ppf(0.8)
    assert decisions.detectable(2.0, 400, 0.05) == pytest.approx(z * 2.0 / 20, rel=0.01)
    assert decisions.detectable(2.0, 5, 0.0125) > decisions.detectable(2.0, 10, 0.0125) > 0


def test_the_floor_is_a_second_retrains_gap_to_the_first():
    second = rows("retrain", {s: (90, 80 + (3 if s % 2 else 0), 53) for s in SEEDS}, variant=decisions.SECOND)
    floor = decisions.floor(frame(gaps("natmu", [0] * 5), second))
    assert floor.loc["random-1%"].tolist() == pytest.approx([1, 2, 1, 2, 1])  # (0 + 0 + 3) / 3 or (0 + 3 + 3) / 3
    assert decisions.floor(frame(gaps("natmu", [0] * 5))).empty  # no second Retrain, no floor


def test_a_method_within_the_floor_of_the_best_is_tied_with_it_and_one_far_beyond_is_behind():
    second = rows("retrain", {s: (90, 80 + 4.5 + 0.3 * (s % 2), 50) for s in SEEDS}, variant=decisions.SECOND)
    results = frame(gaps("natmu", [0, 0.3, 0, 0.3, 0]), gaps("a", [0.3, 0.6, 0.3, 0.3, 0.6]),
                    gaps("b", [12, 12.6, 12, 13.2, 12]), second)
    got = decisions.best_set(results).set_index("method")
    assert got.loc["natmu", "place"] == "best" and got.loc["a", "place"] == "tied" and got.loc["b", "place"] == "behind"
    assert got.loc["natmu", "floor_place"] == "within floor" and got.loc["b", "floor_place"] == "beyond floor"
    # without the second Retrain there is no margin: nothing can be tied, and nothing is placed against the floor
    plain = decisions.best_set(frame(gaps("natmu", [0, 0.3, 0, 0.3, 0]), gaps("a", [0.3, 0.6, 0.3, 0.3, 0.6])))
    assert plain.set_index("method").loc["a", "place"] == "undecided" and plain.floor_place.isna().all()


def test_the_next_look_runs_natmu_and_the_undecided_methods_only():
    results = frame(gaps("natmu", [1, 4, 2, 6, 0]), gaps("a", [3, 1, 5, 2, 4]), gaps("b", [30, 31, 30, 32, 30]))
    assert decisions.contenders(results) == {"random-1%": ["a", "natmu"]}
    decided = frame(gaps("natmu", [0, 0.3, 0, 0.3, 0]), gaps("b", [30, 31, 30, 32, 30]))
    assert decisions.contenders(decided) == {}


def test_comparisons_pair_only_the_seeds_both_methods_ran():
    results = frame(gaps("natmu", [1, 4, 2, 6, 0, 1, 1]), gaps("a", [3, 1, 5, 2, 4, 9, 9]), gaps("b", [3] * 5),
                    seeds=7)
    pairs = decisions.compare(results).set_index("rival")
    assert pairs.loc["a", "seeds"] == 7 and pairs.loc["b", "seeds"] == 5


def test_the_sentence_states_each_readings_verdict_with_the_scenarios_it_rests_on():
    won = frame(gaps("natmu", [0, 0.3, 0, 0.3, 0]), gaps("ssd", [6, 7, 6, 8, 6]), gaps("a", [6, 7, 6, 8, 6]))
    lost = frame(gaps("natmu", [6, 7, 6, 8, 6], "full-class"), gaps("ssd", [9, 9, 9, 9.3, 9], "full-class"),
                 gaps("a", [0, 0.3, 0, 0.3, 0], "full-class"), scenario="full-class")
    text = decisions.sentence(pd.concat([won, lost]))
    # "a" is not one of the paper's baselines: against those (SSD here) NatMU wins both scenarios
    assert text == ("Against the paper's baselines, the claim is **supported** (supported in random-1%, full-class). "
                    "Against every method here, the claim is **refuted** (supported in random-1%; refuted in "
                    "full-class; closer than NatMU: a).")


def test_the_sentence_says_why_a_scenario_refuted_on_its_own_leaves_the_whole_claim_undecided():
    won = frame(gaps("natmu", [0, 0.3, 0, 0.3, 0]), gaps("ssd", [6, 7, 6, 8, 6]))
    # SSD closer in full-class at one-sided p = 0.0115: below the look level alone, not once doubled by Holm
    lost = frame(gaps("natmu", [1, 2, 6, 3, 3], "full-class"), gaps("ssd", [0] * 5, "full-class"),
                 scenario="full-class")
    both = pd.concat([won, lost])
    assert decisions.decide(both).set_index("scenario").decision.to_dict() == {"random-1%": "supported",
                                                                               "full-class": "refuted"}
    assert decisions.claim(both) == "undecided"
    text = decisions.sentence(both)
    assert "the claim is **undecided** (supported in random-1%; refuted in full-class" in text
    assert text.count("The refutation in full-class holds after Holm's correction over that scenario's rivals, not "
                      "after the correction over every scenario's comparisons at once") == 2  # both readings
    assert decisions.decision_table(both).seeds.tolist() == ["5", "5"]


def test_a_decision_replicates_when_the_replication_set_agrees_in_sign_and_where_powered_in_significance():
    test = frame(gaps("natmu", [0, 0.3, 0, 0.3, 0]), gaps("a", [6, 7, 6, 8, 6]), gaps("b", [9, 9.5, 9, 10, 9]),
                 gaps("c", [1, 4, 2, 6, 0]))
    # replication: NatMU still far ahead of a, but now behind b; c (undecided on test) has nothing to replicate
    again = frame(gaps("natmu", [3, 3.3, 3]), gaps("a", [9, 9.6, 9]), gaps("b", [0, 0.3, 0]), gaps("c", [0, 0, 0]),
                  seeds=3)
    marks = decisions.replicate(test, again).set_index("rival")
    assert marks.loc["a", "mark"] == "replicated" and marks.loc["b", "mark"] == "not replicated"
    assert marks.loc["c", "mark"] == "undecided" and marks.loc["a", "seeds"] == 3
    # without c the decision on the test requests is supported; keeping what replicated, b is not beaten
    test, again = test[test.method != "c"], again[again.method != "c"]
    assert decisions.decide(test).iloc[0].decision == "supported"
    kept = decisions.replicated_only(test, again).iloc[0]
    assert kept.decision == "undecided" and kept.beaten == ["a"]
    assert decisions.claim(test) == "supported" and decisions.claim(test, replication=again) == "undecided"
    assert decisions.rank_agreement(test, again).loc["random-1%"] == pytest.approx(-0.5)  # 1,2,3 -> 2,3,1
    # the sentence beside the table names the one that did not replicate, with both differences and the sign
    b = marks.loc["b"]
    assert decisions.replication_sentence(test, again) == (
        "1 of 2 decided comparisons replicated. Not replicated (NatMU's mean per-seed AvgGap minus the rival's; "
        f"negative: NatMU closer): random-1%: b ({b.difference:+.2f} on the test requests, {b.replication:+.2f} on "
        "the replication set, the other sign).")


def test_an_unpowered_replication_needs_only_the_sign():
    test = frame(gaps("natmu", [0, 0.3, 0, 0.3, 0]), gaps("a", [3, 3.3, 3, 3.6, 3]))
    noisy = frame(gaps("natmu", [0, 9, 0]), gaps("a", [3, 1, 9]), seeds=3)  # mean difference -1.33, wide
    row = decisions.replicate(test, noisy).iloc[0]
    assert not row.powered and row.mark == "replicated"


def test_decisions_read_only_finished_looks():
    """A look counts once every run of its seeds has finished: seeds of a look under way are left out."""
    from natmu_lite import results

    def row(seed, method="natmu"):
        return dict(setting="s", scenario="random-1%", request="random-1%", target="1%", method=method, seed=seed,
                    variant="tuned" if method != "retrain" else "reference", RA=90, FATrain=80, FATest=None, MIA=50)

    doc = {"design": {"seeds": [0, 1], "decisions": {"looks": [2, 4, 6]}},
           "runs": [row(s, m) for s in range(3) for m in ("natmu", "retrain")],
           "missing": ["s|random-1%|natmu|3|tuned"]}
    assert results.finished_looks(doc) == {"random-1%": 2}
    assert sorted(results.runs(doc, looks=True).seed.unique()) == [0, 1]
    doc["runs"] += [row(3, m) for m in ("natmu", "retrain")]
    doc["missing"] = []
    assert results.finished_looks(doc) == {"random-1%": 4}  # the third look has not started
    assert sorted(results.runs(doc, looks=True).seed.unique()) == [0, 1, 2, 3]
    assert sorted(results.runs(doc).seed.unique()) == [0, 1]  # the tables: the protocol's own seeds


def test_the_replication_set_counts_only_seeds_whose_runs_all_finished():
    from natmu_lite import results

    def row(seed, method, scenario="random-1%", request="random-1% (replication)"):
        return dict(setting="s-replication", scenario=scenario, request=request, method=method, seed=seed)

    doc = {"replication": [row(200, "natmu"), row(200, "retrain"), row(201, "retrain"),
                           row(200, "natmu", "full-class", "full-class (replication): Dress")],
           "missing": ["s-replication|random-1% (replication)|natmu|201|tuned",
                       "s-replication|full-class (replication): Shirt|natmu|200|tuned"]}
    got = results.replication_runs(doc)
    assert set(zip(got.scenario, got.seed)) == {("random-1%", 200)}  # full-class 200 waits for its Shirt request
