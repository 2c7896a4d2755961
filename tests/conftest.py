"""Shared fixtures: a tiny synthetic dataset for unit tests, and a small real Fashion-MNIST setting
with a trained original model for behaviour tests (session-scoped: trained once, a few seconds)."""

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import natmu_lite as nl
from natmu_lite.datasets import Dataset

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parents[1]


def synthetic(n_per_class: int = 20, k: int = 10, size: int = 12, channels: int = 1, seed: int = 0) -> Dataset:
    """Class c is a noisy bright bar at row 1 + c: easy to learn, cheap to train."""
    g = torch.Generator().manual_seed(seed)

    def make(n):
        y = torch.arange(k).repeat_interleave(n)
        x = torch.randint(0, 60, (len(y), channels, size, size), generator=g)
        x[torch.arange(len(y)), :, 1 + y % (size - 2)] += 150
        return x.clamp(0, 255).to(torch.uint8), y

    (tx, ty), (vx, vy) = make(n_per_class), make(n_per_class // 2)
    return Dataset("synthetic", tx, ty, vx, vy, [f"c{i}" for i in range(k)], (0.3,) * channels, (0.3,) * channels)


@pytest.fixture
def tiny() -> Dataset:
    return synthetic()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty checkpoint cache for one test."""
    monkeypatch.setenv("NATMU_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def fmnist() -> Dataset:
    return nl.load_dataset("fashion-mnist", train_size=2000, test_size=2000)


@pytest.fixture(scope="session")
def fmnist_original(fmnist):
    """A small CNN that memorises the 2k subset (train accuracy ~100%)."""
    recipe = nl.Recipe("sgd", lr=0.05, weight_decay=5e-4, epochs=20, schedule="step", warmup_epochs=1)
    return nl.train_original(fmnist, "small_cnn", recipe, seed=0, progress=False)


@pytest.fixture(scope="session")
def split(fmnist):
    """A random 5% forget set of the small Fashion-MNIST subset (100 images)."""
    return nl.make_split(fmnist, "random", ratio=0.05, seed=0)


RECIPE = nl.Recipe("adamw", lr=1e-3, epochs=2)  # the behaviour tests' unlearning run


@pytest.fixture(scope="session")
def finetuned(fmnist, fmnist_original, split):
    """Finetune's model of that request: what a method with an extra forgetting term is compared with."""
    return nl.METHODS["finetune"](fmnist_original, fmnist, split, RECIPE, seed=0, progress=False)


@pytest.fixture(scope="session")
def tiny_request():
    """(data, split, original) on synthetic data: a trained model in seconds."""
    data = synthetic(n_per_class=10)
    original = nl.train_original(data, "small_cnn", nl.Recipe("sgd", lr=0.05, epochs=3), seed=0, progress=False)
    return data, nl.make_split(data, "random", ratio=0.2, seed=0), original


def build_wheel(folder: Path) -> Path:
    """A wheel of this checkout in ``folder``, as CI's `make colab` builds it (tools/colab_like.py)."""
    spec = importlib.util.spec_from_file_location("colab_like", ROOT / "tools" / "colab_like.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.build_wheel(folder)


def same_weights(a, b) -> bool:
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def ce(model, data, idx) -> float:
    return F.cross_entropy(nl.predict(model, data.train_x[idx]), data.train_y[idx]).item()


def forget_ce(model, data, split):
    return ce(model, data, split.forget)


def kl_to(model, teacher, data, idx, temperature=4.0) -> float:
    """KL(teacher || model) at a temperature, batch mean, in eval mode: what SCRUB's max steps raise."""
    x = data.train_x[idx]
    target = (nl.predict(teacher, x) / temperature).softmax(1)
    return F.kl_div((nl.predict(model, x) / temperature).log_softmax(1), target, reduction="batchmean").item()


def pytest_collection_modifyitems(config, items):
    """Notebooks that nbmake need not execute are left out: the student notebooks
    (natmu_lite/classroom/notebooks), stubs that raise NotImplementedError by design; and those the last
    book build executed, errors fatal, from exactly the sources on disk now (tools/book_stamp.py records
    them: the chapters after `make book`, the assignments' solutions after `make book-instructor`), which
    would only repeat the work. A notebook or a package file changed since the build runs again."""
    spec = importlib.util.spec_from_file_location("book_stamp", ROOT / "tools" / "book_stamp.py")
    stamp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stamp)
    executed, stubs = stamp.unchanged(), ROOT / "natmu_lite" / "classroom" / "notebooks"
    done = [i for i in items if str(i.fspath).endswith(".ipynb")
            and ((path := Path(str(i.fspath)).resolve()).is_relative_to(stubs)
                 or path.relative_to(ROOT).as_posix() in executed)]
    if done:
        config.hook.pytest_deselected(items=done)
        items[:] = [i for i in items if i not in done]
    for item in items:  # `make check` leaves out what trains a real model or re-runs committed results
        if set(getattr(item, "fixturenames", ())) & {"fmnist_original", "finetuned"} \
                or item.get_closest_marker("reproduction") or str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def toy_file(request, tmp_path, monkeypatch):
    """The test module's ``TOY`` method in a file outside the package, as a user writes one (load it as
    ``--method-file`` does); afterwards its rows are unregistered and the variable that lists method files
    for worker processes is as it was."""
    from natmu_lite.methods import FILES_VARIABLE, base, unregister

    monkeypatch.delenv(FILES_VARIABLE, raising=False)
    path, before = tmp_path / "toy_method.py", set(base.ORIGINS)
    path.write_text(request.module.TOY)
    yield path
    for name in set(base.ORIGINS) - before:
        unregister(name)
