"""The paper's claim, decided per scenario: "supported", "refuted" or "undecided", each by a stated test.

The paper claims that NatMU ends closer to Retrain than the other methods, in every scenario. That is a
universal claim, so the book tests it as one, in two readings: against *the paper's own baselines*
(:data:`PAPER_BASELINES`) and against *every method here*. Per scenario and reading:

- **supported** when NatMU is significantly closer to Retrain than *each* rival of the set: one one-sided
  paired t-test per rival on the per-seed AvgGaps (seed s of NatMU against seed s of the rival, both
  measured against Retrain of seed s). All of them must reject, so no correction is needed (an
  intersection-union test: its error is at most that of its largest test).
- **refuted** when some rival is significantly closer than NatMU: the rivals' one-sided tests the other
  way, Holm-adjusted over the set (the claim falls if *any* of them holds, so the family must be
  corrected).
- **undecided** otherwise, reported with the difference the seeds could have detected
  (:func:`detectable`).

The whole claim ("in every scenario") is supported only when all four scenarios are, and refuted when a
rival is significantly better in any scenario after Holm's correction over *all* the scenarios'
comparisons (:func:`claim`).

**How close is close.** Two Retrains of the same request, from the same initial weights but with
another run seed, differ too: the AvgGap of a second Retrain against the first (:func:`floor`) is the
least any method can be expected to score, the *floor*. It is the equivalence margin fixed before any
method is compared: a method whose AvgGap differs from the best's by less than the floor (a two
one-sided tests procedure, TOST) is *tied with the best*; one whose AvgGap differs from a second
Retrain's by less than the floor is *as close as a second Retrain*.

**Seeds until decided.** Every test runs at :data:`ALPHA` divided by the number of planned looks
(:data:`LOOKS`): the decisions are taken after 5 seeds, and the undecided comparisons get 5 more seeds,
up to 20 (:func:`contenders`). Splitting the error over the looks (Bonferroni) keeps the chance of any
false decision at ``ALPHA`` however the looks end, which adding seeds until a test rejects would not.

The functions are pure: they take results frames (as :func:`natmu_lite.results.runs` returns them) and
return frames, so every decision in the book can be re-derived from the committed numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .methods import REFERENCE_METHODS
from .stats import holm, scenario_gaps, t_interval

ALPHA = 0.05  # the chance of any false decision, over all looks
LOOKS = (5, 10, 15, 20)  # seeds after which the decisions are taken; fixed before the first look
POWER = 0.8  # for the detectable difference: the chance a true difference of that size is found
PAPER_BASELINES = ("finetune", "ga", "amnesiac", "badteacher", "salun", "ssd")  # the paper's Sec. 5 baselines
SECOND = "second"  # the variant of the second Retrain, the floor's run (another run seed, same initial weights)
FLOOR = "second retrain"  # the floor's row in tables: the second Retrain scored against the first


def level(looks: tuple[int, ...] = LOOKS, alpha: float = ALPHA) -> float:
    """Each test's level: the error split evenly over the planned looks."""
    return alpha / len(looks)


def gap_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per-seed AvgGaps to Retrain of the same seed, averaged over a scenario's requests: one column per
    method, one row per (scenario, seed); a method that did not run a seed has NaN there."""
    runs = results[results.variant != SECOND] if "variant" in results else results
    gaps = scenario_gaps(runs)
    gaps = gaps[~gaps.method.isin(list(REFERENCE_METHODS))]
    return gaps.pivot_table(index=["scenario", "seed"], columns="method", values="AvgGap", sort=False)


def floor(results: pd.DataFrame) -> pd.Series:
    """The floor: per (scenario, seed), the AvgGap of the second Retrain against the first, averaged over
    the scenario's requests. Empty when the results hold no second Retrain."""
    none = pd.Series(dtype=float, name="floor", index=pd.MultiIndex.from_tuples([], names=["scenario", "seed"]))
    if "variant" not in results:
        return none
    second = results[(results.method == "retrain") & (results.variant == SECOND)]
    if second.empty:
        return none
    first = results[(results.method == "retrain") & (results.variant == "reference")]
    both = pd.concat([first, second.assign(method=FLOOR)])
    gaps = scenario_gaps(both)
    gaps = gaps[gaps.method == FLOOR]
    return gaps.set_index(["scenario", "seed"]).AvgGap.rename("floor")


