"""Assignment 5: ``entropy`` and ``mia_entropy`` against the package, ``mia_loss`` against the same attack on
the loss feature. Members are made more confident than non-members, so that the attacks have work to do."""

import numpy as np
import pytest
import torch
from grading import check
from sklearn.linear_model import LogisticRegression

import natmu_lite as nl


def probs_and_labels(seed: int, n: int, k: int, confidence: float):
    """Softmax rows peaked (by ``confidence``) on a random label, with that label (or a random one, 20%)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    logits = torch.randn(n, k, generator=g)
    logits[torch.arange(n), y] += confidence * torch.rand(n, generator=g)
    flip = torch.rand(n, generator=g) < 0.2
    return logits.softmax(1), torch.where(flip, torch.randint(0, k, (n,), generator=g), y)


def sets(seed: int):
    (rp, ry), (fp, fy), (tp, ty) = (probs_and_labels(seed + i, n, 10, c)
                                    for i, (n, c) in enumerate([(400, 12.0), (100, 8.0), (300, 5.0)]))
    return rp, ry, fp, fy, tp, ty


def loss_attack(rp, ry, fp, fy, tp, ty) -> float:
    def loss(p, y):
        return -p.gather(1, y[:, None]).clamp_min(1e-12).log().double().numpy()

    x = np.concatenate([loss(rp, ry), loss(tp, ty)])
    y = np.concatenate([np.ones(len(rp)), np.zeros(len(tp))])
    attack = LogisticRegression(class_weight="balanced", solver="lbfgs").fit(x, y)
    return float(attack.predict(loss(fp, fy)).mean() * 100)


def test_entropy(student):
    probs, _ = probs_and_labels(0, 50, 10, 6.0)
    probs = torch.cat([probs, torch.eye(10)[:3], torch.full((1, 10), 0.1)])
    got, want = student("entropy", probs), nl.metrics.entropy(probs)
    check(isinstance(got, torch.Tensor) and got.shape == want.shape,
          f"entropy should return one value per row, shape {tuple(want.shape)}")
    check(not got[50:53].isnan().any(), "the entropy of a one-hot row is nan: 0 log 0 should count as 0 (clamp the "
                                        "probabilities to at least 1e-12 before the log)")
    check(abs(got[-1] - np.log(10)) < 1e-4, f"the entropy of a uniform row over 10 classes is log(10) = "
                                            f"{np.log(10):.4f} nats; yours is {got[-1]:.4f}")
    i = int((got - want).abs().argmax())
    check((got - want).abs().max() < 1e-4, f"row {i}: the entropy should be {want[i]:.4f}; yours is {got[i]:.4f}")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_entropy_attack_matches_the_package(student, seed):
    rp, _, fp, _, tp, _ = sets(seed)
    want, got = nl.mia_entropy(rp, fp, tp), student("mia_entropy", rp, fp, tp)
    check(isinstance(got, int | float), f"mia_entropy should return a number (a percentage); yours returns {type(got)}")
    check(not (0 < got <= 1 and want > 1), f"mia_entropy should return a percentage (0-100): {want:.1f}; yours is "
                                           f"{got}, a fraction?")
    check(abs(got - want) <= 1.0, f"the entropy attack should call {want:.1f}% of the 100 forget samples members; "
                                  f"yours says {got:.1f}%. Fit on retain (1) vs test (0), predict the forget rows.")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_attack(student, seed):
    rp, ry, fp, fy, tp, ty = sets(seed)
    want, got = loss_attack(rp, ry, fp, fy, tp, ty), student("mia_loss", rp, ry, fp, fy, tp, ty)
    check(isinstance(got, int | float), f"mia_loss should return a number (a percentage); yours returns {type(got)}")
    check(abs(got - want) <= 1.0, f"the loss attack should call {want:.1f}% of the 100 forget samples members; "
                                  f"yours says {got:.1f}%. The feature is -log p[true label], one column.")
