"""One request with its models (runs.py)."""

from dataclasses import replace

import torch

import natmu_lite.runs as runs
import natmu_lite.settings as settings

from .conftest import synthetic


def test_experiment_trains_retrain_only_when_it_is_used(monkeypatch):
    """A chapter that reads Retrain's runs from the committed benchmark must not pay for training it."""
    asked = []

    def fake_cached_model(kind, setting, data, seed, split=None, progress=True):
        asked.append((kind, seed))
        return torch.nn.Linear(1, 1), 0.0

    monkeypatch.setattr(runs, "cached_model", fake_cached_model)
    monkeypatch.setattr(runs, "load_setting_data", lambda setting: synthetic())
    exp = runs.experiment(replace(settings.DEFAULT, scenarios={"random-10%": dict(kind="random", ratio=0.1)}),
                           "random-10%", seed=3, progress=False)
    assert asked == [("original", settings.DEFAULT.original_seed)]
    assert exp.retrained is exp.retrained  # trained (here: faked) once, then kept
    assert asked[1:] == [("retrain", 3)]
