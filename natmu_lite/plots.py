"""The book's figures: small functions that take numbers the package computed and draw them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .methods import COLORS, METHOD_NAMES, METHOD_ORDER, REFERENCE_METHODS
from .stats import t_interval


def palette() -> dict[str, str]:
    """Every row's colour (one per method, the same in every figure) by its display name, for seaborn's hue."""
    return {METHOD_NAMES[m]: COLORS[m] for m in COLORS}


def _hue_order(methods) -> list[str]:
    present = set(methods)
    return [_name(m) for m in METHOD_ORDER if m in present] + sorted(_name(m) for m in present - set(METHOD_ORDER))


def _t95(values) -> tuple[float, float]:
    """seaborn's error bar: the same Student-t 95% interval over seeds as the tables."""
    _, low, high = t_interval(values)
    return low, high


def _name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def curves(values: dict[str, list[float]], reference: float | None = None, ylabel: str = "forget accuracy (%)",
           reference_label: str = "Retrain", ax=None, title: str | None = None):
    """One line per method over epochs, with the retrained model's value as a dashed line."""
    ax = ax or plt.subplots(figsize=(6, 3.6))[1]
    for method, ys in values.items():
        ax.plot(range(1, len(ys) + 1), ys, marker="o", ms=3, label=_name(method), color=COLORS.get(method))
    if reference is not None:
        ax.axhline(reference, ls="--", color="black", lw=1, label=reference_label)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.legend(frameon=False, fontsize=8)
    return ax


def image_grid(images: Tensor, titles: list[str] | None = None, cols: int = 8, scale: float = 1.3):
    """uint8 (N, C, H, W) images (or float masks in [0, 1], (N, H, W)) in a grid."""
    n = len(images)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * scale, rows * scale * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i]
        if img.dim() == 3 and img.shape[0] in (1, 3):
            img = img.permute(1, 2, 0)
        img = img.squeeze(-1) if img.dim() == 3 and img.shape[-1] == 1 else img
        ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=255 if img.dtype == torch.uint8 else 1)
        if titles:
            ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig


def kl_vs_gap(frame: pd.DataFrame, ax=None):
    """Naturalness (mean KL to Retrain's predictions) against the FA gap to Retrain (paper Fig. 2a):
    one small dot per seed, the mean with ±1 std bars in both directions (``frame``: method, seed,
    KL, gap)."""
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(5.4, 3.8))[1]
    named = frame.assign(method=frame.method.map(_name))
    order = _hue_order(frame.method)
    sns.scatterplot(named, x="KL", y="gap", hue="method", hue_order=order, palette=palette(), alpha=0.35, s=25,
                    legend=False, ax=ax)
    for method, g in named.groupby("method"):
        ax.errorbar(g.KL.mean(), g.gap.mean(), xerr=g.KL.std(ddof=1), yerr=g.gap.std(ddof=1), fmt="o", ms=7,
                    capsize=3, color=palette().get(method), label=method)
        ax.annotate(method, (g.KL.mean(), g.gap.mean()), textcoords="offset points", xytext=(7, 5), fontsize=8)
    ax.set(xlabel="mean KL(label || Retrain's prediction)", ylabel="|FA - FA of Retrain| (points)")
    return ax


def gap_intervals(gaps: pd.DataFrame, ax=None):
    """Per scenario, each method's per-seed AvgGap to Retrain: mean and 95% t-interval over seeds
    (``gaps`` is :func:`natmu_lite.stats.scenario_gaps`'s frame); lower is closer to Retrain."""
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(8.5, 3.8))[1]
    frame = gaps.assign(method=gaps.method.map(_name))
    sns.pointplot(frame, x="scenario", y="AvgGap", hue="method", hue_order=_hue_order(gaps.method),
                  palette=palette(), errorbar=_t95, dodge=0.6, linestyle="none", markersize=4,
                  err_kws={"linewidth": 1.2}, capsize=0.04, ax=ax)
    ax.set(xlabel="", ylabel="AvgGap to Retrain (per seed)", ylim=(0, None))
    ax.legend(frameon=False, fontsize=8, ncol=4)
    return ax


