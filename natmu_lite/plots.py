"""The book's figures: small functions that take numbers the package computed and draw them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import Tensor

from .tables import METHOD_NAMES

COLORS = {"retrain": "black", "finetune": "tab:gray", "ga": "tab:brown", "amnesiac": "tab:red",
          "badteacher": "tab:purple", "salun": "tab:orange", "ssd": "tab:olive", "natmu": "tab:blue",
          "natmu w/o CI": "tab:cyan"}


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


def kl_vs_gap(kl: dict[str, float], gap: dict[str, float], ax=None):
    """Naturalness (mean KL to Retrain's predictions) against the FA gap to Retrain (paper Fig. 2a)."""
    ax = ax or plt.subplots(figsize=(5, 3.6))[1]
    for method in kl:
        ax.scatter(kl[method], gap[method], s=60, color=COLORS.get(method), label=_name(method))
        ax.annotate(_name(method), (kl[method], gap[method]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set(xlabel="mean KL(label || Retrain's prediction)", ylabel="|FA - FA of Retrain| (points)")
    return ax


def avg_gap_bars(gaps: pd.DataFrame, ax=None):
    """AvgGap per method (bars) for each scenario (groups); lower is closer to Retrain."""
    methods = [m for m in gaps.columns if m != "retrain"]
    ax = ax or plt.subplots(figsize=(8, 3.6))[1]
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        xs = [j + i * width for j in range(len(gaps))]
        ax.bar(xs, gaps[m].values, width, label=_name(m), color=COLORS.get(m))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(gaps))])
    ax.set_xticklabels([f"{s}" for s, _ in gaps.index])
    ax.set(ylabel="AvgGap to Retrain (lower is better)")
    ax.legend(frameon=False, fontsize=8, ncol=4)
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


def transfer_bars(frame: pd.DataFrame, metrics: tuple[str, ...] = ("FA", "MIA")):
    """Fig. 4: per method, the metric with its own optimum and with transferred parameters, against
    Retrain (dashed). ``frame`` is :func:`natmu_lite.tune.transfer_study`'s."""
    retrain = frame[frame.method == "retrain"].iloc[0]
    runs = frame[frame.method != "retrain"]
    own, moved = runs.tuned_on.unique()[:2]
    methods = list(dict.fromkeys(runs.method))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for k, (tuned_on, hatch) in enumerate(((own, ""), (moved, "//"))):
            values = [runs[(runs.method == m) & (runs.tuned_on == tuned_on)][metric].iloc[0] for m in methods]
            ax.bar([i + (k - 0.5) * 0.38 for i in range(len(methods))], values, 0.38, hatch=hatch,
                   color=[COLORS.get(m, "gray") for m in methods], edgecolor="black", lw=0.5,
                   label=f"tuned on {tuned_on}")
        ax.axhline(retrain[metric], ls="--", color="black", lw=1, label="Retrain")
        ax.set_xticks(range(len(methods)), [_name(m) for m in methods], fontsize=8)
        ax.set(ylabel=f"{metric} (%)", title=metric)
    axes[0, 0].legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig
