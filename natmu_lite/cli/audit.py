"""The ``audit`` command: U-LiRA, the per-example membership-inference audit of unlearning methods."""

from __future__ import annotations

import argparse
import time

from ..audit import AUDITED, CANDIDATE_FRACTION, DEFAULT_MODELS, MIN_MODELS, provenance, save, ulira_many
from ..grid import check_output
from ..results import load_protocol, tuned_params
from .options import POSITIVE, candidate_fraction, chosen_setting, model_count, old_spelling, setting_options


def add_audit_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="U-LiRA: a per-example membership-inference audit of unlearning methods")
    p.add_argument("--method", required=True, nargs="+", choices=["all", *AUDITED],
                   help="one or more methods, or 'all'; 'original': the trained models, no unlearning")
    p.add_argument("--models", type=model_count, default=DEFAULT_MODELS,
                   help=f"models on random halves of the training set (even, >= {MIN_MODELS}), each attacked in turn")
    setting_options(p)
    p.add_argument("--tuned-by", default=None, metavar="PROTOCOL",
                   help="audit each method with the parameters of an exported protocol's tuned runs (a committed "
                        "name, e.g. default, or an export file)")
    p.add_argument("--candidate-fraction", type=candidate_fraction, default=CANDIDATE_FRACTION,
                   help="the candidates' share of the training set (each model forgets those in its half)")
    old_spelling(p, "--target-fraction", "--candidate-fraction", type=candidate_fraction)
    p.add_argument("--workers", type=POSITIVE, default=1, help="processes running the models, one torch thread each")
    p.add_argument("--out", default=None, help="write the scores, the attacks' results and their provenance (JSON)")
    p.set_defaults(func=run_audit)


def run_audit(args: argparse.Namespace) -> int:
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
