"""A verdict's report (:mod:`natmu_lite.verdict`): the new method's row in the fair table beside the
committed methods, its decisions against NatMU, the paper's baselines and the best, its selection, and
how far this machine moves committed runs, as Markdown and as the same page in HTML.

The report is a list of blocks (a heading, a paragraph, a table) rendered twice, so that the two files
say the same thing and the HTML needs no Markdown package.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd

from . import decisions, results, stats, tables
from .methods import METHOD_NAMES
from .verdict import committed_methods

Block = tuple[str, object]  # ("h1" | "h2" | "p", text) or ("table", frame)


def name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def blocks(doc: dict, machine: dict | None = None, audited: dict | None = None) -> list[Block]:
    """The report of a verdict's export (``doc["verdict"]`` says whose), with a full verdict's comparison of
    this machine with the committed runs (:func:`natmu_lite.verdict.compare_machine`) and, when it ran, the
    method's U-LiRA audit (:func:`natmu_lite.verdict.audit`)."""
    v, prov = doc["verdict"], doc["provenance"]
    method, quick = v["method"], " (QUICK)" if v["quick"] else ""
    alpha = doc["design"]["decisions"]["level"]
    # every seed (a look's too) with the second Retrains: what the decisions read (a quick protocol has no looks)
    decided = results.runs(doc, ("tuned", decisions.SECOND), looks=bool(doc["design"]["decisions"]["looks"]))
    ten = set(v["against"]) == set(committed_methods())
    against = "the committed ten" if ten else ", ".join(map(name, v["against"]))
    out: list[Block] = [("h1", f"Verdict{quick}: {name(method)} against {against}"),
                        ("p", f"**What was compared:** {v['compared']}."),
                        ("p", f"The claim tested: *{name(method)} ends closer to Retrain than every rival of the "
                              f"set, in every scenario*. {decisions.sentence(decided, method, alpha)}"),
                        *missing(doc, method), ("h2", "Provenance"), ("table", provenance(doc))]
    summary = pd.concat([stats.fair_summary(results.runs(doc, "tuned")), decisions.floor_summary(decided)])
    fair = tables.fair_table(summary, leaders=decisions.best_set(decided, alpha), fallbacks=results.fallbacks(doc))
    out += [("h2", "The fair table"),
            ("p", "Mean per-seed AvgGap to Retrain [95% interval]; bold: the best and the methods tied with it; "
                  "† some runs collapsed; ‡ the selection kept the untuned parameters."),
            ("table", fair.rename(index=lambda m: f"→ {m}" if m == name(method) else m))]
    out += [("h2", f"Against NatMU, the paper's baselines and every method (level {alpha:.4f})"),
            ("table", against_natmu(decided, method, alpha)),
            ("table", decisions.decision_table(decided, method, alpha)),
            ("h2", "Against the best"), ("table", against_best(decided, method, alpha)),
            ("h2", "Its selection"), ("table", tables.selection_table(doc).xs(name(method), level="method")),
            ("table", pd.DataFrame([results.selection_counts(own_studies(doc, method))],
                                   index=pd.Index([name(method)], name="studies of")))]
    out += machine_blocks(doc, machine) + privacy_blocks(doc, method, audited)
    return out + [("p", f"Command: `{prov['command']}`.")]


def missing(doc: dict, method: str) -> list[Block]:
    """A sentence when runs are missing: the committed protocol's unfinished ones, which a verdict leaves."""
    if doc["complete"]:
        return []
    own = sum(q.split("|")[2] == method for q in doc["missing"])
    return [("p", f"**Not complete:** {len(doc['missing'])} runs are missing ({own} of {name(method)}'s): runs the "
                  "committed protocol has not finished yet. Every number below uses, per scenario, only the seeds "
                  "whose runs are all finished, as the book reads the committed export.")]


