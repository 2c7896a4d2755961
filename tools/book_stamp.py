"""What the last book build executed, and from which sources, so that `make test` after `make` does not
execute the chapters a second time.

``python tools/book_stamp.py prepare`` (before ``jupyter-book build``): Jupyter Book's execution cache
keys a notebook on its code cells alone, so after a change to the package or to the committed results
it would show outputs computed by the old code. When those sources changed since the last build, the
cache is dropped and every notebook is executed again.

``python tools/book_stamp.py write FOLDER`` (after a build that succeeded, warnings being errors, which
executed the notebooks under FOLDER: ``notebooks`` for the public book, ``assignments/solutions`` for the
instructor edition): records, per notebook, a hash of the notebook and of those sources in
``_build/executed.json``.

``tests/conftest.py`` then leaves out of the test run the notebooks whose hash is still the recorded
one: the build has just executed them, from exactly these sources, without an error.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMP = ROOT / "_build" / "executed.json"
JUPYTER_CACHE = ROOT / "_build" / ".jupyter_cache"
SOURCES = ("natmu_lite/**/*.py", "results/*.json", "results/*-originals/*.pt")  # what the notebooks run and read


def sources_digest(root: Path = ROOT) -> str:
    h = hashlib.sha256()
    for path in sorted(p for pattern in SOURCES for p in root.glob(pattern)):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def stamps(root: Path = ROOT, folder: str = "") -> dict[str, str]:
    """Per notebook under ``folder`` (paths relative to ``root``): the hash of its file and of the sources."""
    digest = sources_digest(root)
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes() + digest.encode()).hexdigest()
            for p in sorted((root / folder).glob("**/*.ipynb")) if ".ipynb_checkpoints" not in p.parts}


def recorded(root: Path = ROOT) -> dict:
    path = root / STAMP.relative_to(ROOT)
    return json.loads(path.read_text()) if path.exists() else {}


def unchanged(root: Path = ROOT) -> set[str]:
    """The notebooks the last successful build executed from what is on disk now."""
    before = recorded(root).get("notebooks", {})
    return {nb for nb, h in stamps(root).items() if before.get(nb) == h}


def prepare(root: Path = ROOT) -> None:
    """Drop the execution cache unless it was made from the sources on disk now; record them. (A stamp
    holds the sources' hash, so stamps of other sources never match: they need no clearing.)"""
    cache, now = root / JUPYTER_CACHE.relative_to(ROOT), sources_digest(root)
    doc = recorded(root)
    if cache.exists() and doc.get("sources") != now:
        shutil.rmtree(cache)
        print("the package or the committed results changed since the last build: every notebook runs again")
    _save(root, {**doc, "sources": now})


def write(folder: str, root: Path = ROOT) -> None:
    doc = recorded(root)
    _save(root, {"sources": sources_digest(root), "notebooks": {**doc.get("notebooks", {}), **stamps(root, folder)}})


def _save(root: Path, doc: dict) -> None:
    path = root / STAMP.relative_to(ROOT)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    prepare() if sys.argv[1] == "prepare" else write(sys.argv[2])