def seed_curves(frame: pd.DataFrame, reference: pd.Series | None = None, ylabel: str = "forget accuracy (%)",
                ax=None, title: str | None = None):
    """One line per method over epochs, mean over seeds with a ±1 std band (``frame``: method, seed,
    epoch, value); ``reference`` (one value per seed) is drawn as Retrain's mean with its band."""
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(6.4, 3.8))[1]
    named = frame.assign(method=frame.method.map(_name))
    sns.lineplot(named, x="epoch", y="value", hue="method", hue_order=_hue_order(frame.method), palette=palette(),
                 errorbar="sd", marker="o", markersize=4, ax=ax)
    if reference is not None:
        mean, std = float(reference.mean()), float(reference.std(ddof=1)) if len(reference) > 1 else 0.0
        ax.axhline(mean, ls="--", color="black", lw=1, label="Retrain")
        ax.axhspan(mean - std, mean + std, color="black", alpha=0.08)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.legend(frameon=False, fontsize=8)
    return ax


def relevance_grid(images: Tensor, maps: dict[str, Tensor], titles: dict[str, list[str]] | None = None,
                   scale: float = 1.5):
    """One row per image: the image, then one relevance map per model (red positive, blue negative)."""
    rows, cols = len(images), 1 + len(maps)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * scale, rows * scale * 1.1), squeeze=False)
    for r in range(rows):
        img = images[r].permute(1, 2, 0).squeeze(-1).numpy()
        axes[r, 0].imshow(img, cmap="gray", vmin=0, vmax=255)
        for c, (name, m) in enumerate(maps.items(), start=1):
            axes[r, c].imshow(m[r].numpy(), cmap="bwr", vmin=-1, vmax=1)
            axes[r, c].set_title((titles or {}).get(name, [name] * rows)[r], fontsize=7)
        for ax in axes[r]:
            ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_title("hybrid", fontsize=7)
    fig.tight_layout()
    return fig


def transfer_bars(runs: pd.DataFrame, own: str, moved: str, labels: dict[str, str] | None = None,
                  metrics: tuple[str, ...] = ("FA", "MIA")):
    """Fig. 4: per method, each metric with the parameters tuned for the request's own ratio
    (``variant == own``) and with those transferred from another (``moved``), mean and 95%
    t-interval over seeds; Retrain's mean is the dashed line. ``runs`` are protocol result rows;
    ``labels`` name the two variants in the legend."""
    import seaborn as sns

    runs = runs.rename(columns={"FATrain": "FA"}) if "FA" not in runs else runs
    retrain = runs[runs.method == "retrain"]
    labels = labels or {own: own, moved: moved}
    frame = runs[runs.variant.isin([own, moved])]
    frame = frame.assign(method=frame.method.map(_name), variant=frame.variant.map(labels))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.8 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        sns.barplot(frame, x="method", y=metric, hue="variant", hue_order=[labels[own], labels[moved]],
                    order=_hue_order(set(runs.method) - set(REFERENCE_METHODS)), errorbar=_t95, capsize=0.1,
                    err_kws={"linewidth": 1}, palette=["tab:blue", "lightgray"], edgecolor="black", linewidth=0.5,
                    ax=ax)
        ax.axhline(retrain[metric].mean(), ls="--", color="black", lw=1, label="Retrain")
        ax.set(xlabel="", ylabel=f"{metric} (%)", title=metric)
        ax.tick_params(axis="x", labelsize=8, labelrotation=30)
        ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


