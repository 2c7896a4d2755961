"""The book's figures: small functions that take numbers the package computed and draw them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .methods import COLORS, METHOD_NAMES, REFERENCE_METHODS, in_book_order
from .stats import t_interval

# The book's page: its text column is about 690 px wide at 1280 px, and the inline backend draws at DPI
# pixels per inch, so a figure of at most WIDTH inches is shown at 100% (never shrunk), and its smallest
# text, MIN_FONT points, is MIN_FONT * DPI / 72 = 16 px on the page, the body text's size
# (tests/test_book_pages.py measures both).
WIDTH, DPI, MIN_FONT = 6.6, 100, 11.5
STYLE = {"figure.dpi": DPI, "savefig.dpi": DPI, "figure.figsize": (WIDTH, 3.6), "font.size": MIN_FONT,
         "axes.titlesize": MIN_FONT + 0.5, "axes.labelsize": MIN_FONT, "xtick.labelsize": MIN_FONT,
         "ytick.labelsize": MIN_FONT, "legend.fontsize": MIN_FONT, "legend.title_fontsize": MIN_FONT,
         "figure.titlesize": MIN_FONT + 0.5}


def book_style() -> None:
    """The book's figure sizes and fonts (applied when this module is imported)."""
    plt.rcParams.update(STYLE)


book_style()


def palette() -> dict[str, str]:
    """Every row's colour (one per method, the same in every figure) by its display name, for seaborn's hue."""
    return {METHOD_NAMES[m]: COLORS[m] for m in COLORS}


def _hue_order(methods) -> list[str]:
    return [_name(m) for m in in_book_order(methods)]


def _t95(values) -> tuple[float, float]:
    """seaborn's error bar: the same Student-t 95% interval over seeds as the tables."""
    _, low, high = t_interval(values)
    return low, high


def _name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def curves(values: dict[str, list[float]], reference: float | None = None, ylabel: str = "forget accuracy (%)",
           reference_label: str = "Retrain", ax=None, title: str | None = None):
    """One line per method over epochs, with the retrained model's value as a dashed line."""
    ax = ax or plt.subplots(figsize=(WIDTH, 3.6))[1]
    for method, ys in values.items():
        ax.plot(range(1, len(ys) + 1), ys, marker="o", ms=3, label=_name(method), color=COLORS.get(method))
    if reference is not None:
        ax.axhline(reference, ls="--", color="black", lw=1, label=reference_label)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.legend(frameon=False)
    return ax


def image_grid(images: Tensor, titles: list[str] | None = None, cols: int = 8, scale: float = 1.3,
               title_lines: int = 1, blank: list[int] = ()):
    """uint8 (N, C, H, W) images (or float masks in [0, 1], (N, H, W)) in a grid as wide as the page at
    most (``scale`` inches per image, less where ``cols`` would not fit); ``title_lines``: the lines of
    the longest title, for the room above each image; ``blank``: positions left empty."""
    n = len(images)
    rows = (n + cols - 1) // cols
    scale = min(scale, WIDTH / cols)
    height = rows * (scale + title_lines * MIN_FONT / 72 * 1.3)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * scale, height), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n or i in blank:
            continue
        img = images[i]
        if img.dim() == 3 and img.shape[0] in (1, 3):
            img = img.permute(1, 2, 0)
        img = img.squeeze(-1) if img.dim() == 3 and img.shape[-1] == 1 else img
        ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=255 if img.dtype == torch.uint8 else 1)
        if titles:
            ax.set_title(titles[i])
    fig.tight_layout(pad=0.2, h_pad=0.3, w_pad=0.2)
    return fig


