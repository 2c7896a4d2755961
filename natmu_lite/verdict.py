"""A new method's verdict against the committed ten: the committed protocol run again with one more
method, in a copy of its storage, so that the newcomer gets exactly what the ten got.

Why a copy: the committed storage (``results/default.db``) holds every study, re-checked choice and run of
the ten. A protocol that compares one more method, resumed on a copy of it, runs just that method's share
(its studies with the same budget and TPE seed, its candidates' replica runs under the same selection rule,
its test runs from the same pinned originals and seeds, its transfer and replication runs) and any further
look the decisions then ask for, and leaves the committed files as they are.

A *quick* verdict (for the classroom and CI) cannot reuse the committed runs, which are of the full sizes:
it runs the newcomer and its rivals (the ten, or those named) on a small protocol of its own
(:func:`quick_setting`: two of the default setting's scenarios, one table class, two validation replicas, no
replication set) at the reduced sizes of :data:`QUICK`, in a storage of its own, and says so in every output.
Its decisions compare like with like, but small; they are not the committed protocol's.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from . import results, stats
from .cache import atomic_write, pins_beside
from .methods import SEARCH_SPACES
from .setting import Setting
from .settings import SETTINGS, get_setting

COMMITTED = "default"  # the committed protocol a verdict is given against
QUICK = {"trials": 2, "seeds": 2, "train_size": 1000, "test_size": 500, "epochs": 1, "unlearn_epochs": 1}
QUICK_PROTOCOL = "verdict-quick"  # the quick verdict's protocol and its one setting
QUICK_SCENARIOS = {"random-10%": None, "full-class": ("Trouser",)}  # scenario -> its table classes
# in the output folder: what it holds, the copied storage, the export, and the machine's comparison
STAMP, STORAGE, EXPORT, RECHECK = "verdict-of.json", "verdict.db", "verdict.json", "recheck.json"
AUDIT = "ulira.json"  # --audit's: the method's U-LiRA audit, in the committed audit's game
# (scenario, method, variant): the committed cells re-run from their pinned original before a full verdict
# reports, and by the reproduction tests. SSD's dampening and GA's ascent are deterministic given the original
# model, NatMU's blends and NegGrad+'s two losses are trained; together they touch most of the package's code.
# Each seed starts from its own original, so a cell's seeds spread as far as the method's result depends on its
# starting model: these cells are those whose spread stays narrow enough for a changed result to fall outside
# (SSD's untuned knobs destroy some seeds' originals and keep others', so their cells span tens of points).
RECHECKED = (("random-10%", "ssd", "tuned"), ("random-10%", "natmu", "tuned"), ("random-1%", "ga", "tuned"),
             ("random-10%", "neggradplus", "tuned"))
METRICS = ("RA", "FATrain", "MIA", "RetainAcc")


def committed_methods() -> tuple[str, ...]:
    from .protocol import PROTOCOL_METHODS

    return PROTOCOL_METHODS[COMMITTED]


@dataclass(frozen=True)
class Verdict:
    """One method's verdict in one output folder; ``sizes`` (a quick verdict's): :data:`QUICK`'s keys."""

    method: str
    out: Path
    quick: bool = False
    sizes: dict = field(default_factory=dict)
    rivals: tuple[str, ...] = ()  # a quick verdict's, when not the committed ten

    @property
    def storage(self) -> str:
        return f"sqlite:///{self.out.resolve() / STORAGE}"

    def stamp(self) -> dict:
        """What the output folder holds, written before anything runs: a later command resumes only the same."""
        return {"method": self.method, "quick": self.quick, "sizes": self.sizes, "against": list(self.against)}

    @property
    def against(self) -> tuple[str, ...]:
        return self.rivals or committed_methods()

    def protocol(self):
        """The committed protocol's design with the method added, in this folder's storage: its originals
        pinned beside it (:func:`~natmu_lite.cache.pins_beside`: for a full verdict, the committed ones)."""
        from .protocol import SEEDS, TEST_PHASE, TRIALS, Protocol

        if not self.quick:
            rerun = (self.out / RECHECK).exists() and json.loads((self.out / RECHECK).read_text())["rerun"]
            return Protocol(COMMITTED, self.storage, TRIALS, SEEDS, methods=(*committed_methods(), self.method),
                            only=(self.method,), rerun=TEST_PHASE if rerun else ())
        register_quick()
        sizes = {k: v for k, v in self.sizes.items() if k not in ("trials", "seeds")}
        return Protocol(QUICK_PROTOCOL, self.storage, self.sizes["trials"], tuple(range(self.sizes["seeds"])), sizes,
                        methods=(*self.against, self.method))


def quick_setting() -> Setting:
    """The quick verdict's setting: the default's recipes and knobs on :data:`QUICK_SCENARIOS`, two validation
    replicas each, no replication set (its sizes come from :data:`QUICK`)."""
    base = get_setting(COMMITTED)
    return replace(base, name=QUICK_PROTOCOL, scenarios={s: base.scenarios[s] for s in QUICK_SCENARIOS},
                   validation={s: base.validation[s][:2] for s in QUICK_SCENARIOS},
                   table_classes={s: c for s, c in QUICK_SCENARIOS.items() if c}, replication={})