def provenance(doc: dict) -> pd.DataFrame:
    prov, m = doc["provenance"], doc["provenance"]["machine"]
    rows = {"command": prov["command"], "commit": prov["git_commit"], "date": prov["date"],
            "machine": f"{m['cpu']} ({m['isa']}), {m['cores']} cores, device {m['device']}, torch {prov['torch']}",
            "design": f"{doc['budget']['trials']} trials per study, seeds {doc['design']['seeds']}, "
                      f"sizes {doc['sizes'] or 'the setting’s own'}",
            "runs": f"{len(doc['runs'])} evaluation runs, {len(doc['studies'])} studies"}
    if "wall_seconds" in doc["verdict"]:  # (reports of earlier versions lack it)
        rows["wall time"] = (f"{doc['verdict']['wall_seconds'] / 60:.0f} min with {doc['verdict']['workers']} "
                             "worker processes (the command that finished the runs; a resumed verdict's last)")
    return pd.DataFrame({"": rows}).rename_axis("provenance")


def own_studies(doc: dict, method: str) -> dict:
    return {**doc, "studies": [s for s in doc["studies"] if s["method"] == method]}


def against_natmu(decided: pd.DataFrame, method: str, alpha: float) -> pd.DataFrame:
    """Per scenario, the method's per-seed AvgGap minus NatMU's, its interval, and which way it is decided."""
    pairs = decisions.compare(decided, method, alpha)
    pairs = pairs[pairs.rival == "natmu"]
    way = ["closer" if c < alpha else "farther" if f < alpha else "undecided"
           for c, f in zip(pairs.p_closer, pairs.p_farther)]
    return pd.DataFrame({"seeds": pairs.seeds.values,
                         f"{name(method)} − NatMU": [f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]" for d, lo, hi in
                                                     zip(pairs.difference, pairs.low, pairs.high)],
                         f"{name(method)} is": way}, index=pairs.scenario.values).rename_axis("vs NatMU")


def against_best(decided: pd.DataFrame, method: str, alpha: float) -> pd.DataFrame:
    places = decisions.best_set(decided, alpha)
    own = places[places.method == method].set_index("scenario")
    return pd.DataFrame({"best": own.best.map(name), "place": own.place, "AvgGap − best": own.difference.round(2),
                         "vs a second Retrain": own.floor_place})


def machine_blocks(doc: dict, machine: dict | None) -> list[Block]:
    """Which runs the report compares: the committed ten's as committed, or all run again here, and why."""
    head = ("h2", "This machine against the committed runs")
    if machine is None:
        return [head, ("p", "No committed run is used: a quick verdict runs every method here.")]
    cells = pd.DataFrame(machine["cells"])
    said = "No committed cell was re-run (--no-recheck)." if cells.empty else (
        f"Seed 0 of {cells.groupby(['scenario', 'method']).ngroups} committed cells was re-run here from its pinned "
        f"original with its recorded parameters: {int(cells.within.sum())} of {len(cells)} metrics fell within the "
        "committed seeds' noise band around the committed value (the reproduction tests' rule).")
    if machine["rerun"]:
        tuned_on = "; ".join(f"{d['device']}, {d['precision']}, torch {d['torch']}" for d in doc.get("tuned_on", []))
        said += (f" **The committed runs do not compare with this machine's** ({machine['why']}), so the whole "
                 f"test phase ran again here ({len(doc['runs'])} evaluation runs and {len(doc['replication'])} "
                 "replication runs, every method's and the references'): every number this report compares comes "
                 f"from this machine. The committed methods keep their committed parameters, chosen on {tuned_on}.")
    else:
        said += (f" This machine is the committed runs' ({machine['here']['device']}, {machine['here']['precision']}, "
                 f"torch {machine['here']['torch']}), so the committed methods' runs are compared as committed. "
                 "Retrain's models are not pinned: the new method's tuning trials score against a Retrain trained "
                 "here, the committed methods' against the committed one (the tables compare every method with the "
                 "same committed Retrain rows).")
    return [head, ("p", said)] + ([] if cells.empty else [("table", cells.set_index(["scenario", "method",
                                                                                      "metric"]).round(2))])


