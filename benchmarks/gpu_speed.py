"""GPU speed of the paper settings, measured side by side in one run.

1. Train-step throughput (images/s) of ResNet18 and VGG16-BN at 32x32 and ResNet34 at 64x64 on random
   uint8 data: a DataLoader + per-sample PIL transforms pipeline with workers against natmu_lite's
   on-device path (see ``trainer_speed.py``), and their ratio.
2. One 5-epoch NatMU unlearning run on CIFAR-100-shaped data with ResNet18 (1% forgetting).
3. One 100-epoch ResNet18 original training on 50k CIFAR images, extrapolated from measured epochs.
4. LRP relevance maps per second (ResNet18, 32x32, composite rules, batch 64).
5. bf16 against fp32: the same NatMU job (ResNet18 on the Fashion-MNIST default, random 10%) trained
   in both precisions with three seeds; RA/FA must agree within the seed spread.
6. (``--steps ... 6``) the top kernels of 30 ResNet18 training steps.
7. Steps 2 and 3 with ``torch.compile`` (``Recipe(compile=mode)``) for each ``--compile-modes``.
8. (``--steps ... 8``) every registered method (or ``--methods``), eager and compiled, on the
   Fashion-MNIST default with ResNet18: the compiled path runs each method and changes nothing but the time.
9. (``--steps ... 9``) the U-LiRA audit of the default setting on this device, with ``--audit-workers``
   processes: NatMU and Finetune with the package's recipe (the original and Retrain models as
   references), or with ``--audit-tuned-by default`` every method as the protocol tuned it. Its wall
   time, and each method's verdict next to the committed CPU audit's.

    python benchmarks/gpu_speed.py --smoke      # on the CPU, tiny sizes: checks that it runs
    python benchmarks/gpu_speed.py              # on a GPU (prepare it here, run it there once)
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import torch
from trainer_speed import measure, sync

from natmu_lite import audit, results
from natmu_lite.datasets import Dataset
from natmu_lite.explain import lrp
from natmu_lite.methods import METHODS, REFERENCE_METHODS
from natmu_lite.metrics import evaluate
from natmu_lite.models import build_model
from natmu_lite.protocol import tuned_params
from natmu_lite.runs import experiment
from natmu_lite.setting import Setting, resized
from natmu_lite.settings import get_setting
from natmu_lite.splits import make_split
from natmu_lite.train import Recipe, default_device, fit
from natmu_lite.ulira import privacy_summary

LABELS = {"resnet18": "ResNet18 32x32", "vgg16_bn": "VGG16-BN 32x32", "resnet34": "ResNet34 64x64"}


def fake_cifar(n: int, classes: int = 100) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % classes
    return Dataset("random-cifar", x, y, x[:1000], y[:1000], [f"c{i}" for i in range(classes)], (0.5,) * 3, (0.25,) * 3)


def unlearning_seconds(n: int, epochs: int, ratio: float, classes: int, device, compile: str = "") -> float:
    """Wall time of NatMU (official recipe: AdamW, cosine, bs 128, crop+flip on D_r) on random data."""
    data = fake_cifar(n, classes)
    split = make_split(data, "random", ratio=ratio, seed=0)
    original = build_model("resnet18", classes, 3, 32, data.mean, data.std).to(device)
    recipe = Recipe("adamw", lr=1.1e-3, weight_decay=5e-4, epochs=epochs, batch_size=128, crop_padding=4, flip=True,
                    compile=compile)
    METHODS["natmu"](original, data, split, recipe.with_(epochs=1), progress=False)  # warm-up
    sync(device)
    start = time.perf_counter()
    METHODS["natmu"](original, data, split, recipe, delta=-0.03, progress=False)
    sync(device)
    return time.perf_counter() - start


def original_training_seconds(n: int, measured_epochs: int, device, compile: str = "") -> tuple[float, float]:
    """Seconds per epoch of the official original recipe (SGD 0.1, bs 128, crop+flip), times 100;
    and the seconds of the warm-up epoch (with ``compile``, that is where compilation happens)."""
    data = fake_cifar(n)
    model = build_model("resnet18", 100, 3, 32, data.mean, data.std).to(device)
    recipe = Recipe("sgd", lr=0.1, weight_decay=5e-4, epochs=measured_epochs, batch_size=128, schedule="step",
                    warmup_epochs=0, crop_padding=4, flip=True, compile=compile)
    start = time.perf_counter()
    fit(model, data.train_x, data.train_y, recipe.with_(epochs=1), progress=False)  # warm-up
    sync(device)
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    fit(model, data.train_x, data.train_y, recipe, progress=False)
    sync(device)
    return (time.perf_counter() - start) / measured_epochs * 100, warmup


def lrp_maps_per_second(n: int, device) -> float:
    """Composite-rule LRP maps of a ResNet18 at 32x32, batches of 64 (after one warm-up batch)."""
    data = fake_cifar(max(n, 64), classes=10)
    model = build_model("resnet18", 10, 3, 32, data.mean, data.std).to(device).eval()
    lrp(model, data.train_x[:64], data.train_y[:64])
    sync(device)
    start = time.perf_counter()
    lrp(model, data.train_x[:n], data.train_y[:n])
    sync(device)
    return n / (time.perf_counter() - start)


def smoke_sized(setting: Setting) -> Setting:
    """``setting`` tiny and one epoch long, for ``--smoke``."""
    return resized(setting, train_size=600, test_size=200, epochs=1, unlearn_epochs=1)


def fashion_setting(model: str, smoke: bool) -> Setting:
    """The Fashion-MNIST default with another network (tiny and one epoch for ``--smoke``)."""
    setting = replace(get_setting("default"), name=f"default-{model}", model=model)
    return smoke_sized(setting) if smoke else setting


def precision_agreement(model: str, seeds: int, smoke: bool) -> None:
    """NatMU on one cached original/retrained pair of the Fashion-MNIST default (with ``model``),
    trained in bf16 and in fp32 with the same seeds."""
    exp = experiment(fashion_setting(model, smoke), "random-10%", progress=False)
    ref = evaluate(exp.retrained, exp.data, exp.split)
    print(f"   {'Retrain':<11}" + "  ".join(f"{k} {ref[k]:6.2f}      " for k in ("RA", "FA", "MIA")))
    for bf16 in (True, False):
        runs = [exp.run("natmu", seed=s, recipe_changes={"bf16": bf16}, progress=False).metrics for s in range(seeds)]
        cells = []
        for k in ("RA", "FA", "MIA"):
            values = torch.tensor([r[k] for r in runs])
            cells.append(f"{k} {values.mean():6.2f}±{values.std():4.2f}")
        print(f"   {'NatMU ' + ('bf16' if bf16 else 'fp32'):<11}" + "  ".join(cells))


def methods_under_compile(mode: str, smoke: bool, methods: list[str]) -> None:
    """Each method, eager and compiled, on the Fashion-MNIST default with ResNet18 (1%)."""
    exp = experiment(fashion_setting("resnet18", smoke), "random-1%", progress=False)
    for method in methods:
        cells = []
        for compile in ("", mode):
            start = time.perf_counter()
            m = exp.run(method, recipe_changes={"compile": compile}, progress=False).metrics
            cells.append(f"RA {m['RA']:5.2f} FA {m['FA']:5.1f} MIA {m['MIA']:5.1f} {time.perf_counter() - start:5.1f}s")
        print(f"   {method:<11} eager: {cells[0]}   {mode}: {cells[1]}", flush=True)


def audit_on_device(models: int, workers: int, smoke: bool, out: str | None, tuned_by: str | None) -> None:
    """The U-LiRA audit of the default setting (tiny for ``--smoke``) on this device: its wall time, then
    AvgGap, entropy MIA and U-LiRA of each method beside the committed CPU audit's. With ``tuned_by``,
    every method tuned by that protocol (as ``results/ulira-default.json``); without, NatMU and Finetune
    with the package's recipe (as ``results/ulira-default-untuned.json``), with the original and Retrain
    models of the first. Writes the audits to ``out`` (JSON) when given."""
    setting = smoke_sized(get_setting("default")) if smoke else get_setting("default")
    committed = results.load_audit("ulira-default")["audits"]
    if tuned_by:
        methods = [a["method"] for a in committed]
        params = tuned_params(results.load_protocol(tuned_by), "default", audit.CANDIDATE_FRACTION)
    else:
        committed = [a for a in committed if a["method"] in REFERENCE_METHODS]
        committed += results.load_audit("ulira-default-untuned")["audits"]
        methods, params = [a["method"] for a in committed], {}
    start = time.perf_counter()
    audits = audit.ulira_many(setting, {m: params.get(m) for m in methods}, models, workers=workers,
                              progress=False)
    seconds = time.perf_counter() - start
    print(f"   {len(methods)} audits of {models} models, {workers} workers: {seconds / 60:.1f} min wall", flush=True)
    if out:
        audit.save(audits, out, params, audit.provenance("python " + " ".join(sys.argv), seconds, audits))
    here = privacy_summary([a.to_dict() for a in audits]).set_index("method")
    cpu = privacy_summary(committed).set_index("method")
    print(f"   {'method':<12}{'AvgGap':>12}{'entropy MIA':>16}{'U-LiRA (%)':>20}   (this device | committed CPU)")
    for m in here.index:
        h, c = here.loc[m], cpu.loc[m]
        print(f"   {m:<12}{h.AvgGap:6.2f} |{c.AvgGap:5.2f}{h.MIA:9.1f} |{c.MIA:5.1f}"
              f"{h.ULiRA:9.1f}±{h.ULiRA_se:3.1f} |{c.ULiRA:5.1f}", flush=True)
    rho = here.ULiRA.drop("retrain").rank().corr(cpu.ULiRA.drop("retrain").rank())
    worst = (here.ULiRA - cpu.ULiRA).abs()
    print(f"   largest U-LiRA difference {worst.max():.2f} points ({worst.idxmax()}); Spearman of the methods' "
          f"U-LiRA ranks, this device against the CPU: {rho:+.2f}")


def profile_steps(device, steps: int) -> None:
    """Where a ResNet18 training step spends its time (for the note when a target is missed)."""
    data = fake_cifar(128 * steps, classes=10)
    model = build_model("resnet18", 10, 3, 32, data.mean, data.std).to(device)
    recipe = Recipe("sgd", lr=0.01, epochs=1, schedule="constant", crop_padding=4, flip=True)
    fit(model, data.train_x, data.train_y, recipe, progress=False)  # warm-up
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA]
                                                          if device.type == "cuda" else [])
    with torch.profiler.profile(activities=activities) as prof:
        fit(model, data.train_x, data.train_y, recipe, progress=False)
        sync(device)
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=15, max_name_column_width=50))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, to check on the CPU that it runs")
    p.add_argument("--workers", type=int, default=8, help="DataLoader workers of the conventional pipeline")
    p.add_argument("--precision-model", default="resnet18", help="network of the bf16/fp32 check")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 3, 4, 5, 7], help="which measurements (6: profile)")
    p.add_argument("--models", nargs="+", default=list(LABELS), choices=list(LABELS), help="models of step 1")
    p.add_argument("--compile-modes", nargs="+", default=["reduce-overhead", "default"])
    p.add_argument("--methods", nargs="+", default=sorted(set(METHODS) - {"retrain"}),  # Retrain is the
                   choices=sorted(METHODS), help="methods of step 8")  # trainer itself, timed in steps 3, 7
    p.add_argument("--audit-models", type=int, default=16, help="models of the U-LiRA audit (step 9)")
    p.add_argument("--audit-workers", type=int, default=8, help="processes running the audit's models (step 9)")
    p.add_argument("--audit-out", default=None, help="write step 9's audits here (JSON)")
    p.add_argument("--audit-tuned-by", default=None, metavar="PROTOCOL",
                   help="step 9 audits every method as that protocol tuned it (default: NatMU and Finetune untuned)")
    args = p.parse_args()
    device = default_device()
    n, epochs, train_n, train_epochs = (64, 1, 128, 1) if args.smoke else (20_000, 2, 50_000, 3)
    # unlearning: the real CIFAR-100 1% request on a GPU; 10% of 300 images of 10 classes for the smoke run
    unlearn = dict(n=300, epochs=1, ratio=0.1, classes=10) if args.smoke else dict(n=50_000, epochs=5, ratio=0.01,
                                                                                   classes=100)
    card = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{time.strftime('%Y-%m-%d')} on {card}, torch {torch.__version__}")

    if 1 in args.steps:
        print(f"\n1. training throughput, {n} random images, batch 128, {args.workers} DataLoader workers")
        print(f"{'model':<22}{'DataLoader+PIL':>16}{'natmu_lite':>14}{'ratio':>8}  (images/s)")
        for name in args.models:
            conv, ours = measure(name, n, epochs, 128, args.workers, device)
            print(f"{LABELS[name]:<22}{conv * n:>16,.0f}{ours * n:>14,.0f}{ours / conv:>7.1f}x", flush=True)
    unlearn_text = (f"NatMU, ResNet18, {unlearn['epochs']} epoch(s) on {unlearn['n']} images of {unlearn['classes']} "
                    f"classes, {unlearn['ratio']:.0%} forgotten")
    train_text = f"ResNet18 original training, 100 epochs on {train_n} images (from {train_epochs} measured)"
    if 2 in args.steps:
        print(f"\n2. {unlearn_text}: {unlearning_seconds(device=device, **unlearn):.1f} s")
    if 3 in args.steps:
        secs, _ = original_training_seconds(train_n, train_epochs, device)
        print(f"3. {train_text}: {secs / 60:.1f} min", flush=True)
    if 4 in args.steps:
        maps = lrp_maps_per_second(64 if args.smoke else 2048, device)
        print(f"4. LRP maps, ResNet18 32x32, composite rules: {maps:,.0f} maps/s", flush=True)
    if 5 in args.steps:
        print(f"5. bf16 vs fp32, NatMU with {args.precision_model} on the Fashion-MNIST default, random 10%, "
              f"{args.seeds} seeds:")
        precision_agreement(args.precision_model, args.seeds, args.smoke)
    if 6 in args.steps:
        print("\n6. profile of 30 ResNet18 training steps (natmu_lite path), top kernels by device time:")
        profile_steps(device, 3 if args.smoke else 30)
    if 8 in args.steps:
        print(f"\n8. every method eager and with compile={args.compile_modes[0]!r} (ResNet18, Fashion-MNIST, 1%):")
        methods_under_compile(args.compile_modes[0], args.smoke, args.methods)
    if 9 in args.steps:
        print(f"\n9. U-LiRA audit, default setting, {args.audit_models} models:")
        audit_on_device(args.audit_models, args.audit_workers, args.smoke, args.audit_out,
                        args.audit_tuned_by)
    if 7 in args.steps:  # last: compilation time is the least predictable part
        print("\n7. steps 2 and 3 with torch.compile (the first epoch, which compiles, is not timed):")
        for mode in args.compile_modes:
            train, warmup = original_training_seconds(train_n, train_epochs, device, compile=mode)
            unlearn_secs = unlearning_seconds(device=device, compile=mode, **unlearn)
            print(f"   mode {mode!r}: training {train / 60:.1f} min = {train_n * 100 / train:,.0f} img/s "
                  f"(first epoch {warmup:.0f} s); "
                  f"unlearning {unlearn_secs:.1f} s", flush=True)

if __name__ == "__main__":
    main()