def kl_vs_gap(frame: pd.DataFrame, ax=None):
    """Naturalness (mean KL to Retrain's predictions) against the FA gap to Retrain (paper Fig. 2a):
    one small dot per seed, the mean with ±1 std bars in both directions (``frame``: method, seed,
    KL, gap)."""
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(WIDTH, 3.8))[1]
    named = frame.assign(method=frame.method.map(_name))
    order = _hue_order(frame.method)
    sns.scatterplot(named, x="KL", y="gap", hue="method", hue_order=order, palette=palette(), alpha=0.35, s=25,
                    legend=False, ax=ax)
    for method, g in named.groupby("method"):
        ax.errorbar(g.KL.mean(), g.gap.mean(), xerr=g.KL.std(ddof=1), yerr=g.gap.std(ddof=1), fmt="o", ms=7,
                    capsize=3, color=palette().get(method), label=method)
        ax.annotate(method, (g.KL.mean(), g.gap.mean()), textcoords="offset points", xytext=(7, 5))
    ax.set(xlabel="mean KL(label || Retrain's prediction)", ylabel="|FA - FA of Retrain| (points)")
    return ax


def gap_intervals(gaps: pd.DataFrame, ax=None, clip: float | None = None):
    """Per scenario, each method's per-seed AvgGap to Retrain: mean and 95% t-interval over seeds
    (``gaps`` is :func:`natmu_lite.stats.scenario_gaps`'s frame); lower is closer to Retrain. ``clip``:
    the axis ends there, so that the comparison at hand is not squeezed by one method far off the
    scale; a method whose mean lies above it is named, with its mean, at the top of the panel."""
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(WIDTH, 4.4))[1]
    frame = gaps.assign(method=gaps.method.map(_name))
    sns.pointplot(frame, x="scenario", y="AvgGap", hue="method", hue_order=_hue_order(gaps.method),
                  palette=palette(), errorbar=_t95, dodge=0.6, linestyle="none", markersize=4,
                  err_kws={"linewidth": 1.2}, capsize=0.04, ax=ax)
    ax.set(xlabel="", ylabel="AvgGap to Retrain (per seed)", ylim=(0, clip))
    if clip is not None:
        means = frame.groupby(["scenario", "method"], sort=False).AvgGap.mean()
        off = [f"{method} on {scenario}: {value:.1f}" for (scenario, method), value in means.items() if value > clip]
        if off:
            ax.text(0.01, 0.98, "off the scale: " + "; ".join(off), transform=ax.transAxes, va="top")
    legend_below(ax)
    return ax


def legend_below(ax, ncol: int = 4) -> None:
    """The axes' legend under the plot, outside the data, in ``ncol`` columns: it never covers a bar or
    a point, and the figure stays as wide as the page."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, frameon=False)



def seed_curves(frame: pd.DataFrame, reference: pd.Series | None = None, ylabel: str = "forget accuracy (%)",
                ax=None, title: str | None = None):
    """One line per method over epochs, mean over seeds with a ±1 std band (``frame``: method, seed,
    epoch, value); ``reference`` (one value per seed) is drawn as Retrain's mean with its band."""
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(WIDTH, 3.8))[1]
    named = frame.assign(method=frame.method.map(_name))
    sns.lineplot(named, x="epoch", y="value", hue="method", hue_order=_hue_order(frame.method), palette=palette(),
                 errorbar="sd", marker="o", markersize=4, ax=ax)
    if reference is not None:
        mean, std = float(reference.mean()), float(reference.std(ddof=1)) if len(reference) > 1 else 0.0
        ax.axhline(mean, ls="--", color="black", lw=1, label="Retrain")
        ax.axhspan(mean - std, mean + std, color="black", alpha=0.08)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.legend(frameon=False)
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
            axes[r, c].set_title((titles or {}).get(name, [name] * rows)[r])
        for ax in axes[r]:
            ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_title("hybrid")
    fig.tight_layout()
    return fig


