"""The paper's table layout from a results frame: rows metric per target (a request's forget class or
share), columns Retrain then the methods, cells ``mean±std (gap)`` over seeds, an AvgGap row per target
with the best in bold.

The gap is ``abs(mean(method) - mean(Retrain))``; AvgGap averages it over the scenario's metrics (RA, FA,
MIA for random forgetting; RA, FATrain, FATest, MIA for class forgetting), as in the paper. The std
is the sample standard deviation over seeds (0 for a single seed). Beside it, the fair protocol's
compact table (:func:`fair_table`) and the privacy table of the U-LiRA audits, laid out from the
statistics of :mod:`natmu_lite.stats`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .decisions import FLOOR
from .methods import METHOD_NAMES, REFERENCE_METHODS, in_book_order
from .metrics import avg_gap
from .stats import collapsed_runs, metrics_of


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and gap to Retrain per (scenario, target, method, metric), and AvgGap per method."""
    rows = []
    for (scenario, target), group in results.groupby(["scenario", "target"], sort=False):
        metrics = metrics_of(group)
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
                             collapsed=collapsed_runs(runs)))
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
    methods = in_book_order(summary.method)
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


def method_words(methods) -> str:
    """Methods named in prose, in the book's method order: ``"GA, SSD and NatMU"`` (the chapters' glued
    sentences)."""
    names = [METHOD_NAMES.get(m, m) for m in in_book_order(methods)]
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


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
    width = max(map(len, ["model", *rows])) + 1
    head = f"{'model':<{width}}" + "".join(f"{k:>10}" for k in [*keys, "AvgGap"]) + f"{'time':>9}"
    lines = [head, "-" * len(head)]
    for name, m in rows.items():
        gap = avg_gap(m, rows["retrain"])
        lines.append(f"{name:<{width}}" + "".join(f"{v:>10.2f}" for v in [*(m[k] for k in keys), gap])
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


def fair_table(summary: pd.DataFrame, metric: str = "AvgGap", leaders: pd.DataFrame | None = None,
               fallbacks: set[tuple[str, str]] = frozenset()) -> pd.DataFrame:
    """The compact view of :func:`~natmu_lite.stats.fair_summary`: methods as rows, scenarios as columns
    (narrow enough for a book page), cells ``mean [low, high]``; the best mean of each column in bold (the
    lowest AvgGap, or with ``metric="ToW"`` the highest ToW, from ``fair_summary(..., tow=True)``), or,
    given ``leaders`` (:func:`~natmu_lite.decisions.best_set`), every leader of the column: the best and the
    methods tied with it. † marks a cell in which some runs collapsed (their model lost the
    retain set, see :func:`~natmu_lite.metrics.collapsed`): its mean is that of destroyed models, not of
    unlearning, so it is never bold. ‡ marks a (scenario, method) of ``fallbacks``: no candidate parameters
    passed the selection's checks, so the untuned ones were kept (:mod:`natmu_lite.selection`)."""
    if metric not in ("AvgGap", "ToW"):
        raise ValueError(f"unknown metric {metric!r}; valid: AvgGap, ToW")
    if metric not in summary:
        raise ValueError(f"the summary has no {metric} column (use fair_summary(results, tow=True))")
    mean, low, high, digits = ("AvgGap", "low", "high", 2) if metric == "AvgGap" else ("ToW", "ToW_low", "ToW_high", 3)
    methods = in_book_order(summary.method)
    cells = {}
    for scenario, g in summary.groupby("scenario", sort=False):
        g = g.set_index("method")
        broken = g["collapsed"].gt(0) if "collapsed" in g else pd.Series(False, g.index)
        ok = g[~broken & ~g.index.isin([*REFERENCE_METHODS, FLOOR])]  # collapsed, no unlearning, a Retrain: never best
        ok = ok if len(ok) else g
        best = {ok[mean].idxmin() if metric == "AvgGap" else ok[mean].idxmax()}
        if leaders is not None:
            best = set(leaders[(leaders.scenario == scenario) & leaders.leader].method) - set(g.index[broken])
        marks = {m: (" †" if broken[m] else "") + (" ‡" if (scenario, m) in fallbacks else "") for m in g.index}
        text = {m: f"{g[mean][m]:.{digits}f} [{g[low][m]:.{digits}f}, {g[high][m]:.{digits}f}]{marks[m]}"
                for m in methods if m in g.index}
        cells[scenario] = {m: f"**{t}**" if m in best else t for m, t in text.items()}
    return pd.DataFrame(cells).reindex(methods).rename(index=METHOD_NAMES)


def privacy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`~natmu_lite.ulira.privacy_summary` for a book page: display names, rounded, U-LiRA as ``mean ± SE``."""
    out = pd.DataFrame({"entropy MIA": summary.MIA.round(1), "|MIA - Retrain|": summary.MIA_gap.round(1),
                        "U-LiRA (%)": [f"{a:.1f} ± {e:.1f}" for a, e in zip(summary.ULiRA, summary.ULiRA_se)],
                        "AUC": summary.AUC.round(3), "exposed (%)": summary.exposed.round(0).astype(int)})
    out.insert(0, "ToW", summary.ToW.round(3))
    out.insert(0, "AvgGap", summary.AvgGap.round(2))
    out.index = summary.method.map(lambda m: METHOD_NAMES.get(m, m)).values
    return out


def selection_table(doc: dict) -> pd.DataFrame:
    """Per scenario and method, what the re-checked selection did (an export's ``studies``): the
    single-stage choice (the study's best trial) and the chosen trial (``0`` is the untuned parameters), the
    chosen parameters' mean validation AvgGap over the replicas, and how many candidates were excluded for
    collapsing or doing nothing (``‡``: all of them, the untuned parameters kept)."""
    rows = []
    for s in doc["studies"]:
        sel = s["selection"]
        chosen = sel["candidates"][str(sel["chosen"])] if str(sel["chosen"]) in sel["candidates"] else \
            sel["candidates"][sel["chosen"]]
        excluded = sum(c.get("excluded", False) for c in sel["candidates"].values())
        rows.append({"scenario": s["scenario"], "method": METHOD_NAMES.get(s["method"], s["method"]),
                     "best trial": s["best_trial"], "chosen trial": sel["chosen"],
                     "chosen score": round(chosen["score"], 2), "excluded": f"{excluded} of {len(sel['candidates'])}"
                     + (" ‡" if sel["no_valid_candidate"] else "")})
    return pd.DataFrame(rows).set_index(["scenario", "method"])
