"""The statistics of the book's comparisons: per-seed gaps to Retrain, intervals over seeds, ranks,
the band a re-run should land in, what re-checking and transferring a choice of parameters changed.
(Reading an export's studies is :mod:`natmu_lite.results`; U-LiRA's statistics are :mod:`natmu_lite.ulira`.)

Why per seed: seed s of a method is compared with seed s of Retrain on the same request, so the noise
the two share cancels (the paper's AvgGap, :func:`natmu_lite.tables.summarize`, compares seed means:
smaller, since opposite errors cancel; the book reports both). Intervals are Student-t over seeds (few
of them, so not normal ones). :mod:`natmu_lite.tables` lays these numbers out; this module computes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .methods import METHOD_NAMES, REFERENCE_METHODS
from .metrics import CLASS_METRICS
from .metrics import tow as tow_of


def metrics_of(group: pd.DataFrame) -> list[str]:
    """The scenario's metrics; a run that lacks one is an error (pandas would average it away)."""
    for column in ("RA", "FATrain", "MIA"):
        if column not in group:
            raise ValueError(f"the results have no {column} column")
    classes = "FATest" in group and group["FATest"].notna().any()
    metrics = [m for m in CLASS_METRICS if classes or m != "FATest"]
    holes = group[group[metrics].isna().any(axis=1)]
    if len(holes):
        r = holes.iloc[0]
        missing = [m for m in metrics if pd.isna(r[m])]
        raise ValueError(f"{r['scenario']}/{r['target']}: the {r['method']} run of seed {r['seed']} lacks "
                         f"{', '.join(missing)}")
    return metrics


def collapsed_runs(runs: pd.DataFrame) -> int:
    """How many runs are flagged as collapsed (rows written before the flag existed count as not)."""
    return int(runs["collapsed"].fillna(False).astype(bool).sum()) if "collapsed" in runs else 0


def _tow(run: pd.Series, ref: pd.Series, scenario: str, target: str) -> float:
    """ToW of one run against its seed's Retrain; a missing accuracy (rows without RetainAcc) is an error."""
    try:
        return tow_of(run.to_dict(), ref.to_dict())
    except ValueError as e:
        raise ValueError(f"{scenario}/{target}: the {run['method']} run of seed {run['seed']}: {e}") from None


