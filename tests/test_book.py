"""The built book, as a reader sees it: every chapter page renders its figures in headless Chromium
and shows no error output. Needs `make book` first; CI builds the book and sets NATMU_REQUIRE_BOOK."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
ASSIGNMENTS = sorted(p.stem for p in (ROOT / "notebooks" / "assignments").glob("[0-9]*.ipynb"))
ERRORS = ("Traceback (most recent call last)", "output error", "ansi-red-fg\">Error")


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        pytest.fail("headless Chromium is needed (Debian: apt-get install chromium)")
    return exe


def require_book() -> None:
    if not (HTML / "index.html").exists():
        if os.environ.get("NATMU_REQUIRE_BOOK"):
            pytest.fail("NATMU_REQUIRE_BOOK is set but _build/html is missing: run `make book`")
        pytest.skip("the book is not built (run `make book`)")


FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files"]


def render(page: Path, tmp_path: Path, *extra: str) -> str:
    out = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra, page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    return out.stdout


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_renders_its_figures_without_errors(chapter, tmp_path):
    require_book()
    page = HTML / "notebooks" / f"{chapter}.html"
    assert page.exists(), f"{chapter} is not in the built book"
    dom = render(page, tmp_path, "--dump-dom", "--virtual-time-budget=5000")
    assert "<main" in dom or "bd-main" in dom, "the page did not render"
    images = re.findall(r'<img[^>]+src="([^"]+)"', dom)
    figures = [src for src in images if "_images/" in src or src.startswith("data:image")]
    assert figures, f"{chapter} shows no figure"
    for src in figures:
        if src.startswith("data:image"):
            assert len(src) > 1000, "an inline figure is empty"
        else:
            file = (page.parent / src).resolve()
            assert file.exists() and file.stat().st_size > 2000, f"figure {src} is missing or empty"
    for marker in ERRORS:
        assert marker not in dom, f"{chapter} shows an error output ({marker})"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_assignment_pages_hide_every_solution(assignment, tmp_path):
    """Each solution cell of the notebook is on the page, executed, inside a closed toggle."""
    require_book()
    page = HTML / "notebooks" / "assignments" / f"{assignment}.html"
    assert page.exists(), f"{assignment} is not in the built book"
    dom = render(page, tmp_path, "--dump-dom", "--virtual-time-budget=5000")
    cells = json.loads((ROOT / "notebooks" / "assignments" / f"{assignment}.ipynb").read_text())["cells"]
    solutions = sum("hide-input" in c["metadata"].get("tags", []) for c in cells)
    toggles = re.findall(r"<details[^>]*class=\"[^\"]*hide above-input[^\"]*\"[^>]*>", dom)
    assert solutions > 0 and len(toggles) == solutions, f"{len(toggles)} toggles for {solutions} solutions"
    assert not any(" open" in t for t in toggles), "a solution is shown open"
    for marker in ERRORS:
        assert marker not in dom, f"{assignment} shows an error output ({marker})"


def test_landing_page_screenshot_is_in_the_build():
    """`make book` keeps a screenshot of the landing page for people to see; it must not be blank."""
    require_book()
    shot = HTML / "_static" / "landing.png"
    assert shot.exists() and shot.stat().st_size > 20_000
