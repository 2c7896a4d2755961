"""U-LiRA's statistics (Hayes et al. 2024): the per-example attack on a matrix of scores, and the summaries
of saved audits that chapter 7 shows. :mod:`natmu_lite.audit` plays the game on real models and hands its
score matrix here; everything here is testable on synthetic tensors.

An *attacked model* is the model whose calls are judged, its Gaussians fitted on the other models; a
*candidate* is an example of the audited set T, unlearned by some models and never seen by the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .methods import in_book_order
from .metrics import avg_gap
from .metrics import tow as tow_of
from .stats import t_interval

# ---------------------------------------------------------------------------------------------
# the attack


def logit_confidence(logits: Tensor, labels: Tensor) -> Tensor:
    """LiRA's score of each row (Carlini et al. 2022): the logit-scaled confidence of the true label,
    ``log p_y - log(1 - p_y)``, computed as ``z_y - logsumexp(z_k, k != y)``: the same number without a
    softmax that rounds ``p_y`` to 1 for a memorised example, so finite however confident the model is.
    Over models its distribution is close to Gaussian, which is what the attack fits."""
    z = logits.double()
    true = z.gather(1, labels[:, None]).squeeze(1)
    return true - z.scatter(1, labels[:, None], float("-inf")).logsumexp(1)


def heldout_gaussians(scores: Tensor, members: Tensor, groups: Tensor | None = None
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The attack's Gaussians for each attacked model t, fit on the models outside t's group.

    ``scores[s, x]`` is model s's score of example x and ``members[s, x]`` says on which side x is for s
    (True, "in": unlearned; False, "out": never seen). Returns ``(mean_in, mean_out, var_in, var_out)``:
    per-example means, shape ``(K, N)`` (NaN where no held-out model is on that side), and one variance
    per side and attacked model, shape ``(K,)``, pooled over examples (squared deviations from each example's
    mean over their degrees of freedom, n - 1 for n scores): LiRA's fixed-variance variant, which is
    what works with few models. The centre is the mean where the official LiRA code takes the median
    (:mod:`natmu_lite.audit` says why). ``groups[s]`` (default: each model its own, leave-one-out)
    leaves t's whole group out.
    Vectorised: per-group sums, totals minus the attacked model's group."""
    k, n = scores.shape
    groups = torch.arange(k) if groups is None else groups.long()
    x = scores.double()

    def side(mask: Tensor) -> tuple[Tensor, Tensor]:
        w = mask.double()
        sums = torch.stack([w, w * x, w * x * x])  # count, sum, sum of squares: (3, K, N)
        per_group = torch.zeros(3, int(groups.max()) + 1, n, dtype=torch.float64).index_add_(1, groups, sums)
        count, total, squares = per_group.sum(1, keepdim=True) - per_group[:, groups]
        mean = total / count  # NaN (0 / 0) where no held-out model is on this side
        deviations = (squares - total * mean).nan_to_num().clamp_min(0)
        return mean, deviations.sum(1) / (count - 1).clamp_min(0).sum(1)

    (mean_in, var_in), (mean_out, var_out) = side(members.bool()), side(~members.bool())
    return mean_in, mean_out, var_in, var_out


def log_likelihood_ratio(scores: Tensor, members: Tensor, groups: Tensor | None = None) -> Tensor:
    """``log p(score | in) - log p(score | out)`` of every (attacked model, example) under the Gaussians
    of :func:`heldout_gaussians`, fit without the attacked model's group; NaN where a side has no model."""
    mean_in, mean_out, var_in, var_out = heldout_gaussians(scores, members, groups)
    x = scores.double()

    def log_pdf(mean: Tensor, var: Tensor) -> Tensor:
        return -0.5 * ((x - mean) ** 2 / var[:, None] + torch.log(2 * math.pi * var[:, None]))

    return log_pdf(mean_in, var_in) - log_pdf(mean_out, var_out)


def auc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve: the probability that a positive scores above a negative (ties count
    half), from ranks (the Mann-Whitney U statistic) rather than from all pairs."""
    s, y = scores.double().numpy(), labels.bool().numpy()
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # 1-based; tied values share their mean rank
    pos, neg = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


@dataclass
class Attack:
    """The outcome of U-LiRA on a score matrix, in percent: 50% is Retrain's ideal value."""

    accuracy: float  # balanced accuracy of each attacked model (positives and negatives alike), their mean
    stderr: float  # its standard error from the spread of the per-example accuracies (see ulira_attack)
    per_model: Tensor  # (K,) balanced accuracy of each attacked model
    auc: float  # of the log likelihood ratio over all decisions, a fraction (0.5: chance)
    per_example: Tensor  # (N,) how often each example was classified right, over the attacked models
    llr: Tensor  # (K, N) the log likelihood ratios


EXPOSED = 75  # % of the attacked models that classify a candidate right: the attack "sees" it


def exposed_share(per_example) -> float:
    """The % of candidates classified right by at least :data:`EXPOSED` % of the attacked models (those that
    stay exposed), over the candidates the attack decided (an undecided one, NaN, counts on neither side)."""
    per_example = torch.as_tensor(per_example, dtype=torch.float64)
    decided = per_example[~per_example.isnan()]
    return float((decided >= EXPOSED).double().mean() * 100)


