"""The instructor edition of the book: ``make book-instructor`` (this script, then Jupyter Book).

The public book (``make book``, what the Pages workflow publishes) shows each assignment as students get it,
without solutions. This edition is the same book plus a part with the solved notebooks
(``assignments/solutions/``: every solution behind a toggle, every model answer with what to look for when
grading it), executed. This script writes its table of contents and configuration into ``_build/instructor/``
(derived from ``_toc.yml`` and ``_config.yml``, so the two editions cannot drift apart); Jupyter Book then
builds it into ``_build/instructor/_build/html``, reusing the public build's execution cache, so that after
``make book`` only the solutions execute. Keep this edition off public hosting.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "instructor"
SOLUTIONS = "assignments/solutions"


def toc() -> dict:
    """The public table of contents, and the solutions as a part of their own after the assignments."""
    out = yaml.safe_load((ROOT / "_toc.yml").read_text())
    solved = sorted(p.stem for p in (ROOT / SOLUTIONS).glob("[0-9]*.ipynb"))
    after = next(i for i, part in enumerate(out["parts"]) if part["caption"] == "Assignments") + 1
    out["parts"].insert(after, {"caption": "Solutions (instructor edition)",
                                "chapters": [{"file": f"{SOLUTIONS}/{name}"} for name in solved]})
    return out


def config() -> dict:
    """The public configuration, titled as this edition, sharing the public build's execution cache."""
    out = yaml.safe_load((ROOT / "_config.yml").read_text())
    out["title"] = f"{out['title']}: instructor edition"
    out["execute"]["cache"] = str(ROOT / "_build" / ".jupyter_cache")
    out["sphinx"]["local_extensions"] = {k: str(ROOT / v) for k, v in out["sphinx"]["local_extensions"].items()}
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, content in (("_toc.yml", toc()), ("_config.yml", config())):
        (OUT / name).write_text(yaml.safe_dump(content, sort_keys=False))
        print(OUT / name)


if __name__ == "__main__":
    main()
