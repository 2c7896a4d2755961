"""The commands that tune, in an Optuna storage: ``tune`` (one study), ``transfer`` (a study's best
parameters on another scenario) and ``protocol`` (the fair benchmark). Optuna is imported only when one
of them runs: it takes a second or two to import."""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from .. import setting_file
from ..grid import check_output
from ..setting import check_grid
from ..tables import paper_table, to_text
from .options import (
    NON_NEGATIVE,
    POSITIVE,
    chosen_setting,
    old_spelling,
    setting_options,
    size_options,
    test_size_option,
    tuned_method_option,
    unlearn_epochs_option,
)


def add_tune_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="hyperparameter search with Optuna (shared storage: many workers)")
    setting_options(p)
    tuned_method_option(p)
    p.add_argument("--scenario", default=None, help="default: the setting's first")
    p.add_argument("--trials", type=POSITIVE, default=20)
    p.add_argument("--storage", default=None, help="any Optuna storage URL, e.g. PostgreSQL (default: the SQLite "
                   "file natmu-tune.db here)")
    p.add_argument("--study", default=None, help="default: <setting>/<scenario>/<method>")
    p.add_argument("--seed", type=NON_NEGATIVE, default=0, help="the seed of Retrain and of each trial's run")
    p.add_argument("--no-prune", action="store_true", help="no per-epoch pruning")
    p.add_argument("--save-setting", default=None, help="add the best parameters to this setting file")
    old_spelling(p, "--save-preset", "--save-setting")
    p.set_defaults(func=run_tune)


def run_tune(args: argparse.Namespace) -> int:
    """Add trials to the study of (setting, scenario, method); report and optionally save the best."""
    from ..tune import DEFAULT_STORAGE, check_storage, tune

    setting = chosen_setting(args)
    scenario = args.scenario or next(iter(setting.scenarios))
    check_grid(setting, [scenario], [args.method])
    storage = args.storage or DEFAULT_STORAGE
    check_storage(storage, what="--storage")
    if args.save_setting:
        check_output(args.save_setting, "--save-setting")
        setting_file.check_save(args.save_setting, setting)
    study = tune(setting, scenario, args.method, args.trials, storage, args.study, seed=args.seed,
                 prune=not args.no_prune)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    print(f"study {study.study_name}: {len(study.trials)} trials ({len(done)} complete)")
    print(f"best AvgGap {study.best_value:.2f} with {json.dumps(study.best_params)}")
    if args.save_setting:
        setting_file.save(args.save_setting, setting, args.method, study.best_params)
        print(f"saved to {args.save_setting}")
    return 0


def add_transfer_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transfer", help="evaluate one scenario's best parameters on another (Fig. 4)")
    setting_options(p)
    tuned_method_option(p)
    p.add_argument("--from-scenario", required=True)
    p.add_argument("--to-scenario", required=True)
    p.add_argument("--storage", default=None, help="the storage of the study (default: natmu-tune.db here)")
    p.add_argument("--study", default=None, help="default: <setting>/<from-scenario>/<method>")
    p.add_argument("--seeds", type=POSITIVE, default=1)
    p.add_argument("--out", default="results.json")
    p.set_defaults(func=run_transfer)


def run_transfer(args: argparse.Namespace) -> int:
    """Evaluate the best parameters of one scenario's study on another scenario (Fig. 4)."""
    from ..tune import DEFAULT_STORAGE, check_study, study_name, transfer

    setting = chosen_setting(args)
    check_grid(setting, [args.from_scenario, args.to_scenario], [args.method])
    check_output(args.out, "--out")
    storage = args.storage or DEFAULT_STORAGE
    check_study(storage, args.study or study_name(setting, args.from_scenario, args.method))
    results = transfer(setting, args.from_scenario, args.to_scenario, args.method, storage,
                       list(range(args.seeds)), args.out, args.study, progress=not args.quiet)
    print(to_text(paper_table(results)))
    return 0


def add_protocol_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("protocol", help="the fair benchmark: equal-budget tuning on held-out requests, 5 seeds")
    p.add_argument("name", nargs="?", default="default", help="the protocol (default: the offline default)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite:///results/<name>.db)")
    p.add_argument("--out", default=None, help="the exported results (default: results/<name>.json)")
    p.add_argument("--trials", type=POSITIVE, default=24, help="completed tuning trials per study, every method alike")
    p.add_argument("--seeds", type=POSITIVE, default=5, help="evaluation seeds 0..N-1")
    p.add_argument("--workers", type=POSITIVE, default=1, help="worker processes here (1 torch thread each when >1)")
    p.add_argument("--phase", default="all", choices=["all", "tune", "evaluate"])
    p.add_argument("--export-only", action="store_true", help="only export what the storage holds")
    p.add_argument("--partial", action="store_true", help="export even if runs are missing (whole seeds only)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    test_size_option(p)
    unlearn_epochs_option(p)
    size_options(p)
    p.set_defaults(func=run_protocol)


def run_protocol(args: argparse.Namespace) -> int:
    """The fair benchmark: tune every method on held-out requests with one budget, evaluate over
    seeds, export with provenance. Resumable; ``--workers`` processes here, more machines through a
    shared ``--storage``."""
    from .. import export
    from ..protocol import Protocol, default_storage
    from ..tune import check_storage

    storage = args.storage or default_storage(args.name)
    out = args.out or f"results/{args.name}.json"
    sizes = dict(train_size=args.train_size, test_size=args.test_size, epochs=args.epochs,
                 unlearn_epochs=args.unlearn_epochs)
    proto = Protocol(args.name, storage, args.trials, tuple(range(args.seeds)), sizes)
    check_storage(storage, what="--storage", make_folder=True)  # a bad URL or missing driver: refused here
    check_output(out, "--out", make_folder=True)
    if args.worker:
        proto.work(args.phase)
        return 0
    command = [a for a in args.argv if a != "--quiet"]  # as given, also to main() from Python
    command = command[command.index("protocol"):]
    start = time.perf_counter()
    if not args.export_only:
        proto.launch(args.workers, command, args.phase, progress=not args.quiet)
    if args.phase == "tune":
        summary = pd.DataFrame(export.tuning_summary(proto))
        print(summary[["setting", "scenario", "method", "default_avg_gap", "best_avg_gap", "best_trial"]].round(2)
              .to_string(index=False))
        return 0
    producing = " ".join(["natmu-lite", *(a for a in command if a not in ("--export-only", "--partial"))])
    doc = export.export(proto, out, command=producing, partial=args.partial,
                        exported_by=" ".join(["natmu-lite", *command]))
    print(to_text(paper_table(pd.DataFrame([r for r in doc["runs"] if r["variant"] in ("tuned", "reference")]))))
    print(f"\n{len(doc['runs'])} runs in {out}; this command's wall time {time.perf_counter() - start:.0f}s")
    return 0
