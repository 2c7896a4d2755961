"""The sentence helpers (natmu_lite.words) and the book's figure rules (natmu_lite.plots): words that
compare with Retrain and its noise, a palette whose methods stay apart for colour-blind readers too,
figures as wide as the page with legible text, labels that never overlap."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from natmu_lite import plots, words  # noqa: E402
from natmu_lite.methods import COLORS, METHOD_ORDER  # noqa: E402


def test_a_value_within_the_noise_is_level_with_retrain():
    assert words.against(88.0, 88.0, 1.0).side == "level"
    assert words.against(95.0, 88.0, 1.0).words == "7.0 points above Retrain's"
    assert words.against(80.0, 88.0, 1.0).side == "below"
    assert words.noise([86.0, 88.0, 90.0], forget_size=100) == pytest.approx(4.0)
    assert words.noise([88.0], forget_size=100) == 1.0


def test_closest_keeps_the_methods_the_noise_cannot_order():
    assert words.closest({"a": 90.0, "b": 87.0, "c": 80.0}, 88.0, 0.5) == ["b"]
    assert words.closest({"a": 89.0, "b": 87.0, "c": 80.0}, 88.0, 1.5) == ["a", "b"]


def test_injection_verdict_notices_a_variant_that_lands_on_retrain():
    """The contradiction chapter 4 once printed: without injection FA 88% = Retrain's 88%, with 95%."""
    verdict = words.injection_verdict(fa_with=95.0, fa_without=88.0, retrain=88.0, band=1.0)
    assert "not what keeps" in verdict and "Fig. 3 shows" not in verdict
    paper = words.injection_verdict(fa_with=88.5, fa_without=70.0, retrain=88.0, band=1.0)
    assert "as the paper's Fig. 3 shows" in paper


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = lin @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.9505, 1.0, 1.089])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


# Machado et al. (2009), severity 1, on linear RGB
DEUTAN = np.array([[0.367, 0.861, -0.228], [0.280, 0.673, 0.047], [-0.012, 0.043, 0.969]])
PROTAN = np.array([[0.152, 1.053, -0.205], [0.115, 0.786, 0.099], [-0.004, -0.048, 1.052]])


def simulate(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    out = np.clip(lin @ matrix.T, 0, 1)
    return np.where(out <= 0.0031308, 12.92 * out, 1.055 * out ** (1 / 2.4) - 0.055)


def test_the_palette_keeps_the_methods_apart_for_colour_blind_readers_too():
    """Every pair of the methods' colours (the ten methods, Retrain and the Original) differs by a
    CIE76 distance of at least 12 in normal vision and under simulated deuteranopia and protanopia;
    NatMU keeps its blue."""
    assert COLORS["natmu"] == "tab:blue"
    names = [m for m in METHOD_ORDER if m in COLORS and m != "natmu w/o CI"]
    rgb = np.array([matplotlib.colors.to_rgb(COLORS[m]) for m in names])
    for view, colours in [("normal", rgb), ("deuteranopia", simulate(rgb, DEUTAN)),
                          ("protanopia", simulate(rgb, PROTAN))]:
        lab = srgb_to_lab(colours)
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                distance = float(np.linalg.norm(lab[i] - lab[j]))
                assert distance >= 12, f"{names[i]} and {names[j]} are {distance:.1f} apart ({view})"


def text_sizes(fig) -> list[float]:
    return [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip() and t.get_visible()]


def test_the_books_figures_fit_the_page_with_legible_text():
    frame = pd.DataFrame({"method": ["natmu", "amnesiac"] * 6, "seed": [0, 0, 1, 1, 2, 2] * 2,
                          "epoch": [1] * 6 + [2] * 6, "value": np.linspace(80, 95, 12)})
    figures = [plots.seed_curves(frame, pd.Series([88.0, 87.0])).figure,
               plots.curves({"natmu": [90, 89], "finetune": [92, 91]}, 88.0).figure,
               plots.image_grid(torch.zeros(12, 1, 28, 28, dtype=torch.uint8), ["T-shirt/top"] * 12, cols=6),
               plots.relevance_overlay(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), torch.rand(2, 28, 28),
                                       {"original": torch.zeros(2, 28, 28), "NatMU": torch.zeros(2, 28, 28)},
                                       {"original": ["Shirt, 30%"] * 2, "NatMU": ["Coat, 60%"] * 2})]
    for fig in figures:
        fig.canvas.draw()
        box = fig.get_tightbbox(fig.canvas.get_renderer())
        assert box.width <= plots.WIDTH + 0.05, f"{box.width:.2f} in wide"
        assert min(text_sizes(fig)) >= plots.MIN_FONT
        matplotlib.pyplot.close(fig)


def test_point_labels_never_overlap():
    """Chapter 7's scatter once printed NatMU, Finetune and ℓ1-sparse on top of each other."""
    fig, ax = matplotlib.pyplot.subplots(figsize=(plots.WIDTH, 3.5))
    xs, ys = [1.0, 1.02, 1.01, 5.0], [60.0, 60.1, 59.9, 55.0]
    ax.scatter(xs, ys)
    plots.label_points(ax, xs, ys, ["NatMU", "Finetune", "ℓ1-sparse", "SSD"])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [matplotlib.text.Text.get_window_extent(t, renderer) for t in ax.texts]  # the text, not its leader
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (ax.texts[i].get_text(), ax.texts[j].get_text())
    matplotlib.pyplot.close(fig)
