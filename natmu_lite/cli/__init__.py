"""The ``natmu-lite`` command: demo, bench, table, tune, transfer, protocol, verdict, audit, settings, fetch;
handout and grade (the classroom).

The commands parse their arguments, refuse bad ones with a message that names them (exit status 2)
before anything trains, and call the package's functions, the same ones the book and the tests call.
Optuna is imported only by the commands that tune (tune, transfer, protocol): it takes a second or two
to import.
"""

from __future__ import annotations

import argparse
import sys

import torch

from ..methods import load_file
from . import audit, bench, classroom, info, tuning, verdict
from .options import POSITIVE, chosen_setting

# each command's parser, beside its handler in the command's module; in the order of --help
COMMANDS = (bench.add_demo_parser, bench.add_bench_parser, tuning.add_tune_parser, tuning.add_transfer_parser,
            tuning.add_protocol_parser, verdict.add_verdict_parser, bench.add_table_parser, audit.add_audit_parser,
            info.add_settings_parser, info.add_fetch_parser, classroom.add_handout_parser, classroom.add_grade_parser)

__all__ = ["chosen_setting", "main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The command line: the options every command takes, then the commands."""
    top = argparse.ArgumentParser(prog="natmu-lite", description=__doc__)
    top.add_argument("--threads", type=POSITIVE, default=None, help="torch CPU threads (default: torch's choice)")
    top.add_argument("--method-file", action="append", default=[], metavar="FILE",
                     help="a Python file that registers methods, for this command and its workers (repeatable)")
    sub = top.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    sub.metavar = "{" + ",".join(c for c in sub.choices if c != "presets") + "}"
    return top


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
