"""The commands that run methods and print the paper's table: ``demo`` (one scenario, a minute), ``bench``
(a setting's grid, resumable) and ``table`` (a results file, printed)."""

from __future__ import annotations

import argparse
import time

import pandas as pd

from ..grid import check_output, load_results, run_grid
from ..methods import METHODS
from ..metrics import evaluate
from ..runs import run_method
from ..setting import check_grid, load_setting_data, make_scenario_split
from ..settings import get_setting
from ..tables import format_table, paper_table, to_latex, to_markdown, to_text
from ..train import train_original
from .options import (
    NON_NEGATIVE,
    POSITIVE,
    chosen_setting,
    reduced,
    setting_choice,
    setting_options,
    size_options,
    test_size_option,
)


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train original and retrained models, run NatMU, print RA/FA/MIA")
    setting_choice(p)
    p.add_argument("--scenario", default="random-1%")
    p.add_argument("--seed", type=NON_NEGATIVE, default=0)
    others = sorted(set(METHODS) - {"retrain", "natmu"})
    p.add_argument("--methods", nargs="*", default=[], choices=others, help="more methods beside Retrain and NatMU")
    test_size_option(p)
    size_options(p)
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Original, Retrain and NatMU (plus any --methods) on one scenario: the package in one minute."""
    setting = reduced(get_setting(args.setting), args)
    check_grid(setting, [args.scenario], ["retrain", "natmu", *args.methods])
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


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a setting's scenario x method x seed grid and print the paper's table")
    setting_options(p)
    p.add_argument("--scenarios", nargs="+", default=None, help="default: all of the setting's")
    p.add_argument("--methods", nargs="+", default=None, choices=sorted(METHODS), help="default: all")
    p.add_argument("--seeds", type=POSITIVE, default=1, help="seeds 0..N-1")
    p.add_argument("--out", default="results.json", help="results file; finished runs in it are skipped")
    p.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    """Run a setting's grid (resumable through --out) and print the paper's table."""
    setting = chosen_setting(args)
    check_output(args.out, "--out")  # run_grid checks it too, but here the message names the option
    start = time.perf_counter()
    results = run_grid(setting, args.scenarios, args.methods, list(range(args.seeds)), args.out,
                       progress=not args.quiet)
    print(to_text(paper_table(results)))
    print(f"\n{len(results)} runs; wall time {time.perf_counter() - start:.1f}s; results in {args.out}")
    return 0


def add_table_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("table", help="print the paper's table of a results file")
    p.add_argument("results")
    p.add_argument("--format", default="text", choices=["text", "markdown", "latex"])
    setting_choice(p, default=None, choices=None, help="only this setting's rows")
    p.add_argument("--config", default=None, help="only the runs of this configuration (a row's config hash)")
    p.set_defaults(func=run_table)


def run_table(args: argparse.Namespace) -> int:
    """Print a results file as the paper's table; --setting and --config choose rows, and a run that is
    there more than once (from several configurations) is an error, never a mean over both."""
    rows = load_results(args.results)
    if not rows:
        raise ValueError(f"{args.results}: no results (missing or empty file)")
    frame = pd.DataFrame(rows)
    for column, value, flag in (("setting", args.setting, "--setting"), ("config", args.config, "--config")):
        if value is not None:
            held = sorted(set(frame[column].dropna())) if column in frame else []
            if value not in held:
                raise ValueError(f"{flag} {value!r}: {args.results} holds no runs of it; it holds: "
                                 f"{', '.join(held) or 'none'}")
            frame = frame[frame[column] == value]
    twice = frame[frame.duplicated(["setting", "scenario", "target", "method", "seed"], keep=False)]
    if len(twice):
        r = twice.iloc[0]
        configs = sorted(set(twice["config"].dropna())) if "config" in twice else []
        raise ValueError(f"{args.results} holds {r.setting} {r.scenario} {r.method} seed {r.seed} more than once "
                         f"(configurations: {', '.join(configs) or 'not recorded'}); choose one with --config")
    formatted = paper_table(frame)
    print({"markdown": to_markdown, "latex": to_latex, "text": to_text}[args.format](formatted))
    return 0