def relevance_overlay(images: Tensor, masks: Tensor, maps: dict[str, Tensor], titles: dict[str, list[str]],
                      row_titles: list[str] | None = None, scale: float = 1.6):
    """Where a model looks on each hybrid, as two models compare: one row per hybrid, the hybrid with
    its forget part outlined (``masks``: the forget image's weight per pixel; the gold contour at 0.5
    encloses the part that is mostly the forget image, outside it the remaining one dominates), then
    each model's relevance laid over the image (red: evidence for its prediction, blue: against;
    ``maps`` in [-1, 1], two models), then the second's map minus the first's, one colour bar for all."""
    first, second = list(maps)
    cols, rows = 4, len(images)
    scale = min(scale, (WIDTH - 0.9) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH, rows * (scale + 2.6 * MIN_FONT / 72) + 0.3),
                             squeeze=False, layout="constrained")
    for r in range(rows):
        img = images[r].float().mean(0).numpy() / 255
        panels = [(None, "hybrid"), (maps[first][r], first), (maps[second][r], second),
                  ((maps[second][r] - maps[first][r]).clamp(-1, 1), "difference")]
        for c, (rel, label) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            if rel is not None:
                shown = ax.imshow(rel.numpy(), cmap="bwr", vmin=-1, vmax=1, alpha=0.65)
            ax.contour(masks[r].numpy(), levels=[0.5], colors="gold", linewidths=1.5)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(titles.get(label, [label] * rows)[r] if c in (1, 2) else label)
        if row_titles:
            axes[r, 0].set_ylabel(row_titles[r])
    fig.colorbar(shown, ax=axes, shrink=min(1.0, 3 / rows), label="relevance (of the row's largest)")
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
    fig, axes = plt.subplots(len(metrics), 1, figsize=(WIDTH, 3.4 * len(metrics)), squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics):
        sns.barplot(frame, x="method", y=metric, hue="variant", hue_order=[labels[own], labels[moved]],
                    order=_hue_order(set(runs.method) - set(REFERENCE_METHODS)), errorbar=_t95, capsize=0.1,
                    err_kws={"linewidth": 1}, palette=["tab:blue", "lightgray"], edgecolor="black", linewidth=0.5,
                    ax=ax)
        ax.axhline(retrain[metric].mean(), ls="--", color="black", lw=1, label="Retrain")
        ax.set(xlabel="", ylabel=f"{metric} (%)")
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")  # inside the width
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    for ax in axes[1:, 0]:  # one legend, above the first panel: the panels share it
        ax.get_legend().remove()
    fig.tight_layout()
    return fig


def attacks(summary: pd.DataFrame, per_model: pd.DataFrame, ax=None):
    """Two verdicts on the same models (``summary``: :func:`natmu_lite.ulira.privacy_summary`): left,
    U-LiRA's accuracy on each attacked model per method (a dot each; the mean with ± 2 standard errors
    over the candidates, which the attacked models' own spread understates, see
    :func:`~natmu_lite.ulira.ulira_attack`; 50% is Retrain's ideal); right, that accuracy against
    the entropy MIA's distance to Retrain's (0 is ideal for both). ``per_model``: method, model,
    accuracy."""
    import seaborn as sns

    axes = ax if ax is not None else plt.subplots(2, 1, figsize=(WIDTH, 8.4))[1]
    order = _hue_order(per_model.method)
    named = per_model.assign(method=per_model.method.map(_name))
    sns.stripplot(named, x="method", y="accuracy", hue="method", order=order, hue_order=order, palette=palette(),
                  alpha=0.45, size=3.5, legend=False, ax=axes[0])
    means = summary.set_index(summary.method.map(_name)).loc[order]
    axes[0].errorbar(range(len(order)), means.ULiRA, yerr=2 * means.ULiRA_se, fmt="o", color="black", ms=4,
                     capsize=4, lw=1)
    axes[0].axhline(50, ls="--", color="black", lw=1)
    axes[0].set(xlabel="", ylabel="U-LiRA accuracy per attacked model (%)")
    axes[0].tick_params(axis="x", rotation=45)
    frame = summary.assign(name=summary.method.map(_name))
    sns.scatterplot(frame, x="MIA_gap", y="ULiRA", hue="name", hue_order=[n for n in order if n in set(frame.name)],
                    palette=palette(), s=60, legend=False, ax=axes[1])
    axes[1].errorbar(frame.MIA_gap, frame.ULiRA, yerr=2 * frame.ULiRA_se, fmt="none", ecolor="gray", lw=0.8)
    axes[1].axhline(50, ls="--", color="black", lw=1)
    axes[1].set(xlabel="entropy MIA: |MIA - Retrain's MIA| (points)", ylabel="U-LiRA accuracy (%, ± 2 SE)")
    plt.gcf().tight_layout()
    label_points(axes[1], frame.MIA_gap, frame.ULiRA, frame["name"])
    return axes


