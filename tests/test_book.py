r"""The built book, as a reader sees it: every chapter page renders its figures in headless Chromium
and shows no error output, and every page renders its math offline (MathJax is served from the book
itself, so no page may show raw ``\(`` or ``$$``). Needs `make book` first; CI builds the book and sets
NATMU_REQUIRE_BOOK. NATMU_BOOK_HTML points the tests at another build's html folder (default
_build/html), e.g. a build of a copy with ``execute_notebooks: "off"`` to check the rendering alone."""

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("NATMU_BOOK_HTML") or ROOT / "_build" / "html").resolve()
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
ASSIGNMENTS = sorted(p.stem for p in (ROOT / "notebooks" / "assignments").glob("[0-9]*.ipynb"))
ERRORS = ("Traceback (most recent call last)", "output error", "ansi-red-fg\">Error")
RAW_MATH = ("\\(", "\\[", "$$")  # TeX delimiters: on a page only while MathJax has not typeset it


def toc_pages() -> list[str]:
    """Every page of the book's table of contents that is written in Markdown (the notebooks have
    their own tests below), as a path without suffix."""
    def files(node):
        if isinstance(node, dict):
            yield from ([node["file"]] if "file" in node else [])
            for value in node.values():
                yield from files(value)
        elif isinstance(node, list):
            for item in node:
                yield from files(item)
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"], *files(toc.get("parts", toc.get("chapters", [])))]
    return [p for p in pages if (ROOT / f"{p}.md").exists()]


PAGES = toc_pages()


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


class VisibleText(HTMLParser):
    """The text a reader sees on a rendered page: no scripts or styles, and no code (``<pre>``,
    ``<code>``), where TeX may stand on purpose."""

    HIDDEN = {"script", "style", "noscript", "template", "pre", "code", "textarea"}

    def __init__(self):
        super().__init__()
        self.hidden, self.parts = 0, []

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in self.HIDDEN

    def handle_endtag(self, tag):
        if tag in self.HIDDEN and self.hidden > 0:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def visible_text(dom: str) -> str:
    parser = VisibleText()
    parser.feed(dom)
    return "".join(parser.parts)


def assert_math_rendered(page: Path, dom: str) -> None:
    """MathJax, served from the book, typeset every formula: no raw TeX delimiter is left in the
    page's visible text, and a page with math shows MathJax's output."""
    text = visible_text(dom)
    for marker in RAW_MATH:
        at = text.find(marker)
        assert at < 0, f"{page.name} shows raw math: ...{text[max(at - 60, 0):at + 60]!r}..."
    if 'class="math' in page.read_text():
        assert "<mjx-container" in dom, f"{page.name} has math but MathJax typeset none of it"


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
    assert_math_rendered(page, dom)


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
    assert_math_rendered(page, dom)


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_its_math_offline(name, tmp_path):
    """The Markdown pages (the notebooks' pages are checked above): MathJax comes from the book's own
    ``_static/mathjax``, not from a CDN, and typesets every formula."""
    require_book()
    page = HTML / f"{name}.html"
    assert page.exists(), f"{name} is not in the built book"
    assert "cdn.jsdelivr.net/npm/mathjax" not in page.read_text(), f"{name} loads MathJax from a CDN"
    dom = render(page, tmp_path, "--dump-dom", "--virtual-time-budget=5000")
    assert "<main" in dom or "bd-main" in dom, "the page did not render"
    assert_math_rendered(page, dom)


def test_landing_page_screenshot_is_in_the_build():
    """`make book` keeps a screenshot of the landing page for people to see; it must not be blank."""
    require_book()
    shot = HTML / "_static" / "landing.png"
    assert shot.exists() and shot.stat().st_size > 20_000
