"""Independent references for the assignments' checks: expected values computed another way than the package
and the instructor solutions compute them (NumPy from the paper's equations, a plain float64 forward pass,
brute-force loops, Newton's method for the attack's logistic regression), so that a formula that is wrong in the
package and in a solution alike still fails. The checks that use them say so in their names and docstrings; the
other checks compare with the package, which catches a solution that drifts from it.

They live in the package because grading runs where only the package is installed (a teacher's machine,
students' copies). The project's own tests use the first part as well (``tests/test_references.py`` checks
those on cases worked out by hand); the second part is the checks' own.
"""

import numpy as np
import torch

# ---------------------------------------------------------------------------------------------
# shared with the project's tests

TIE_BAND = 1e-4  # a float64 blend value this close to an integer may truncate either way in float32


def ref_masks(h: int, w: int, delta: float) -> np.ndarray:
    """The four gradual-MixUp masks in float64, ``(4, h, w)``: with the tent
    ``t(i) = min(i, n-1-i) / (n/2)``, m1 = t(row), m2 = t(col), m3 = (h/2-1)/(h/2) - m1, m4 = (w/2-1)/(w/2) - m2,
    then ``clip(m + delta, 0, 1)`` (paper Eq. 1)."""
    def tent(n):
        i = np.arange(n, dtype=np.float64)
        return np.minimum(i, n - 1 - i) / (n / 2)

    m1 = np.repeat(tent(h)[:, None], w, axis=1)
    m2 = np.repeat(tent(w)[None, :], h, axis=0)
    m3 = (h / 2 - 1) / (h / 2) - m1
    m4 = (w / 2 - 1) / (w / 2) - m2
    return np.clip(np.stack([m1, m2, m3, m4]) + delta, 0.0, 1.0)


def blend_values(xf: np.ndarray, xr: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The exact (float64) value of every blended pixel, before truncation."""
    return xr.astype(np.float64) * (1 - m[:, None]) + xf.astype(np.float64) * m[:, None]


def truncation_check(got, xf: np.ndarray, xr: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: whether ``got`` (uint8) is the truncated blend ``floor(xr * (1 - m) + xf * m)`` of the official
    code, and whether the pixel is a tie: its exact value lies within :data:`TIE_BAND` of an integer and the
    mask is strictly between 0 and 1, where float32 arithmetic (the official code's as well) may land on
    either side, so that either neighbour passes."""
    values = blend_values(xf, xr, m)
    got = np.broadcast_to(np.asarray(got).astype(np.int64), values.shape)
    mixed = np.broadcast_to(((m > 0) & (m < 1))[:, None], values.shape)
    tie = mixed & (np.abs(values - np.round(values)) < TIE_BAND) & (values > 0.5)  # 0 stays 0 in any precision
    want = np.clip(np.floor(values), 0, 255)
    near = np.clip(np.round(values), 0, 255)
    return (got == want) | (tie & ((got == near) | (got == near - 1))), tie


@torch.no_grad()
def ref_logits(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Plain float64 forward pass in eval mode on ``uint8 / 255`` (no batching, no channels_last), on a
    copy so that the model under test keeps its dtype and mode."""
    import copy

    m = copy.deepcopy(model).double().eval()
    return m(images.double() / 255)


def ref_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Top-1 accuracy in percent from float64 logits, and the slack for near-ties (top-2 logits within
    1e-4: the package's float32 forward may pick the other class there)."""
    top2 = logits.topk(2, dim=1).values
    near = (top2[:, 0] - top2[:, 1]) < 1e-4
    return 100 * (logits.argmax(1) == labels).double().mean().item(), 100 * near.double().mean().item()


def entropy64(probs: torch.Tensor) -> np.ndarray:
    p = probs.double().numpy()
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(1)


def balanced_logistic_regression(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> tuple[float, float]:
    """``argmin 0.5 w^2 + C sum_i s_i log(1 + exp(-(2 y_i - 1)(w x_i + b)))`` with the balanced weights
    ``s_i = n / (2 n_{y_i})``: scikit-learn's objective for ``class_weight="balanced"`` (the intercept is
    not penalised), solved by Newton's method. Returns ``(w, b)``; a sample is called a member
    (class 1) where ``w x + b > 0``."""
    n = len(y)
    s = np.where(y == 1, n / (2 * (y == 1).sum()), n / (2 * (y == 0).sum())) * c
    w = b = 0.0
    for _ in range(200):
        p = 0.5 * (1 + np.tanh(0.5 * (w * x + b)))  # the logistic function, without overflow
        r, h = s * (p - y), s * p * (1 - p)
        grad = np.array([w + (r * x).sum(), r.sum()])
        hess = np.array([[1 + (h * x * x).sum(), (h * x).sum()], [(h * x).sum(), h.sum()]])
        step = np.linalg.solve(hess, grad)
        w, b = w - step[0], b - step[1]
        if np.abs(step).max() < 1e-12:
            return w, b
    raise AssertionError("Newton's method did not converge")


def ref_threshold_attack(members: np.ndarray, non_members: np.ndarray, targets: np.ndarray,
                         band: float) -> tuple[float, float, float]:
    """The official attack on any one feature: :func:`balanced_logistic_regression` fit on ``members`` (1)
    vs ``non_members`` (0), and the percentage of ``targets`` on the member side of its threshold. Returns
    ``(percent, slack, threshold)``, ``slack`` being the percentage of targets within ``band`` of the threshold."""
    w, b = balanced_logistic_regression(np.r_[members, non_members],
                                        np.r_[np.ones(len(members)), np.zeros(len(non_members))])
    threshold = -b / w
    member = (w * targets + b) > 0
    return 100 * member.mean(), 100 * (np.abs(targets - threshold) < band).mean(), threshold


# ---------------------------------------------------------------------------------------------
# the checks' own


def ref_relevant_labels(probs: torch.Tensor, true_labels: torch.Tensor, n: int,
                        caps: list[int] | None = None) -> list[list[int]] | None:
    """Each sample's ``n`` most probable classes other than its true class, by a plain sort of each row's classes
    (Python lists, no tensor ops); with ``caps``, samples are served in order and a class already used ``caps[c]``
    times is passed over for the sample's next-ranked class (assignment 2, exercise 1). ``None`` if some sample
    cannot get ``n`` labels."""
    used, out = [0] * probs.shape[1], []
    for row, true in zip(probs.double().tolist(), true_labels.tolist()):
        ranked = sorted((c for c in range(len(row)) if c != true), key=lambda c: row[c], reverse=True)
        chosen = [c for c in ranked if caps is None or used[c] < caps[c]][:n]
        if len(chosen) < n:
            return None
        for c in chosen:
            used[c] += 1
        out.append(chosen)
    return out


def loss64(probs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """``-log p_y`` of each row in float64, ``p_y`` clamped to at least 1e-12 (the loss attack's feature)."""
    p = probs.double().numpy()
    return -np.log(np.maximum(p[np.arange(len(p)), labels.numpy()], 1e-12))