def label_points(ax, xs, ys, names) -> None:
    """Name each point beside it (right of it, or left near the right edge), moving a label up, with a
    leader line, where it would cover another label or another point: labels never overlap."""
    import numpy as np

    xs, ys, names = list(xs), list(ys), [str(n) for n in names]
    ax.figure.canvas.draw()  # the data limits, hence where each point lands, are final once drawn
    to_points = 72 / ax.figure.dpi
    pts = ax.transData.transform(np.column_stack([np.asarray(xs, float), np.asarray(ys, float)])) * to_points
    right = ax.get_window_extent().x1 * to_points
    height, step = MIN_FONT * 1.25, MIN_FONT / 4
    boxes = [(x - 5, x + 5, y - 5, y + 5) for x, y in pts]  # (left, right, bottom, top), in points

    def free(box) -> bool:
        return not any(box[0] < b[1] and b[0] < box[1] and box[2] < b[3] and b[2] < box[3] for b in boxes)

    for i in np.argsort(pts[:, 1]):
        x, y = pts[i]
        width = len(names[i]) * MIN_FONT * 0.62
        dx = 7 if x + 7 + width < right else -7 - width
        ly = y
        while not free((x + dx, x + dx + width, ly - height / 2, ly + height / 2)):
            ly += step
        boxes.append((x + dx, x + dx + width, ly - height / 2, ly + height / 2))
        lead = dict(arrowstyle="-", lw=0.6, color="gray", shrinkA=0, shrinkB=3) if ly - y > 1 else None
        ax.annotate(names[i], (xs[i], ys[i]), xytext=(dx, ly - y), textcoords="offset points", va="center",
                    arrowprops=lead)
    top = max(b[3] for b in boxes)
    if top > ax.get_window_extent().y1 * to_points:  # keep the highest label inside the axes
        ax.set_ylim(top=ax.transData.inverted().transform((0, (top + step) / to_points))[1])


def exposure_by_memorisation(frame: pd.DataFrame, ax=None):
    """How often the attacked models classify a candidate right, by how memorised it is (``frame``: method,
    quantile bin of memorisation, the candidate's per-example accuracy); a band is the 95% interval
    over the candidates of a bin."""
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(WIDTH, 4.2))[1]
    named = frame.assign(method=frame.method.map(_name))
    sns.lineplot(named, x="bin", y="accuracy", hue="method", hue_order=_hue_order(frame.method), palette=palette(),
                 errorbar=("ci", 95), marker="o", markersize=4, ax=ax)
    ax.axhline(50, ls="--", color="black", lw=1)
    ax.set_xticks(sorted(frame["bin"].unique()))
    ax.set(xlabel="memorisation (quintile of the candidates; 5 = most memorised)",
           ylabel="U-LiRA per-example accuracy (%)")
    legend_below(ax, ncol=3)
    return ax