def one_sided(d: np.ndarray) -> tuple[float, float]:
    """p-values of the paired t-test on differences ``d`` (NatMU minus rival): (mean below 0, mean above 0).
    Identical differences (a deterministic tie) give p = 1 on both sides, or 0 on the side they lie."""
    from scipy import stats  # imported here: scipy is slow to import

    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return 1.0, 1.0
    if np.allclose(d, d[0]):
        return (0.0, 1.0) if d[0] < 0 else (1.0, 0.0) if d[0] > 0 else (1.0, 1.0)
    return (float(stats.ttest_1samp(d, 0.0, alternative="less").pvalue),
            float(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue))


def detectable(sd: float, n: int, alpha: float, power: float = POWER) -> float:
    """The smallest mean difference a one-sided paired t-test of ``n`` seeds at level ``alpha`` finds with
    probability ``power``, for differences of standard deviation ``sd`` (the noncentral t, solved for
    its noncentrality)."""
    from scipy import optimize, stats

    if n < 2 or not np.isfinite(sd):
        return float("nan")
    df, crit = n - 1, stats.t.ppf(1 - alpha, n - 1)
    nc = optimize.brentq(lambda c: stats.nct.sf(crit, df, c) - power, 0.0, 100.0)
    return float(nc * sd / np.sqrt(n))


def compare(results: pd.DataFrame, method: str = "natmu", alpha: float | None = None) -> pd.DataFrame:
    """``method`` against each other method, per scenario: mean per-seed difference of AvgGaps (negative:
    ``method`` closer to Retrain) over the seeds both ran, with its two-sided interval at ``1 - 2 alpha``
    (it excludes 0 where a one-sided test at ``alpha`` rejects), both one-sided p-values, and the
    difference the seeds could have detected."""
    alpha = level() if alpha is None else alpha
    rows = []
    for scenario, wide in gap_table(results).groupby(level="scenario", sort=False):
        for rival in (m for m in wide if m != method):
            d = (wide[method] - wide[rival]).dropna().to_numpy()
            below, above = one_sided(d)
            _, low, high = t_interval(d, 1 - 2 * alpha)  # excludes 0 exactly where a one-sided test rejects
            rows.append(dict(scenario=scenario, method=method, rival=rival, seeds=len(d),
                             difference=float(d.mean()), low=low, high=high,
                             sd=float(d.std(ddof=1)) if len(d) > 1 else float("nan"),
                             p_closer=below, p_farther=above,
                             detectable=detectable(d.std(ddof=1) if len(d) > 1 else np.nan, len(d), alpha)))
    return pd.DataFrame(rows)


def decide(results: pd.DataFrame, rivals: tuple[str, ...] | None = None, method: str = "natmu",
           alpha: float | None = None) -> pd.DataFrame:
    """Per scenario, the decision on "``method`` is closer to Retrain than every rival of the set" (all
    other methods when ``rivals`` is None): ``supported``, ``refuted`` or ``undecided`` (see the module),
    with the rivals it is significantly closer than, those significantly closer than it (after Holm),
    the undecided ones, and, for the nearest undecided rival (the smallest mean difference), the
    difference and the difference the seeds could have detected."""
    alpha = level() if alpha is None else alpha
    pairs = compare(results, method, alpha)
    if rivals is not None:
        pairs = pairs[pairs.rival.isin(rivals)]
    rows = []
    for scenario, g in pairs.groupby("scenario", sort=False):
        beaten = g[g.p_closer < alpha].rival.tolist()
        adjusted = holm(g.p_farther.tolist())
        better = [r for r, p in zip(g.rival, adjusted) if p < alpha]
        open_ = g[~g.rival.isin(beaten + better)]
        decision = "refuted" if better else "supported" if len(beaten) == len(g) else "undecided"
        nearest = open_.loc[open_.difference.abs().idxmin()] if len(open_) else None
        rows.append(dict(scenario=scenario, decision=decision, rivals=len(g), beaten=beaten, better=better,
                         undecided=open_.rival.tolist(), seeds=int(g.seeds.min()),
                         nearest=None if nearest is None else nearest.rival,
                         difference=float("nan") if nearest is None else float(nearest.difference),
                         detectable=float("nan") if nearest is None else float(nearest.detectable)))
    return pd.DataFrame(rows, columns=["scenario", "decision", "rivals", "beaten", "better", "undecided", "seeds",
                                       "nearest", "difference", "detectable"])


