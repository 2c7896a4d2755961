"""The paper's metrics, in percent: RA, FA (forget-train and forget-test), entropy MIA, AvgGap, and the
two diagnostics of its analysis, KL naturalness and PFA; beside them ToW and RetainAcc.

Definitions follow the authors' official code (the book's page "How natmu-lite differs from the
official code", ``book/differences.md``, says where the package departs from it):
RA is *test* accuracy (without the forget class in class forgetting); MIA is the percentage of
forget samples that an entropy-threshold attack, fit on retain (member) vs test (non-member), calls
members, so the goal is the retrained model's value, not 0.

FA's names: the paper's tables call it FA in random forgetting, and in class forgetting split it into
FATrain (the forget set) and FATest (the forget class's test images); :func:`evaluate` returns those
names, and a results row stores the forget set's accuracy as ``FATrain`` in every kind (:func:`as_row`).
``RetainAcc`` is the accuracy on the retain set's training images: in no table, it tells a collapsed
model (:func:`collapsed`) and is ToW's retain term. ToW (Zhao et al. 2024) is a product of accuracy
agreements with Retrain. U-LiRA's statistics are :mod:`natmu_lite.ulira`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from .datasets import Dataset
from .splits import Split
from .train import predict

CLASS_METRICS = ("RA", "FATrain", "FATest", "MIA")
RANDOM_METRICS = ("RA", "FA", "MIA")


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy in percent (NaN for an empty set)."""
    if len(labels) == 0:
        return float("nan")
    return (logits.argmax(1) == labels).float().mean().item() * 100


def entropy(probs: Tensor) -> Tensor:
    """Shannon entropy (nats) of each row of a probability matrix."""
    return -(probs * probs.clamp_min(1e-12).log()).sum(1)


def mia_entropy(retain_probs: Tensor, forget_probs: Tensor, test_probs: Tensor) -> float:
    """Entropy membership-inference attack of SSD/BadTeacher/NatMU.

    A class-balanced logistic regression on one feature, the softmax entropy, is fit on retain samples
    (label 1, member) against test samples (label 0, non-member); the result is the percentage of
    forget samples it predicts to be members. (The official code also passes
    ``multi_class="multinomial"``, which current scikit-learn removed; for two classes the fit is the
    same one-dimensional threshold.)"""
    from sklearn.linear_model import LogisticRegression  # imported here: it costs ~1 s at import time

    feats = [entropy(p).double().numpy()[:, None] for p in (retain_probs, test_probs, forget_probs)]
    x = np.concatenate(feats[:2])
    y = np.concatenate([np.ones(len(feats[0])), np.zeros(len(feats[1]))])
    attack = LogisticRegression(class_weight="balanced", solver="lbfgs").fit(x, y)
    return float(attack.predict(feats[2]).mean() * 100)


def evaluate(model: nn.Module, data: Dataset, split: Split) -> dict[str, float]:
    """RA, FA and MIA of ``model`` on one split, with the paper's names for its kind of forgetting.

    Random forgetting reports RA, FA, MIA; class forgetting RA, FATrain, FATest, MIA. ``RetainAcc``
    (accuracy on the retain training images) is added as a diagnostic; it is not in the tables."""
    train_logits = predict(model, data.train_x)
    test_logits = predict(model, data.test_x)
    fa = accuracy(train_logits[split.forget], data.train_y[split.forget])
    out = {"RA": accuracy(test_logits[split.test], data.test_y[split.test])}
    if split.kind == "random":
        out["FA"] = fa
    else:
        out["FATrain"] = fa
        out["FATest"] = accuracy(test_logits[split.forget_test], data.test_y[split.forget_test])
    out["MIA"] = mia_entropy(train_logits[split.retain].softmax(1), train_logits[split.forget].softmax(1),
                             test_logits.softmax(1))
    out["RetainAcc"] = accuracy(train_logits[split.retain], data.train_y[split.retain])
    return out


def as_row(metrics: dict[str, float]) -> dict[str, float | None]:
    """The metrics as a results row stores them: the forget accuracy is always ``FATrain`` (random
    forgetting's FA), ``FATest`` is None in random forgetting, and ``RetainAcc`` is kept."""
    return {"RA": metrics["RA"], "FATrain": metrics.get("FATrain", metrics.get("FA")), "FATest": metrics.get("FATest"),
            "MIA": metrics["MIA"], "RetainAcc": metrics["RetainAcc"]}


