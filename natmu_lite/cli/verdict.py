"""The ``verdict`` command: a new method against the committed ten, in one command (see
:mod:`natmu_lite.verdict`): its runs in a copy of the committed storage, the export and a report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .options import POSITIVE

SIZES = ("trials", "seeds", "train_size", "test_size", "epochs", "unlearn_epochs")  # --quick's, each overridable


def add_verdict_parser(sub: argparse._SubParsersAction) -> None:
    from ..verdict import QUICK

    p = sub.add_parser("verdict", help="a new method against the committed ten: its runs, the export and a report")
    p.add_argument("method", metavar="METHOD", help="a registered method (load its file with --method-file)")
    p.add_argument("--out", default=None, help="the output folder (default: verdict-METHOD, or verdict-METHOD-quick)")
    p.add_argument("--quick", action="store_true",
                   help="every method at reduced sizes, in minutes (labelled quick; the committed runs are not used)")
    p.add_argument("--workers", type=POSITIVE, default=1, help="worker processes here (1 torch thread each when >1)")
    p.add_argument("--rivals", nargs="+", default=(), metavar="METHOD",
                   help="with --quick: compare with these of the committed ten only (default: all ten)")
    p.add_argument("--no-recheck", action="store_true",
                   help="re-run no committed cell on this machine (another device still runs the test phase again)")
    p.add_argument("--audit", action="store_true",
                   help="also its U-LiRA audit, beside the committed audit (a full verdict's; minutes to hours)")
    for size in SIZES:
        p.add_argument(f"--{size.replace('_', '-')}", type=POSITIVE, default=None,
                       help=f"with --quick: override its {size.replace('_', ' ')} ({QUICK[size]})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run_verdict)


def run_verdict(args: argparse.Namespace) -> int:
    """Check everything, copy the committed storage, run what the method needs (resumable, ``--workers``
    processes), export, re-check committed cells here, write the report."""
    from .. import results, verdict, verdict_report

    given = {s: getattr(args, s) for s in SIZES if getattr(args, s) is not None}
    if given and not args.quick:
        raise ValueError(f"--{next(iter(given)).replace('_', '-')} is for --quick only: a full verdict runs the "
                         "committed design")
    out = Path(args.out or f"verdict-{args.method}" + ("-quick" if args.quick else ""))
    v = verdict.Verdict(args.method, out, args.quick, verdict.quick_sizes(**given) if args.quick else {},
                        tuple(dict.fromkeys(args.rivals)))
    if args.worker:
        v.protocol().work()
        return 0
    if args.audit and args.quick:
        raise ValueError("--audit is for a full verdict: a quick verdict's parameters were chosen at reduced sizes")
    verdict.check(v)
    start = time.perf_counter()
    verdict.prepare(v)
    machine = None
    if not args.quick:  # before anything runs: do this machine's runs compare with the committed ones?
        cells = () if args.no_recheck else verdict.RECHECKED
        machine = verdict.compare_machine(v, v.protocol(), results.load_protocol(verdict.COMMITTED), cells)
        if machine["rerun"]:
            print(f"the whole test phase runs again here: {machine['why']}")
    proto = v.protocol()
    proto.mark_rerun()
    command = [a for a in args.argv if a != "--quiet"]
    command = command[command.index("verdict"):]
    ran = not proto.finished()
    proto.launch(args.workers, command, progress=not args.quiet)
    seconds = time.perf_counter() - start if ran else None
    doc = verdict.export(v, proto, "natmu-lite " + " ".join(args.argv), seconds, args.workers)
    if args.audit:
        verdict.audit(v, doc, "natmu-lite " + " ".join(args.argv), args.workers, not args.quiet)
    report = verdict_report.render(out)
    print(verdict_report.markdown(report[:3]))
    print(f"report: {out / 'verdict.md'} (and .html), export: {out / verdict.EXPORT}; "
          f"wall time {time.perf_counter() - start:.0f}s")
    return 0