def seed_gaps(results: pd.DataFrame, tow: bool = False) -> pd.DataFrame:
    """AvgGap of every run against Retrain *of the same seed* on the same request, one row per
    (scenario, target, method, seed): pairing by seed removes the run-to-run noise the two share.
    (The paper's AvgGap, :func:`summarize`, is the gap between the seed means: smaller, since
    opposite errors cancel; both are reported.) ``tow=True`` adds each run's ToW against the same
    Retrain (higher is better; it needs the rows' RetainAcc)."""
    rows = []
    for (scenario, target), group in results.groupby(["scenario", "target"], sort=False):
        metrics = metrics_of(group)
        refs = group[group.method == "retrain"].set_index("seed")
        ref = refs[metrics].astype(float)
        if ref.empty:
            raise ValueError(f"{scenario}/{target}: no Retrain runs, so no gaps")
        for _, run in group[group.method != "retrain"].iterrows():
            if run["seed"] not in ref.index:
                raise ValueError(f"{scenario}/{target}: no Retrain run for seed {run['seed']}")
            gap = (run[metrics].astype(float) - ref.loc[run["seed"]]).abs().mean()
            rows.append(dict(scenario=scenario, target=target, method=run["method"], seed=run["seed"], AvgGap=gap))
            if tow:
                rows[-1]["ToW"] = _tow(run, refs.loc[run["seed"]], scenario, target)
    return pd.DataFrame(rows)


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of a small sample (the seeds): (mean, low, high)."""
    from scipy import stats  # imported here: scipy is slow to import and only the fair tables need it

    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean, mean - half, mean + half


NOISE_SDS = 3  # a re-run may fall this many seed-to-seed standard deviations outside the committed seeds' range


NOISE_FLOOR = 1.0  # points, the least margin: one image of a 100-image forget set (deterministic methods' seeds agree)


def noise_band(values, sds: float = NOISE_SDS, floor: float = NOISE_FLOOR,
               around: float | None = None) -> tuple[float, float]:
    """Where a re-run of committed runs should land, for a check that holds on any CPU: the committed
    seeds' range, widened on each side by ``sds`` times their seed-to-seed standard deviation (at least
    ``floor``). Training is not bit-reproducible across instruction sets, so a re-run differs from the
    committed run of its seed about as another seed would; a change to the code that moves a result
    by more than the seeds' own noise falls outside.

    ``around``: the committed value of the very run that is re-run, when the re-run starts from the same
    pinned model; the band is then that value plus or minus the same margin. Sharper, and needed where
    each seed starts from its own original model: the seeds' range then also holds how much the result
    depends on the starting model, which a re-run from the same model does not vary."""
    x = np.asarray(values, dtype=float)
    margin = max(sds * (x.std(ddof=1) if len(x) > 1 else 0.0), floor)
    low, high = (x.min(), x.max()) if around is None else (around, around)
    return float(low - margin), float(high + margin)


def scenario_gaps(results: pd.DataFrame, tow: bool = False) -> pd.DataFrame:
    """Per (scenario, method, seed) the per-seed AvgGap (and ToW with ``tow=True``) averaged over the
    scenario's targets (the classes of a class scenario), so that each seed counts once in a scenario's
    interval."""
    gaps = seed_gaps(results, tow=tow)
    columns = ["AvgGap", "ToW"] if tow else ["AvgGap"]
    return gaps.groupby(["scenario", "method", "seed"], sort=False, as_index=False)[columns].mean()


def fair_summary(results: pd.DataFrame, level: float = 0.95, tow: bool = False) -> pd.DataFrame:
    """Per scenario and method: mean per-seed AvgGap with its interval over seeds, the rank of the
    mean within the scenario (1 = closest to Retrain), and how many of its runs collapsed. ``tow=True``
    adds the mean per-seed ToW with its interval (``ToW``, ``ToW_low``, ``ToW_high``) and its rank
    (``ToW_rank``, 1 = highest)."""
    rows = []
    for (scenario, method), g in scenario_gaps(results, tow=tow).groupby(["scenario", "method"], sort=False):
        mean, low, high = t_interval(g.AvgGap, level)
        runs = results[(results.scenario == scenario) & (results.method == method)]
        rows.append(dict(scenario=scenario, method=method, AvgGap=mean, low=low, high=high, seeds=len(g),
                         collapsed=collapsed_runs(runs)))
        if tow:
            rows[-1].update(zip(("ToW", "ToW_low", "ToW_high"), t_interval(g.ToW, level)))
    out = pd.DataFrame(rows)
    ranked = ~out.method.isin(REFERENCE_METHODS)
    out["rank"] = out[ranked].groupby("scenario")["AvgGap"].rank(method="min").astype("Int64")
    if tow:
        out["ToW_rank"] = out[ranked].groupby("scenario")["ToW"].rank(method="min", ascending=False).astype("Int64")
    return out


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of several p-values (the family-wise error stays at the level):
    sorted ascending, the j-th (from 0) is multiplied by (m - j), made non-decreasing, capped at 1."""
    order = np.argsort(p_values, kind="stable")
    adjusted, running = np.empty(len(p_values)), 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - j) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()


def validation_agreement(doc: dict, results: pd.DataFrame) -> pd.Series:
    """Per scenario, how well the validation side predicted the test side across the methods: the
    Spearman correlation between each method's re-checked validation score (its chosen candidate's mean
    AvgGap over the validation replicas) and its mean per-seed AvgGap on the test requests."""
    test = fair_summary(results).set_index(["scenario", "method"]).AvgGap
    out = {}
    for scenario in dict.fromkeys(s["scenario"] for s in doc["studies"]):
        score = {s["method"]: s["selection"]["candidates"][str(s["selection"]["chosen"])]["score"]
                 for s in doc["studies"] if s["scenario"] == scenario}
        pair = pd.DataFrame({"validation": score, "test": test.loc[scenario]}).dropna()
        out[scenario] = float(pair.validation.corr(pair.test, method="spearman"))
    return pd.Series(out)


