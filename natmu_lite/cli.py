"""The ``natmu-lite`` command: demo, bench, table, tune, transfer, protocol, audit, settings, fetch;
handout and grade (the classroom).

The commands parse their arguments, refuse bad ones with a message that names them (exit status 2)
before anything trains, and call the package's functions, the same ones the book and the tests call.
Optuna is imported only by the commands that tune (tune, transfer, protocol, audit --tuned-by): it
takes a second or two to import.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from . import setting_file
from .audit import AUDITED, CANDIDATE_FRACTION, DEFAULT_MODELS, MIN_MODELS, provenance, save, ulira_many
from .classroom import ASSIGNMENTS, check_file
from .classroom.collect import SUFFIXES, find, unpack
from .classroom.grade import Limits, grade_all
from .classroom.gradebook import export, summary, write_feedback, write_gradebook
from .classroom.handout import handout
from .datasets import LOADERS, load_dataset
from .grid import check_output, load_results, run_grid
from .methods import METHODS, SEARCH_SPACES, load_file
from .metrics import evaluate
from .runs import run_method
from .setting import Setting, check_grid, load_setting_data, make_scenario_split, resized
from .settings import SETTINGS, get_setting
from .tables import format_table, paper_table, to_latex, to_markdown, to_text
from .train import train_original


def reduced(setting: Setting, args: argparse.Namespace) -> Setting:
    """The setting with the command line's size overrides (for quick runs and tests)."""
    return resized(setting, args.train_size, getattr(args, "test_size", None), args.epochs,
                   getattr(args, "unlearn_epochs", None), getattr(args, "compile", None))


def demo(args: argparse.Namespace) -> int:
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


def chosen_setting(args: argparse.Namespace) -> Setting:
    """--setting-file (tuned parameters) or --setting, with the size overrides."""
    base = setting_file.load(args.setting_file) if getattr(args, "setting_file", None) else get_setting(args.setting)
    return reduced(base, args)


def bench(args: argparse.Namespace) -> int:
    """Run a setting's grid (resumable through --out) and print the paper's table."""
    setting = chosen_setting(args)
    check_output(args.out, "--out")  # run_grid checks it too, but here the message names the option
    start = time.perf_counter()
    results = run_grid(setting, args.scenarios, args.methods, list(range(args.seeds)), args.out,
                       progress=not args.quiet)
    print(to_text(paper_table(results)))
    print(f"\n{len(results)} runs; wall time {time.perf_counter() - start:.1f}s; results in {args.out}")
    return 0


def table(args: argparse.Namespace) -> int:
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


def tune_cmd(args: argparse.Namespace) -> int:
    """Add trials to the study of (setting, scenario, method); report and optionally save the best."""
    from .tune import DEFAULT_STORAGE, check_storage, tune

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


def transfer_cmd(args: argparse.Namespace) -> int:
    """Evaluate the best parameters of one scenario's study on another scenario (Fig. 4)."""
    from .tune import DEFAULT_STORAGE, check_study, study_name, transfer

    setting = chosen_setting(args)
    check_grid(setting, [args.from_scenario, args.to_scenario], [args.method])
    check_output(args.out, "--out")
    storage = args.storage or DEFAULT_STORAGE
    check_study(storage, args.study or study_name(setting, args.from_scenario, args.method))
    results = transfer(setting, args.from_scenario, args.to_scenario, args.method, storage,
                       list(range(args.seeds)), args.out, args.study, progress=not args.quiet)
    print(to_text(paper_table(results)))
    return 0


def protocol_cmd(args: argparse.Namespace) -> int:
    """The fair benchmark: tune every method on held-out requests with one budget, evaluate over
    seeds, export with provenance. Resumable; ``--workers`` processes here, more machines through a
    shared ``--storage``."""
    from . import export
    from .protocol import Protocol, default_storage
    from .tune import check_storage

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


def audit_cmd(args: argparse.Namespace) -> int:
    """U-LiRA on one or more methods (see natmu_lite.audit): models on random halves of the pool unlearn
    their share of a fixed candidate set; a per-example attack tells unlearned candidates from unseen ones.
    With --tuned-by, each method runs with the parameters an exported protocol's tuned variant used for the
    random request of the candidates' ratio (read off its committed runs, no storage needed)."""
    setting = chosen_setting(args)
    methods = list(AUDITED) if "all" in args.method else list(dict.fromkeys(args.method))
    if args.out:
        check_output(args.out, "--out")
    params = {}
    if args.tuned_by:
        from .protocol import tuned_params
        from .results import load_protocol

        try:
            doc = load_protocol(args.tuned_by)
        except FileNotFoundError as e:
            raise ValueError(f"--tuned-by {args.tuned_by}: {e}") from None
        params = tuned_params(doc, setting.name, args.candidate_fraction)
    start = time.perf_counter()
    audits = ulira_many(setting, {m: params.get(m) for m in methods}, args.models, args.candidate_fraction,
                        workers=args.workers, progress=not args.quiet)  # checks every argument before training
    for result in audits:
        print(result.summary())
    if args.out:
        command = "natmu-lite " + " ".join(a for a in args.argv if a != "--quiet")
        save(audits, args.out, params, provenance(command, time.perf_counter() - start, audits))
        print(f"written to {args.out}")
    return 0