def avg_gap(result: dict[str, float], retrain: dict[str, float], keys: tuple[str, ...] | None = None) -> float:
    """Mean absolute gap to Retrain over the table's metrics (3 for random, 4 for class forgetting)."""
    keys = keys or (CLASS_METRICS if "FATrain" in result else RANDOM_METRICS)
    for name, metrics in (("the result", result), ("Retrain", retrain)):
        missing = [k for k in keys if metrics.get(k) is None]
        if missing:  # never a smaller average: that would look like a smaller gap
            raise ValueError(f"AvgGap needs {', '.join(keys)}; {name} lacks {', '.join(missing)}")
    return float(np.mean([abs(result[k] - retrain[k]) for k in keys]))


# ToW's three sets and the result keys that hold their accuracies (the first one present is used): the forget
# set is FATrain (FA in random forgetting), the retain set RetainAcc (training accuracy on D_r), the test set
# RA (test accuracy, without the forget class in class forgetting).
TOW_SETS = {"forget": ("FATrain", "FA"), "retain": ("RetainAcc",), "test": ("RA",)}


def _held(metrics: dict, names: tuple[str, ...]) -> float | None:
    values = [metrics.get(n) for n in names]
    return next((float(v) for v in values if v is not None and not math.isnan(v)), None)


def tow(result: dict[str, float], retrain: dict[str, float]) -> float:
    """ToW, "tug of war" (Zhao et al. 2024): the product over the forget, retain and test sets of
    ``1 - |accuracy - Retrain's accuracy|``, accuracies as fractions. 1 means Retrain's accuracy on all
    three; a gap anywhere scales the whole down. Unlike AvgGap it has no MIA and does weigh the retain set
    (what the model keeps). Keys (percent, see :data:`TOW_SETS`): forget = FATrain (or FA), retain =
    RetainAcc, test = RA. A missing accuracy is an error, never a factor of 1."""
    value = 1.0
    for what, names in TOW_SETS.items():
        pair = [_held(metrics, names) for metrics in (result, retrain)]
        for who, accuracy in zip(("the result", "Retrain"), pair):
            if accuracy is None:
                raise ValueError(f"ToW needs the {what}-set accuracy ({' or '.join(names)}); {who} lacks it")
        value *= 1 - abs(pair[0] - pair[1]) / 100
    return float(value)


COLLAPSE_FACTOR = 2  # a run is collapsed when its retain accuracy falls below this many times chance


def collapsed(retain_acc: float, num_classes: int) -> bool:
    """Whether a model lost its retain set: training accuracy on D_r below twice chance (``200 / K``
    percent, 20% for 10 classes). An unlearning run that ends there (e.g. gradient ascent at a huge
    learning rate, RA = FA = 10%) destroyed the model rather than unlearned; its row is kept but flagged."""
    return bool(retain_acc < COLLAPSE_FACTOR * 100 / num_classes)


def kl_to_model(model: nn.Module, images: Tensor, targets: Tensor) -> float:
    """Mean KL(target || model softmax) over unlearning instances: the paper's "naturalness" (Fig. 2a).

    ``targets`` are hard labels (then KL is the cross-entropy ``-log p(y|x)``) or probability rows
    (BadTeacher's soft targets). Measured against the *retrained* model: low KL means the instance
    says what a model that never saw the forget set would say anyway."""
    log_p = predict(model, images).log_softmax(1)
    if targets.dtype == torch.long:
        return (-log_p.gather(1, targets[:, None])).mean().item()
    t = targets.float()
    return (t * (t.clamp_min(1e-12).log() - log_p)).sum(1).mean().item()


def pfa(model: nn.Module, forget_parts: Tensor, labels: Tensor) -> float:
    """Partial-forget accuracy (Fig. 3/5): accuracy of predicting the reassigned label from the forget
    part ``x_f * m`` of each blend alone (the remaining part replaced by black pixels)."""
    return accuracy(predict(model, forget_parts), labels)
