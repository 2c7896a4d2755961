"""Grids of runs (grid.py): resumable, never redoing or losing a run."""

import json

import pytest

import natmu_lite.grid as grid
import natmu_lite.runs as runs
from natmu_lite.grid import run_grid

from .test_cache import TINY, count_training, tiny_data  # noqa: F401 (a fixture)


@pytest.mark.slow
def test_interrupted_grid_resumes_without_redoing_or_losing_runs(cache, tmp_path, monkeypatch):
    out = tmp_path / "results.json"
    real, calls = runs.run_method, []

    def flaky(method, *args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(method)
        return real(method, *args, **kwargs)

    monkeypatch.setattr(grid, "run_method", flaky)
    methods = ["natmu", "amnesiac", "finetune"]
    with pytest.raises(KeyboardInterrupt):
        run_grid(TINY, ["random-5%"], methods, [0, 1], out, progress=False)
    saved = json.loads(out.read_text())
    assert [r["method"] for r in saved] == ["retrain", "natmu", "amnesiac", "finetune", "retrain"]
    monkeypatch.setattr(grid, "run_method", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    frame = run_grid(TINY, ["random-5%"], methods, [0, 1], out, progress=False)
    assert calls[3:] == ["natmu", "amnesiac", "finetune"]  # only seed 1's unlearning runs were left
    assert len(frame) == 8 and not frame.duplicated(["method", "seed"]).any()
    assert set(frame.columns) >= {"setting", "scenario", "target", "method", "seed", "RA", "FATrain", "FATest",
                                  "MIA", "seconds"}
    assert frame[frame.method == "retrain"].seconds.gt(0).all()
