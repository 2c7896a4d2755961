"""The paper's table layout from a results frame: rows metric per forget target, columns Retrain then
the methods, cells ``mean±std (gap)`` over seeds, an AvgGap row per target with the best in bold.

The gap is ``abs(mean(method) - mean(Retrain))``; AvgGap averages it over the scenario's metrics (RA, FA,
MIA for random forgetting; RA, FATrain, FATest, MIA for class forgetting), as in the paper. The std
is the sample standard deviation over seeds (0 for a single seed). The fair protocol's per-seed
statistics can add ToW (:func:`natmu_lite.metrics.tow`) beside AvgGap (``tow=True``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .metrics import CLASS_METRICS, avg_gap, exposed_share, memorisation
from .metrics import tow as tow_of

# Rows that are not unlearning methods: Retrain (the target of every gap) and the original model
# itself (no unlearning: the floor a method must beat). Tables show the original but never rank it.
REFERENCE_METHODS = ("retrain", "original")
METHOD_ORDER = ("retrain", "original", "finetune", "ga", "amnesiac", "badteacher", "salun", "ssd", "neggradplus",
                "scrub", "l1sparse", "natmu")
METHOD_NAMES = {"retrain": "Retrain", "original": "Original", "finetune": "Finetune", "ga": "GA",
                "amnesiac": "Amnesiac", "badteacher": "BadTeacher", "salun": "SalUn", "ssd": "SSD",
                "neggradplus": "NegGrad+", "scrub": "SCRUB", "l1sparse": "ℓ1-sparse", "natmu": "NatMU"}


def _metrics_of(group: pd.DataFrame) -> list[str]:
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


def _collapsed(runs: pd.DataFrame) -> int:
    """How many runs are flagged as collapsed (rows written before the flag existed count as not)."""
    return int(runs["collapsed"].fillna(False).astype(bool).sum()) if "collapsed" in runs else 0


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and gap to Retrain per (scenario, target, method, metric), and AvgGap per method."""
    rows = []
    for (scenario, target), group in results.groupby(["scenario", "target"], sort=False):
        metrics = _metrics_of(group)
        if "retrain" not in set(group.method):
            raise ValueError(f"{scenario}/{target}: no Retrain runs, so no gaps")
        ref = group[group.method == "retrain"][metrics].astype(float).mean()
        for method, runs in group.groupby("method", sort=False):
            values = runs[metrics].astype(float)
            mean, std = values.mean(), values.std(ddof=1).fillna(0.0)
            gaps = (mean - ref).abs()
            for metric in metrics:
                rows.append(dict(scenario=scenario, target=target, method=method, metric=metric, mean=mean[metric],
                                 std=std[metric], gap=gaps[metric], seeds=len(runs)))
            rows.append(dict(scenario=scenario, target=target, method=method, metric="AvgGap",
                             mean=float(gaps.mean()), std=np.nan, gap=np.nan, seeds=len(runs),
                             collapsed=_collapsed(runs)))
    return pd.DataFrame(rows)


def _cell(mean: float, std: float, gap: float, method: str, metric: str, collapsed: int = 0) -> str:
    if metric == "AvgGap":  # † : some seeds' models collapsed (see grid.result_row)
        return "–" if method == "retrain" else f"{mean:.2f}" + ("†" if collapsed else "")
    text = f"{mean:.2f}±{std:.2f}"
    return text if method == "retrain" else f"{text} ({gap:.2f})"