def claim(results: pd.DataFrame, rivals: tuple[str, ...] | None = None, method: str = "natmu",
          alpha: float | None = None, replication: pd.DataFrame | None = None) -> str:
    """The decision on the whole claim ("closer than every rival of the set in every scenario"):
    ``supported`` when every scenario is; ``refuted`` when a rival is significantly closer in some
    scenario after Holm's correction over all scenarios' comparisons; else ``undecided``. With a
    ``replication`` set, only comparisons that replicated count (:func:`replicated_only`)."""
    alpha = level() if alpha is None else alpha
    per = replicated_only(results, replication, rivals, method) if replication is not None else \
        decide(results, rivals, method, alpha)
    if (per.decision == "supported").all():
        return "supported"
    pairs = compare(results, method, alpha)
    if rivals is not None:
        pairs = pairs[pairs.rival.isin(rivals)]
    refuting = {(s, r) for s, r, p in zip(pairs.scenario, pairs.rival, holm(pairs.p_farther.tolist())) if p < alpha}
    if replication is not None and not replication.empty:
        marks = replicate(results, replication, method).set_index(["scenario", "rival"]).mark
        refuting = {k for k in refuting if marks.get(k) == "replicated"}
    return "refuted" if refuting else "undecided"


def tost(d: np.ndarray, margin: float) -> float:
    """p-value of the two one-sided tests that the mean of ``d`` lies within ``(-margin, margin)``
    (equivalence when below the level)."""
    from scipy import stats

    d = np.asarray(d, dtype=float)
    if len(d) < 2 or not margin > 0:
        return 1.0
    if np.allclose(d, d[0]):
        return 0.0 if abs(d[0]) < margin else 1.0
    lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(d, margin, alternative="less").pvalue
    return float(max(lower, upper))


def best_set(results: pd.DataFrame, alpha: float | None = None) -> pd.DataFrame:
    """Per scenario and method, its place against the best (the lowest mean per-seed AvgGap): ``best``;
    ``tied`` when the two differ by less than the scenario's floor (TOST, Holm over the scenario's
    methods); ``behind`` when significantly farther from Retrain than the best (one-sided paired test,
    Holm); else ``undecided``. Also each method's distance to a second Retrain: ``within floor`` when its
    AvgGap minus the floor's lies within the floor (TOST), ``beyond floor`` when it exceeds the floor by
    significantly more than the floor, else ``undecided`` (None without the second Retrain's runs).
    ``leader``: the best and the methods tied with it (what :func:`natmu_lite.tables.fair_table` bolds)."""
    alpha = level() if alpha is None else alpha
    table, floors = gap_table(results), floor(results)
    rows = []
    for scenario, wide in table.groupby(level="scenario", sort=False):
        wide = wide.droplevel("scenario")
        best = wide.mean().idxmin()
        has_floor = scenario in floors.index.get_level_values("scenario")
        margin = float(floors.loc[scenario].mean()) if has_floor else float("nan")
        others = [m for m in wide if m != best]
        diffs = {m: (wide[m] - wide[best]).dropna().to_numpy() for m in others}
        farther = holm([one_sided(d)[1] for d in diffs.values()]) if others else []
        tied = holm([tost(d, margin) for d in diffs.values()]) if others else []
        for m, p_behind, p_tied in zip(others, farther, tied):
            place = "behind" if p_behind < alpha else "tied" if p_tied < alpha else "undecided"
            rows.append(dict(scenario=scenario, method=m, best=best, place=place, leader=place == "tied",
                             difference=float(diffs[m].mean()), p_behind=p_behind, p_tied=p_tied))
        rows.append(dict(scenario=scenario, method=best, best=best, place="best", leader=True, difference=0.0,
                         p_behind=1.0, p_tied=0.0))
        for row in rows[-len(wide.columns):]:
            row.update(floor_place(wide[row["method"]], floors.loc[scenario] if has_floor else None, margin, alpha))
    return pd.DataFrame(rows)


