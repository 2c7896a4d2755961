"""The checkpoint cache: original and retrained models on disk, under a hash of everything that
determines their weights (:func:`model_key`), written atomically and under a lock so that concurrent
workers neither train a model twice nor read half a file; and the pinned originals, the models a committed
protocol started from, kept beside its storage (:func:`pinned_original`)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from .datasets import Dataset
from .methods.base import get_method, spec
from .metrics import accuracy
from .models import model_for
from .provenance import record
from .setting import Setting
from .splits import Split
from .train import Recipe, default_device, predict, train_original

CACHE_VERSION = 1  # bump when a change to the code makes old checkpoints wrong


def cache_dir() -> Path:
    """``$NATMU_CACHE``, else ``~/.cache/natmu-lite``."""
    return Path(os.environ.get("NATMU_CACHE") or Path.home() / ".cache" / "natmu-lite")


def recipe_key(recipe: Recipe) -> dict:
    """The recipe's fields that can change the trained weights (compiling does not)."""
    return {k: v for k, v in asdict(recipe).items() if k != "compile"}


# ---------------------------------------------------------------------------------------------
# keys: what determines a model or a run, as a dict (recorded beside it) and hashed (its file name)

def digest(key: dict, length: int = 20) -> str:
    """The hash of a key: the name of its files, the configuration id of its results rows."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:length]


def setting_key(setting: Setting) -> dict:
    """What determines a setting's trained models besides their seed and data split: the data and its
    sizes, the network, the training recipe, the original model's initialisation."""
    subset = {"subset": [setting.subset_seed, setting.avoid_subset]} if (setting.subset_seed or
                                                                         setting.avoid_subset is not None) else {}
    return {"version": CACHE_VERSION, "dataset": setting.dataset, "train_size": setting.train_size,
            "test_size": setting.test_size, "model": setting.model, "recipe": recipe_key(setting.train),
            "original_seed": setting.original_seed, **subset}  # the usual subset adds nothing (older keys hold)


def run_key(setting: Setting, method: str) -> dict:
    """What determines a run of ``method`` from a setting's models besides its seed and request: the
    setting's key, the method's recipe and its knobs, defaults included (so that a setting listing a
    default or not is the same run). ``"original"`` (no run: the model itself) adds nothing."""
    if method == "original":
        return {**setting_key(setting), "method": method}
    knobs = {**spec(method).defaults, **setting.knobs.get(method, {})}
    return {**setting_key(setting), "method": method, "unlearn_recipe": recipe_key(setting.recipe_for(method)),
            "knobs": knobs}


def model_key(kind: str, setting: Setting, seed: int, split: Split | None = None) -> dict:
    """Everything that determines an original or retrained model (the cache key, before hashing)."""
    key = {**setting_key(setting), "kind": kind, "seed": seed}
    if split is not None:
        forget_hash = hashlib.sha256(split.forget.numpy().tobytes()).hexdigest()
        key["split"] = {"scenario": split.kind, "target": split.target, "forget_sha256": forget_hash}
    return key



def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock on ``path`` + ".lock" across processes (``flock``: released if a holder dies),
    so that concurrent workers neither train the same model twice nor overwrite each other's rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_model(weights: Path, meta: Path, key: dict) -> tuple[dict, dict]:
    """A saved model's state dict and metadata; ``ValueError`` (with the reason) when a file is missing,
    its key is not ``key`` or its checksum does not match (a truncated or corrupted file)."""
    if not (weights.exists() and meta.exists()):
        raise ValueError(f"{weights.name} or its {meta.name} is missing")
    try:
        info = json.loads(meta.read_text())
        if info["key"] != json.loads(json.dumps(key)):
            raise ValueError("its key does not match")
        if _sha256(weights) != info["sha256"]:
            raise ValueError("its checksum does not match (truncated or corrupted)")
        return torch.load(weights, map_location="cpu", weights_only=True), info
    except ValueError:
        raise
    except Exception as e:  # unreadable JSON or weights
        raise ValueError(f"it cannot be read ({e})") from None


