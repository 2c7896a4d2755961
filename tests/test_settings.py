"""Settings drive the chapters: the requests a chapter shows come from the chosen setting's images and
classes, so that changing its SETTING line runs it on a paper setting (here: tiny data sets written in
CIFAR's on-disk format, and chapter 1 run on one of them)."""

import json
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import natmu_lite as nl
from natmu_lite import settings
from natmu_lite.settings import example_requests, get_setting

ROOT = Path(__file__).resolve().parents[1]
FINE = ["rocket", "sea", "cattle", "mushroom", *(f"fine{i}" for i in range(4, 100))]  # CIFAR-100's, as far as used


def write_cifar(root: Path, classes: int, per_class: int, test_per_class: int = 2) -> None:
    """Random images in the files torchvision's CIFAR-10 or CIFAR-100 download unpacks (python pickles of
    flat uint8 rows); CIFAR-100's fine class i is in superclass i // 5."""
    rng = np.random.default_rng(0)

    def images(n: int) -> tuple[np.ndarray, list[int]]:
        labels = np.repeat(np.arange(classes), n)
        return rng.integers(0, 256, (len(labels), 3 * 32 * 32), dtype=np.uint8), labels.tolist()

    def dump(folder: Path, name: str, obj: dict) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(pickle.dumps(obj))

    if classes == 100:
        folder = root / "cifar-100-python"
        for name, n in (("train", per_class), ("test", test_per_class)):
            x, y = images(n)
            dump(folder, name, {"data": x, "fine_labels": y, "coarse_labels": [c // 5 for c in y]})
        dump(folder, "meta", {"fine_label_names": FINE, "coarse_label_names": [f"super{i}" for i in range(20)]})
    else:
        folder = root / "cifar-10-batches-py"
        for i in range(1, 6):
            x, y = images(per_class // 5)
            dump(folder, f"data_batch_{i}", {"data": x, "labels": y})
        x, y = images(test_per_class)
        dump(folder, "test_batch", {"data": x, "labels": y})
        dump(folder, "batches.meta", {"label_names": [f"kind{i}" for i in range(10)]})


def test_the_requests_shown_are_the_settings_own(tmp_path, monkeypatch):
    """The offline default shows the classes it always showed; CIFAR-100 settings show the class the paper's
    full-class and sub-class settings forget; CIFAR-10 has no superclasses (no sub-class request) and no
    class a setting forgets (its first)."""
    assert list(example_requests(get_setting("default"))) == [
        "full-class (Trouser)", "sub-class (Shirt among tops)", "random 1%", "random 10%"]
    monkeypatch.setenv("NATMU_DATA", str(tmp_path))
    write_cifar(tmp_path, 100, per_class=60)
    write_cifar(tmp_path, 10, per_class=100)
    for name in ("cifar100-random", "cifar20-subclass", "cifar100-fullclass"):
        requests = example_requests(get_setting(name))
        assert list(requests) == ["full-class (rocket)", "sub-class (rocket among super0)", "random 1%",
                                  "random 10%"], name
        assert len(requests["random 1%"][1].forget) == 100 and len(requests["full-class (rocket)"][1].forget) == 60
    assert list(example_requests(get_setting("cifar10-random"))) == ["full-class (kind0)", "random 1%", "random 10%"]


def chapter_cells(name: str) -> list[str]:
    """A chapter's code cells as Python (IPython's magics made calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    return [TransformerManager().transform_cell("".join(c["source"])) for c in cells if c["cell_type"] == "code"]


@pytest.mark.slow
def test_chapter_one_runs_on_a_cifar_setting_by_changing_its_setting_line(tmp_path, monkeypatch, cache, capsys):
    """Chapter 1's code, cell by cell, with only SETTING changed, on a tiny CIFAR-100 setting (a small CNN
    trained for one epoch on random images in CIFAR's files)."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("NATMU_DATA", str(tmp_path))
    write_cifar(tmp_path, 100, per_class=60)
    quick = nl.Recipe("sgd", lr=0.01, epochs=1, batch_size=256)
    tiny = replace(get_setting("cifar100-random"), name="tiny-cifar100", model="small_cnn", train=quick,
                   unlearn=quick)
    monkeypatch.setitem(settings.SETTINGS, tiny.name, tiny)
    cells = chapter_cells("01_unlearning_in_one_sitting")
    parameters = next(i for i, c in enumerate(cells) if c.startswith("# Parameters"))
    assert 'SETTING = "default"' in cells[parameters]
    cells[parameters] = cells[parameters].replace('SETTING = "default"', f'SETTING = "{tiny.name}"')
    space: dict = {}
    for cell in cells:
        exec(cell, space)
    assert list(space["requests"]) == ["full-class (rocket)", "sub-class (rocket among super0)", "random 1%",
                                     "random 10%"]
    assert space["exp"].data.name == "cifar100" and space["exp"].split.kind == "random"
    assert list(space["table"].index) == ["original", "retrain"]
    assert "natmu-lite " in capsys.readouterr().out  # the install cell's device line
    matplotlib.pyplot.close("all")
