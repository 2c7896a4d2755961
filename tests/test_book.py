r"""The built book, as a reader sees it: every chapter page renders its figures in headless Chromium
and shows no error output, every page renders its math offline (MathJax is served from the book
itself, so no page may show raw ``\(`` or ``$$``), and no page of the public book holds a solution of
an assignment. Needs `make book` first; CI builds the book and sets NATMU_REQUIRE_BOOK.
NATMU_BOOK_HTML points the tests at another build's html folder (default _build/html), e.g. a build of
a copy with ``execute_notebooks: "off"`` to check the rendering alone. The instructor edition's tests
need `make book-instructor` (CI builds both)."""

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
INSTRUCTOR_HTML = ROOT / "_build" / "instructor" / "_build" / "html"
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
STUDENT = ROOT / "natmu_lite" / "classroom" / "notebooks"
ASSIGNMENTS = sorted(p.stem for p in STUDENT.glob("[0-9]*.ipynb"))
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


class PageText(HTMLParser):
    """The text of a page, without the elements of ``hidden`` (scripts and styles at least)."""

    def __init__(self, hidden: set[str]):
        super().__init__()
        self.hide, self.hidden, self.parts = hidden, 0, []

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in self.hide

    def handle_endtag(self, tag):
        if tag in self.hide and self.hidden > 0:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


# The text a reader sees on a rendered page: no scripts or styles, and no code (``<pre>``, ``<code>``),
# where TeX may stand on purpose; and all the text of a page, code included.
VISIBLE = {"script", "style", "noscript", "template", "pre", "code", "textarea"}
ALL = {"script", "style"}


def text_of(html: str, hidden: set[str]) -> str:
    parser = PageText(hidden)
    parser.feed(html)
    return "".join(parser.parts)


def assert_math_rendered(page: Path, dom: str) -> None:
    """MathJax, served from the book, typeset every formula: no raw TeX delimiter is left in the
    page's visible text, and a page with math shows MathJax's output."""
    text = text_of(dom, VISIBLE)
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


def normalised(text: str) -> str:
    """Whitespace runs as one space, typographic quotes and dashes as ASCII (Sphinx's smartquotes)."""
    for fancy, plain in ("‘'", "’'", '“"', '”"', "–-", "—-"):
        text = text.replace(fancy, plain)
    return re.sub(r"\s+", " ", text)


def page_text(page: Path) -> str:
    return normalised(text_of(page.read_text(), ALL))


def sources(notebook: Path) -> str:
    return "".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"])


def solution_probes(assignment: str) -> list[str]:
    """Pieces of an assignment's solutions that neither its student version nor the chapters hold: each solution
    code line, and each run of plain words of the model answers (math and markup left out, as pages show them)."""
    public = [sources(STUDENT / f"{assignment}.ipynb"), *(sources(nb) for nb in (ROOT / "notebooks").glob("*.ipynb"))]
    student = normalised("\n".join(public))
    probes, inside = [], False
    for line in (ROOT / "assignments" / "source" / f"{assignment}.py").read_text().splitlines():
        if line.strip().endswith(("BEGIN SOLUTION", "END SOLUTION")):
            inside = line.strip().endswith("BEGIN SOLUTION")
        elif inside and line.startswith("# "):  # a model answer
            probes += [m.strip() for m in re.findall(r"[A-Za-z][\w ,;'()-]{30,}", line[2:])]
        elif inside and len(line.strip()) >= 20:  # solution code
            probes.append(normalised(line.strip()))
    return [p for p in probes if p not in student]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_public_book_holds_no_solution(assignment):
    """The public book shows each assignment as students get it: no page (the assignment's own, the instructors',
    any other) and no downloadable source holds a line of its solutions or its model answers."""
    require_book()
    page = HTML / "natmu_lite" / "classroom" / "notebooks" / f"{assignment}.html"
    assert page.exists(), f"{assignment} is not in the built book"
    probes = solution_probes(assignment)
    assert len(probes) >= 5, probes
    text = page_text(page)
    shown = [line for line in (STUDENT / f"{assignment}.ipynb").read_text().split('"') if line.startswith("def ")]
    assert shown and normalised(shown[0].rstrip("\\n")) in text, "the page does not show the exercise's code"
    files = [*HTML.rglob("*.html"), *(HTML / "_sources").rglob("*.ipynb"), *(HTML / "_sources").rglob("*.md")]
    for file in files:
        content = page_text(file) if file.suffix == ".html" else normalised(file.read_text())
        found = [p for p in probes if p in content]
        assert not found, f"{file.relative_to(HTML)} holds solutions of {assignment}: {found[:3]}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_assignment_pages_render_without_errors(assignment, tmp_path):
    """The student versions are shown, not executed: no error output, math typeset."""
    require_book()
    page = HTML / "natmu_lite" / "classroom" / "notebooks" / f"{assignment}.html"
    dom = render(page, tmp_path, "--dump-dom", "--virtual-time-budget=5000")
    assert "<main" in dom or "bd-main" in dom, "the page did not render"
    for marker in ERRORS:
        assert marker not in dom, f"{assignment} shows an error output ({marker})"
    assert_math_rendered(page, dom)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_instructor_edition_hides_every_solution(assignment, tmp_path):
    """The instructor edition (`make book-instructor`) holds the solutions, executed, each in a closed toggle."""
    if not (INSTRUCTOR_HTML / "index.html").exists():
        if os.environ.get("NATMU_REQUIRE_BOOK"):
            pytest.fail("NATMU_REQUIRE_BOOK is set but the instructor edition is missing: run `make book-instructor`")
        pytest.skip("the instructor edition is not built (run `make book-instructor`)")
    page = INSTRUCTOR_HTML / "assignments" / "solutions" / f"{assignment}.html"
    assert page.exists(), f"{assignment} is not in the instructor edition"
    text = page_text(page)
    assert all(p in text for p in solution_probes(assignment)), "a solution is missing from the instructor edition"
    dom = render(page, tmp_path, "--dump-dom", "--virtual-time-budget=5000")
    cells = json.loads((ROOT / "assignments" / "solutions" / f"{assignment}.ipynb").read_text())["cells"]
    solutions = sum("hide-input" in c["metadata"].get("tags", []) for c in cells)
    toggles = re.findall(r"<details[^>]*class=\"[^\"]*hide above-input[^\"]*\"[^>]*>", dom)
    assert solutions > 0 and len(toggles) == solutions, f"{len(toggles)} toggles for {solutions} solutions"
    assert not any(" open" in t for t in toggles), "a solution is shown open"
    for marker in ERRORS:
        assert marker not in dom, f"{assignment} shows an error output ({marker})"
    assert "points from the autograder" in dom, "the checking cell did not grade the solution"
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