def paper_table(results: pd.DataFrame, bold: str = "**") -> pd.DataFrame:
    """The paper's layout as a DataFrame of strings (index: target, metric; columns: methods).

    The lowest AvgGap of each target is wrapped in ``bold`` (Markdown ``**`` by default); a method
    with a collapsed run (its model lost the retain set) gets a † and is never the best."""
    summary = summarize(results)
    methods = [m for m in METHOD_ORDER if m in set(summary.method)]
    methods += sorted(set(summary.method) - set(methods))
    rows, index = [], []
    for (scenario, target), group in summary.groupby(["scenario", "target"], sort=False):
        metrics = list(dict.fromkeys(group.metric))
        best = group[(group.metric == "AvgGap") & (group.method != "retrain")
                     & (group.collapsed.fillna(0) == 0)].sort_values("mean")
        best_method = best.method.iloc[0] if len(best) else None
        for metric in metrics:
            cells = {}
            for method in methods:
                hit = group[(group.method == method) & (group.metric == metric)]
                if not len(hit):
                    cells[method] = ""
                    continue
                r = hit.iloc[0]
                cell = _cell(r["mean"], r["std"], r["gap"], method, metric, r.get("collapsed", 0) or 0)
                cells[method] = f"{bold}{cell}{bold}" if metric == "AvgGap" and method == best_method else cell
            rows.append(cells)
            label = scenario if target.lower() in scenario.lower() else f"{scenario}: {target}"
            index.append((label,
                          "FA" if metric == "FATrain" and "FATest" not in metrics else metric))
    table = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["target", "metric"]))
    return table.rename(columns=METHOD_NAMES)


def to_markdown(table: pd.DataFrame) -> str:
    head = ["target", "metric", *table.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    last = None
    for (target, metric), row in table.iterrows():
        lines.append("| " + " | ".join([target if target != last else "", metric, *row.values]) + " |")
        last = target
    return "\n".join(lines)


def to_latex(table: pd.DataFrame) -> str:
    """A booktabs tabular; bold cells (``**x**``) become ``\\textbf{x}``, ℓ1-sparse's ℓ1 becomes ``$\\ell_1$``."""
    def tex(s: str) -> str:
        s = s.replace("%", r"\%").replace("±", r"$\pm$").replace("–", "--").replace("ℓ1", r"$\ell_1$")
        return r"\textbf{" + s[2:-2] + "}" if s.startswith("**") else s

    cols = "ll" + "c" * len(table.columns)
    lines = [rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(["Target", "Metric", *map(tex, table.columns)]) + r" \\", r"\midrule"]
    last = None
    for (target, metric), row in table.iterrows():
        if last is not None and target != last:
            lines.append(r"\midrule")
        lines.append(" & ".join([tex(target) if target != last else "", tex(metric), *map(tex, row.values)]) + r" \\")
        last = target
    return "\n".join([*lines, r"\bottomrule", r"\end{tabular}"])


def to_text(table: pd.DataFrame) -> str:
    """A plain fixed-width rendering for terminals."""
    plain = table.map(lambda s: s.replace("**", "*") if isinstance(s, str) else s)
    with pd.option_context("display.max_columns", None, "display.width", 250, "display.max_colwidth", 40):
        return plain.to_string()


def format_table(rows: dict[str, dict[str, float]], seconds: dict[str, float]) -> str:
    """One line per model: the paper's metrics, RetainAcc (train accuracy on D_r), AvgGap to Retrain."""
    keys = list(next(iter(rows.values())))
    head = f"{'model':<11}" + "".join(f"{k:>10}" for k in [*keys, "AvgGap"]) + f"{'time':>9}"
    lines = [head, "-" * len(head)]
    for name, m in rows.items():
        gap = avg_gap(m, rows["retrain"])
        lines.append(f"{name:<11}" + "".join(f"{v:>10.2f}" for v in [*(m[k] for k in keys), gap])
                     + f"{seconds[name]:>8.1f}s")
    return "\n".join(lines)


def avg_gaps(results: pd.DataFrame) -> pd.DataFrame:
    """AvgGap per (scenario, target) x method as numbers, for plots and tests."""
    s = summarize(results)
    s = s[s.metric == "AvgGap"]
    return s.pivot_table(index=["scenario", "target"], columns="method", values="mean", sort=False)


def to_styler(table: pd.DataFrame):
    """A pandas Styler of :func:`paper_table` for notebooks: best AvgGap in bold, no Markdown marks."""
    def bold(cell: str) -> str:
        return "font-weight: bold" if isinstance(cell, str) and cell.startswith("**") else ""

    return table.style.map(bold).format(lambda c: c.strip("*") if isinstance(c, str) else c)


# ---------------------------------------------------------------------------------------------
# the fair protocol's statistics: per-seed gaps, intervals, ranks, paired differences

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
        metrics = _metrics_of(group)
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


def noise_band(values, sds: float = NOISE_SDS, floor: float = NOISE_FLOOR) -> tuple[float, float]:
    """Where a re-run of committed runs should land, for a check that holds on any CPU: the committed
    seeds' range, widened on each side by ``sds`` times their seed-to-seed standard deviation (at least
    ``floor``). Training is not bit-reproducible across instruction sets, so a re-run differs from the
    committed run of its seed about as another seed would; a change to the code that moves a result
    by more than the seeds' own noise falls outside."""
    x = np.asarray(values, dtype=float)
    margin = max(sds * (x.std(ddof=1) if len(x) > 1 else 0.0), floor)
    return float(x.min() - margin), float(x.max() + margin)


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
                         collapsed=_collapsed(runs)))
        if tow:
            rows[-1].update(zip(("ToW", "ToW_low", "ToW_high"), t_interval(g.ToW, level)))
    out = pd.DataFrame(rows)
    ranked = ~out.method.isin(REFERENCE_METHODS)
    out["rank"] = out[ranked].groupby("scenario")["AvgGap"].rank(method="min").astype("Int64")
    if tow:
        out["ToW_rank"] = out[ranked].groupby("scenario")["ToW"].rank(method="min", ascending=False).astype("Int64")
    return out


