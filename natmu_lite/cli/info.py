"""The commands that run nothing: ``settings`` (the named settings) and ``fetch`` (a dataset, found or
downloaded)."""

from __future__ import annotations

import argparse

from ..datasets import LOADERS, load_dataset
from ..settings import SETTINGS


def add_settings_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("settings", help="list the named settings: the offline default and the paper's")
    p.set_defaults(func=run_settings)
    sub.add_parser("presets").set_defaults(func=run_settings)  # the old spelling, for one release (not in --help)


def run_settings(args: argparse.Namespace) -> int:
    for s in SETTINGS.values():
        size = f", {s.train_size} train images" if s.train_size else ""
        print(f"{s.name:<22} {s.dataset} + {s.model}{size}; scenarios: {', '.join(s.scenarios)}")
    return 0


def add_fetch_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fetch", help="find or download a dataset (Fashion-MNIST by default)")
    p.add_argument("dataset", nargs="?", default="fashion-mnist", choices=sorted(LOADERS))
    p.set_defaults(func=run_fetch)


def run_fetch(args: argparse.Namespace) -> int:
    """Find (or download) a dataset and say where it came from."""
    data = load_dataset(args.dataset)
    print(f"{data}: ready")
    return 0