def search_curves(curves: pd.DataFrame, budget: pd.DataFrame | None = None):
    """Is the tuning budget enough? Per scenario, each method's best validation AvgGap after k trials
    (``curves``: :func:`natmu_lite.results.search_curves`; lines), and, for the methods with the smaller
    budgets' runs, the test AvgGap of the parameters chosen after 8, 16 and all trials (``budget``:
    :func:`natmu_lite.stats.budget_gaps`; mean and 95% interval over seeds). A line still falling at the
    end, or test points that keep improving, say the budget was short."""
    import seaborn as sns

    scenarios = list(dict.fromkeys(curves.scenario))
    fig, axes = _panels(len(scenarios))
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
        sns.move_legend(axes[0][-1], "upper center", bbox_to_anchor=(0.5, 0.01), ncol=4, frameon=False,
                        bbox_transform=fig.transFigure)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig


def progress_vs_gap(trials: pd.DataFrame, least: float):
    """Does the search's objective reward unlearning? Every budget trial (``trials``:
    :func:`natmu_lite.results.trials`) as a dot, per scenario: its validation AvgGap against how far
    it moved the forget accuracy from the original's towards Retrain's (0: not at all, 1: all the way);
    left of the dashed line (``least``, the selection's least progress) a trial did nothing. Progress is
    clipped to [-0.5, 2.5], so that far over-forgetting trials stay on the plot, at its right edge."""
    import seaborn as sns

    scenarios = list(dict.fromkeys(trials.scenario))
    fig, axes = _panels(len(scenarios))
    shown = trials.dropna(subset=["progress"]).assign(method=lambda f: f.method.map(_name),
                                                      progress=lambda f: f.progress.clip(-0.5, 2.5))
    for ax, scenario in zip(axes[0], scenarios):
        sns.scatterplot(shown[shown.scenario == scenario], x="progress", y="AvgGap", hue="method",
                        hue_order=_hue_order(trials.method), palette=palette(), s=14, alpha=0.7,
                        legend=ax is axes[0][-1], ax=ax)
        ax.axvline(least, ls="--", color="black", lw=1)
        ax.set(title=scenario, xlabel="progress towards Retrain", ylabel="validation AvgGap", yscale="log")
    if axes[0][-1].get_legend() is not None:
        sns.move_legend(axes[0][-1], "upper center", bbox_to_anchor=(0.5, 0.01), ncol=4, frameon=False,
                        bbox_transform=fig.transFigure)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig


def _panels(n: int, cols: int = 2):
    """``n`` panels in rows of ``cols``, as wide as the page, returned as one row of axes (``axes[0]``)."""
    rows = (n + cols - 1) // cols
    fig, grid = plt.subplots(rows, cols, figsize=(WIDTH, 3.2 * rows + 1.4), squeeze=False)
    for ax in grid.flat[n:]:
        ax.remove()
    return fig, [list(grid.flat[:n])]


def decisions(pairs: pd.DataFrame, floors: pd.Series | None = None, clip: float = 6.0, method: str = "NatMU"):
    """One panel per scenario: ``method``'s per-seed AvgGap minus each rival's, mean and the interval the
    decision reads (``pairs`` is :func:`natmu_lite.decisions.compare`'s frame): left of 0, ``method`` is
    closer to Retrain; an interval clear of 0 is a decided comparison. The grey band is the scenario's
    floor (a second Retrain's AvgGap) on either side of 0, where a difference is no larger than what two
    Retrains differ by. Differences beyond ``clip`` points are drawn at the edge, their value written."""
    scenarios = list(dict.fromkeys(pairs.scenario))
    rows = (len(scenarios) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(WIDTH, 1.4 + 2.6 * rows), sharex=True, squeeze=False)
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
                            textcoords="offset points", ha="right" if r.difference > 0 else "left")
        ax.set_yticks(range(len(rivals)), [_name(m) for m in rivals])
        ax.set_ylim(len(rivals) - 0.5, -0.5)
        ax.set_xlim(-clip * 1.05, clip * 1.05)
        ax.set_title(scenario)
    for ax in axes.flat[len(scenarios):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(f"{method} minus rival")
    fig.tight_layout()
    return fig
