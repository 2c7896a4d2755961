"""The paper's table layout from a results frame: rows metric per forget target, columns Retrain then
the methods, cells ``mean±std (gap)`` over seeds, an AvgGap row per target with the best in bold.

The gap is ``abs(mean(method) - mean(Retrain))``; AvgGap averages it over the scenario's metrics (RA, FA,
MIA for random forgetting; RA, FATrain, FATest, MIA for class forgetting), as in the paper. The std
is the sample standard deviation over seeds (0 for a single seed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METHOD_ORDER = ("retrain", "finetune", "ga", "amnesiac", "badteacher", "salun", "ssd", "natmu")
METHOD_NAMES = {"retrain": "Retrain", "finetune": "Finetune", "ga": "GA", "amnesiac": "Amnesiac",
                "badteacher": "BadTeacher", "salun": "SalUn", "ssd": "SSD", "natmu": "NatMU"}


def _metrics_of(group: pd.DataFrame) -> list[str]:
    return ["RA", "FATrain", "FATest", "MIA"] if group["FATest"].notna().any() else ["RA", "FATrain", "MIA"]


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
                             mean=float(gaps.mean()), std=np.nan, gap=np.nan, seeds=len(runs)))
    return pd.DataFrame(rows)


def _cell(mean: float, std: float, gap: float, method: str, metric: str) -> str:
    if metric == "AvgGap":
        return "–" if method == "retrain" else f"{mean:.2f}"
    text = f"{mean:.2f}±{std:.2f}"
    return text if method == "retrain" else f"{text} ({gap:.2f})"


def paper_table(results: pd.DataFrame, bold: str = "**") -> pd.DataFrame:
    """The paper's layout as a DataFrame of strings (index: target, metric; columns: methods).

    The lowest AvgGap of each target is wrapped in ``bold`` (Markdown ``**`` by default)."""
    summary = summarize(results)
    methods = [m for m in METHOD_ORDER if m in set(summary.method)]
    methods += sorted(set(summary.method) - set(methods))
    rows, index = [], []
    for (scenario, target), group in summary.groupby(["scenario", "target"], sort=False):
        metrics = list(dict.fromkeys(group.metric))
        best = group[(group.metric == "AvgGap") & (group.method != "retrain")].sort_values("mean")
        best_method = best.method.iloc[0] if len(best) else None
        for metric in metrics:
            cells = {}
            for method in methods:
                hit = group[(group.method == method) & (group.metric == metric)]
                if not len(hit):
                    cells[method] = ""
                    continue
                r = hit.iloc[0]
                cell = _cell(r["mean"], r["std"], r["gap"], method, metric)
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
    """A booktabs tabular; bold cells (``**x**``) become ``\\textbf{x}``."""
    def tex(s: str) -> str:
        s = s.replace("%", r"\%").replace("±", r"$\pm$").replace("–", "--")
        return r"\textbf{" + s[2:-2] + "}" if s.startswith("**") else s

    cols = "ll" + "c" * len(table.columns)
    lines = [rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(["Target", "Metric", *table.columns]) + r" \\", r"\midrule"]
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