def floor_place(gaps: pd.Series, floors: pd.Series | None, margin: float, alpha: float) -> dict:
    """One method's AvgGaps against the second Retrain's, seed by seed (see :func:`best_set`)."""
    if floors is None:
        return dict(vs_floor=float("nan"), floor_place=None)
    d = (gaps - floors).dropna().to_numpy()
    beyond = one_sided(d - margin)[1] < alpha
    place = "within floor" if tost(d, margin) < alpha else "beyond floor" if beyond else "undecided"
    return dict(vs_floor=float(d.mean()), floor_place=place)


def contenders(results: pd.DataFrame, method: str = "natmu", alpha: float | None = None) -> dict[str, list[str]]:
    """Per scenario, the methods the next look's seeds run: ``method`` and every method whose comparison
    with it, or whose place against the best, is still undecided (with the best, which those compare
    with). A scenario with nothing undecided is absent: its decisions are final."""
    alpha = level() if alpha is None else alpha
    pairs, places = compare(results, method, alpha), best_set(results, alpha)
    out = {}
    for scenario in pairs.scenario.unique():
        g, pl = pairs[pairs.scenario == scenario], places[places.scenario == scenario]
        open_pairs = set(g[(g.p_closer >= alpha) & (g.p_farther >= alpha)].rival)
        open_places = set(pl[pl.place == "undecided"].method)
        if open_pairs or open_places:
            out[scenario] = sorted({method, *open_pairs, *open_places, *(pl.best.iloc[:1] if open_places else [])})
    return out


SETS = {"the paper's baselines": PAPER_BASELINES, "every method here": None}  # the claim's two readings


def decision_table(results: pd.DataFrame, method: str = "natmu", alpha: float | None = None) -> pd.DataFrame:
    """The decisions of both readings side by side, one row per scenario, in short cells: the seeds, the
    decision against the paper's baselines and against every method, the rivals significantly closer
    to Retrain than ``method``, and where undecided the nearest undecided rival with the mean difference
    to it and the difference the seeds could have detected (``difference / detectable``). The seeds are a
    range where the looks added seeds to some comparisons only (the undecided ones)."""
    from .methods import METHOD_NAMES

    alpha = level() if alpha is None else alpha
    paper, every = (decide(results, rivals, method, alpha).set_index("scenario") for rivals in SETS.values())
    name = lambda m: METHOD_NAMES.get(m, m)  # noqa: E731
    counts = compare(results, method, alpha).groupby("scenario", sort=False).seeds.agg(["min", "max"])
    seeds = [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in counts.reindex(every.index).itertuples(index=False)]
    out = pd.DataFrame({"seeds": seeds, "paper's baselines": paper.decision.reindex(every.index).fillna(
                            "no rival"), "every method": every.decision,
                        "closer than " + name(method): every.better.map(lambda b: ", ".join(map(name, b)) or "none")})
    out["nearest undecided"] = [f"{name(r.nearest)} {r.difference:+.2f} / {r.detectable:.2f}" if r.nearest else "none"
                                for r in every.itertuples()]
    return out


def sentence(results: pd.DataFrame, method: str = "natmu", alpha: float | None = None,
             replication: pd.DataFrame | None = None) -> str:
    """The verdict on the whole claim in both readings, in words, with the scenarios each rests on (the
    rule of :func:`claim`: one refuted scenario refutes "in every scenario"); with a ``replication`` set,
    from the comparisons that replicated only."""
    from .methods import METHOD_NAMES

    alpha = level() if alpha is None else alpha
    parts = []
    for name, rivals in SETS.items():
        per = (replicated_only(results, replication, rivals, method) if replication is not None else
               decide(results, rivals, method, alpha)).set_index("scenario")
        verdict = claim(results, rivals, method, alpha, replication)
        by = {d: per.index[per.decision == d].tolist() for d in ("supported", "refuted", "undecided")}
        found = [f"{d} in {', '.join(s)}" for d, s in by.items() if s]
        refuters = sorted({METHOD_NAMES.get(m, m) for b in per.better for m in b})
        because = f"; closer than {METHOD_NAMES.get(method, method)}: {', '.join(refuters)}" if refuters else ""
        parts.append(f"Against {name}, the claim is **{verdict}** ({'; '.join(found)}{because}).")
        if verdict != "refuted" and by["refuted"]:  # refuted within a scenario, not over all of them
            parts.append(f"The refutation in {', '.join(by['refuted'])} holds after Holm's correction over that "
                         "scenario's rivals, not after the correction over every scenario's comparisons at once, "
                         f"which the whole claim is tested with: so the whole claim stays {verdict}.")
    return " ".join(parts)



