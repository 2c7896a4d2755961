"""Metrics against hand-computable cases."""

import math

import pytest
import torch

import natmu_lite as nl
from natmu_lite.metrics import accuracy, entropy


def peaked(n: int, k: int = 10, sharpness: float = 8.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g)
    logits[torch.arange(n), torch.randint(0, k, (n,), generator=g)] += sharpness
    return logits.softmax(1)


def test_mia_entropy_tells_members_from_non_members():
    retain = peaked(500, sharpness=12)  # confident: low entropy, like training data
    test = peaked(500, sharpness=1, seed=1)  # unsure: high entropy
    assert nl.mia_entropy(retain, peaked(200, sharpness=12, seed=2), test) > 95
    assert nl.mia_entropy(retain, peaked(200, sharpness=1, seed=3), test) < 5
    half = torch.cat([peaked(100, sharpness=12, seed=4), peaked(100, sharpness=1, seed=5)])
    assert 40 < nl.mia_entropy(retain, half, test) < 60


def test_entropy_and_accuracy():
    assert entropy(torch.full((1, 4), 0.25)).item() == pytest.approx(math.log(4))
    assert entropy(torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.0)
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1, 1])) == 75.0
    assert math.isnan(accuracy(logits[:0], torch.tensor([], dtype=torch.long)))


def test_avg_gap_uses_the_scenario_metrics():
    retrain = {"RA": 90.0, "FA": 88.0, "MIA": 70.0, "RetainAcc": 99.0}
    method = {"RA": 89.0, "FA": 92.0, "MIA": 64.0, "RetainAcc": 50.0}
    assert nl.avg_gap(method, retrain) == pytest.approx((1 + 4 + 6) / 3)  # RetainAcc is not in the tables
    cls_retrain = {"RA": 76.44, "FATrain": 0.0, "FATest": 0.0, "MIA": 14.64}
    cls_method = {"RA": 76.51, "FATrain": 0.0, "FATest": 0.0, "MIA": 6.08}
    assert nl.avg_gap(cls_method, cls_retrain) == pytest.approx(2.1575)  # paper Table 1, Rocket Finetune: 2.16


class Fixed(torch.nn.Module):
    """A 'model' that returns given logits whatever the input (for metric tests)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.logits[: len(x)]


def test_kl_naturalness_hard_and_soft():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    model, x = Fixed(logits), torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    log_p = logits.log_softmax(1)
    labels = torch.tensor([0, 2])
    assert nl.kl_to_model(model, x, labels) == pytest.approx(-(log_p[0, 0] + log_p[1, 2]).item() / 2)
    soft = logits.softmax(1)
    assert nl.kl_to_model(model, x, soft) == pytest.approx(0.0, abs=1e-6)  # KL(p || p) = 0
    uniform = torch.full((2, 3), 1 / 3)
    want = (uniform * (uniform.log() - log_p)).sum(1).mean().item()
    assert nl.kl_to_model(model, x, uniform) == pytest.approx(want)


def test_evaluate_names_metrics_per_scenario(fmnist, fmnist_original):
    rnd = nl.evaluate(fmnist_original, fmnist, nl.make_split(fmnist, "random", ratio=0.05))
    assert set(rnd) == {"RA", "FA", "MIA", "RetainAcc"}
    cls = nl.evaluate(fmnist_original, fmnist, nl.make_split(fmnist, "full-class", target="Trouser"))
    assert set(cls) == {"RA", "FATrain", "FATest", "MIA", "RetainAcc"}
    assert cls["FATrain"] > 95 and cls["FATest"] > 85  # trousers are easy; the original knows them
    assert 75 < rnd["RA"] < 95 and rnd["RetainAcc"] > 97


def test_pfa_is_accuracy_on_forget_parts(fmnist, fmnist_original):
    split = nl.make_split(fmnist, "random", ratio=0.01)
    u = nl.build_unlearning_set(fmnist_original, fmnist, split)
    parts = u.forget_parts(fmnist, split)
    xf = fmnist.train_x[split.forget[u.forget_pos]]
    assert torch.equal(parts, (xf.float() * u.masks[u.mask_id][:, None]).to(torch.uint8))
    value = nl.pfa(fmnist_original, parts, u.labels)
    assert value == accuracy(nl.predict(fmnist_original, parts), u.labels)