def attacks(summary: pd.DataFrame, per_model: pd.DataFrame, ax=None):
    """Two verdicts on the same models (``summary``: :func:`natmu_lite.stats.privacy_summary`): left,
    U-LiRA's accuracy on each attacked model per method (a dot each; the mean with ± 2 standard errors
    over the candidates, which the targets' own spread understates, see
    :func:`~natmu_lite.metrics.ulira_attack`; 50% is Retrain's ideal); right, that accuracy against
    the entropy MIA's distance to Retrain's (0 is ideal for both). ``per_model``: method, model,
    accuracy."""
    import seaborn as sns

    axes = ax if ax is not None else plt.subplots(1, 2, figsize=(11, 3.9), width_ratios=(1.25, 1))[1]
    order = _hue_order(per_model.method)
    named = per_model.assign(method=per_model.method.map(_name))
    sns.stripplot(named, x="method", y="accuracy", hue="method", order=order, hue_order=order, palette=palette(),
                  alpha=0.45, size=3.5, legend=False, ax=axes[0])
    means = summary.set_index(summary.method.map(_name)).loc[order]
    axes[0].errorbar(range(len(order)), means.ULiRA, yerr=2 * means.ULiRA_se, fmt="o", color="black", ms=4,
                     capsize=4, lw=1)
    axes[0].axhline(50, ls="--", color="black", lw=1)
    axes[0].set(xlabel="", ylabel="U-LiRA accuracy per target (%)")
    axes[0].tick_params(axis="x", rotation=45)
    frame = summary.assign(name=summary.method.map(_name))
    sns.scatterplot(frame, x="MIA_gap", y="ULiRA", hue="name", hue_order=[n for n in order if n in set(frame.name)],
                    palette=palette(), s=60, legend=False, ax=axes[1])
    axes[1].errorbar(frame.MIA_gap, frame.ULiRA, yerr=2 * frame.ULiRA_se, fmt="none", ecolor="gray", lw=0.8)
    for i, (_, r) in enumerate(frame.sort_values("ULiRA").iterrows()):  # alternate sides: close points stay legible
        axes[1].annotate(r["name"], (r.MIA_gap, r.ULiRA), textcoords="offset points", fontsize=8,
                         xytext=(5, 4) if i % 2 else (5, -10))
    axes[1].axhline(50, ls="--", color="black", lw=1)
    axes[1].set(xlabel="entropy MIA: |MIA - Retrain's MIA| (points)", ylabel="U-LiRA accuracy (%, ± 2 SE)")
    plt.gcf().tight_layout()
    return axes


def exposure_by_memorisation(frame: pd.DataFrame, ax=None):
    """How often the targets classify a candidate right, by how memorised it is (``frame``: method,
    quantile bin of memorisation, the candidate's per-example accuracy); a band is the 95% interval
    over the candidates of a bin."""
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(7, 3.8))[1]
    named = frame.assign(method=frame.method.map(_name))
    sns.lineplot(named, x="bin", y="accuracy", hue="method", hue_order=_hue_order(frame.method), palette=palette(),
                 errorbar=("ci", 95), marker="o", markersize=4, ax=ax)
    ax.axhline(50, ls="--", color="black", lw=1)
    ax.set_xticks(sorted(frame["bin"].unique()))
    ax.set(xlabel="memorisation (quintile of the candidates; 5 = most memorised)",
           ylabel="U-LiRA per-example accuracy (%)")
    ax.legend(frameon=False, fontsize=8, ncol=2)
    return ax


def search_curves(curves: pd.DataFrame, budget: pd.DataFrame | None = None):
    """Is the tuning budget enough? Per scenario, each method's best validation AvgGap after k trials
    (``curves``: :func:`natmu_lite.stats.search_curves`; lines), and, for the methods with the smaller
    budgets' runs, the test AvgGap of the knobs chosen after 8, 16 and all trials (``budget``:
    :func:`natmu_lite.stats.budget_gaps`; mean and 95% interval over seeds). A line still falling at the
    end, or test points that keep improving, say the budget was short."""
    import seaborn as sns

    scenarios = list(dict.fromkeys(curves.scenario))
    fig, axes = plt.subplots(1, len(scenarios), figsize=(3.6 * len(scenarios), 3.6), squeeze=False, sharey=False)
    for ax, scenario in zip(axes[0], scenarios):
        frame = curves[curves.scenario == scenario].assign(method=lambda f: f.method.map(_name))
        sns.lineplot(frame, x="trials", y="AvgGap", hue="method", hue_order=_hue_order(curves.method),
                     palette=palette(), legend=ax is axes[0][-1], ax=ax, lw=1.2)
        if budget is not None and len(test := budget[budget.scenario == scenario]):
            sns.pointplot(test.assign(method=test.method.map(_name)), x="trials", y="AvgGap", hue="method",
                          hue_order=[m for m in _hue_order(budget.method)], palette=palette(), errorbar=_t95,
                          native_scale=True, markers="s", linestyles="--", legend=False, ax=ax)
        ax.set(title=scenario, xlabel="trials", ylabel="AvgGap (lines: validation; squares: test)", yscale="log")
    if axes[0][-1].get_legend() is not None:
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1, 1), frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


