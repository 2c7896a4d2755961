"""One trainer for everything: original training, Retrain and every unlearning fine-tune (SCRUB
excepted: its epochs alternate a pass over the forget set with one over the remaining set, both under
one optimiser and one schedule, which :func:`fit`'s single stream cannot express; it runs the same
steps in a loop of its own, :mod:`natmu_lite.methods.scrub`).

Data stays on the device as uint8 tensors; each step gathers a batch by index, augments it in one
batched op (random crop with zero padding and a horizontal flip, drawn per image) and converts to
float. There is no DataLoader and no per-sample Python, which is what makes small-image training fast
(see ``benchmarks/trainer_speed.py``). On CUDA the step runs in bf16 autocast with channels_last
(``Recipe(bf16=False)`` for fp32; ``benchmarks/gpu_speed.py`` checks both give the same RA/FA), or in
fp16 autocast with a gradient scaler on a GPU without native bf16 (:func:`precision` decides, for every
training and inference step of the package), and optionally through ``torch.compile``; nothing in the
step loop waits for the GPU (the loss is summed on the device and read once an epoch).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .datasets import Dataset
from .models import model_for


@dataclass(frozen=True)
class Recipe:
    """Optimiser, schedule and augmentation of one training run.

    ``schedule="step"`` is the official original/retrain schedule: linear warm-up from 0 over
    ``warmup_epochs``, then x1 until 60% of the steps, x0.1 until 80%, x0.01 after.
    ``schedule="cosine"`` is the unlearning schedule: ``0.5 * (1 + cos(pi * (step + 1) / total))``
    per step, no warm-up, ending at 0."""

    optimizer: str = "adamw"  # "sgd" (momentum, no Nesterov) or "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 5
    batch_size: int = 128
    schedule: str = "cosine"  # "cosine", "step" or "constant"
    warmup_epochs: float = 0.0
    momentum: float = 0.9
    crop_padding: int = 0  # random crop with this zero padding (0: no crop)
    flip: bool = False  # random horizontal flip
    bf16: bool = True  # autocast on CUDA (see precision(); fp32 with False; the CPU always trains in fp32)
    compile: str = ""  # a torch.compile mode for the training forward ("default", "reduce-overhead"); "": eager

    def __post_init__(self):
        """Refuse a recipe that cannot train here, not at fit time (or never: zero or negative epochs
        trained nothing and reported the untrained model, a zero batch size divided by zero)."""
        for name, valid in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("compile", COMPILE_MODES)):
            if getattr(self, name) not in valid:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid: {', '.join(filter(None, valid))}")
        for name, (integer, rule, ok) in BOUNDS.items():
            value = getattr(self, name)
            kind = numbers.Integral if integer else numbers.Real
            if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or not ok(value):
                raise ValueError(f"recipe {name} must be {'an integer' if integer else 'a number'} {rule}, "
                                 f"got {value!r}")

    def with_(self, **changes) -> Recipe:
        unknown = sorted(set(changes) - set(self.__dataclass_fields__))
        if unknown:
            raise ValueError(f"a recipe has no field {unknown[0]!r}; valid: {', '.join(self.__dataclass_fields__)}")
        return replace(self, **changes)

    def unaugmented(self) -> Recipe:
        """The recipe without random crops and flips: for methods whose targets are tied to the exact
        forget images (ascent on them, a teacher's outputs on them)."""
        return self.with_(crop_padding=0, flip=False)


OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step", "constant")
COMPILE_MODES = ("", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
BOUNDS = {  # field -> (integer?, the rule in words, the rule)
    "epochs": (True, ">= 1", lambda v: v >= 1), "batch_size": (True, ">= 1", lambda v: v >= 1),
    "crop_padding": (True, ">= 0", lambda v: v >= 0), "lr": (False, ">= 0", lambda v: v >= 0),
    "weight_decay": (False, ">= 0", lambda v: v >= 0), "warmup_epochs": (False, ">= 0", lambda v: v >= 0),
    "momentum": (False, "in [0, 1)", lambda v: 0 <= v < 1),
}


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


PRECISIONS = {  # what precision() returns -> how it is said (natmu_lite.notebook.where)
    "bf16": "bf16 autocast",
    "fp16": "fp16 autocast with a gradient scaler",
    "fp32": "fp32",
}


def precision(device: torch.device | str, mixed: bool = True) -> str:
    """The arithmetic of training and inference on ``device``, decided here for the whole package:
    ``"bf16"`` autocast on a CUDA GPU with native bf16 (compute capability 8.0 or newer: A100, H100,
    L4...); ``"fp16"`` autocast with a gradient scaler on older ones (Colab's free T4 is 7.5), where bf16
    is only emulated, slowly or not at all, while fp16 runs on the tensor cores; ``"fp32"`` on the CPU
    or with ``mixed=False`` (``Recipe(bf16=False)``)."""
    device = torch.device(device)
    if device.type != "cuda" or not mixed:
        return "fp32"
    return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The autocast region of one forward pass in ``precision`` (a no-op for fp32)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype or torch.bfloat16, enabled=dtype is not None)


def grad_scaler(device: torch.device, precision: str, desc: str = "train") -> torch.amp.GradScaler:
    """The loss scaling fp16 needs (its small gradients underflow without it; a step whose gradients
    overflow is skipped and the scale shrinks); a pass-through for bf16 and fp32. Says so, as a warning
    (shown once per kind of run), when a GPU trains in fp16."""
    if precision == "fp16":
        warnings.warn(f"{desc}: {torch.cuda.get_device_name(device)} has no native bf16 (compute capability "
                      f"{'.'.join(map(str, torch.cuda.get_device_capability(device)))}): training in "
                      f"{PRECISIONS['fp16']}", stacklevel=3)
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def lr_multiplier(schedule: str, step: int, total: int, warmup: int = 0) -> float:
    """The learning-rate factor at ``step`` of ``total`` (see :class:`Recipe`)."""
    if step < warmup:
        return step / warmup
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * (step + 1) / total))
    if schedule == "step":
        return 1.0 if step < 0.6 * total else 0.1 if step < 0.8 * total else 0.01
    if schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {schedule!r}; valid: cosine, step, constant")


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD or AdamW; on CUDA the fused kernels (same update, a couple of launches instead of dozens)."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = all(p.is_cuda for p in params) or None
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                               fused=fused)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, recipe.lr, weight_decay=recipe.weight_decay, fused=fused)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}; valid: sgd, adamw")


