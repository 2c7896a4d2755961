"""Datasets as uint8 tensors: where their files are found (or downloaded), one reader per format, and
the registry of names that :func:`load_dataset` loads, optionally as a class-balanced subset.

Every dataset loads into memory as ``uint8`` tensors of shape ``(N, C, H, W)``: they are small enough
(CIFAR is 150 MB, TinyImageNet 1.2 GB) to live on the GPU, where batching and augmentation are cheap
tensor ops instead of a per-sample Python pipeline. Normalisation lives in the model (``models.py``),
so the blends of NatMU are computed on raw pixels exactly as in the official code. What is forgotten
of a dataset, a request's index sets, is :mod:`natmu_lite.splits`.

Files are looked for in ``$NATMU_DATA``, then ``./data``, then (Fashion-MNIST) Debian's
``/usr/share/datasets/fashion-mnist``; only when all of them fail do we download with torchvision.
"""

from __future__ import annotations

import gzip
import numbers
import os
import pickle
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# The Fashion-MNIST analogue of CIFAR-20: superclass -> fine classes. Sub-class forgetting trains on
# these four labels and forgets one fine class (e.g. "Shirt" out of "tops").
FASHION_SUPERCLASSES = {
    "tops": ["T-shirt/top", "Pullover", "Coat", "Shirt"],
    "bottoms-and-dresses": ["Trouser", "Dress"],
    "footwear": ["Sandal", "Sneaker", "Ankle boot"],
    "bags": ["Bag"],
}
NORMS = {  # per-channel (mean, std) of the training images, applied inside the model
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "tinyimagenet": ((0.4802, 0.4481, 0.3975), (0.2764, 0.2689, 0.2816)),
}
DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"


@dataclass
class Dataset:
    """Train and test images (uint8, NCHW) with labels; ``fine_*`` hold fine labels when ``classes``
    are superclasses (CIFAR-20, Fashion-MNIST-super), which is what sub-class forgetting needs."""

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_fine: Tensor | None = None
    test_fine: Tensor | None = None
    fine_classes: list[str] | None = field(default=None)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.train_y)}, test={len(self.test_y)}, "
                f"shape={self.shape}, classes={self.num_classes})")




# ---------------------------------------------------------------------------------------------
# finding and downloading files

def _roots(root: str | Path | None) -> list[Path]:
    cands = [root, os.environ.get("NATMU_DATA"), "data"]
    return [Path(c).expanduser() for c in cands if c]


def _download_root(root: str | Path | None) -> Path:
    return _roots(root)[0]


def _missing(what: str, tried: list[Path], how: str, err: Exception | None) -> FileNotFoundError:
    msg = (f"{what} not found (looked in: {', '.join(str(t) for t in tried)}) and the download failed"
           f"{f' ({type(err).__name__}: {err})' if err else ''}.\n{how}")
    return FileNotFoundError(msg)


def _locate(find: Callable[[], Path | None], fetch: Callable[[], object] | None, what: str, tried: list[Path],
            how: str) -> Path:
    """Find a dataset's folder; if it is not there, download it (``fetch``) and look again; if it is
    still not there, explain where we looked, why the download failed and what to do."""
    folder, err = find(), None
    if folder is None and fetch is not None:
        try:
            fetch()
        except Exception as e:  # offline, proxy, ...: reported with what to do
            err = e
        folder = find()
    if folder is None:
        raise _missing(what, tried, how, err)
    return folder


def _first_existing(paths: list[Path]) -> Path | None:
    return next((p for p in paths if p.exists()), None)


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST (IDX files, gzipped or not)

