"""The repository stands on its own: nothing in it points to documents a person who clones it does
not have (the team's private notes) or to numbers of the team's task tracker, and its own address is
one setting (pyproject.toml's ``[project.urls] Repository``) that every copy agrees with."""

import importlib.util
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


def url_tool():
    """tools/repository_url.py, which reads the one setting (pyproject.toml's ``[project.urls]
    Repository``) and finds or rewrites its copies."""
    spec = importlib.util.spec_from_file_location("repository_url", ROOT / "tools" / "repository_url.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_copy_of_the_repository_url_is_the_setting():
    """Notebooks' install cells, Colab links, the clone line and _config.yml all hold the address of
    pyproject.toml; `make url` rewrites them after the setting changes."""
    tool = url_tool()
    url = tool.repository_url()
    assert url.startswith("https://github.com/")
    wrong = tool.differing()
    assert not wrong, "copies of the repository URL that are not the setting (run `make url`):\n" + "\n".join(wrong)
    places = {(p.relative_to(ROOT).as_posix(), kind) for p, _, kind, _ in tool.copies()}
    notebooks = [*sorted(ROOT.glob("notebooks/**/*.ipynb")), *sorted(ROOT.glob("assignments/solutions/*.ipynb")),
                 *sorted(ROOT.glob("natmu_lite/classroom/notebooks/*.ipynb"))]
    expected = {("_config.yml", "repository: url")} | {(n.relative_to(ROOT).as_posix(), "pip install")
                                                       for n in notebooks}
    assert expected <= places, f"copies not found (has their wording changed?): {sorted(expected - places)}"
    assert {kind for _, kind in places} == set(tool.COPIES), "some kind of copy is no longer found"


def test_make_url_rewrites_every_copy(tmp_path):
    """A new setting reaches every copy, and nothing else in a file changes."""
    tool = url_tool()
    files = {p for p, *_ in tool.copies()} | {ROOT / "pyproject.toml"}
    for path in files:
        (tmp_path / path.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.relative_to(ROOT)).write_text(path.read_text())
    old, new = tool.repository_url(), "https://github.com/someone-else/their-fork"
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'Repository = "{old}"', f'Repository = "{new}"'))
    assert tool.repository_url(tmp_path) == new
    assert tool.differing(tmp_path)
    changed = tool.write(tmp_path)
    assert set(changed) == {tmp_path / p.relative_to(ROOT) for p in files if p.name != "pyproject.toml"}
    assert not tool.differing(tmp_path) and all(u == new for *_, u in tool.copies(tmp_path))
    slugs = [u.removeprefix("https://github.com/") for u in (new, old)]
    for path in changed:  # only the address changed
        assert path.read_text().replace(*slugs) == (ROOT / path.relative_to(tmp_path)).read_text()