def paired_difference(results: pd.DataFrame, method: str = "natmu", level: float = 0.95) -> pd.DataFrame:
    """Per scenario: ``method``'s per-seed AvgGap minus that of the best *other* method (lowest mean),
    seed by seed, with its interval. Negative means ``method`` is closer to Retrain; an interval that
    contains 0 means the seeds cannot tell the two apart."""
    gaps = scenario_gaps(results)
    rows = []
    for scenario, g in gaps.groupby("scenario", sort=False):
        wide = g.pivot(index="seed", columns="method", values="AvgGap")
        others = wide.drop(columns=[method, *REFERENCE_METHODS], errors="ignore").mean().sort_values()
        best = others.index[0]
        mean, low, high = t_interval(wide[method] - wide[best], level)
        rows.append(dict(scenario=scenario, method=method, best_other=best, difference=mean, low=low, high=high))
    return pd.DataFrame(rows)


def fair_table(summary: pd.DataFrame, metric: str = "AvgGap") -> pd.DataFrame:
    """The compact view of :func:`fair_summary`: methods as rows, scenarios as columns (narrow
    enough for a book page), cells ``mean [low, high]``; the best mean of each column in bold (the
    lowest AvgGap, or with ``metric="ToW"`` the highest ToW, from ``fair_summary(..., tow=True)``).
    † marks a cell in which some runs collapsed (their model lost the retain set, see
    :func:`~natmu_lite.metrics.collapsed`): its mean is that of destroyed models, not of unlearning,
    so it is never bold."""
    if metric not in ("AvgGap", "ToW"):
        raise ValueError(f"unknown metric {metric!r}; valid: AvgGap, ToW")
    if metric not in summary:
        raise ValueError(f"the summary has no {metric} column (use fair_summary(results, tow=True))")
    mean, low, high, digits = ("AvgGap", "low", "high", 2) if metric == "AvgGap" else ("ToW", "ToW_low", "ToW_high", 3)
    methods = [m for m in METHOD_ORDER if m in set(summary.method)] + sorted(set(summary.method) - set(METHOD_ORDER))
    cells = {}
    for scenario, g in summary.groupby("scenario", sort=False):
        g = g.set_index("method")
        broken = g["collapsed"].gt(0) if "collapsed" in g else pd.Series(False, g.index)
        ok = g[~broken & ~g.index.isin(REFERENCE_METHODS)]  # collapsed runs, or no unlearning: never the best
        ok = ok if len(ok) else g
        best = ok[mean].idxmin() if metric == "AvgGap" else ok[mean].idxmax()
        dagger = {m: " †" if broken[m] else "" for m in g.index}
        text = {m: f"{g[mean][m]:.{digits}f} [{g[low][m]:.{digits}f}, {g[high][m]:.{digits}f}]{dagger[m]}"
                for m in methods if m in g.index}
        cells[scenario] = {m: f"**{t}**" if m == best else t for m, t in text.items()}
    return pd.DataFrame(cells).reindex(methods).rename(index=METHOD_NAMES)


# ---------------------------------------------------------------------------------------------
# privacy: the entropy MIA and U-LiRA on the same models



