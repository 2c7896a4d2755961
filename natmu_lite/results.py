"""The committed results the book reads: the fair protocol's exports (``default.json``) and the U-LiRA
audits (``ulira-default.json``), by name or by path. Reading them needs neither Optuna nor a GPU: the
chapters that show them take seconds.

One function, :func:`path`, finds a committed file, so that there is one place to change where they live.
They are written in one place, the repository's ``results/`` (``natmu-lite protocol`` and ``natmu-lite
audit`` export there); a wheel of the package carries those JSON files as package data,
``natmu_lite/committed/`` (pyproject.toml maps the one folder onto the other), so that an installed package
(Colab, a plain ``pip install``) reads the same files a clone does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

PACKAGED = Path(__file__).resolve().parent / "committed"  # an installed wheel's copy of results/*.json
# Where the committed results are read: an installed package reads its own copy, a clone (or an editable
# install, which has no copy) the repository's results/, where they are written.
RESULTS = PACKAGED if PACKAGED.is_dir() else PACKAGED.parent.parent / "results"


def path(name: str | Path) -> Path:
    """A results file: ``name`` itself when it has a suffix (a path), else the committed file of that
    name (``"default"``: the fair protocol's export, ``"ulira-default"``: the audit)."""
    name = Path(name)
    return name if name.suffix else RESULTS / f"{name}.json"


def _read(name: str | Path, what: str, hint: str) -> dict:
    file = path(name)
    if not file.exists():
        raise FileNotFoundError(f"{file}: no {what} there (the committed ones come with the package; {hint})")
    return json.loads(file.read_text())


def load_protocol(name: str | Path) -> dict:
    """A protocol's exported results: a file, or the name of a committed protocol (``"default"``)."""
    return _read(name, "exported protocol results", "or run `natmu-lite protocol`")


def load_audit(name: str | Path) -> dict:
    """A saved U-LiRA audit, or the name of a committed one (``"ulira-default"``): ``provenance`` and
    ``audits`` (one dict per method, see :meth:`natmu_lite.audit.Audit.to_dict`, with its ``params``)."""
    doc = _read(name, "saved audit", "or run `natmu-lite audit ... --out FILE`")
    for audit in doc["audits"]:  # files saved before "target" meant only a forget class
        for where, old, new in ((audit, "targets", "candidates"), (audit, "per_target", "per_model"),
                                (audit.get("config", {}), "target_fraction", "candidate_fraction")):
            if old in where:
                where[new] = where.pop(old)
    return doc


def runs(doc: dict, variant: str | tuple[str, ...] = "tuned", looks: bool = False) -> pd.DataFrame:
    """One variant's runs with the reference runs (Retrain, the original), as the tables module expects
    them; of a partial export only the seeds whose runs are all finished (see
    :func:`natmu_lite.export.export`). Only the protocol's own seeds, which every method ran,
    unless ``looks``: then also the seeds added for the undecided comparisons (:mod:`natmu_lite.decisions`),
    which only some methods ran."""
    frame = pd.DataFrame(doc["runs"])
    seeds = doc.get("complete_seeds")
    if seeds is not None:
        frame = frame[[s in seeds[sc] for sc, s in zip(frame.scenario, frame.seed)]]
    if not looks and "design" in doc:
        frame = frame[frame.seed.isin(doc["design"]["seeds"])]
    elif "decisions" in doc.get("design", {}):
        frame = frame[[s < n for s, n in zip(frame.seed, frame.scenario.map(finished_looks(doc)))]]
    variants = (variant,) if isinstance(variant, str) else variant
    return frame[frame.variant.isin([*variants, "reference"])].reset_index(drop=True)


def finished_looks(doc: dict) -> dict[str, int]:
    """Per scenario, how many seeds its finished looks hold (:mod:`natmu_lite.decisions`): a look counts
    only when every run of its seeds has finished, since a decision taken on part of a look would be a
    look the error was not split over."""
    missing = {(q.split("|")[1], int(q.split("|")[3])) for q in doc.get("missing", [])}
    runs = pd.DataFrame(doc["runs"])
    out = {}
    for scenario, g in runs.groupby("scenario"):
        out[scenario], ran = 0, set(g.seed)
        for look in doc["design"]["decisions"]["looks"]:
            if not ran & set(range(out[scenario], look)) or any(
                    (r, s) in missing for r in g.request.unique() for s in range(look)):
                break  # a look that has not started, or has not finished
            out[scenario] = look
    return out


def committed_runs(setting: str, scenario: str, variant: str = "untuned",
                   protocol: str = "default") -> pd.DataFrame | None:
    """The committed runs (and Retrain's) of one setting's scenario, test request only, or None when
    the committed protocol does not cover it: chapters read these instead of training them again,
    and fall back to running them for settings the protocol does not have."""
    if not path(protocol).exists():
        return None
    frame = runs(load_protocol(protocol), variant)
    frame = frame[(frame.setting == setting) & (frame.scenario == scenario)].reset_index(drop=True)
    return frame if len(frame) else None


def status(doc: dict) -> str:
    """A sentence on how complete an export is, and on the design that produced it (Markdown), for the
    chapters that read one."""
    older = "" if "design" in doc else (
        "**An export of the protocol's first design.** These results were produced before the protocol "
        "re-checked its choices: each method's parameters are its study's best trial (no validation replicas), "
        "and every seed shares one original model, so the intervals leave out how much the starting model "
        "matters. The package's protocol now gives every seed its own original and re-checks each choice "
        "on two more validation requests (`natmu_lite.selection`); its export replaces this one when all "
        "its runs are finished. ")
    if doc.get("complete", True):
        return older
    total = len(doc["runs"]) + len(doc["missing"])
    seeds = ", ".join(f"{sc} {len(v)}" for sc, v in doc["complete_seeds"].items())
    return older + (f"**Work in progress:** {len(doc['runs'])} of the protocol's {total} runs are finished and "
            f"committed; the rest are being run (`natmu-lite protocol {doc['protocol']}` resumes them). "
            f"Every number below uses, per scenario, only the seeds whose runs are all finished "
            f"(seeds finished: {seeds}), so intervals are wider than they will be, and a scenario "
            "with no finished seed is missing.")


def fallbacks(doc: dict) -> set[tuple[str, str]]:
    """The (scenario, method) pairs of an export whose selection found no valid candidate and kept the
    untuned parameters (none in exports made before the selection re-checked its winners)."""
    return {(s["scenario"], s["method"]) for s in doc["studies"]
            if (s.get("selection") or {}).get("no_valid_candidate")}


def replication_runs(doc: dict) -> pd.DataFrame:
    """The replication set's runs (every method with its tuned parameters, Retrain and its second run, the
    original) of an export, per scenario only the seeds whose runs are all finished; empty when the export
    has none (exports made before the replication set existed, or before its first seed finished)."""
    frame = pd.DataFrame(doc.get("replication", []))
    if frame.empty:
        return frame
    # a replication request is named "<scenario> (replication)[: <class>]" (natmu_lite.protocol.replication_plan)
    missing = [q.split("|") for q in doc.get("missing", []) if " (replication)" in q]
    unfinished = {(request.split(" (replication)")[0], int(seed)) for _, request, _, seed, _ in missing}
    keep = [(sc, seed) not in unfinished for sc, seed in zip(frame.scenario, frame.seed)]
    return frame[keep].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# an export's studies: the search, the re-checked selection, every budget trial

def search_curves(doc: dict) -> pd.DataFrame:
    """From an export's studies: per scenario, method and trial count, the best validation AvgGap found
    so far (the search curve: does the budget suffice, or is the search still finding better parameters?)."""
    return pd.DataFrame([dict(scenario=s["scenario"], method=s["method"], trials=k + 1, AvgGap=v)
                         for s in doc["studies"] for k, v in enumerate(s["search_curve"])])


def selection_counts(doc: dict) -> dict[str, int]:
    """What the re-checked selection (:mod:`natmu_lite.selection`) did over an export's studies: how many
    studies there are, in how many the choice is not the study's best trial (``moved``), kept the untuned
    parameters on their merit (``untuned``) or because no trial of the study passed the rules (``fallback``),
    needed more than one round of candidates (``rounds``: every first candidate was excluded), and how
    many candidates were re-checked, excluded as collapsed, and excluded for doing nothing."""
    sels = [s["selection"] for s in doc["studies"]]
    cands = [c for sel in sels for c in sel["candidates"].values()]
    moved = sum(sel["chosen"] != s["best_trial"] for sel, s in zip(sels, doc["studies"]))
    return {"studies": len(sels), "moved": moved,
            "untuned": sum(sel["chosen"] == 0 and not sel["no_valid_candidate"] for sel in sels),
            "fallback": sum(bool(sel["no_valid_candidate"]) for sel in sels), "candidates": len(cands),
            "rounds": sum(sel.get("rounds", 1) > 1 for sel in sels),
            "collapsed": sum(bool(c.get("collapsed")) for c in cands),
            "did_nothing": sum(bool(c.get("did_nothing")) and not c.get("collapsed") for c in cands)}


def trials(doc: dict) -> pd.DataFrame:
    """Every budget trial of an export's studies: its validation AvgGap and its forgetting progress
    (``progress``, :func:`natmu_lite.selection.forgetting_progress`), with ``did_nothing`` when that is less
    than the selection's least progress: does the search's objective reward unlearning, or can a trial
    that barely moves win it?"""
    least = doc["design"]["min_progress"]
    rows = [dict(scenario=s["scenario"], method=s["method"], trial=k, AvgGap=gap, progress=moved)
            for s in doc["studies"] for k, (gap, moved) in enumerate(zip(s["trial_avg_gap"], s["trial_progress"]))]
    frame = pd.DataFrame(rows)
    return frame.assign(did_nothing=frame.progress.lt(least))


def tuned_params(doc: dict, setting: str, ratio: float) -> dict[str, dict]:
    """From an exported protocol (:func:`load_protocol`): the parameters its ``tuned`` variant used for
    each method on a setting's random-forgetting scenario of ``ratio``, which the U-LiRA audit of
    :mod:`natmu_lite.audit` then attacks. Read off the runs themselves, so it holds for any selection
    rule the export was made with."""
    from .splits import ratio_target  # (imports torch: only when asked)

    target = ratio_target(ratio)
    rows = [r for r in doc["runs"] if r["setting"] == setting and r["variant"] == "tuned" and r["target"] == target]
    if not rows:
        raise ValueError(f"protocol {doc['protocol']!r} has no tuned runs of random forgetting {target} on {setting}")
    return {r["method"]: r["params"] for r in rows}


def stale_audit(doc: dict, audit: dict, setting: str = "default", ratio: float = 0.1) -> list[str]:
    """The audited methods whose parameters in a saved audit are no longer those of the export's tuned runs
    (the protocol's choice changed after the audit ran): their audit rows describe their earlier ones."""
    now = tuned_params(doc, setting, ratio)
    return [a["method"] for a in audit["audits"] if a["method"] in now and a["params"] != now[a["method"]]]
