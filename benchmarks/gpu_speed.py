"""GPU speed of the paper presets, measured side by side in one run (issue 8's checks).

1. Train-step throughput (images/s) of ResNet18 and VGG16-BN at 32x32 and ResNet34 at 64x64 on random
   uint8 data: a DataLoader + per-sample PIL transforms pipeline with workers against natmu_lite's
   on-device path (see ``trainer_speed.py``), and their ratio.
2. One 5-epoch NatMU unlearning run on CIFAR-100-shaped data with ResNet18 (1% forgetting).
3. One 100-epoch ResNet18 original training on 50k CIFAR images, extrapolated from measured epochs.

    python benchmarks/gpu_speed.py --smoke      # on the CPU, tiny sizes: checks that it runs
    python benchmarks/gpu_speed.py              # on a GPU (prepare it here, run it there once)

LRP maps per second are not measured yet: they wait for the LRP module of the book's chapter 5.
"""

from __future__ import annotations

import argparse
import time

import torch
from trainer_speed import measure, sync

from natmu_lite.data import Dataset, make_split
from natmu_lite.methods import METHODS
from natmu_lite.models import build_model
from natmu_lite.train import Recipe, default_device, fit


def fake_cifar(n: int, classes: int = 100) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % classes
    return Dataset("random-cifar", x, y, x[:1000], y[:1000], [f"c{i}" for i in range(classes)], (0.5,) * 3, (0.25,) * 3)


def unlearning_seconds(n: int, epochs: int, ratio: float, classes: int, device) -> float:
    """Wall time of NatMU (official recipe: AdamW, cosine, bs 128, crop+flip on D_r) on random data."""
    data = fake_cifar(n, classes)
    split = make_split(data, "random", ratio=ratio, seed=0)
    original = build_model("resnet18", classes, 3, 32, data.mean, data.std).to(device)
    recipe = Recipe("adamw", lr=1.1e-3, weight_decay=5e-4, epochs=epochs, batch_size=128, crop_padding=4, flip=True)
    METHODS["natmu"](original, data, split, recipe.with_(epochs=1), progress=False)  # warm-up
    sync(device)
    start = time.perf_counter()
    METHODS["natmu"](original, data, split, recipe, delta=-0.03, progress=False)
    sync(device)
    return time.perf_counter() - start


def original_training_seconds(n: int, measured_epochs: int, device) -> float:
    """Seconds per epoch of the official original recipe (SGD 0.1, bs 128, crop+flip), times 100."""
    data = fake_cifar(n)
    model = build_model("resnet18", 100, 3, 32, data.mean, data.std).to(device)
    recipe = Recipe("sgd", lr=0.1, weight_decay=5e-4, epochs=measured_epochs, batch_size=128, schedule="step",
                    warmup_epochs=0, crop_padding=4, flip=True)
    fit(model, data.train_x, data.train_y, recipe.with_(epochs=1), progress=False)  # warm-up
    sync(device)
    start = time.perf_counter()
    fit(model, data.train_x, data.train_y, recipe, progress=False)
    sync(device)
    return (time.perf_counter() - start) / measured_epochs * 100


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, to check on the CPU that it runs")
    p.add_argument("--workers", type=int, default=8, help="DataLoader workers of the conventional pipeline")
    args = p.parse_args()
    device = default_device()
    n, epochs, train_n, train_epochs = (64, 1, 128, 1) if args.smoke else (20_000, 2, 50_000, 3)
    # unlearning: the real CIFAR-100 1% request on a GPU; 10% of 300 images of 10 classes for the smoke run
    unlearn = dict(n=300, epochs=1, ratio=0.1, classes=10) if args.smoke else dict(n=50_000, epochs=5, ratio=0.01,
                                                                                   classes=100)
    card = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{time.strftime('%Y-%m-%d')} on {card}, torch {torch.__version__}")
    print(f"\n1. training throughput, {n} random images, batch 128, {args.workers} DataLoader workers")
    print(f"{'model':<22}{'DataLoader+PIL':>16}{'natmu_lite':>14}{'ratio':>8}  (images/s)")
    for name, label in [("resnet18", "ResNet18 32x32"), ("vgg16_bn", "VGG16-BN 32x32"), ("resnet34", "ResNet34 64x64")]:
        conv, ours = measure(name, n, epochs, 128, args.workers, device)
        print(f"{label:<22}{conv * n:>16,.0f}{ours * n:>14,.0f}{ours / conv:>7.1f}x", flush=True)
    secs = unlearning_seconds(device=device, **unlearn)
    print(f"\n2. NatMU, ResNet18, {unlearn['epochs']} epoch(s) on {unlearn['n']} images of {unlearn['classes']} "
          f"classes, {unlearn['ratio']:.0%} forgotten: {secs:.1f} s")
    secs = original_training_seconds(train_n, train_epochs, device)
    print(f"3. ResNet18 original training, 100 epochs on {train_n} images (from {train_epochs} measured): "
          f"{secs / 60:.1f} min")


if __name__ == "__main__":
    main()