def settings(args: argparse.Namespace) -> int:
    for s in SETTINGS.values():
        size = f", {s.train_size} train images" if s.train_size else ""
        print(f"{s.name:<22} {s.dataset} + {s.model}{size}; scenarios: {', '.join(s.scenarios)}")
    return 0


def fetch(args: argparse.Namespace) -> int:
    """Find (or download) a dataset and say where it came from."""
    data = load_dataset(args.dataset)
    print(f"{data}: ready")
    return 0


def handout_cmd(args: argparse.Namespace) -> int:
    """Write the student notebooks: a folder and a zip per assignment."""
    for path in handout(Path(args.out), args.assignments):
        print(path)
    return 0


def grade_cmd(args: argparse.Namespace) -> int:
    """One file (a student checking their work): its feedback, printed. A class (a folder, or a zip such as a
    learning platform's download): the gradebook and a feedback file per student, in --out."""
    source, limits = Path(args.submissions), Limits(args.time_limit, args.memory_mb, args.call_timeout)
    if not source.exists():
        raise ValueError(f"{source} does not exist")
    if source.is_file() and source.suffix in SUFFIXES:
        print(check_file(source, args.assignment, limits))
        return 0
    if source.is_file() and source.suffix != ".zip":
        raise ValueError(f"{source}: expected a folder, a .zip, or one .ipynb or .py file")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    mapping = Path(args.mapping) if args.mapping else None
    with tempfile.TemporaryDirectory(prefix="natmu-class-") as folder:
        root = unpack(source, Path(folder)) if source.is_file() else source
        submissions, skipped = find(root, args.assignment, mapping, args.student_pattern, str(source))
        for s in skipped:
            print(f"skipped {s.name}: {s.why}", file=sys.stderr)
        start = time.perf_counter()
        hidden = Path(args.hidden) if args.hidden else None
        if hidden and not hidden.is_dir():
            raise ValueError(f"--hidden {hidden} is not a folder")
        if not hidden:
            print("grading with the public checks only, which students run themselves: add --hidden "
                  "assignments/hidden (the repository's instructor checks) for the hidden ones", file=sys.stderr)
        results = grade_all(submissions, limits, args.workers, progress=not args.quiet, hidden=hidden)
    write_gradebook(results, out / "gradebook.csv", skipped)
    export(out / "gradebook.csv", out / "lms_import.csv")
    feedback = write_feedback(results, out / "feedback")
    print(summary(results, time.perf_counter() - start))
    print(f"gradebook: {out / 'gradebook.csv'}; feedback: {len(feedback)} files in {out / 'feedback'}")
    return 0


