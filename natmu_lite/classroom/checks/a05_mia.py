"""Assignment 5: ``entropy`` and ``mia_entropy`` against the package, ``mia_loss`` against the same attack on
the loss feature. Members are made more confident than non-members, so that the attacks have work to do.
Independently of the package and of scikit-learn: entropies and attacks worked out by hand, and both attacks
against the balanced logistic regression solved by Newton's method on NumPy features."""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

import natmu_lite as nl

from ..checking import check, graded
from ..references import entropy64, loss64, ref_threshold_attack

FUNCTIONS = ("entropy", "mia_entropy", "mia_loss")  # what the student writes
RUBRIC = {"question": 2}  # graded by hand: points


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


@graded(3)
def check_entropy(student):
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


@graded(3, "seed", [0, 1, 2])
def check_entropy_attack_matches_the_package(student, seed):
    rp, _, fp, _, tp, _ = sets(seed)
    want, got = nl.mia_entropy(rp, fp, tp), student("mia_entropy", rp, fp, tp)
    check(isinstance(got, int | float), f"mia_entropy should return a number (a percentage); yours returns {type(got)}")
    check(not (0 < got <= 1 and want > 1), f"mia_entropy should return a percentage (0-100): {want:.1f}; yours is "
                                           f"{got}, a fraction?")
    check(abs(got - want) <= 1.0, f"the entropy attack should call {want:.1f}% of the 100 forget samples members; "
                                  f"yours says {got:.1f}%. Fit on retain (1) vs test (0), predict the forget rows.")


@graded(3, "seed", [0, 1, 2])
def check_loss_attack(student, seed):
    rp, ry, fp, fy, tp, ty = sets(seed)
    want, got = loss_attack(rp, ry, fp, fy, tp, ty), student("mia_loss", rp, ry, fp, fy, tp, ty)
    check(isinstance(got, int | float), f"mia_loss should return a number (a percentage); yours returns {type(got)}")
    check(abs(got - want) <= 1.0, f"the loss attack should call {want:.1f}% of the 100 forget samples members; "
                                  f"yours says {got:.1f}%. The feature is -log p[true label], one column.")


# ---------------------------------------------------------------------------------------------
# independent of the package and of scikit-learn

# rows of four class probabilities and their entropies in nats, worked out by hand (0 log 0 = 0)
ROWS = [[0.25, 0.25, 0.25, 0.25],  # 4 * 0.25 ln 4 = ln 4 = 1.3863
        [0.5, 0.5, 0.0, 0.0],  # ln 2 = 0.6931
        [1.0, 0.0, 0.0, 0.0],  # 0: the model is certain
        [0.7, 0.2, 0.1, 0.0],  # 0.7 ln(1/0.7) + 0.2 ln 5 + 0.1 ln 10 = 0.2497 + 0.3219 + 0.2303 = 0.8018
        [0.5, 0.25, 0.25, 0.0],  # 0.5 ln 2 + 2 * 0.25 ln 4 = 0.3466 + 0.6931 = 1.0397
        [0.4, 0.3, 0.3, 0.0]]  # 0.4 ln 2.5 + 0.6 ln(1/0.3) = 0.3665 + 0.7224 = 1.0889
ENTROPIES = [1.3863, 0.6931, 0.0, 0.8018, 1.0397, 1.0889]


@graded(3)
def check_entropy_worked_out_by_hand(student):
    got = student("entropy", torch.tensor(ROWS))
    check(isinstance(got, torch.Tensor) and got.shape == (len(ROWS),),
          f"entropy should return one value per row, shape ({len(ROWS)},)")
    for row, value, mine in zip(ROWS, ENTROPIES, got.tolist()):
        check(abs(mine - value) < 1e-4, f"the entropy of {row} is {value} nats; yours is {mine:.4f}" +
              (" (in bits? use the natural log)" if abs(mine - value / np.log(2)) < 1e-3 else ""))