def write_model(model: nn.Module, weights: Path, meta: Path, info: dict) -> None:
    """Save the weights, then their metadata (``info`` with their checksum): both atomically, the
    metadata last, so that a reader never takes a half-written model for a whole one."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}

    def save(path: Path) -> None:  # through a file object: the archive's inner name is then fixed, and the
        with open(path, "wb") as f:  # same weights give the same bytes (a path would embed the temporary name)
            torch.save(state, f)

    atomic_write(weights, save)
    info = {**info, "sha256": _sha256(weights)}
    atomic_write(meta, lambda p: p.write_text(json.dumps(info, indent=1)))  # written last: the commit mark


def cached_model(kind: str, setting: Setting, data: Dataset, seed: int, split: Split | None = None,
                 progress: bool = True, device=None) -> tuple[nn.Module, float]:
    """The original (``kind="original"``) or retrained (``"retrain"``, needs ``split``) model of a
    setting, from the cache when a verified entry exists, else trained and stored. Returns the model
    and the seconds its training took (when it was trained, also for a cached one)."""
    if kind not in ("original", "retrain") or (kind == "retrain") != (split is not None):
        raise ValueError("kind must be 'original' (no split) or 'retrain' (with a split)")
    key = model_key(kind, setting, seed, split)
    name = f"{kind}-{digest(key)}"
    weights, meta = cache_dir() / f"{name}.pt", cache_dir() / f"{name}.json"
    init_seed = seed if kind == "original" else setting.original_seed  # Retrain starts from the original's init

    def initial() -> nn.Module:  # built only when needed: training the original builds its own
        return model_for(setting.model, data, init_seed).to(device or default_device())

    with locked(weights):  # a second worker asking for the same model waits, then loads it
        if weights.exists() or meta.exists():
            try:
                state, info = read_model(weights, meta, key)
                model = initial()
                model.load_state_dict(state)
                return model, info["seconds"]
            except ValueError as e:  # any unusable entry is rebuilt, never used
                warnings.warn(f"cache entry {weights.name} is unusable ({e}); rebuilding it", stacklevel=2)
        start = time.perf_counter()
        if kind == "original":
            model = train_original(data, setting.model, setting.train, seed=seed, device=device, progress=progress)
        else:
            model = get_method("retrain")(initial(), data, split, setting.train, seed=seed, progress=progress)
        seconds = time.perf_counter() - start
        write_model(model, weights, meta, {"key": key, "seconds": seconds})
    return model, seconds


# ---------------------------------------------------------------------------------------------
# pinned models: the original models a committed result started from, committed beside it

def pinned_files(folder: Path, setting: str, seed: int) -> tuple[Path, Path]:
    return folder / f"{setting}-seed{seed}.pt", folder / f"{setting}-seed{seed}.json"


def pin_original(model: nn.Module, weights: Path, meta: Path, data: Dataset, key: dict, seconds: float) -> None:
    """Write a pinned original: its weights, and beside them its key, checksum, accuracies (on the
    setting's test and training sets, which a test compares with a model trained again) and provenance."""
    metrics = {"test_accuracy": accuracy(predict(model, data.test_x), data.test_y),
               "train_accuracy": accuracy(predict(model, data.train_x), data.train_y)}
    write_model(model, weights, meta, {"key": key, "seconds": seconds, "metrics": metrics,
                                       "provenance": record("natmu-lite " + " ".join(sys.argv[1:]))})


def load_pinned(weights: Path, meta: Path, model: nn.Module, key: dict) -> nn.Module:
    """Load a pinned original into ``model``; a pinned file that does not match the setting (another
    configuration) or its checksum is an error, never silently replaced: it is committed data."""
    try:
        state, _ = read_model(weights, meta, key)
    except ValueError as e:
        raise ValueError(f"the pinned original {weights} cannot be used: {e}; it belongs to another "
                         "configuration of the protocol, or is damaged (restore it, or remove it to train "
                         "and pin a new one)") from None
    model.load_state_dict(state)
    return model


def pins_beside(storage: str, name: str) -> Path:
    """Where a protocol pins its original models by default: beside its SQLite file, named after it
    (``results/default.db``: ``results/default-originals``; another storage, say a GPU's
    ``default-gpu.db``, has pins of its own, trained on its own device), else (a server, or SQLite in
    memory) in the checkpoint cache."""
    if not storage.startswith("sqlite:///") or storage.endswith(":memory:"):
        return cache_dir() / "originals" / name
    file = Path(storage.removeprefix("sqlite:///"))
    return file.parent / f"{file.stem}-originals"


def pinned_original(folder: Path, setting: Setting, data: Dataset, seed: int) -> nn.Module:
    """The original model of ``setting`` (initialised and trained with ``seed``), pinned in ``folder``:
    read from there (checksum verified) when it is there, else taken from the checkpoint cache (trained if
    need be) and written there. Training is not bit-reproducible across CPUs, so a protocol resumed on
    another machine starts from exactly the model its committed runs started from."""
    weights, meta = pinned_files(folder, setting.name, seed)
    key = model_key("original", setting, seed)
    with locked(weights):
        if not weights.exists():
            model, seconds = cached_model("original", setting, data, seed, progress=False)
            pin_original(model, weights, meta, data, key=key, seconds=seconds)
        return load_pinned(weights, meta, model_for(setting.model, data, seed).to(default_device()), key)
