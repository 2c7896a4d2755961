"""Choosing a method's parameters so that the choice survives its own noise.

A study's best trial is a winner's curse: among 24 noisy scores the lowest is lower than its parameters'
true score, the more so the noisier the request (a class held out for validation differs from the
table's classes). So the fair protocol re-checks its winners before it picks one:

1. **Candidates**: the study's :data:`CANDIDATES` best trials within the budget, and its trial 0, the
   setting's own (untuned) parameters, which can win.
2. **Replicas**: each candidate runs again on the other validation replicas: another random forget set or
   another held-out class, another original model and Retrain, another run seed. Its score is its mean
   AvgGap to Retrain over all replicas (the study's own request included).
3. **No degenerate winner**: a candidate is excluded when its model collapsed on a replica (retain
   accuracy below twice chance, :func:`~natmu_lite.metrics.collapsed`), or when it *did nothing*: on
   average over the replicas it moved the forget accuracy less than :data:`MIN_PROGRESS` of the way from
   the original model's towards Retrain's (a model that barely moves can still score well on AvgGap
   through the MIA alone).
4. **Next round**: when every candidate is excluded, the next :data:`CANDIDATES` best trials that pass
   both rules on the study's own request (:func:`passes`) are re-checked the same way, round after round,
   until one is valid. Only when no trial of the study passes are the untuned parameters kept, and marked:
   they may fail the rules themselves, so they are the last resort, not the first.

The functions here are pure: they take metrics (as results rows store them) and return numbers, so the
rule can be tested and shown on its own; :mod:`natmu_lite.protocol` feeds them the runs.
"""

from __future__ import annotations

import numpy as np

from .metrics import collapsed

CANDIDATES = 3  # the study's best trials re-checked on the other replicas (with its trial 0, the untuned parameters)
MIN_PROGRESS = 0.25  # the least forgetting progress of a winner (forgetting_progress)
FORGET_KEYS = ("FATrain", "FATest")  # the forget accuracies (FATest: class requests only)


def table_keys(row: dict) -> tuple[str, ...]:
    """The metrics of a row's AvgGap: RA, FA, MIA, and the forget-test accuracy in class requests."""
    return ("RA", "FATrain", "MIA") + (("FATest",) if row.get("FATest") is not None else ())


def gap(row: dict, retrain: dict) -> float:
    """AvgGap of a results row to Retrain's row on the same request."""
    return float(np.mean([abs(row[k] - retrain[k]) for k in table_keys(retrain)]))


def forgetting_progress(row: dict, original: dict, retrain: dict) -> float | None:
    """A run's forgetting progress: how far its forget accuracy moved from the original model's towards
    Retrain's, 0 = not at all, 1 = all the way (more: beyond); the mean over the forget accuracies that
    differ between the two by a point or more (None when none does: there was nothing to move)."""
    shares = [(original[k] - row[k]) / (original[k] - retrain[k]) for k in FORGET_KEYS
              if retrain.get(k) is not None and abs(original[k] - retrain[k]) >= 1.0]
    return float(np.mean(shares)) if shares else None


def assess(replicas: list[dict], num_classes: int) -> dict:
    """One candidate over the replicas. ``replicas``: per replica, ``{"run": row, "retrain": row,
    "original": row}``. Returns its mean AvgGap (``score``), per-replica gaps, mean forgetting progress and whether
    it is excluded (``collapsed``, ``did_nothing``)."""
    gaps = [gap(r["run"], r["retrain"]) for r in replicas]
    moved = [m for m in (forgetting_progress(r["run"], r["original"], r["retrain"]) for r in replicas) if m is not None]
    mean_moved = float(np.mean(moved)) if moved else None
    broke = any(collapsed(r["run"]["RetainAcc"], num_classes) for r in replicas)
    idle = mean_moved is not None and mean_moved < MIN_PROGRESS
    return {"score": float(np.mean(gaps)), "gaps": gaps, "progress": mean_moved, "collapsed": broke,
            "did_nothing": idle, "excluded": broke or idle}


def passes(row: dict, original: dict, retrain: dict, num_classes: int) -> bool:
    """Whether one run (a tuning trial on the study's own request) passes the exclusion rules: its model
    did not collapse, and it moved the forget accuracy at least :data:`MIN_PROGRESS` of the way (or there
    was nothing to move)."""
    moved = forgetting_progress(row, original, retrain)
    return not collapsed(row["RetainAcc"], num_classes) and (moved is None or moved >= MIN_PROGRESS)


def choose(assessed: dict[int, dict], untuned: int = 0) -> tuple[int, bool]:
    """The candidate (a trial number) with the lowest score among those not excluded, ties to the lower
    number; ``(untuned, True)`` when every candidate is excluded (the second value: nothing valid)."""
    valid = {n: a for n, a in assessed.items() if not a["excluded"]}
    if not valid:
        return untuned, True
    return min(valid, key=lambda n: (valid[n]["score"], n)), False


def best_so_far(values: list[float]) -> list[float]:
    """The lowest value among the first k, for k = 1..len(values): a study's search curve."""
    return np.minimum.accumulate(np.asarray(values, dtype=float)).tolist()