def budget_gaps(results: pd.DataFrame, trials: int) -> pd.DataFrame:
    """The test side of the budget: per scenario, method and seed, the per-seed AvgGap of the parameters the
    study chose (single stage, no re-check) after 8, 16 and all ``trials`` trials (variants ``best of 8``,
    ``best of 16`` and ``single-stage``), for the methods that have the smaller budgets' runs."""
    smaller = {v: int(v.split()[-1]) for v in set(results.variant) if v.startswith("best of")}
    budget = {"single-stage": trials, **smaller}
    runs = results[results.variant.isin([*budget, "reference"])]
    gaps = [scenario_gaps(runs[runs.variant.isin([v, "reference"])]).assign(trials=n) for v, n in budget.items()]
    frame = pd.concat(gaps, ignore_index=True)
    small = set(results[results.variant.str.startswith("best of")].method)
    return frame[frame.method.isin(small)].reset_index(drop=True)


def selection_moves(results: pd.DataFrame) -> pd.DataFrame:
    """How much re-checking the choice moved each method: per scenario and method, the mean per-seed
    AvgGap and rank with the single-stage choice (the study's best trial) and with the re-checked one
    (``tuned``), and the change."""
    old, new = (fair_summary(results[results.variant.isin([v, "reference"])]).set_index(["scenario", "method"])
                for v in ("single-stage", "tuned"))
    both = old[["AvgGap", "rank"]].add_suffix("_single").join(new[["AvgGap", "rank"]].add_suffix("_rechecked"))
    both = both[both.rank_single.notna()]
    return both.assign(change=both.AvgGap_rechecked - both.AvgGap_single).reset_index()


RELABELLING = ("amnesiac", "badteacher", "salun")  # the relabelling baselines of the paper's transfer claim


def transfer_costs(runs: pd.DataFrame, same: set[str], own: str = "tuned", moved: str = "transfer") -> pd.DataFrame:
    """Per method, what transferring its parameters costs: its per-seed AvgGap with the ``moved`` variant's ones
    minus that with the ``own`` variant's, seed by seed against the same Retrain (mean and 95% interval).
    A method in ``same`` ran with identical parameters in both variants: it has no cost to report (NaN, and
    ``same_params``), not a cost of zero."""
    gaps = {v: scenario_gaps(runs[runs.variant.isin([v, "reference"])]).set_index(["method", "seed"]).AvgGap
            for v in (own, moved)}
    paired = (gaps[moved] - gaps[own]).dropna()
    rows = []
    for method in dict.fromkeys(paired.index.get_level_values("method")):
        if method in REFERENCE_METHODS:
            continue
        mean, low, high = (float("nan"),) * 3 if method in same else t_interval(paired[method])
        rows.append(dict(method=method, cost=mean, low=low, high=high, same_params=method in same))
    return pd.DataFrame(rows)


def transfer_verdict(costs: pd.DataFrame, method: str = "natmu") -> str:
    """The paper's transfer claim read off :func:`transfer_costs`, from the methods whose parameters moved:
    ``method``'s transfer must cost nothing beyond the seeds' noise, and the relabelling baselines'
    (those that moved) must cost something."""
    from .tables import method_words

    c = costs.set_index("method")
    if c.loc[method, "same_params"]:
        return f"untested: {METHOD_NAMES[method]}'s two studies chose the same parameters"
    moved = [m for m in RELABELLING if m in c.index and not c.loc[m, "same_params"]]
    drift = [m for m in moved if c.loc[m, "low"] > 0]
    if c.loc[method, "low"] > 0:
        return f"not borne out: {METHOD_NAMES[method]}'s own transferred parameters lose beyond the noise"
    if not moved:
        return (f"half tested: {METHOD_NAMES[method]}'s parameters transfer, and no relabelling baseline's "
                "parameters moved, so none can drift")
    if drift == moved:
        return (f"borne out: {METHOD_NAMES[method]}'s parameters transfer, and those of {method_words(moved)}, "
                "which moved, drift")
    return (f"half borne out: {METHOD_NAMES[method]}'s parameters transfer, but so do those of "
            f"{method_words([m for m in moved if m not in drift])}")