def privacy_blocks(doc: dict, method: str, audited: dict | None) -> list[Block]:
    """The method's U-LiRA row beside the committed audit's, or the command that makes it."""
    from . import ulira

    if audited is None:
        how = ("a quick verdict's parameters were chosen at reduced sizes: audit a full verdict's" if
               doc["verdict"]["quick"] else "run the verdict again with `--audit` (it resumes, then audits)")
        return [("h2", "Privacy"), ("p", f"Not audited: {how}.")]
    committed = results.load_audit(f"ulira-{doc['protocol']}")
    audits = [a for a in committed["audits"] if a["method"] != method] + audited["audits"]
    table = ulira.privacy_summary(audits)
    own = table[table.method == method].iloc[0]
    retrain = table[table.method == "retrain"].iloc[0]
    diff, low, high = ulira.example_difference(audits, method, "retrain")
    table = table.assign(method=table.method.map(lambda m: f"→ {name(m)}" if m == method else name(m)))
    return [("h2", "Privacy: U-LiRA"),
            ("p", f"U-LiRA, chapter 7's per-example attack, tells {name(method)}'s forgotten candidates from unseen "
                  f"ones with accuracy {own.ULiRA:.3f} ± {own.ULiRA_se:.3f}; Retrain's is {retrain.ULiRA:.3f} ± "
                  f"{retrain.ULiRA_se:.3f}. Candidate by candidate, {name(method)} minus Retrain is {diff:+.3f} "
                  f"[{low:+.3f}, {high:+.3f}] (95% interval): "
                  + ("more exposed than Retrain" if low > 0 else "less exposed than Retrain" if high < 0 else
                     "not distinguishable from Retrain at this many models") +
                  f". Its row's {own.models} models ran here; the other rows are the committed audit's."),
            ("table", table.set_index("method").round(3))]


# ---------------------------------------------------------------------------------------------
# rendering

def render(folder: str | Path) -> list[Block]:
    """Write a verdict folder's report (``verdict.md`` and ``verdict.html``) from what it holds: the export,
    the machine's comparison and, when it ran, the audit (the command does this last; so does anyone who
    re-renders a committed report after the report's code changed). Returns the blocks."""
    from .verdict import AUDIT, EXPORT, RECHECK

    folder = Path(folder)
    read = {f: json.loads((folder / f).read_text()) if (folder / f).exists() else None for f in (EXPORT, RECHECK)}
    audited = results.load_audit(folder / AUDIT) if (folder / AUDIT).exists() else None
    report = blocks(read[EXPORT], read[RECHECK], audited)
    (folder / "verdict.md").write_text(markdown(report))
    (folder / "verdict.html").write_text(to_html(report))
    return report


def markdown(report: list[Block]) -> str:
    out = []
    for kind, body in report:
        out.append({"h1": "# ", "h2": "## ", "p": ""}.get(kind, "") + body if kind != "table" else md_table(body))
    return "\n\n".join(out) + "\n"


def md_table(frame: pd.DataFrame) -> str:
    head = [frame.index.name or "", *map(str, frame.columns)]
    rows = [[str(i if not isinstance(i, tuple) else " / ".join(map(str, i))), *map(str, r)]
            for i, r in zip(frame.index, frame.itertuples(index=False))]
    return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in line) + " |"
                     for line in [head, ["---"] * len(head), *rows])


def inline(text: str) -> str:
    """Markdown's bold, italic and code marks as HTML, the rest escaped."""
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", re.sub(r"\*(.+?)\*", r"<i>\1</i>", text))


def to_html(report: list[Block]) -> str:
    out = ["<!doctype html>", '<html><head><meta charset="utf-8">', f"<title>{html.escape(report[0][1])}</title>",
           "<style>body{font-family:sans-serif;max-width:72em;margin:2em auto}table{border-collapse:collapse;"
           "margin:1em 0}td,th{border:1px solid #bbb;padding:.2em .5em}</style></head><body>"]
    for kind, body in report:
        if kind == "table":
            head = [body.index.name or "", *map(str, body.columns)]
            out.append("<table><tr>" + "".join(f"<th>{inline(h)}</th>" for h in head) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{inline(str(c))}</td>" for c in (i if not isinstance(i, tuple) else
                    " / ".join(map(str, i)), *r)) + "</tr>" for i, r in zip(body.index, body.itertuples(index=False))]
            out.append("</table>")
        else:
            out.append(f"<{kind}>{inline(body)}</{kind}>")
    return "\n".join([*out, "</body></html>"]) + "\n"