@graded(2)
def check_entropy_against_numpy(student):
    """On random rows, against NumPy in float64 (references.entropy64)."""
    probs, _ = probs_and_labels(3, 200, 10, 6.0)
    got, want = student("entropy", probs), entropy64(probs)
    check(isinstance(got, torch.Tensor) and got.shape == want.shape,
          f"entropy should return one value per row, shape {want.shape}")
    i = int(np.abs(got.double().numpy() - want).argmax())
    check(np.abs(got.double().numpy() - want).max() < 1e-4, f"row {i}: the entropy should be {want[i]:.4f}; "
                                                            f"yours is {float(got[i]):.4f}")


# The attacks worked out by hand. 30 members whose rows are [0.5, 0.5, 0, 0] (entropy ln 2; loss ln 2 under label
# 0) and 10 non-members with uniform rows (entropy ln 4; loss ln 4): balanced weights make both groups count alike,
# so by symmetry the fitted threshold lies half-way, at (ln 2 + ln 4) / 2 = 1.0397, members below it. Without the
# balancing it moves towards the non-members, past 1.0889.
MEMBERS, NON_MEMBERS = torch.tensor([[0.5, 0.5, 0.0, 0.0]]).repeat(30, 1), torch.full((10, 4), 0.25)


@graded(2)
def check_entropy_attack_worked_out_by_hand(student):
    # forget rows with entropies 0, 0.8018, 0.6931 (below 1.0397: members) and 1.0889 (above: a non-member) -> 75%
    forget = torch.tensor([ROWS[2], ROWS[3], ROWS[1], ROWS[5]])
    got = student("mia_entropy", MEMBERS, forget, NON_MEMBERS)
    check(isinstance(got, int | float), f"mia_entropy should return a number (a percentage); yours returns {type(got)}")
    check(abs(got - 75) < 1e-6, "30 retain rows with entropy ln 2 = 0.69 and 10 test rows with entropy ln 4 = 1.39 "
                                "put the balanced threshold half-way, at 1.04; of forget rows with entropies 0, "
                                f"0.80, 0.69 and 1.09, three are members: 75%. Yours says {got}.")


@graded(2)
def check_loss_attack_worked_out_by_hand(student):
    # forget rows and labels: p_y = 0 (loss -log 1e-12 = 27.6, a non-member), p_y = 0.25 (ln 4 = 1.39, a non-member),
    # p_y = 0.3 (ln(1/0.3) = 1.20, a non-member), p_y = 0.7 (ln(1/0.7) = 0.36 < 1.0397, a member) -> 25%
    forget = torch.tensor([ROWS[2], ROWS[0], ROWS[5], ROWS[3]])
    zeros = torch.zeros(40, dtype=torch.long)
    got = student("mia_loss", MEMBERS, zeros[:30], forget, torch.tensor([1, 0, 1, 0]), NON_MEMBERS, zeros[:10])
    check(isinstance(got, int | float), f"mia_loss should return a number (a percentage); yours returns {type(got)}")
    check(abs(got - 25) < 1e-6, "30 retain rows with loss ln 2 = 0.69 and 10 test rows with loss ln 4 = 1.39 put the "
                                "balanced threshold half-way, at 1.04; of forget samples with losses 27.6 "
                                f"(p_y = 0), 1.39, 1.20 and 0.36, one is a member: 25%. Yours says {got}.")


@graded(2, "seed", [0, 1, 2])
def check_both_attacks_against_newtons_method(student, seed):
    """Against the balanced logistic regression solved by Newton's method on NumPy features (references.
    ref_threshold_attack), not against the package or scikit-learn: within one forget sample, plus any forget
    sample within 2e-3 of the threshold, where the solvers' tolerances may call it either way."""
    rp, ry, fp, fy, tp, ty = sets(seed)
    for name, got, (want, slack, _) in [
            ("mia_entropy", student("mia_entropy", rp, fp, tp),
             ref_threshold_attack(entropy64(rp), entropy64(tp), entropy64(fp), 2e-3)),
            ("mia_loss", student("mia_loss", rp, ry, fp, fy, tp, ty),
             ref_threshold_attack(loss64(rp, ry), loss64(tp, ty), loss64(fp, fy), 2e-3))]:
        check(isinstance(got, int | float), f"{name} should return a number (a percentage); yours returns {type(got)}")
        check(abs(got - want) <= slack + 1.0, f"{name}: the balanced attack should call {want:.1f}% of the 100 forget "
                                              f"samples members; yours says {got:.1f}%")
