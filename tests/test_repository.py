"""The repository stands on its own: nothing in it points to documents a person who clones it does
not have (the team's private notes and specification) or to issue numbers of the team's tracker."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = re.compile(r"\.\./shared|shared/(paper|reference)|DESIGN\.md|official-spec|anchors-|"
                     r"\bspec sections?\b|\bissue (#?\d+|note)\b|the issue's", re.IGNORECASE)


def tracked_text_files() -> list[Path]:
    try:
        names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / n for n in names.splitlines() if not n.endswith((".db", ".png", ".gz"))]


def test_no_file_points_outside_the_repository():
    hits = []
    for path in tracked_text_files():
        if path == Path(__file__).resolve() or not path.exists():
            continue
        for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not hits, "references to documents outside the repository:\n" + "\n".join(hits)
