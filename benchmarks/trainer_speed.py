"""Trainer throughput: natmu_lite's on-device pipeline against a conventional DataLoader pipeline.

Both train the same network on the same random uint8 images with the same batch size, optimiser
and augmentation (random crop with zero padding + horizontal flip); the conventional side converts
each sample to a PIL image and runs torchvision's per-sample transforms in DataLoader workers, which
is what the official NatMU code does. Prints epochs/s of both and their ratio, measured in one run.

    python benchmarks/trainer_speed.py                 # CPU: small CNN at Fashion-MNIST size
    python benchmarks/trainer_speed.py --smoke         # a few seconds, to check it runs
    python benchmarks/trainer_speed.py --models resnet18 --images 50000   # on a GPU
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from natmu_lite.models import build_model
from natmu_lite.train import Recipe, default_device, fit, make_optimizer

SHAPES = {"small_cnn": (1, 28, 2), "resnet18": (3, 32, 4), "vgg16_bn": (3, 32, 4), "resnet34": (3, 64, 8)}


class PILDataset(torch.utils.data.Dataset):
    """uint8 CHW images served one at a time through PIL and torchvision transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, padding: int):
        self.images, self.labels = images, labels
        size = images.shape[-1]
        self.transform = transforms.Compose([transforms.RandomCrop(size, padding=padding),
                                             transforms.RandomHorizontalFlip(), transforms.ToTensor()])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        arr = self.images[i].permute(1, 2, 0).squeeze(-1).numpy()
        return self.transform(Image.fromarray(arr)), self.labels[i]


def conventional_epoch(model, loader, opt, device) -> None:
    model.train()
    for x, y in loader:
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", torch.bfloat16, enabled=device.type == "cuda"):
            loss = F.cross_entropy(model(x), y.to(device, non_blocking=True))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(name: str, n: int, epochs: int, batch: int, workers: int, device) -> tuple[float, float]:
    c, size, pad = SHAPES[name]
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, c, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    recipe = Recipe("sgd", lr=0.01, epochs=epochs, batch_size=batch, schedule="constant", crop_padding=pad, flip=True)

    model = build_model(name, 10, c, size).to(device).to(memory_format=torch.channels_last)
    loader = DataLoader(PILDataset(images, labels, pad), batch_size=batch, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0, drop_last=False)
    opt = make_optimizer(model, recipe)
    conventional_epoch(model, loader, opt, device)  # warm-up (workers start, kernels load)
    sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        conventional_epoch(model, loader, opt, device)
    sync(device)
    conventional = epochs / (time.perf_counter() - start)

    model = build_model(name, 10, c, size).to(device)
    fit(model, images, labels, recipe.with_(epochs=1), progress=False)  # warm-up
    sync(device)
    start = time.perf_counter()
    fit(model, images, labels, recipe, progress=False)
    sync(device)
    ours = epochs / (time.perf_counter() - start)
    return conventional, ours


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["small_cnn"], choices=sorted(SHAPES))
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, to check that it runs")
    args = p.parse_args()
    if args.smoke:
        args.images, args.epochs = 512, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = default_device()
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; {args.images} images, batch {args.batch_size}, {args.epochs} timed epochs, "
          f"{args.workers} DataLoader workers")
    print(f"{'model':<10}{'DataLoader+PIL':>16}{'natmu_lite':>12}{'ratio':>8}   (epochs/s; img/s)")
    for model in args.models:
        conv, ours = measure(model, args.images, args.epochs, args.batch_size, args.workers, device)
        print(f"{model:<10}{conv:>16.3f}{ours:>12.3f}{ours / conv:>7.2f}x   "
              f"({conv * args.images:,.0f} vs {ours * args.images:,.0f} img/s)", flush=True)


if __name__ == "__main__":
    main()
