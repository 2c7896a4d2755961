"""Independent references for the package's formulas, written from the paper and the authors'
official code with NumPy and plain autograd, never by calling the function under test. Other test
files import them; the tests here check the references themselves on cases small enough to work out
by hand.

- masks: the official gradual-MixUp masks (tents, ``clip(m + delta, 0, 1)``, m weighs the forget image);
- blends: the official blend, ``x_r * (1 - m) + x_f * m`` on raw uint8 pixels cast to float32, clipped, then cast to
  uint8, which truncates;
- label ranking: the original model's softmax with the true class zeroed, rank j <-> mask j;
- the entropy MIA: the official attack, ``LogisticRegression(class_weight="balanced")`` (L2, C = 1) on one feature,
  solved here by Newton's method on the same objective.

The references the classroom's checks use too live in the package, ``natmu_lite/classroom/references.py``
(grading runs where only the package is installed); they are imported from there, and checked here like
the others.
"""

import numpy as np
import pytest
import torch

from natmu_lite.classroom.references import (  # noqa: F401 (imported by other test files from here)
    TIE_BAND,
    balanced_logistic_regression,
    blend_values,
    entropy64,
    ref_logits,
    ref_masks,
    ref_threshold_attack,
    truncation_check,
)


def official_blend(xf: np.ndarray, xr: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The official blend, float32 arithmetic as in the official code: ``(N, C, H, W)`` uint8 images,
    ``(N, H, W)`` float32 masks broadcast over channels; clip to [0, 255], cast (truncate) to uint8."""
    m = m.astype(np.float32)[:, None]
    mixed = xr.astype(np.float32) * (np.float32(1) - m) + xf.astype(np.float32) * m
    return np.clip(mixed, 0, 255).astype(np.uint8)


def assert_truncates(got, xf: np.ndarray, xr: np.ndarray, m: np.ndarray, max_ties: float = 0.05) -> None:
    """``got`` (uint8) is the truncated blend of the official code, pixel for pixel (:func:`truncation_check`);
    ties must be rare (``max_ties`` of the pixels), so that the check stays a check."""
    ok, tie = truncation_check(got, xf, xr, m)
    values = blend_values(xf, xr, m)
    got = np.broadcast_to(np.asarray(got).astype(np.int64), values.shape)
    assert ok.all(), (f"{(~ok).sum()} of {ok.size} pixels are not the truncated blend, e.g. got "
                      f"{got[~ok][:5].tolist()} for values {values[~ok][:5].tolist()}")
    assert tie.mean() <= max_ties


def ranked_log_probs(logits: torch.Tensor, true: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Float64 log-softmax with the true class removed (set to -inf), and its values sorted descending."""
    logp = logits.double().log_softmax(1).numpy().copy()
    logp[np.arange(len(logp)), true.numpy()] = -np.inf
    return logp, -np.sort(-logp, axis=1)


def assert_rank_j_labels(labels: torch.Tensor, logits: torch.Tensor, true: torch.Tensor, tol: float = 1e-3) -> None:
    """``labels[i, j]`` is sample i's rank-j class by the model's probabilities, its true class excluded:
    its log-probability equals the j-th largest one (up to ``tol``, a tie; below log p = -80 float32
    probabilities underflow and every class ties), the labels are distinct and never the true class."""
    labels = labels.numpy()
    logp, ranked = ranked_log_probs(logits, true)
    chosen = np.take_along_axis(logp, labels, axis=1)
    want = ranked[:, : labels.shape[1]]
    ok = (np.abs(chosen - want) <= tol) | ((chosen < -80) & (want < -80))
    assert ok.all(), f"rank mismatch at (sample, rank) {np.argwhere(~ok)[:5].tolist()}"
    assert (labels != true.numpy()[:, None]).all()
    assert all(len(set(row)) == len(row) for row in labels.tolist())


# ---------------------------------------------------------------------------------------------
# the references against cases worked out by hand


def test_reference_masks_by_hand():
    m = ref_masks(4, 6, 0.0)  # tents: rows 0, 1/2, 1/2, 0; columns 0, 1/3, 2/3, 2/3, 1/3, 0
    np.testing.assert_allclose(m[0][:, 0], [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(m[1][0], [0, 1 / 3, 2 / 3, 2 / 3, 1 / 3, 0])
    np.testing.assert_allclose(m[2][:, 0], [0.5, 0, 0, 0.5])  # (b-1)/b - m1 with b = 2
    np.testing.assert_allclose(m[3][0], [2 / 3, 1 / 3, 0, 0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(ref_masks(4, 6, -0.4)[0][:, 0], [0, 0.1, 0.1, 0])  # clipped at 0
    np.testing.assert_allclose(ref_masks(4, 6, 0.6)[3][0], [1, 14 / 15, 0.6, 0.6, 14 / 15, 1])  # clipped at 1


def test_official_blend_truncates_by_hand():
    xf, xr = np.full((1, 1, 1, 1), 201, np.uint8), np.full((1, 1, 1, 1), 10, np.uint8)
    m = np.full((1, 1, 1), 0.375)
    assert official_blend(xf, xr, m).item() == 81  # 201 * 0.375 + 10 * 0.625 = 81.625: truncated, not 82
    assert_truncates(np.array([81]), xf, xr, m)
    with pytest.raises(AssertionError):
        assert_truncates(np.array([82]), xf, xr, m)
    third = np.full((1, 1, 1), 1 / 3)  # 30 * 1/3 + 0 * 2/3 = 10 exactly: float32 may give 9.999999
    assert_truncates(np.array([9]), np.full((1, 1, 1, 1), 30, np.uint8), np.zeros((1, 1, 1, 1), np.uint8), third,
                     max_ties=1)
    assert_truncates(np.array([10]), np.full((1, 1, 1, 1), 30, np.uint8), np.zeros((1, 1, 1, 1), np.uint8), third,
                     max_ties=1)


def test_balanced_logistic_regression_by_hand():
    # symmetric classes: the balanced threshold sits half-way, whatever the class sizes
    x = np.array([0.0, 0.1, 0.2, 1.0, 1.1, 1.2, 1.0, 1.1, 1.2])
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0])
    w, b = balanced_logistic_regression(x, y)
    assert w < 0 and -b / w == pytest.approx(0.6, abs=1e-9)
    unbalanced = balanced_logistic_regression(np.r_[x, 1.0, 1.1, 1.2], np.r_[y, 0, 0, 0])
    assert -unbalanced[1] / unbalanced[0] == pytest.approx(0.6, abs=1e-9)  # balancing cancels the sizes


def ref_mia(retain_probs: torch.Tensor, forget_probs: torch.Tensor, test_probs: torch.Tensor,
            band: float = 2e-3) -> tuple[float, float, float]:
    """The official entropy attack from :func:`balanced_logistic_regression`: the percentage of
    forget samples whose entropy lies on the member side of the threshold fitted on retain (member) vs
    test (non-member). Returns ``(percent, slack, threshold)``: ``slack`` is the percentage of forget
    samples within ``band`` of the threshold, where scikit-learn's stopping tolerance may call them
    either way (its threshold was 1e-4 from the exact one on a trained model's entropies)."""
    return ref_threshold_attack(entropy64(retain_probs), entropy64(test_probs), entropy64(forget_probs), band)