def number(kind: type, ok: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` (``int`` or ``float``) for which ``ok`` holds, ``rule`` saying
    which in words (argparse exits with 2 and a message naming the option)."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value
    return parse


def at_least(least: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``least``."""
    return number(int, lambda v: v >= least, f"an integer >= {least}")


POSITIVE, NON_NEGATIVE = at_least(1), at_least(0)
seconds = number(float, lambda v: v > 0, "a positive number of seconds")
candidate_fraction = number(float, lambda v: 0 < v <= 0.5, "a number in (0, 0.5]")  # U-LiRA's candidates' share


def model_count(text: str) -> int:
    """An argparse type: an even integer >= MIN_MODELS (U-LiRA's models come in complementary pairs)."""
    value = at_least(MIN_MODELS)(text)
    if value % 2:
        raise argparse.ArgumentTypeError(f"must be even (the models come in complementary pairs), got {value}")
    return value


def load_method_files(argv: list[str]) -> None:
    """Load the --method-file files (:func:`~natmu_lite.methods.load_file`) before the parser is built, so that
    their methods are among the commands' choices; a missing file or a name clash exits 2 naming the option."""
    first = argparse.ArgumentParser(prog="natmu-lite", usage="natmu-lite [--method-file FILE] COMMAND ...",
                                    add_help=False, allow_abbrev=False)
    first.add_argument("--method-file", action="append", default=[])
    for path in first.parse_known_args(argv)[0].method_file:
        try:
            load_file(path)
        except (OSError, ValueError) as e:
            first.error(f"argument --method-file: {e}")


def _size_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train-size", type=POSITIVE, default=None, help="override the training-subset size")
    p.add_argument("--epochs", type=POSITIVE, default=None, help="override the original/retrain epochs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--compile", default=None, choices=["default", "reduce-overhead"],
                   help="torch.compile mode of every training run (GPU; reduce-overhead measured 2x on an H200)")


def old_spelling(p: argparse.ArgumentParser, old: str, new: str, **kwargs) -> None:
    """An option's spelling before the words of CONTRIBUTING.md: still accepted for one release, never shown
    in --help (``new`` is the option it stands for)."""
    p.add_argument(old, dest=new.lstrip("-").replace("-", "_"), default=argparse.SUPPRESS, help=argparse.SUPPRESS,
                   **kwargs)


def _setting_choice(p: argparse.ArgumentParser, default: str | None = "default", **kwargs) -> None:
    """--setting, a named setting (by default one of the package's)."""
    kwargs.setdefault("choices", sorted(SETTINGS))
    p.add_argument("--setting", default=default, **kwargs)
    old_spelling(p, "--preset", "--setting", choices=kwargs["choices"])


def _setting_options(p: argparse.ArgumentParser) -> None:
    _setting_choice(p)
    p.add_argument("--setting-file", default=None, help="a setting file saved by `tune --save-setting`")
    old_spelling(p, "--preset-file", "--setting-file")
    p.add_argument("--unlearn-epochs", type=POSITIVE, default=None, help="override the unlearning epochs")
    p.add_argument("--test-size", type=POSITIVE, default=None, help="override the test-subset size")
    _size_options(p)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="natmu-lite", description=__doc__)
    top.add_argument("--threads", type=POSITIVE, default=None, help="torch CPU threads (default: torch's choice)")
    top.add_argument("--method-file", action="append", default=[], metavar="FILE",
                     help="a Python file that registers methods, for this command and its workers (repeatable)")
    sub = top.add_subparsers(dest="command", required=True)
    others = sorted(set(METHODS) - {"retrain", "natmu"})

    p = sub.add_parser("demo", help="train original and retrained models, run NatMU, print RA/FA/MIA")
    _setting_choice(p)
    p.add_argument("--scenario", default="random-1%")
    p.add_argument("--seed", type=NON_NEGATIVE, default=0)
    p.add_argument("--methods", nargs="*", default=[], choices=others, help="more methods beside Retrain and NatMU")
    p.add_argument("--test-size", type=POSITIVE, default=None, help="override the test-subset size")
    _size_options(p)
    p.set_defaults(func=demo)

    p = sub.add_parser("bench", help="run a setting's scenario x method x seed grid and print the paper's table")
    _setting_options(p)
    p.add_argument("--scenarios", nargs="+", default=None, help="default: all of the setting's")
    p.add_argument("--methods", nargs="+", default=None, choices=sorted(METHODS), help="default: all")
    p.add_argument("--seeds", type=POSITIVE, default=1, help="seeds 0..N-1")
    p.add_argument("--out", default="results.json", help="results file; finished runs in it are skipped")
    p.set_defaults(func=bench)

    p = sub.add_parser("tune", help="hyperparameter search with Optuna (shared storage: many workers)")
    _setting_options(p)
    p.add_argument("--method", required=True, choices=sorted(SEARCH_SPACES))
    p.add_argument("--scenario", default=None, help="default: the setting's first")
    p.add_argument("--trials", type=POSITIVE, default=20)
    p.add_argument("--storage", default=None, help="any Optuna storage URL, e.g. PostgreSQL (default: the SQLite "
                   "file natmu-tune.db here)")
    p.add_argument("--study", default=None, help="default: <setting>/<scenario>/<method>")
    p.add_argument("--seed", type=NON_NEGATIVE, default=0, help="the seed of Retrain and of each trial's run")
    p.add_argument("--no-prune", action="store_true", help="no per-epoch pruning")
    p.add_argument("--save-setting", default=None, help="add the best parameters to this setting file")
    old_spelling(p, "--save-preset", "--save-setting")
    p.set_defaults(func=tune_cmd)

    p = sub.add_parser("transfer", help="evaluate one scenario's best parameters on another (Fig. 4)")
    _setting_options(p)
    p.add_argument("--method", required=True, choices=sorted(SEARCH_SPACES))
    p.add_argument("--from-scenario", required=True)
    p.add_argument("--to-scenario", required=True)
    p.add_argument("--storage", default=None, help="the storage of the study (default: natmu-tune.db here)")
    p.add_argument("--study", default=None, help="default: <setting>/<from-scenario>/<method>")
    p.add_argument("--seeds", type=POSITIVE, default=1)
    p.add_argument("--out", default="results.json")
    p.set_defaults(func=transfer_cmd)

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
    p.add_argument("--test-size", type=POSITIVE, default=None, help="override the test-subset size")
    p.add_argument("--unlearn-epochs", type=POSITIVE, default=None, help="override the unlearning epochs")
    _size_options(p)
    p.set_defaults(func=protocol_cmd)

    p = sub.add_parser("table", help="print the paper's table of a results file")
    p.add_argument("results")
    p.add_argument("--format", default="text", choices=["text", "markdown", "latex"])
    _setting_choice(p, default=None, choices=None, help="only this setting's rows")
    p.add_argument("--config", default=None, help="only the runs of this configuration (a row's config hash)")
    p.set_defaults(func=table)

    p = sub.add_parser("audit", help="U-LiRA: a per-example membership-inference audit of unlearning methods")
    p.add_argument("--method", required=True, nargs="+", choices=["all", *AUDITED],
                   help="one or more methods, or 'all'; 'original': the trained models, no unlearning")
    p.add_argument("--models", type=model_count, default=DEFAULT_MODELS,
                   help=f"models on random halves of the training set (even, >= {MIN_MODELS}), each attacked in turn")
    _setting_options(p)
    p.add_argument("--tuned-by", default=None, metavar="PROTOCOL",
                   help="audit each method with the parameters of an exported protocol's tuned runs (a committed "
                        "name, e.g. default, or an export file)")
    p.add_argument("--candidate-fraction", type=candidate_fraction, default=CANDIDATE_FRACTION,
                   help="the candidates' share of the training set (each model forgets those in its half)")
    old_spelling(p, "--target-fraction", "--candidate-fraction", type=candidate_fraction)
    p.add_argument("--workers", type=POSITIVE, default=1, help="processes running the models, one torch thread each")
    p.add_argument("--out", default=None, help="write the scores, the attacks' results and their provenance (JSON)")
    p.set_defaults(func=audit_cmd)

    p = sub.add_parser("settings", help="list the named settings: the offline default and the paper's")
    p.set_defaults(func=settings)
    sub.add_parser("presets").set_defaults(func=settings)  # the old spelling, for one release (not in --help)

    p = sub.add_parser("fetch", help="find or download a dataset (Fashion-MNIST by default)")
    p.add_argument("dataset", nargs="?", default="fashion-mnist", choices=sorted(LOADERS))
    p.set_defaults(func=fetch)

    p = sub.add_parser("handout", help="write the assignments' student notebooks: a folder and a zip per assignment")
    p.add_argument("out", help="the folder to write into")
    p.add_argument("--assignments", nargs="+", default=None, choices=ASSIGNMENTS, help="default: all")
    p.set_defaults(func=handout_cmd)

    p = sub.add_parser("grade", help="grade a student's file, or a class's folder or zip into a gradebook")
    p.add_argument("submissions", help="a notebook or .py file, a folder of them, or a zip (a platform's download)")
    p.add_argument("--assignment", default=None, choices=ASSIGNMENTS, help="default: recognised from each file")
    p.add_argument("--out", default="grades", help="the gradebook and the feedback files (class grading)")
    p.add_argument("--mapping", default=None, help="CSV of file,student[,assignment] for files names cannot tell")
    p.add_argument("--student-pattern", default=None,
                   help="regular expression with a group 'student', searched in each file's path in the class folder")
    p.add_argument("--time-limit", type=seconds, default=Limits.seconds, help="seconds per submission")
    p.add_argument("--memory-mb", type=at_least(2048), default=Limits.memory_mb,
                   help="address space per submission, MB (Linux; torch alone maps about 3.5 GB)")
    p.add_argument("--call-timeout", type=seconds, default=Limits.call_timeout,
                   help="seconds per call of a student's function")
    p.add_argument("--workers", type=POSITIVE, default=max(1, min(4, (os.cpu_count() or 2) // 2)),
                   help="submissions graded at once, one process and one thread each")
    p.add_argument("--hidden", default=None,
                   help="the instructor's folder of hidden checks (assignments/hidden in the repository)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=grade_cmd)
    sub.metavar = "{" + ",".join(c for c in sub.choices if c != "presets") + "}"
    return top


def main(argv: list[str] | None = None) -> int:
    load_method_files(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # the command, as provenance records it
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return args.func(args)
    except (ValueError, KeyError, OSError) as e:  # bad input, refused with a message (OSError: unwritable paths)
        print(f"natmu-lite: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