def progress_vs_gap(trials: pd.DataFrame, least: float):
    """Does the search's objective reward unlearning? Every budget trial (``trials``:
    :func:`natmu_lite.stats.trial_progress`) as a dot, per scenario: its validation AvgGap against how far
    it moved the forget accuracy from the original's towards Retrain's (0: not at all, 1: all the way);
    left of the dashed line (``least``, the selection's least progress) a trial did nothing. Progress is
    clipped to [-0.5, 2.5], so that far over-forgetting trials stay on the plot, at its right edge."""
    import seaborn as sns

    scenarios = list(dict.fromkeys(trials.scenario))
    fig, axes = plt.subplots(1, len(scenarios), figsize=(3.6 * len(scenarios), 3.6), squeeze=False)
    shown = trials.dropna(subset=["progress"]).assign(method=lambda f: f.method.map(_name),
                                                      progress=lambda f: f.progress.clip(-0.5, 2.5))
    for ax, scenario in zip(axes[0], scenarios):
        sns.scatterplot(shown[shown.scenario == scenario], x="progress", y="AvgGap", hue="method",
                        hue_order=_hue_order(trials.method), palette=palette(), s=14, alpha=0.7,
                        legend=ax is axes[0][-1], ax=ax)
        ax.axvline(least, ls="--", color="black", lw=1)
        ax.set(title=scenario, xlabel="progress towards Retrain", ylabel="validation AvgGap", yscale="log")
    if axes[0][-1].get_legend() is not None:
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1, 1), frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


def decisions(pairs: pd.DataFrame, floors: pd.Series | None = None, clip: float = 6.0, method: str = "NatMU"):
    """One panel per scenario: ``method``'s per-seed AvgGap minus each rival's, mean and the interval the
    decision reads (``pairs`` is :func:`natmu_lite.decisions.compare`'s frame): left of 0, ``method`` is
    closer to Retrain; an interval clear of 0 is a decided comparison. The grey band is the scenario's
    floor (a second Retrain's AvgGap) on either side of 0, where a difference is no larger than what two
    Retrains differ by. Differences beyond ``clip`` points are drawn at the edge, their value written."""
    scenarios = list(dict.fromkeys(pairs.scenario))
    rows = (len(scenarios) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(6.8, 1.2 + 1.9 * rows), sharex=True, squeeze=False)
    order, colors = _hue_order(pairs.rival), palette()
    for ax, scenario in zip(axes.flat, scenarios):
        g = pairs[pairs.scenario == scenario].set_index("rival")
        rivals = sorted(g.index, key=lambda m: order.index(_name(m)))
        if floors is not None and scenario in floors.index:
            width = float(floors.loc[scenario].mean())
            ax.axvspan(-width, width, color="0.88", lw=0)
        ax.axvline(0, color="black", lw=0.8)
        for y, rival in enumerate(rivals):
            r = g.loc[rival]
            mean, low, high = (float(np.clip(v, -clip, clip)) for v in (r.difference, r.low, r.high))
            ax.plot([low, high], [y, y], color=colors[_name(rival)], lw=1.6)
            ax.plot([mean], [y], "o", color=colors[_name(rival)], ms=4.5)
            if abs(r.difference) > clip:  # the point sits at the edge: its value is written beside it
                ax.annotate(f"{r.difference:+.1f}", (np.sign(r.difference) * clip, y), xytext=(0, 4),
                            textcoords="offset points", ha="right" if r.difference > 0 else "left", fontsize=8)
        ax.set_yticks(range(len(rivals)), [_name(m) for m in rivals], fontsize=9)
        ax.set_ylim(len(rivals) - 0.5, -0.5)
        ax.set_xlim(-clip * 1.05, clip * 1.05)
        ax.set_title(scenario, fontsize=10)
        ax.tick_params(axis="x", labelsize=9)
    for ax in axes.flat[len(scenarios):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(f"{method} minus rival (AvgGap points)", fontsize=9)
    fig.tight_layout()
    return fig
