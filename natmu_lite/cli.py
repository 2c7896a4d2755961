"""The ``natmu-lite`` command."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import torch

from .bench import SETTINGS, get_setting, load_setting_data, make_scenario_split, run_method
from .data import LOADERS, load_dataset
from .methods import METHODS
from .methods.retrain import train_original
from .metrics import avg_gap, evaluate


def format_table(rows: dict[str, dict[str, float]], seconds: dict[str, float]) -> str:
    """One line per model: the paper's metrics, RetainAcc (train accuracy on D_r), AvgGap to Retrain."""
    keys = list(next(iter(rows.values())))
    head = f"{'model':<11}" + "".join(f"{k:>10}" for k in [*keys, "AvgGap"]) + f"{'time':>9}"
    lines = [head, "-" * len(head)]
    for name, m in rows.items():
        gap = avg_gap(m, rows["retrain"])
        lines.append(f"{name:<11}" + "".join(f"{v:>10.2f}" for v in [*(m[k] for k in keys), gap])
                     + f"{seconds[name]:>8.1f}s")
    return "\n".join(lines)


def demo(args: argparse.Namespace) -> int:
    """Original, Retrain and NatMU (plus any --methods) on one scenario: the package in one minute."""
    setting = get_setting(args.setting)
    if args.train_size or args.epochs:  # a quicker, smaller run of the same setting
        setting = replace(setting, train_size=args.train_size or setting.train_size,
                          train=setting.train.with_(epochs=args.epochs or setting.train.epochs))
    data = load_setting_data(setting)
    split = make_scenario_split(setting, data, args.scenario, seed=args.seed)
    print(f"{setting.name}: {data}\n{split}", flush=True)
    start = time.perf_counter()
    original = train_original(data, setting.model, setting.train, seed=args.seed, progress=not args.quiet)
    rows, seconds = {"original": evaluate(original, data, split)}, {"original": time.perf_counter() - start}
    for method in ["retrain", "natmu", *args.methods]:
        run = run_method(method, original, data, split, setting, seed=args.seed, progress=not args.quiet)
        rows[method], seconds[method] = run.metrics, run.seconds
    print(format_table(rows, seconds))
    return 0


def fetch(args: argparse.Namespace) -> int:
    """Find (or download) a dataset and say where it came from."""
    data = load_dataset(args.dataset)
    print(f"{data}: ready")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="natmu-lite", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train original and retrained models, run NatMU, print RA/FA/MIA")
    p.add_argument("--setting", default="default", choices=sorted(SETTINGS))
    p.add_argument("--scenario", default="random-1%")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="*", default=[], choices=sorted(set(METHODS) - {"retrain", "natmu"}),
                   help="more methods to run beside Retrain and NatMU")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--train-size", type=int, default=None, help="override the setting's training-subset size")
    p.add_argument("--epochs", type=int, default=None, help="override the original/retrain epochs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=demo)
    p = sub.add_parser("fetch", help="find or download a dataset (Fashion-MNIST by default)")
    p.add_argument("dataset", nargs="?", default="fashion-mnist", choices=sorted(LOADERS))
    p.set_defaults(func=fetch)
    args = parser.parse_args(argv)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"natmu-lite: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