def register_quick() -> None:
    """Name the quick protocol and its setting (each worker process does it again, the same way)."""
    from .protocol import PROTOCOLS

    SETTINGS[QUICK_PROTOCOL] = quick_setting()
    PROTOCOLS[QUICK_PROTOCOL] = (QUICK_PROTOCOL,)


def quick_sizes(**overrides) -> dict:
    """:data:`QUICK` with the given overrides (None: QUICK's)."""
    return {**QUICK, **{k: v for k, v in overrides.items() if v is not None}}


def committed_storage() -> Path:
    """The committed storage file (in a clone: the package's wheel carries the exports only)."""
    return results.RESULTS / f"{COMMITTED}.db"


def check(v: Verdict) -> None:
    """Refuse, before anything runs (``ValueError`` naming the argument): a method that is not a registered
    tuned method or is one of the committed ten, an output folder that holds another verdict or other files,
    and for a full verdict a missing committed storage or a machine whose runs would not be comparable."""
    if v.method not in SEARCH_SPACES:
        raise ValueError(f"METHOD {v.method!r} is not a registered method with a search space (a method file is "
                         f"loaded with --method-file FILE before the command); registered: "
                         f"{', '.join(sorted(SEARCH_SPACES))}")
    if v.method in committed_methods():
        raise ValueError(f"METHOD {v.method!r} is one of the committed ten: its verdict is the committed export "
                         f"(results/{COMMITTED}.json)")
    unknown = [m for m in v.rivals if m not in committed_methods()]
    if unknown or (v.rivals and not v.quick):
        raise ValueError(f"--rivals {' '.join(v.rivals)}: " + (f"{unknown[0]!r} is not one of the committed ten"
                         if unknown else "only with --quick (a full verdict compares with the committed ten)"))
    if v.out.resolve().is_relative_to(results.RESULTS.resolve()):
        raise ValueError(f"--out {v.out} is inside the committed results ({results.RESULTS}), which a verdict never "
                         "writes; choose a folder elsewhere")
    if v.out.exists():
        stamp = v.out / STAMP
        if not v.out.is_dir():
            raise ValueError(f"--out {v.out} is a file, not a folder")
        if stamp.exists() and json.loads(stamp.read_text()) != v.stamp():
            held = json.loads(stamp.read_text())
            raise ValueError(f"--out {v.out} holds the {'quick ' if held['quick'] else ''}verdict of "
                             f"{held['method']!r}{' at other sizes' if held['method'] == v.method else ''}; "
                             "choose another folder")
        if not stamp.exists() and any(v.out.iterdir()):
            raise ValueError(f"--out {v.out} holds files and no verdict; choose a new or empty folder")
    if not v.quick and not committed_storage().exists():
        raise ValueError(f"the committed storage {committed_storage()} is not here (a clone of the repository "
                         "has it); --quick runs without it")


def this_machine() -> dict:
    """This machine's device, precision and torch version, as an export records them (``device``)."""
    import torch

    from .train import default_device, precision

    return {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            "precision": precision(default_device()), "torch": torch.__version__}


def compare_machine(v: Verdict, proto, committed: dict, cells=RECHECKED) -> dict:
    """Whether this machine's runs compare with the committed ones, decided once per output folder (its
    :data:`RECHECK` file; a resumed command reads it): the committed cells re-run here (:func:`recheck`; none
    when ``cells`` is empty) and the machines. When this machine is another device, precision or torch
    version, or a re-run metric falls outside its noise band, the verdict runs the whole test phase again
    here (``rerun``), so that every number it compares comes from one machine."""
    file = v.out / RECHECK
    if file.exists():
        return json.loads(file.read_text())
    frame = recheck(proto, committed, cells) if cells else pd.DataFrame(columns=["within"])
    here, there = this_machine(), committed["device"]
    moved = [f"{r.method} {r.metric} ({r.scenario})" for r in frame.itertuples() if not r.within]
    why = ([f"this machine is {here}, the committed runs ran on {there}"] if here != there else []) + \
        ([f"{len(moved)} re-run metrics fell outside their noise band ({', '.join(moved)})"] if moved else [])
    out = {"here": here, "committed": there, "rerun": bool(why), "why": "; ".join(why),
           "cells": frame.to_dict("records")}
    atomic_write(file, lambda f: f.write_text(json.dumps(out, indent=1)))
    return out


def prepare(v: Verdict) -> None:
    """Make the output folder: its stamp, and for a full verdict the copy of the committed storage (SQLite's
    backup, consistent even while another process reads it) and of its pinned originals, checked against
    the committed export's checksums. A folder prepared before is resumed as it is."""
    v.out.mkdir(parents=True, exist_ok=True)
    (v.out / STAMP).write_text(json.dumps(v.stamp(), indent=1))
    if v.quick or (v.out / STORAGE).exists():
        return
    pins = pins_beside(v.storage, COMMITTED)
    shutil.copytree(pins_beside(f"sqlite:///{committed_storage()}", COMMITTED), pins, dirs_exist_ok=True)
    check_pins(pins, results.load_protocol(COMMITTED)["originals"])
    copy = v.out / f".{STORAGE}.partial"
    with sqlite3.connect(f"file:{committed_storage()}?mode=ro", uri=True) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    source.close()
    target.close()
    copy.replace(v.out / STORAGE)  # whole or absent: an interrupted copy is made again