def floor_summary(results: pd.DataFrame, level_: float = 0.95) -> pd.DataFrame:
    """The floor as rows of :func:`natmu_lite.stats.fair_summary` (method :data:`FLOOR`, never ranked), so
    that the tables show it beside the methods: per scenario, its mean over the seeds with the interval."""
    rows = []
    for scenario, values in floor(results).groupby(level="scenario", sort=False):
        mean, low, high = t_interval(values, level_)
        rows.append(dict(scenario=scenario, method=FLOOR, AvgGap=mean, low=low, high=high, seeds=len(values),
                         collapsed=0))
    return pd.DataFrame(rows, columns=["scenario", "method", "AvgGap", "low", "high", "seeds", "collapsed"])


def place_table(results: pd.DataFrame, alpha: float | None = None) -> pd.DataFrame:
    """:func:`best_set` per scenario, for a page: the floor (mean [95% interval]), the best method, the
    methods tied with it, those still undecided against it, and those as close as a second Retrain."""
    from .methods import METHOD_NAMES

    places, floors = best_set(results, alpha), floor_summary(results).set_index("scenario")

    def names(g: pd.DataFrame, column: str, value: str) -> str:
        return ", ".join(METHOD_NAMES.get(m, m) for m in g[g[column] == value].method) or "none"

    out = {}
    for scenario, g in places.groupby("scenario", sort=False):
        f = floors.loc[scenario] if scenario in floors.index else None
        out[scenario] = {"floor": "n/a" if f is None else f"{f.AvgGap:.2f} [{f.low:.2f}, {f.high:.2f}]",
                         "best": METHOD_NAMES.get(g.best.iloc[0], g.best.iloc[0]),
                         "tied with it": names(g, "place", "tied"),
                         "undecided": names(g, "place", "undecided"),
                         "as close as a second Retrain": names(g, "floor_place", "within floor")}
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("scenario")

# ---------------------------------------------------------------------------------------------
# the replication set: the decisions re-checked on data, originals and requests no choice has seen

REPLICATION_ALPHA = 0.05  # one-sided level of a replication's own test (one look, a confirmation, not a search)


def replicate(results: pd.DataFrame, replication: pd.DataFrame, method: str = "natmu") -> pd.DataFrame:
    """Each comparison of ``method`` with a rival, on the test requests (``results``: every seed) and on the
    replication set (``replication``: its runs, with Retrain's). The rule, fixed before the replication
    ran: a decided comparison is *replicated* when the replication set's mean difference has the same sign
    and, where the replication's seeds could detect a difference as large as the test's (its
    :func:`detectable` difference is smaller), its own one-sided test in that direction rejects at
    :data:`REPLICATION_ALPHA`; else *not replicated*. An undecided comparison has nothing to replicate."""
    test, again = compare(results, method), compare(replication, method, REPLICATION_ALPHA)
    both = test.merge(again, on=["scenario", "method", "rival"], suffixes=("", "_rep"))
    rows = []
    for r in both.itertuples():
        decided = "closer" if r.p_closer < level() else "farther" if r.p_farther < level() else None
        if decided is None:
            mark = "undecided"
        else:
            same = np.sign(r.difference_rep) == np.sign(r.difference)
            powered = r.detectable_rep < abs(r.difference)
            confirmed = (r.p_closer_rep if decided == "closer" else r.p_farther_rep) < REPLICATION_ALPHA
            mark = "replicated" if same and (confirmed or not powered) else "not replicated"
        rows.append(dict(scenario=r.scenario, rival=r.rival, test=decided or "undecided", difference=r.difference,
                         replication=r.difference_rep, low=r.low_rep, high=r.high_rep, seeds=r.seeds_rep,
                         powered=r.detectable_rep < abs(r.difference), mark=mark))
    return pd.DataFrame(rows)