def ulira_attack(scores: Tensor, members: Tensor, groups: Tensor | None = None) -> Attack:
    """Each model in turn is attacked: an example is called an unlearned member ("in") where its
    likelihood ratio exceeds 1, and the call is right where ``members`` says so. Decisions without a fit
    (a side with no held-out model) are left out. The threshold is fixed, not swept over the decisions
    as in the official LiRA plots, so that no signal reads 50% (:mod:`natmu_lite.audit` says why).

    The standard error takes the examples as the independent units: the attacked models share most of
    their fits, so their accuracies move together and their spread (``per_model.std()``) understates the
    noise. On simulated null scores (16 models, 500 examples, 300 draws) the accuracy's actual spread
    was 0.76 points, the standard error over examples 0.74 and the one over attacked models 0.54."""
    llr = log_likelihood_ratio(scores, members, groups)
    decided, members = ~llr.isnan(), members.bool()
    right = ((llr > 0) == members) & decided
    rates = [(right & side).sum(1) / (side & decided).sum(1) for side in (members, ~members)]
    per_model = 100 * (rates[0] + rates[1]) / 2
    per_example = 100 * right.sum(0) / decided.sum(0)
    held = per_example[~per_example.isnan()]
    stderr = held.std().item() / math.sqrt(len(held)) if len(held) > 1 else float("nan")
    return Attack(per_model.mean().item(), stderr, per_model, auc(llr[decided], members[decided]),
                  per_example, llr)


def memorisation(scores: Tensor, members: Tensor) -> Tensor:
    """Per example, how much training on it raises its score: the mean score (logit-scaled confidence)
    of the models that trained on it minus that of the models that never saw it, from an audit of the
    original models (no unlearning). The gap LiRA's attack feeds on, in the spirit of Feldman's
    memorisation estimate (which takes the same difference of accuracies instead of confidences)."""
    x, members = scores.double(), members.bool()
    return (x * members).sum(0) / members.sum(0) - (x * ~members).sum(0) / (~members).sum(0)


# ---------------------------------------------------------------------------------------------
# summaries of saved audits (``natmu_lite.audit.Audit.to_dict`` of each audited method)

def privacy_summary(audits: list[dict]) -> pd.DataFrame:
    """Per audited method (``natmu_lite.audit.Audit.to_dict`` of each): U-LiRA's accuracy with its
    standard error and AUC, the share of candidates exposed (classified right by at least
    :data:`EXPOSED` % of the attacked models), and the entropy MIA of the same models on their own requests
    (mean over the models) with its distance to the Retrain audit's mean: the population attack's
    verdict beside the per-example one. ``AvgGap`` and ``ToW`` are those of the same models too: model
    s of a method against model s of Retrain, which was trained on exactly model s's retain set (the
    mean over the models). Needs the ``retrain`` audit; methods in the book's order."""
    by = {a["method"]: a for a in audits}
    if "retrain" not in by:
        raise ValueError("the audits have no retrain audit: the entropy MIA's gaps need Retrain's value")
    references = by["retrain"]["runs"]
    mia_retrain = float(np.mean([r["MIA"] for r in references]))
    rows = []
    for method in in_book_order(by):
        a = by[method]
        mia = float(np.mean([r["MIA"] for r in a["runs"]]))
        pairs = list(zip(a["runs"], references))
        rows.append(dict(method=method, AvgGap=float(np.mean([avg_gap(r, ref) for r, ref in pairs])),
                         ToW=float(np.mean([tow_of(r, ref) for r, ref in pairs])), MIA=mia,
                         MIA_gap=abs(mia - mia_retrain), ULiRA=a["accuracy"], ULiRA_se=a["stderr"], AUC=a["auc"],
                         exposed=exposed_share(a["per_example"]), models=a["models"]))
    return pd.DataFrame(rows)


def per_model(audits: list[dict]) -> pd.DataFrame:
    """One row per (audited method, attacked model): U-LiRA's balanced accuracy on that model."""
    return pd.DataFrame([dict(method=a["method"], model=k, accuracy=v) for a in audits
                         for k, v in enumerate(a["per_model"])])


def exposure(audits: list[dict], bins: int = 5) -> pd.DataFrame:
    """One row per (audited method, candidate): the candidate's memorisation (from the ``original``
    audit, :func:`memorisation`), its quantile bin (1 = least memorised) and how
    often the attacked models classified it right (its per-example accuracy, %)."""
    by = {a["method"]: a for a in audits}
    if "original" not in by:
        raise ValueError("the audits have no original audit: memorisation is measured on the original models")
    mem = memorisation(torch.tensor(by["original"]["scores"]), torch.tensor(by["original"]["members"]))
    binned = pd.qcut(mem.numpy(), bins, labels=range(1, bins + 1)).astype(int)
    return pd.DataFrame([dict(method=a["method"], example=i, memorisation=float(mem[i]), bin=int(binned[i]),
                              accuracy=v) for a in audits for i, v in enumerate(a["per_example"])])


def example_difference(audits: list[dict], method: str, other: str, level: float = 0.95) -> tuple[float, float, float]:
    """``method``'s U-LiRA per-example accuracy minus ``other``'s, candidate by candidate (both audits
    face the same decisions): mean and Student-t interval over the candidates, as :func:`t_interval`."""
    by = {a["method"]: np.asarray(a["per_example"], dtype=float) for a in audits}
    diff = by[method] - by[other]
    return t_interval(diff[~np.isnan(diff)], level)
