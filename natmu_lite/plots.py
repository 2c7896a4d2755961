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