def rank_agreement(results: pd.DataFrame, replication: pd.DataFrame) -> pd.Series:
    """Per scenario, the Spearman correlation of the methods' mean per-seed AvgGaps on the test requests
    and on the replication set: does the ranking of all the methods carry over?"""
    test, again = (gap_table(r).groupby(level="scenario", sort=False).mean() for r in (results, replication))
    return pd.Series({s: float(test.loc[s].corr(again.loc[s], method="spearman")) for s in test.index
                      if s in again.index})


def replicated_only(results: pd.DataFrame, replication: pd.DataFrame | None, rivals: tuple[str, ...] | None = None,
                    method: str = "natmu") -> pd.DataFrame:
    """:func:`decide`'s decisions keeping only what replicated: a rival counts as beaten, or as closer than
    ``method``, only if that comparison replicated; a scenario whose decision rested on a comparison that
    did not is undecided. Without a replication set, the decisions as they are."""
    per = decide(results, rivals, method)
    if replication is None or replication.empty:
        return per
    marks = replicate(results, replication, method).set_index(["scenario", "rival"]).mark
    out = per.copy()
    for i, r in per.iterrows():
        beaten = [m for m in r.beaten if marks.get((r.scenario, m)) == "replicated"]
        better = [m for m in r.better if marks.get((r.scenario, m)) == "replicated"]
        out.at[i, "beaten"], out.at[i, "better"] = beaten, better
        out.at[i, "decision"] = "refuted" if better else "supported" if len(beaten) == r.rivals else "undecided"
    return out


def replication_table(results: pd.DataFrame, replication: pd.DataFrame, method: str = "natmu") -> pd.DataFrame:
    """:func:`replicate` for a page: each comparison decided on the test requests, one row per (scenario,
    rival), with the test difference, the replication set's mean difference and its interval, and the mark."""
    from .methods import METHOD_NAMES

    marks = replicate(results, replication, method)
    marks = marks[marks.mark != "undecided"]
    return pd.DataFrame({
        "scenario": marks.scenario, "rival": marks.rival.map(lambda m: METHOD_NAMES.get(m, m)),
        f"{METHOD_NAMES.get(method, method)} is": marks.test, "test": marks.difference.map("{:+.2f}".format),
        "replication": [f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]" for d, lo, hi in zip(marks.replication, marks.low,
                                                                                  marks.high)],
        "mark": marks.mark}).set_index(["scenario", "rival"])


def replication_sentence(results: pd.DataFrame, replication: pd.DataFrame, method: str = "natmu") -> str:
    """:func:`replicate`'s outcome in words: how many decided comparisons replicated, and each one that did
    not, with its difference on the test requests and on the replication set (and whether the sign turned),
    so that a decision that does not replicate is said plainly, beside the table."""
    from .methods import METHOD_NAMES

    marks = replicate(results, replication, method)
    decided = marks[marks.mark != "undecided"]
    if decided.empty:
        return "No comparison was decided on the test requests, so none has anything to replicate."
    failed = decided[decided.mark == "not replicated"]
    head = f"{int((decided.mark == 'replicated').sum())} of {len(decided)} decided comparisons replicated."
    if failed.empty:
        return head + " Every decided comparison replicated."
    name = METHOD_NAMES.get(method, method)
    parts = []
    for scenario, g in failed.groupby("scenario", sort=False):
        rivals = [f"{METHOD_NAMES.get(r.rival, r.rival)} ({r.difference:+.2f} on the test requests, "
                  f"{r.replication:+.2f} on the replication set{turned})" for r in g.itertuples()
                  for turned in [", the other sign" if r.replication * r.difference < 0 else ""]]
        parts.append(f"{scenario}: {', '.join(rivals)}")
    return (f"{head} Not replicated ({name}'s mean per-seed AvgGap minus the rival's; negative: {name} closer): "
            + "; ".join(parts) + ".")