def augment(x: Tensor, padding: int, flip: bool, generator: torch.Generator) -> Tensor:
    """Random crop with zero padding and random horizontal flip, drawn independently per image."""
    n, _, h, w = x.shape
    if padding:
        x = F.pad(x, (padding,) * 4)
        dy, dx = (torch.randint(0, 2 * padding + 1, (2, n), device=x.device, generator=generator))
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        x = x[torch.arange(n, device=x.device)[:, None, None, None],
              torch.arange(x.shape[1], device=x.device)[None, :, None, None], rows, cols]
    if flip:
        flips = torch.rand(n, device=x.device, generator=generator) < 0.5
        x = torch.where(flips[:, None, None, None], x.flip(3), x)
    return x


def to_input(x: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [0, 1] in channels_last; the model normalises."""
    return x.float().div_(255).contiguous(memory_format=torch.channels_last)


LossFn = Callable[[Tensor, Tensor], Tensor]  # (logits, the batch's targets) -> loss
ExtraLoss = Callable[[nn.Module, int, int], Tensor]  # (model, step, total steps) -> a term added to the step's loss


def fit(model: nn.Module, images: Tensor, targets: Tensor, recipe: Recipe, *, seed: int = 0,
        augment_mask: Tensor | None = None, loss_fn: LossFn | None = None, extra_loss: ExtraLoss | None = None,
        after_step: Callable[[nn.Module], None] | None = None,
        callback: Callable[[int, nn.Module], None] | None = None,
        progress: bool = True, desc: str = "train") -> nn.Module:
    """Train ``model`` in place on ``images`` (uint8 NCHW) and ``targets`` following ``recipe``: the one
    training loop of the package (every method, the original and Retrain go through it).

    Args:
        model: the network; trained in place on its own device, and returned.
        images: uint8 images ``(N, C, H, W)``, normalised by the model itself.
        targets: class indices ``(N,)`` or per-class probabilities ``(N, K)`` (soft labels).
        recipe: optimiser, learning rate, schedule, epochs, batch size and augmentation.
        seed: the batch order and augmentation draws (the initialisation is the model's).
        augment_mask: the samples that get the recipe's augmentation (default: all); NatMU leaves its
            blends unaugmented with it, as the official code does.
        loss_fn: ``loss_fn(logits, batch_targets)`` replaces the cross-entropy (GA negates it,
            BadTeacher distils).
        extra_loss: ``extra_loss(model, step, total)`` is added to every step's loss, in the same
            autocast region, for terms that are not a function of the batch's logits: NegGrad+ adds the
            ascent on a forget batch of its own, ℓ1-sparse its decaying weight penalty (``step`` counts
            from 0 to ``total - 1``; the hook gets the model itself, never its compiled forward).
        after_step: runs after each optimiser step (SalUn restores its frozen weights there).
        callback: ``callback(epoch, model)`` after each epoch (for curves).
        progress, desc: the progress bar and its label.

    Raises ``FloatingPointError`` if the loss diverges.

    Example:
        >>> import torch, natmu_lite as nl
        >>> x = torch.randint(0, 256, (64, 1, 12, 12), dtype=torch.uint8)
        >>> y = torch.randint(0, 2, (64,))
        >>> model = nl.build_model("small_cnn", num_classes=2, in_channels=1, image_size=12, seed=0)
        >>> model = fit(model, x, y, Recipe("sgd", lr=0.05, epochs=2, batch_size=32), progress=False)
        >>> predict(model, x).shape
        torch.Size([64, 2])
    """
    if len(images) != len(targets):
        raise ValueError(f"{len(images)} images but {len(targets)} targets")
    if len(images) == 0:
        raise ValueError("cannot train on an empty set")
    device = next(model.parameters()).device
    images, targets = images.to(device), targets.to(device)
    do_augment = recipe.crop_padding > 0 or recipe.flip
    if do_augment and augment_mask is not None:
        augment_mask = augment_mask.to(device)
    model = model.to(memory_format=torch.channels_last)  # faster on GPUs and (measured, 1.5x) on CPUs
    forward = torch.compile(model, mode=recipe.compile, dynamic=False) if recipe.compile else model
    g = torch.Generator(device).manual_seed(seed)
    steps_per_epoch = math.ceil(len(images) / recipe.batch_size)
    total, warmup = recipe.epochs * steps_per_epoch, round(recipe.warmup_epochs * steps_per_epoch)
    opt = make_optimizer(model, recipe)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_multiplier(recipe.schedule, s, total, warmup))
    arithmetic = precision(device, recipe.bf16)
    scaler = grad_scaler(device, arithmetic, desc)
    loss_fn = loss_fn or F.cross_entropy
    model.train()
    bar = tqdm(range(recipe.epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        order = torch.randperm(len(images), device=device, generator=g)
        loss_sum = torch.zeros((), device=device)
        for idx in order.split(recipe.batch_size):
            x = images[idx]
            if do_augment:
                aug = augment(x, recipe.crop_padding, recipe.flip, g)
                x = aug if augment_mask is None else torch.where(augment_mask[idx, None, None, None], aug, x)
            if recipe.compile:
                torch.compiler.cudagraph_mark_step_begin()  # a new step for CUDA-graph trees
            with autocast(device, arithmetic):
                loss = loss_fn(forward(to_input(x)), targets[idx])
                if extra_loss is not None:
                    loss = loss + extra_loss(model, sched.last_epoch, total)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)  # opt.step(), unless fp16 gradients overflowed (then the scale shrinks)
            scaler.update()
            sched.step()
            if after_step is not None:
                after_step(model)
            loss_sum += loss.detach() * len(idx)
        epoch_loss = (loss_sum / len(images)).item()
        if not math.isfinite(epoch_loss):
            raise FloatingPointError(f"{desc}: the loss diverged ({epoch_loss}) in epoch {epoch + 1}; "
                                     "lower the learning rate")
        bar.set_postfix(loss=f"{epoch_loss:.3f}")
        if callback is not None:
            callback(epoch, model)
    return model


def predict(model: nn.Module, images: Tensor, batch_size: int | None = None) -> Tensor:
    """Logits (float32, on the CPU) of ``images`` in eval mode; the model's mode is restored.

    The model is put in channels_last (as in ``fit``: measured 1.9x faster on the CPU) before
    inference mode, whose tensors could not be trained or differentiated afterwards. Batches default
    to 2048 on CUDA and 256 on the CPU (larger CPU batches fall out of cache: measured 2.4x slower at
    1024 for the small CNN)."""
    return _predict(model.to(memory_format=torch.channels_last), images, batch_size)


@torch.inference_mode()
def _predict(model: nn.Module, images: Tensor, batch_size: int | None) -> Tensor:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    arithmetic = precision(device)
    out = []
    for x in images.split(batch_size or (2048 if device.type == "cuda" else 256)):
        with autocast(device, arithmetic):
            out.append(model(to_input(x.to(device, non_blocking=True))).float())
    model.train(was_training)
    return torch.cat(out).cpu() if out else torch.empty(0)


def train_on(model: nn.Module, data: Dataset, indices: Tensor | None, recipe: Recipe, *, seed: int = 0,
             callback: Callable | None = None, progress: bool = True, desc: str = "train") -> nn.Module:
    """Train ``model`` in place on the training images at ``indices`` (all when None)."""
    x, y = (data.train_x, data.train_y) if indices is None else (data.train_x[indices], data.train_y[indices])
    return fit(model, x, y, recipe, seed=seed, callback=callback, progress=progress, desc=desc)


def train_original(data: Dataset, model_name: str, recipe: Recipe, *, seed: int = 0, device=None,
                   callback: Callable | None = None, progress: bool = True) -> nn.Module:
    """The original model: initialised with ``seed`` and trained on the whole training set."""
    model = model_for(model_name, data, seed).to(device or default_device())
    return train_on(model, data, None, recipe, seed=seed, callback=callback, progress=progress, desc="original")