def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format): magic, dims, then big-endian uint8 data."""
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
        zero, dtype, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype != 0x08:
            raise ValueError(f"{path} is not an uint8 IDX file")
        dims = struct.unpack(f">{ndim}I", f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    return _first_existing([folder / stem, folder / f"{stem}.gz"])


def _fashion_folder(root: str | Path | None) -> Path | None:
    for base in [*_roots(root), Path(DEBIAN_FASHION)]:
        for folder in (base, base / "fashion-mnist", base / "FashionMNIST" / "raw"):
            if _find_idx(folder, "train-images-idx3-ubyte"):
                return folder
    return None


def load_fashion_mnist(root: str | Path | None = None, download: bool = True) -> Dataset:
    def fetch() -> None:
        from torchvision.datasets import FashionMNIST
        FashionMNIST(str(_download_root(root)), train=True, download=True)
        FashionMNIST(str(_download_root(root)), train=False, download=True)

    folder = _locate(lambda: _fashion_folder(root), fetch if download else None, "Fashion-MNIST",
                     [*_roots(root), Path(DEBIAN_FASHION)],
                     "Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or "
                     "put the four *-ubyte.gz files in ./data or in $NATMU_DATA.")
    arr = {s: torch.from_numpy(read_idx(_find_idx(folder, s)).copy()) for s in
           ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    mean, std = NORMS["fashion-mnist"]
    return Dataset("fashion-mnist", arr["train-images-idx3-ubyte"][:, None], arr["train-labels-idx1-ubyte"].long(),
                   arr["t10k-images-idx3-ubyte"][:, None], arr["t10k-labels-idx1-ubyte"].long(),
                   list(FASHION_CLASSES), mean, std)


def to_superclasses(data: Dataset, groups: dict[str, list[str]], name: str) -> Dataset:
    """Relabel a dataset with superclass labels, keeping the fine labels for sub-class forgetting."""
    fine_to_coarse = torch.empty(data.num_classes, dtype=torch.long)
    for c, fines in enumerate(groups.values()):
        for f in fines:
            fine_to_coarse[data.classes.index(f)] = c
    return Dataset(name, data.train_x, fine_to_coarse[data.train_y], data.test_x, fine_to_coarse[data.test_y],
                   list(groups), data.mean, data.std, data.train_y, data.test_y, list(data.classes))


# ---------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 / CIFAR-20 (the python pickles of the official tarballs)

def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def _cifar_folder(root, sub: str, tv_name: str) -> Path:
    def fetch() -> None:
        import torchvision.datasets as tvd
        getattr(tvd, tv_name)(str(_download_root(root)), train=True, download=True)

    return _locate(lambda: _first_existing([r / sub for r in _roots(root)]), fetch, tv_name, _roots(root),
                   f"Download it with torchvision (torchvision.datasets.{tv_name}('data', download=True)) or "
                   f"set $NATMU_DATA to the folder that holds `{sub}/`.")


def _cifar_images(d: dict) -> Tensor:
    return torch.from_numpy(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).copy())


def load_cifar10(root: str | Path | None = None) -> Dataset:
    folder = _cifar_folder(root, "cifar-10-batches-py", "CIFAR10")
    batches = [_unpickle(folder / f"data_batch_{i}") for i in range(1, 6)]
    test = _unpickle(folder / "test_batch")
    mean, std = NORMS["cifar10"]
    return Dataset("cifar10", torch.cat([_cifar_images(b) for b in batches]),
                   torch.tensor(sum((list(b["labels"]) for b in batches), [])),
                   _cifar_images(test), torch.tensor(list(test["labels"])),
                   list(_unpickle(folder / "batches.meta")["label_names"]), mean, std)


def load_cifar100(root: str | Path | None = None, coarse: bool = False) -> Dataset:
    """CIFAR-100 with fine labels, or CIFAR-20 (``coarse=True``): coarse labels, fine ones kept."""
    folder = _cifar_folder(root, "cifar-100-python", "CIFAR100")
    train, test, meta = (_unpickle(folder / n) for n in ("train", "test", "meta"))
    mean, std = NORMS["cifar100"]
    fine = [torch.tensor(list(d["fine_labels"])) for d in (train, test)]
    if not coarse:
        return Dataset("cifar100", _cifar_images(train), fine[0], _cifar_images(test), fine[1],
                       list(meta["fine_label_names"]), mean, std)
    return Dataset("cifar20", _cifar_images(train), torch.tensor(list(train["coarse_labels"])),
                   _cifar_images(test), torch.tensor(list(test["coarse_labels"])),
                   list(meta["coarse_label_names"]), mean, std, fine[0], fine[1], list(meta["fine_label_names"]))


# ---------------------------------------------------------------------------------------------
# TinyImageNet-200 (the official folder tree of JPEGs), decoded once and cached as .npz

TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


def _read_jpegs(paths: list[Path]) -> np.ndarray:
    from PIL import Image
    out = np.empty((len(paths), 3, 64, 64), dtype=np.uint8)
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            out[i] = np.asarray(im.convert("RGB").resize((64, 64))).transpose(2, 0, 1)
    return out


def _tiny_arrays(folder: Path) -> dict[str, np.ndarray]:
    wnids = sorted((folder / "wnids.txt").read_text().split())
    index = {w: i for i, w in enumerate(wnids)}
    train = sorted((w, p) for w in wnids for p in (folder / "train" / w / "images").glob("*.JPEG"))
    val = [line.split("\t")[:2] for line in (folder / "val" / "val_annotations.txt").read_text().splitlines()
           if line.strip()]
    val.sort()
    return {"train_x": _read_jpegs([p for _, p in train]),
            "train_y": np.array([index[w] for w, _ in train], dtype=np.int64),
            "test_x": _read_jpegs([folder / "val" / "images" / f for f, _ in val]),
            "test_y": np.array([index[w] for _, w in val], dtype=np.int64), "wnids": np.array(wnids)}


def load_tinyimagenet(root: str | Path | None = None) -> Dataset:
    """TinyImageNet-200; the official validation set serves as the test set (as in the paper)."""
    def fetch() -> None:
        from torchvision.datasets.utils import download_and_extract_archive
        download_and_extract_archive(TINY_URL, str(_download_root(root)))

    folder = _locate(lambda: _first_existing([r / "tiny-imagenet-200" for r in _roots(root)]), fetch,
                     "TinyImageNet-200", _roots(root),
                     f"Download and unzip {TINY_URL} into ./data or into $NATMU_DATA.")
    cache = folder / "natmu_arrays.npz"
    if cache.exists():
        arrays = dict(np.load(cache))
    else:
        arrays = _tiny_arrays(folder)
        try:  # decoding 110k JPEGs takes minutes: keep the result (write, then rename: never half a file)
            np.savez(tmp := folder / "natmu_arrays.tmp.npz", **arrays)
            tmp.replace(cache)
        except OSError:
            pass
    words = dict(line.split("\t", 1) for line in (folder / "words.txt").read_text().splitlines() if "\t" in line)
    classes = [words.get(w, w).split(",")[0].strip() for w in arrays["wnids"]]
    mean, std = NORMS["tinyimagenet"]
    t = {k: torch.from_numpy(v) for k, v in arrays.items() if k != "wnids"}
    return Dataset("tinyimagenet", t["train_x"], t["train_y"], t["test_x"], t["test_y"], classes, mean, std)


# ---------------------------------------------------------------------------------------------
# one entry point

LOADERS = {
    "fashion-mnist": lambda root: load_fashion_mnist(root),
    "fashion-mnist-super": lambda root: to_superclasses(load_fashion_mnist(root), FASHION_SUPERCLASSES,
                                                        "fashion-mnist-super"),
    "cifar10": lambda root: load_cifar10(root),
    "cifar100": lambda root: load_cifar100(root),
    "cifar20": lambda root: load_cifar100(root, coarse=True),
    "tinyimagenet": lambda root: load_tinyimagenet(root),
}


# A dataset -> the same images labelled with superclasses, fine labels kept (what sub-class forgetting needs).
SUPERCLASSES = {"fashion-mnist": "fashion-mnist-super", "cifar100": "cifar20"}


def per_class_draw(labels: Tensor, count: Callable[[int], int], g: torch.Generator) -> Tensor:
    """A random draw within each class, classes in ascending order: ``count(n)`` of a class's ``n``
    indices, shuffled (so grouped by class, in random order within each)."""
    parts = []
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        parts.append(idx[torch.randperm(len(idx), generator=g)[:count(len(idx))]])
    return torch.cat(parts)


def balanced_subset(labels: Tensor, size: int, seed: int) -> Tensor:
    """Indices of a class-balanced random subset (sorted), deterministic for ``seed``."""
    g = torch.Generator().manual_seed(seed)
    classes = labels.unique()
    per_class = size // len(classes)
    if per_class < 1:
        raise ValueError(f"subset size {size} is smaller than the number of classes ({len(classes)})")
    return per_class_draw(labels, lambda n: per_class, g).sort().values


def load_dataset(name: str, root: str | Path | None = None, train_size: int | None = None,
                 test_size: int | None = None, subset_seed: int = 0, avoid_subset: int | None = None) -> Dataset:
    """Load a dataset by name, optionally reduced to class-balanced train/test subsets.

    The subset depends on ``subset_seed`` only, so every experiment seed sees the same data.
    ``avoid_subset``: draw the training subset from the images that the subset of that seed leaves out
    (an independent replication set, disjoint from it; the test subset is unchanged)."""
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(LOADERS)}")
    for part, size in (("train", train_size), ("test", test_size)):
        if size is not None and (isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1):
            raise ValueError(f"{part}_size must be a positive integer or None, got {size!r}")
    data = LOADERS[name](root)
    for part, size in (("train", train_size), ("test", test_size)):
        y = getattr(data, f"{part}_y")
        if size is None or size >= len(y):
            if size is not None and size > len(y):
                warnings.warn(f"{part}_size={size} is more than the {len(y)} {part} images of {name}; "
                              "using all of them", stacklevel=2)
            continue
        fine = getattr(data, f"{part}_fine")
        labels = fine if fine is not None else y
        idx = balanced_subset(labels, size, subset_seed)
        if part == "train" and avoid_subset is not None:
            pool = torch.ones(len(labels), dtype=torch.bool)
            pool[balanced_subset(labels, size, avoid_subset)] = False
            pool = pool.nonzero().flatten()
            idx = pool[balanced_subset(labels[pool], size, subset_seed)]
        if len(idx) != size:  # a class-balanced subset holds a multiple of the number of classes
            k = len(labels.unique())
            warnings.warn(f"{part}_size={size} gives {len(idx)} images: a class-balanced subset of {k} classes "
                          f"takes {size} // {k} = {size // k} per class", stacklevel=2)
        setattr(data, f"{part}_x", getattr(data, f"{part}_x")[idx])
        setattr(data, f"{part}_y", y[idx])
        if fine is not None:
            setattr(data, f"{part}_fine", fine[idx])
    return data