def privacy_summary(audits: list[dict]) -> pd.DataFrame:
    """Per audited method (``natmu_lite.audit.Audit.to_dict`` of each): U-LiRA's accuracy with its
    standard error and AUC, the share of candidates exposed (classified right by at least
    :data:`~natmu_lite.metrics.EXPOSED` % of the targets), and the entropy MIA of the same models on their own requests
    (mean over the models) with its distance to the Retrain audit's mean: the population attack's
    verdict beside the per-example one. ``AvgGap`` and ``ToW`` are those of the same models too: model
    s of a method against model s of Retrain, which was trained on exactly model s's retain set (the
    mean over the models). Needs the ``retrain`` audit; methods in the book's order."""
    by = {a["method"]: a for a in audits}
    if "retrain" not in by:
        raise ValueError("the audits have no retrain audit: the entropy MIA's gaps need Retrain's value")
    references = by["retrain"]["runs"]
    mia_retrain = float(np.mean([r["MIA"] for r in references]))
    rows = []
    for method in [m for m in METHOD_ORDER if m in by] + sorted(set(by) - set(METHOD_ORDER)):
        a = by[method]
        mia = float(np.mean([r["MIA"] for r in a["runs"]]))
        pairs = list(zip(a["runs"], references))
        rows.append(dict(method=method, AvgGap=float(np.mean([avg_gap(r, ref) for r, ref in pairs])),
                         ToW=float(np.mean([tow_of(r, ref) for r, ref in pairs])), MIA=mia,
                         MIA_gap=abs(mia - mia_retrain), ULiRA=a["accuracy"], ULiRA_se=a["stderr"], AUC=a["auc"],
                         exposed=exposed_share(a["per_example"]), models=a["models"]))
    return pd.DataFrame(rows)


def privacy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`privacy_summary` for a book page: display names, rounded, U-LiRA as ``mean ± SE``."""
    out = pd.DataFrame({"entropy MIA": summary.MIA.round(1), "|MIA - Retrain|": summary.MIA_gap.round(1),
                        "U-LiRA (%)": [f"{a:.1f} ± {e:.1f}" for a, e in zip(summary.ULiRA, summary.ULiRA_se)],
                        "AUC": summary.AUC.round(3), "exposed (%)": summary.exposed.round(0).astype(int)})
    out.insert(0, "ToW", summary.ToW.round(3))
    out.insert(0, "AvgGap", summary.AvgGap.round(2))
    out.index = summary.method.map(lambda m: METHOD_NAMES.get(m, m)).values
    return out


def per_target(audits: list[dict]) -> pd.DataFrame:
    """One row per (audited method, target model): U-LiRA's balanced accuracy on that target."""
    return pd.DataFrame([dict(method=a["method"], target=t, accuracy=v) for a in audits
                         for t, v in enumerate(a["per_target"])])


def exposure(audits: list[dict], bins: int = 5) -> pd.DataFrame:
    """One row per (audited method, candidate): the candidate's memorisation (from the ``original``
    audit, :func:`~natmu_lite.metrics.memorisation`), its quantile bin (1 = least memorised) and how
    often the targets classified it right (its per-example accuracy, %)."""
    by = {a["method"]: a for a in audits}
    if "original" not in by:
        raise ValueError("the audits have no original audit: memorisation is measured on the original models")
    mem = memorisation(torch.tensor(by["original"]["scores"]), torch.tensor(by["original"]["members"]))
    binned = pd.qcut(mem.numpy(), bins, labels=range(1, bins + 1)).astype(int)
    return pd.DataFrame([dict(method=a["method"], example=i, memorisation=float(mem[i]), bin=int(binned[i]),
                              accuracy=v) for a in audits for i, v in enumerate(a["per_example"])])


def example_difference(audits: list[dict], method: str, other: str, level: float = 0.95) -> tuple[float, float, float]:
    """``method``'s U-LiRA per-example accuracy minus ``other``'s, candidate by candidate (both audits
    face the same decisions): mean and Student-t interval over the candidates, as :func:`t_interval`."""
    by = {a["method"]: np.asarray(a["per_example"], dtype=float) for a in audits}
    diff = by[method] - by[other]
    return t_interval(diff[~np.isnan(diff)], level)
