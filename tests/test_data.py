"""Loaders read files in the real on-disk formats (written here), and splits behave."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

import natmu_lite as nl
from natmu_lite.datasets import FASHION_CLASSES, FASHION_SUPERCLASSES, balanced_subset, read_idx

from .conftest import synthetic


def write_idx(path, arr: np.ndarray, gz: bool):
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = np.arange(30) % 10
    suffix = ".gz" if gz else ""
    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", imgs, gz)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz)
    data = nl.datasets.load_fashion_mnist(tmp_path, download=False)
    assert data.train_x.shape == (30, 1, 28, 28) and data.train_x.dtype == torch.uint8
    assert torch.equal(data.train_x[:, 0], torch.from_numpy(imgs))
    assert data.train_y.tolist() == labels.tolist()
    assert data.classes == FASHION_CLASSES


def test_read_idx_rejects_other_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="IDX"):
        read_idx(tmp_path / "bad")


def test_missing_dataset_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(nl.datasets, "DEBIAN_FASHION", str(tmp_path / "nowhere"))
    monkeypatch.setenv("NATMU_DATA", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        nl.datasets.load_fashion_mnist(download=False)


def write_cifar(root, n=12, k100=False):
    rng = np.random.default_rng(1)
    folder = root / ("cifar-100-python" if k100 else "cifar-10-batches-py")
    folder.mkdir(parents=True)

    def batch(n, offset):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        if k100:
            fine = (np.arange(n) + offset) % 100
            return {"data": data, "fine_labels": fine.tolist(), "coarse_labels": (fine // 5).tolist()}
        return {"data": data, "labels": ((np.arange(n) + offset) % 10).tolist()}

    names = ["train", "test"] if k100 else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {name: batch(n, i) for i, name in enumerate(names)}
    for name, b in batches.items():
        with open(folder / name, "wb") as f:
            pickle.dump(b, f)
    meta = ({"fine_label_names": [f"f{i}" for i in range(100)], "coarse_label_names": [f"c{i}" for i in range(20)]}
            if k100 else {"label_names": [f"n{i}" for i in range(10)]})
    with open(folder / ("meta" if k100 else "batches.meta"), "wb") as f:
        pickle.dump(meta, f)
    return batches


def test_cifar10_reads_pickled_batches(tmp_path):
    batches = write_cifar(tmp_path)
    data = nl.datasets.load_cifar10(tmp_path)
    assert data.train_x.shape == (60, 3, 32, 32) and data.test_x.shape == (12, 3, 32, 32)
    first = batches["data_batch_1"]["data"][0].reshape(3, 32, 32)
    assert torch.equal(data.train_x[0], torch.from_numpy(first))
    assert data.train_y[:12].tolist() == batches["data_batch_1"]["labels"]
    assert data.classes[3] == "n3"


def test_cifar100_fine_and_cifar20_coarse(tmp_path, monkeypatch):
    batches = write_cifar(tmp_path, k100=True)
    monkeypatch.setenv("NATMU_DATA", str(tmp_path))
    fine = nl.load_dataset("cifar100")
    coarse = nl.load_dataset("cifar20")
    assert fine.num_classes == 100 and coarse.num_classes == 20
    assert fine.train_y.tolist() == batches["train"]["fine_labels"]
    assert coarse.train_y.tolist() == batches["train"]["coarse_labels"]
    assert torch.equal(coarse.train_fine, fine.train_y) and coarse.fine_classes == fine.classes
    split = nl.make_split(coarse, "sub-class", target="f3")
    assert (coarse.train_fine[split.forget] == 3).all() and (coarse.train_y[split.forget] == 0).all()


def write_tiny(root, wnids=("n01", "n02", "n03"), per_class=2):
    folder = root / "tiny-imagenet-200"
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(reversed(wnids)) + "\n")
    (folder / "words.txt").write_text("".join(f"{w}\tthing {w}, other name\n" for w in wnids))
    colors, annotations = {}, []
    for c, w in enumerate(wnids):
        (folder / "train" / w / "images").mkdir(parents=True)
        (folder / "train" / w / f"{w}_boxes.txt").write_text("")
        for i in range(per_class):
            colors[w] = (40 * c + 20, 200 - 40 * c, 17 * i)
            Image.new("RGB", (64, 64), colors[w]).save(folder / "train" / w / "images" / f"{w}_{i}.JPEG")
        Image.new("RGB", (64, 64), colors[w]).save(folder / "val" / "images" / f"val_{c}.JPEG")
        annotations.append(f"val_{c}.JPEG\t{w}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(annotations) + "\n")
    return folder, colors


def test_tinyimagenet_reads_folder_tree_and_caches(tmp_path):
    folder, colors = write_tiny(tmp_path)
    data = nl.datasets.load_tinyimagenet(tmp_path)
    assert data.train_x.shape == (6, 3, 64, 64) and data.test_x.shape == (3, 3, 64, 64)
    assert data.train_y.tolist() == [0, 0, 1, 1, 2, 2] and data.test_y.tolist() == [0, 1, 2]
    assert data.classes == ["thing n01", "thing n02", "thing n03"]
    # solid colours survive JPEG to within a few levels
    assert (data.test_x[1].float().mean((1, 2)) - torch.tensor(colors["n02"], dtype=torch.float)).abs().max() < 4
    assert (folder / "natmu_arrays.npz").exists()
    again = nl.datasets.load_tinyimagenet(tmp_path)
    assert torch.equal(again.train_x, data.train_x)


def test_real_fashion_mnist_subset(fmnist):
    assert fmnist.train_x.shape == (2000, 1, 28, 28) and fmnist.train_x.dtype == torch.uint8
    assert torch.bincount(fmnist.train_y).tolist() == [200] * 10
    assert fmnist.test_x.shape[0] == 2000


def test_balanced_subset_is_deterministic():
    y = torch.arange(10).repeat(50)
    a, b, c = balanced_subset(y, 100, 0), balanced_subset(y, 100, 0), balanced_subset(y, 100, 1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.bincount(y[a]).tolist() == [10] * 10


def test_superclasses_cover_every_fashion_class_once():
    fines = [f for group in FASHION_SUPERCLASSES.values() for f in group]
    assert sorted(fines) == sorted(FASHION_CLASSES)


@pytest.mark.parametrize("kwargs", [dict(kind="random", ratio=0.1), dict(kind="full-class", target="c3")])
def test_splits_are_disjoint_complete_and_deterministic(kwargs):
    data = synthetic()
    a, b = nl.make_split(data, seed=0, **kwargs), nl.make_split(data, seed=0, **kwargs)
    assert torch.equal(a.forget, b.forget) and torch.equal(a.retain, b.retain)
    both = torch.cat([a.retain, a.forget])
    assert len(both) == len(data.train_y) and len(both.unique()) == len(both)


def test_random_split_depends_on_seed_and_is_class_balanced():
    data = synthetic()
    a, b = nl.make_split(data, "random", ratio=0.1, seed=0), nl.make_split(data, "random", ratio=0.1, seed=1)
    assert not torch.equal(a.forget, b.forget)
    assert torch.bincount(data.train_y[a.forget]).tolist() == [2] * 10
    assert len(a.test) == len(data.test_y) and len(a.forget_test) == 0


def test_full_class_split_sets():
    data = synthetic()
    s = nl.make_split(data, "full-class", target="C3")  # names match case-insensitively
    assert s.target == "c3" and (data.train_y[s.forget] == 3).all() and (data.train_y[s.retain] != 3).all()
    assert (data.test_y[s.forget_test] == 3).all() and (data.test_y[s.test] != 3).all()
    assert len(s.test) + len(s.forget_test) == len(data.test_y)


def test_sub_class_split_on_fashion_superclasses(fmnist):
    sup = nl.datasets.to_superclasses(fmnist, FASHION_SUPERCLASSES, "fashion-mnist-super")
    s = nl.make_split(sup, "sub-class", target="shirt")
    assert (sup.train_fine[s.forget] == FASHION_CLASSES.index("Shirt")).all()
    assert (sup.train_y[s.forget] == 0).all()  # shirts are "tops"
    assert (sup.train_y[s.retain] == 0).any()  # ... and the other tops stay


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="sideways"), "valid: full-class, sub-class, random"),
    (dict(kind="random", ratio=1.5), r"ratio in \(0, 1\)"),
    (dict(kind="random", ratio=0.0), r"ratio in \(0, 1\)"),
    (dict(kind="random", ratio=0.001), "forgets no sample"),
    (dict(kind="full-class", target="zebra"), "valid: c0, c1"),
    (dict(kind="full-class"), "needs a target"),
    (dict(kind="sub-class", target="c1"), "needs a dataset with fine labels"),
])
def test_bad_split_requests_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nl.make_split(synthetic(), **kwargs)


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="cifar20"):
        nl.load_dataset("mnist-but-cooler")