def check_pins(pins: Path, originals: dict) -> None:
    """Every committed original in ``pins``, byte for byte (its checksum in the committed export)."""
    for name, info in originals.items():
        file = pins / Path(info["file"]).name
        if hashlib.sha256(file.read_bytes()).hexdigest() != info["sha256"]:
            raise ValueError(f"{file} is not the committed original {name} (its checksum differs)")


def export(v: Verdict, proto, command: str, seconds: float | None, workers: int) -> dict:
    """The protocol's own export of the folder's storage, marked as this verdict's (and quick, if so), with
    the wall time of the command that ran its last runs (``seconds``, on ``workers`` worker processes; None:
    this command ran none, so the previous export's time stays)."""
    from . import export as exporting

    before = json.loads((v.out / EXPORT).read_text())["verdict"] if (v.out / EXPORT).exists() else {}
    timed = {"wall_seconds": round(seconds, 1), "workers": workers} if seconds is not None else \
        {k: before[k] for k in ("wall_seconds", "workers") if k in before}
    # a full verdict runs its method's runs only: the committed protocol's unfinished ones stay missing
    doc = exporting.export(proto, v.out / EXPORT, command=command, partial=not v.quick)
    doc["verdict"] = {**v.stamp(), "compared": compared(v), **timed}
    atomic_write(v.out / EXPORT, lambda f: f.write_text(json.dumps(doc, indent=1)))
    return doc


def compared(v: Verdict) -> str:
    """What the verdict compares with what, in a sentence (the report and the export say it)."""
    if v.quick:
        rivals = "the committed ten" if not v.rivals else ", ".join(v.rivals) + " (of the committed ten)"
        scenarios = ", ".join(s + (f" ({', '.join(c)} only)" if c else "") for s, c in QUICK_SCENARIOS.items())
        return (f"QUICK: {v.method} and {rivals}, all run here in one storage, on a small protocol of "
                f"{scenarios}, with {len(quick_setting().validation['random-10%'])} validation replicas, no "
                f"replication set, at reduced sizes {v.sizes}; the committed runs are not used, so these decisions "
                "are the quick protocol's, not the committed protocol's")
    return (f"{v.method}'s runs, made here, against the committed ten's runs of results/{COMMITTED}.db (copied), on "
            "the committed design: the same budget, selection rule, pinned originals and seeds; only "
            f"{v.method}'s runs (and the references they need) were run, so runs the committed protocol has not "
            "finished stay missing")


def audit(v: Verdict, doc: dict, command: str, workers: int = 1, progress: bool = True) -> dict:
    """The method's U-LiRA audit (chapter 7) with the parameters this verdict chose for the audited random
    request, in the committed audit's game (its setting, model count, candidate share and seed), so that its
    row stands beside the committed audit's; written to the folder as ``audit --out`` writes one. Its models
    run here (a resumed command reads them from the checkpoint cache)."""
    import time

    from .audit import provenance, save, ulira_many

    game = results.load_audit(f"ulira-{COMMITTED}")["audits"][0]
    config = game["config"]
    params = {v.method: results.tuned_params(doc, game["setting"], config["candidate_fraction"])[v.method]}
    start = time.perf_counter()
    audits = ulira_many(get_setting(game["setting"]), params, config["models"], config["candidate_fraction"],
                        config["seed"], workers=workers, progress=progress)
    save(audits, v.out / AUDIT, params, provenance(command, time.perf_counter() - start, audits))
    return results.load_audit(v.out / AUDIT)


def recheck(proto, doc: dict, cells=RECHECKED) -> pd.DataFrame:
    """Seed 0 of committed cells re-run here from its pinned original with the parameters it records: per
    metric, the committed value, this machine's, and the committed seeds' noise band around the former
    (:func:`~natmu_lite.stats.noise_band`), as the reproduction tests check it. How far this machine's runs
    move against the committed noise."""
    import torch

    runs, rows = pd.DataFrame(doc["runs"]), []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the protocol's workers ran: the thread count changes float sums
    try:
        for scenario, method, variant in cells:
            cell = runs[(runs.scenario == scenario) & (runs.method == method) & (runs.variant == variant)]
            row = cell[cell.seed == 0].iloc[0].to_dict()
            again = proto.result_row(proto.run_name_of(row), params=row["params"])
            for metric in METRICS:
                low, high = stats.noise_band(cell[metric], around=row[metric])
                rows.append(dict(scenario=scenario, method=method, metric=metric, committed=row[metric],
                                 here=again[metric], moved=again[metric] - row[metric], low=low, high=high,
                                 within=bool(low <= again[metric] <= high)))
    finally:
        torch.set_num_threads(threads)
    return pd.DataFrame(rows)
