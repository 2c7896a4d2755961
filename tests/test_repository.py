"""The repository stands on its own: nothing in it points to documents a person who clones it does
not have (the team's private notes) or to numbers of the team's task tracker."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Built from fragments so that this file does not contain, and so match, the phrases it looks for:
# the folder beside the checkout, the team's design and specification files, and tracker numbers.
FOLDER, SPEC, TRACKER = "sha" + "red", "sp" + "ec", "iss" + "ue"
OUTSIDE = re.compile(rf"\.\./{FOLDER}|{FOLDER}/(paper|reference)|DESIGN\.md|official-{SPEC}|anchors-|"
                     rf"\b{SPEC} sections?\b|\b{TRACKER} (#?\d+|note)\b|the {TRACKER}'s", re.IGNORECASE)


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
