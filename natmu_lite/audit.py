"""U-LiRA (Hayes et al. 2024): does an unlearned model still tell its forget set from data it never saw?

Population attacks such as the entropy MIA of :mod:`natmu_lite.metrics` fit one threshold for all
examples; U-LiRA fits one per example, from many models that did and did not unlearn that example, as
LiRA (Carlini et al. 2022) does for membership. The game, on the setting's training set (the pool):

- the candidates T are a fixed random ``candidate_fraction`` of the pool (the random-forgetting request's
  forget set of that ratio, split seed ``seed``);
- model s trains from scratch on a random half H_s of the pool; the models come in pairs, model 2j on a
  half drawn with seed j and model 2j+1 on the other half, so that every example is in exactly half
  of the models (LiRA's own design); each model has its own initialisation and batch order (seed s);
- its forget set is F_s = T ∩ H_s (about ``candidate_fraction`` of its training set, as in random
  forgetting of that ratio) and the method under audit unlearns it, retain = H_s ∖ F_s, with the
  setting's recipe and knobs (:func:`~natmu_lite.runs.run_method`). ``"original"`` audits the half
  models themselves (no unlearning: the attack must win), ``"retrain"`` models trained on H_s ∖ F_s
  alone (the attack's ideal, 50%);
- each model in turn is attacked: every x in T is either unlearned by it (x in F_t, a positive) or
  never seen (x not in H_t, a negative). The other models give x's two Gaussians of the logit-scaled
  confidence, and the attack says "unlearned" where the likelihood ratio exceeds 1
  (:func:`~natmu_lite.ulira.ulira_attack`).

What differs from the attack of Hayes et al. and the official LiRA code (tensorflow/privacy,
``research/mi_lira_2021``), both made for many shadow models (LiRA's experiments use up to 256) on a GPU:

- the variance of each Gaussian is pooled over examples (LiRA's fixed-variance variant: from a handful
  of models a per-example variance is noise): the squared deviations of the scores from their own
  example's mean, over their degrees of freedom (n - 1 for n scores): unbiased even from 2 scores per
  side, where dividing by n would halve it. The official fixed variance is the standard deviation (over
  n) of all "in" scores of all examples together, the spread between examples included, used for both
  sides;
- each Gaussian is centred on the mean of its scores, where the official code takes the median: for
  Gaussian scores the mean is the maximum-likelihood centre, and from 3 to 7 scores per side (8 to 16
  models) the median's variance is 1.2-1.5 times the mean's (equal at 2); the median's robustness to
  outliers pays with many models;
- the attack decides at a fixed threshold, likelihood ratio 1, where the official plots sweep the
  threshold and report the best balanced accuracy. The best swept threshold can never read below 50%
  (the extreme thresholds give 50%), so it reads above 50% where there is no signal at all (null
  scores, 8 models, 400 candidates: 51.0% against the fixed threshold's 50.1%), and Retrain's ideal
  would no longer be 50%. The AUC, reported beside the accuracy, is the threshold-free view;
- every model is also attacked, its fit made from the others (no separate shadow and target models),
  and an attacked model's fit leaves out its pair partner too. Trained on the complement of its half,
  the partner is on the opposite side from the attacked model for every candidate, so plain leave-one-out
  would fit the attacked model's own side from one model fewer than the other side, whichever it is. The
  noisier mean of its own side lies further, on average, from the attacked model's score, and the attack errs
  against the truth on both sides alike: on null scores from 8 models its true-positive and true-negative
  rates both fall to 48.4%, and Retrain would read below 50%. With the partner left out too, both
  sides have K/2 - 1 models and both rates are 50% (tests/test_audit.py measures all of this);
- no query augmentations are averaged (the default setting trains without augmentation).

The original and Retrain models of the audit go through the checkpoint cache
(:func:`~natmu_lite.cache.cached_model`), so the audits of several methods on one setting train the
half-pool models once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .cache import atomic_write, cache_dir, cached_model, digest, locked, run_key
from .datasets import Dataset
from .methods import Method, RowView
from .metrics import evaluate
from .provenance import record
from .runs import run_method
from .setting import Setting, check_grid, load_setting_data, with_params
from .splits import Split, make_split
from .train import predict
from .ulira import EXPOSED, Attack, exposed_share, logit_confidence, ulira_attack

# the methods and "original" (the trained half models, no unlearning), in the book's order: a live view, so that
# a method registered after this import (a --method-file) is audited too
AUDITED = RowView("name", where=lambda r: isinstance(r, Method) or r.name == "original")
MIN_MODELS = 6  # 3 pairs: an attacked model's fit keeps 2, so 2 models per side and example, the fewest with a variance
DEFAULT_MODELS = 16  # 7 models per side and example in each fit; ~15 CPU minutes on the default setting
CANDIDATE_FRACTION = 0.1  # T: a tenth of the pool, so F_s is ~10% of each half (the random-10% request)


def check_models(models: int) -> int:
    """The number of models: even (they come in complementary pairs) and at least :data:`MIN_MODELS`."""
    if isinstance(models, bool) or not isinstance(models, int) or models < MIN_MODELS or models % 2:
        raise ValueError(f"models must be an even integer >= {MIN_MODELS} (complementary pairs, "
                         f"and >= 2 per side of each fit), got {models!r}")
    return models


def audit_setting(setting: Setting, method: str, models: int, params: dict | None = None,
                  candidate_fraction: float = CANDIDATE_FRACTION) -> Setting:
    """Refuse, before any data is loaded or model trained, an unknown method, a wrong number of models
    or fraction, parameters of a method that has none to tune here; return the setting with ``params``
    (recipe changes and knobs, as :func:`natmu_lite.setting.with_params` takes them) applied."""
    if method not in AUDITED:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(AUDITED)}")
    check_models(models)
    if isinstance(candidate_fraction, bool) or not isinstance(candidate_fraction, (int, float)) \
            or not 0 < candidate_fraction <= 0.5:
        raise ValueError(f"candidate_fraction must be a number in (0, 0.5], got {candidate_fraction!r}")
    if params:
        if method in ("original", "retrain"):
            raise ValueError(f"{method} takes no parameters here (it uses the setting's training recipe)")
        setting = with_params(setting, method, params)
    if method != "original":
        check_grid(setting, [], [method])
    return setting


def training_half(n: int, s: int) -> Tensor:
    """Model ``s``'s training half of the pool ``0..n-1``, sorted: model 2j gets a random half drawn
    with seed j, model 2j+1 the rest, so that every example is in exactly half of any even number of
    models."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(s // 2))
    return (perm[: n // 2] if s % 2 == 0 else perm[n // 2:]).sort().values


def trained_on(indices: Tensor, n: int) -> Split:
    """A split whose retain set is a model's training set: what :func:`~natmu_lite.cache.cached_model`
    trains Retrain on. Its forget set, the rest of the pool, is what the cache key hashes."""
    rest = torch.ones(n, dtype=torch.bool)
    rest[indices] = False
    return Split("random", "audit", 0, indices, rest.nonzero().flatten(), torch.arange(0), torch.arange(0))


def model_split(data: Dataset, half: Tensor, candidates: Tensor, seed: int) -> Split:
    """Model ``seed``'s unlearning request: forget F = T ∩ H (in T's order, grouped by class as the
    random requests' forget sets are), retain H ∖ F; RA on the whole test set."""
    forget = candidates[torch.isin(candidates, half)]
    retain = half[~torch.isin(half, forget)]
    return Split("random", "audit", seed, retain, forget, torch.arange(len(data.test_y)), torch.arange(0))


@dataclass
class Audit:
    """The result of :func:`ulira`: the score matrix, who is on which side, the attack and the runs."""

    setting: str
    method: str
    candidates: Tensor  # (N,) pool indices of the candidates T
    members: Tensor  # (K, N) True where model s unlearned the candidate (in F_s), False where it never saw it
    scores: Tensor  # (K, N) logit-scaled confidence of audited model s on the candidate's true label
    attack: Attack
    runs: list[dict]  # per model: its RA/FA/MIA/RetainAcc on its own request, seconds of training/unlearning
    config: dict = field(default_factory=dict)  # what determines the numbers (data, network, recipes, knobs)

    def summary(self) -> str:
        """One line: accuracy with its standard error and its range over the attacked models, the AUC, and
        the share of candidates the attack gets right on at least 3 attacked models in 4 (those that stay
        exposed)."""
        a, k = self.attack, len(self.members)
        return (f"U-LiRA, {self.method} on {self.setting}: attack accuracy {a.accuracy:.1f}% ± {a.stderr:.1f} "
                f"(standard error; 50% = Retrain's ideal; {a.per_model.min():.1f}-{a.per_model.max():.1f}% over "
                f"the {k} attacked models), AUC {a.auc:.3f}; {exposed_share(a.per_example):.0f}% of the "
                f"{len(self.candidates)} candidates are classified right on >= {EXPOSED}% of the attacked models")

    def to_dict(self) -> dict:
        """Everything as JSON-ready values (the matrices as nested lists), for files and chapters."""
        a = self.attack
        return {"setting": self.setting, "method": self.method, "models": len(self.members),
                "accuracy": a.accuracy, "stderr": a.stderr, "auc": a.auc, "per_model": a.per_model.tolist(),
                "per_example": a.per_example.tolist(), "candidates": self.candidates.tolist(),
                "members": self.members.int().tolist(), "scores": self.scores.double().round(decimals=4).tolist(),
                "runs": self.runs, "config": self.config}


def audited_model(method: str, setting: Setting, data: Dataset, half: Tensor, split: Split, seed: int
                  ) -> tuple[nn.Module, dict]:
    """Model ``seed`` of the audit, its metrics on its request and the seconds it took: the cached half
    model (``original``), the cached model trained on its retain set (``retrain``), or the half model
    unlearned by ``method``. ``setting.original_seed`` is the model's initialisation."""
    n = len(data.train_y)
    if method == "retrain":
        model, seconds = cached_model("retrain", setting, data, seed, trained_on(split.retain, n), progress=False)
        return model, {**evaluate(model, data, split), "train_seconds": seconds}
    model, seconds = cached_model("retrain", setting, data, seed, trained_on(half, n), progress=False)
    if method == "original":
        return model, {**evaluate(model, data, split), "train_seconds": seconds}
    run = run_method(method, model, data, split, setting, seed=seed, progress=False)
    return run.model, {**run.metrics, "train_seconds": seconds, "unlearn_seconds": run.seconds}


def config(setting: Setting, method: str, models: int, candidate_fraction: float, seed: int) -> dict:
    """What determines an audit's numbers, recorded with them (the setting's name alone does not)."""
    return {**run_key(setting, method), "models": models, "candidate_fraction": candidate_fraction, "seed": seed}


_DATA: dict[tuple, Dataset] = {}  # per process: the pool of each (dataset, sizes), loaded once


def _data(setting: Setting) -> Dataset:
    key = (setting.dataset, setting.train_size, setting.test_size)
    if key not in _DATA:
        _DATA[key] = load_setting_data(setting)
    return _DATA[key]


def draw_candidates(data: Dataset, candidate_fraction: float, seed: int) -> Tensor:
    """T: the random-forgetting request's forget set of ratio ``candidate_fraction``, split seed ``seed``."""
    return make_split(data, "random", ratio=candidate_fraction, seed=seed).forget


def model_row(setting: Setting, method: str, s: int, candidate_fraction: float, seed: int) -> dict:
    """Model ``s`` of an audit of ``method``: its scores on the candidates, which of them it unlearned,
    and its run. Saved in the checkpoint cache (atomically, under a lock), so an audit stopped half-way
    resumes where it was and concurrent workers never run a model twice. Model ``s`` is the same in an
    audit of any number of models (:func:`training_half` draws pair j from seed j alone), so the key leaves the
    number of models out: a 16-model audit reuses an 8-model one's first 8 models."""
    key = {**config(setting, method, 0, candidate_fraction, seed), "model_index": s}
    del key["models"]
    path = cache_dir() / "audit" / f"{method}-{digest(key, 16)}-{s}.json"
    with locked(path):
        if path.exists():
            return json.loads(path.read_text())
        data = _data(setting)
        candidates = draw_candidates(data, candidate_fraction, seed)
        half = training_half(len(data.train_y), s)
        split = model_split(data, half, candidates, s)
        model, metrics = audited_model(method, replace(setting, original_seed=s), data, half, split, s)
        row = {"scores": logit_confidence(predict(model, data.train_x[candidates]), data.train_y[candidates]).tolist(),
               "members": torch.isin(candidates, split.forget).tolist(),
               "run": {"model": s, "forget": len(split.forget), "retain": len(split.retain), **metrics}}
        atomic_write(path, lambda p: p.write_text(json.dumps(row)))
    return row


def _model_row(job: tuple) -> dict:
    return model_row(*job)


def _one_thread() -> None:
    torch.set_num_threads(1)  # workers share the cores: more threads each would slow every one down


def ulira_many(setting: Setting, methods: dict[str, dict | None], models: int = DEFAULT_MODELS,
               candidate_fraction: float = CANDIDATE_FRACTION, seed: int = 0, workers: int = 1,
               progress: bool = True) -> list[Audit]:
    """Audit several methods (method -> its ``params``, or None for the setting's) on one game; see
    :func:`ulira`. The models are run by ``workers`` processes of one torch thread each; the half-pool
    models come first (the ``original`` jobs, audited or not, unless only Retrain is), so that workers train different
    ones side by side instead of waiting for each other's."""
    settings = {m: audit_setting(setting, m, models, params, candidate_fraction) for m, params in methods.items()}
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    data = _data(setting)
    for m, s in settings.items():
        if m != "original":
            check_grid(s, [], [m], data.num_classes)
    halves_first = ["original"] if set(settings) - {"retrain"} else []  # Retrain's models need no half model
    order = [*halves_first, *[m for m in settings if m not in halves_first]]
    jobs = [(settings.get(m, setting), m, s, candidate_fraction, seed) for m in order for s in range(models)]
    bar = dict(total=len(jobs), desc=f"U-LiRA ({len(settings)} methods)", disable=not progress)
    if workers == 1:
        rows = [model_row(*job) for job in tqdm(jobs, **bar)]
    else:
        with get_context("spawn").Pool(workers, initializer=_one_thread) as pool:
            rows = list(tqdm(pool.imap(_model_row, jobs), **bar))
    by_method = {m: rows[i * models:(i + 1) * models] for i, m in enumerate(order)}
    candidates = draw_candidates(data, candidate_fraction, seed)
    return [assemble(s, m, candidates, by_method[m], config(s, m, models, candidate_fraction, seed))
            for m, s in settings.items()]


def assemble(setting: Setting, method: str, candidates: Tensor, rows: list[dict], config: dict) -> Audit:
    """The attack on the models' rows (an attacked model's pair partner is left out of its fit too)."""
    scores = torch.tensor([r["scores"] for r in rows])
    members = torch.tensor([r["members"] for r in rows])
    attack = ulira_attack(scores, members, groups=torch.arange(len(rows)) // 2)
    return Audit(setting.name, method, candidates, members, scores, attack, [r["run"] for r in rows], config)


def ulira(setting: Setting, method: str, models: int = DEFAULT_MODELS, params: dict | None = None,
          candidate_fraction: float = CANDIDATE_FRACTION, seed: int = 0, progress: bool = True,
          workers: int = 1) -> Audit:
    """Audit ``method`` with U-LiRA on ``setting`` (see the module's description of the game).

    ``models`` (even, >= 6) models each train on half the pool and unlearn their share of the candidates;
    ``params`` are tuned recipe changes and knobs of the method (see :func:`natmu_lite.setting.with_params`);
    ``seed`` draws the candidates. Every argument is checked before anything trains.

    Cost: ``models`` trainings on half the pool with the setting's training recipe, cached and shared by
    the audits of every method (``retrain`` trains on H_s ∖ F_s instead), plus ``models`` unlearning
    runs. Measured on the default setting with one thread of this 2-core CPU (CPU time; the machine was
    shared, so the wall time was 4-8x that): a half-pool model (5,000 images, 20 epochs) 38 s, a NatMU
    run 16.5 s, a Finetune run 14 s, a Retrain model (4,496 images) 33 s. The default 16 models thus
    train for ~10 minutes the first time (cached after), and each method's audit adds ~4.5 minutes
    (Retrain's ~9)."""
    return ulira_many(setting, {method: params}, models, candidate_fraction, seed, workers, progress)[0]


def provenance(command: str, seconds: float, audits: list[Audit]) -> dict:
    """Who produced a committed audit, how and where (as the protocol's exports record it), with the
    computing its models took when they were first run (a rerun reads them from the cache, so its own
    wall time can be far shorter): the half models once, Retrain's models, every unlearning run."""
    runs = {a.method: a.runs for a in audits}
    halves = next((rs for m, rs in runs.items() if m != "retrain"), [])  # model s of each: the same half model
    compute = {"half models": sum(r["train_seconds"] for r in halves),
               "retrain models": sum(r["train_seconds"] for r in runs.get("retrain", [])),
               "unlearning runs": sum(r.get("unlearn_seconds", 0.0) for rs in runs.values() for r in rs)}
    return record(command, wall_seconds=round(seconds, 1),
                  compute_seconds={k: round(v, 1) for k, v in compute.items()})


def save(audits: list[Audit], path: str | Path, params: dict | None = None, provenance: dict | None = None) -> None:
    """Write the audits (``to_dict``, with each method's tuned ``params``) and their provenance as JSON,
    atomically (a reader never sees half a file)."""
    doc = {"provenance": provenance or {},
           "audits": [{**a.to_dict(), "params": (params or {}).get(a.method) or {}} for a in audits]}
    atomic_write(Path(path), lambda p: p.write_text(json.dumps(doc)))
