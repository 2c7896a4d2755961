"""The book's sources, without building it: the Pages workflow builds it with the README's command,
MathJax comes with the book (no CDN), notebook code fits the page, and the chapters keep the reader's
path: computed numbers only, glossary links at each term's first use, the paper cited, a summary and
exercises at the end."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
WIDTH = 88  # characters of code a book page shows without cutting the line


def readme_build_command() -> str:
    """The command the README gives for building the book: the line of its "two commands" block
    whose comment says it builds the book."""
    block = re.search(r"## The two commands.*?```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "the README has no block of its two commands"
    lines = [line for line in block.group(1).splitlines() if "build the book" in line]
    assert len(lines) == 1, "the README's block has no (or several) book-building lines"
    return lines[0].split("#")[0].strip()


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(wf: dict) -> list[dict]:
    return [step for job in wf["jobs"].values() for step in job.get("steps", [])]


def run_lines(wf: dict) -> list[str]:
    return [line.strip() for step in steps(wf) for line in step.get("run", "").splitlines()]


def test_pages_workflow_builds_the_book_with_the_readmes_command():
    wf = workflow()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "push" in triggers and "workflow_dispatch" in triggers
    assert {"pages": "write", "id-token": "write"}.items() <= wf["permissions"].items()
    command = readme_build_command()
    assert command == "make"
    assert command in run_lines(wf), f"the workflow does not run the README's build command ({command!r})"
    uses = [step.get("uses", "") for step in steps(wf)]
    assert any(u.startswith("actions/checkout@") for u in uses)
    assert any(u.startswith("actions/setup-python@") for u in uses)
    upload = [s for s in steps(wf) if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert len(upload) == 1 and upload[0]["with"]["path"] == "_build/html"
    assert any(u.startswith("actions/deploy-pages@") for u in uses)
    deploy = [name for name, job in wf["jobs"].items()
              if any(s.get("uses", "").startswith("actions/deploy-pages@") for s in job["steps"])]
    assert len(deploy) == 1 and wf["jobs"][deploy[0]]["environment"]["name"] == "github-pages"
    assert wf["jobs"][deploy[0]]["needs"] in ("build", ["build"])


def test_pages_workflow_refuses_to_publish_what_readers_could_not_install():
    """Before it builds, the workflow runs the publishing check (tools/repository_url.py): the placeholder
    address, a stale copy of the address or a package that differs from the tag the install cells install
    stop it. The check needs the repository's tags, so the checkout fetches the whole history."""
    wf = workflow()
    lines = run_lines(wf)
    assert "python tools/repository_url.py --publish-check" in lines
    assert lines.index("python tools/repository_url.py --publish-check") < lines.index("make")
    checkout = [s for s in steps(wf) if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout and all(s.get("with", {}).get("fetch-depth") == 0 for s in checkout)


def test_pages_workflow_installs_the_makefiles_debian_packages():
    """The Makefile installs its Debian packages only as root; the workflow's runner is not root."""
    debs = re.search(r"^DEBS = (.*)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    packages = set(re.findall(r",,([a-z0-9][a-z0-9.+-]*)\)", debs))
    assert packages == {"dataset-fashion-mnist", "chromium"}, packages
    apt = " ".join(step.get("run", "") for step in steps(workflow()) if "apt-get install" in step.get("run", ""))
    missing = {p for p in packages if not re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])", apt)}
    assert not missing, f"the workflow does not install {sorted(missing)}"


def test_mathjax_is_served_from_the_book():
    """sphinx-mathjax-offline copies MathJax into _static/mathjax and points the pages at it, so that
    math renders without a network (tests/test_book.py checks the rendered pages)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "sphinx-mathjax-offline" in config["sphinx"]["extra_extensions"]
    assert "mathjax_path" not in config["sphinx"].get("config", {}), "a mathjax_path would override it"
    requirements = (ROOT / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("sphinx-mathjax-offline") for line in requirements)


def book_notebooks() -> list[Path]:
    """Every notebook of the book's table of contents (the assignments as students get them), and the
    assignments' solutions (the instructor edition's part, generated from the same sources)."""
    files = re.findall(r"^\s*-?\s*(?:file|root):\s*(\S+)", (ROOT / "_toc.yml").read_text(), re.M)
    notebooks = [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]
    return notebooks + sorted((ROOT / "assignments" / "solutions").glob("*.ipynb"))


def code_lines(path: Path) -> list[tuple[int, str]]:
    """(cell number, line) of every line shown as code: code cells and fenced blocks of Markdown (not
    MyST directives, ```{glue:figure} and the like, whose lines are captions and options)."""
    out = []
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code":
            out += [(i, line) for line in source.splitlines()]
        elif cell["cell_type"] == "markdown":
            for _fence, info, body in re.findall(r"^ *(```|~~~)([^\n]*)\n(.*?)^ *\1", source, re.S | re.M):
                if not info.strip().startswith("{") or info.strip().startswith("{code"):
                    out += [(i, line) for line in body.splitlines()]
    return out


def test_notebook_code_fits_the_page():
    """Code lines of at most 88 characters: longer ones are cut at the page's width. (Edit an
    assignment's source, assignments/source/, and run assignments/build.py.)"""
    notebooks = book_notebooks()
    assert len(notebooks) >= 12
    long = [f"{nb.relative_to(ROOT)}, cell {i}: {len(line)} characters: {line.strip()[:60]}..."
            for nb in notebooks for i, line in code_lines(nb) if len(line) > WIDTH]
    assert not long, f"code lines longer than {WIDTH} characters:\n" + "\n".join(long)



# ---------------------------------------------------------------------------------------------
# The reader's path: every number a chapter states about its results is computed (glued), every
# term links the glossary where a chapter first uses it, and every chapter cites the paper, says which
# of its claims it tests, and ends with a summary and exercises.

CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
GLOSSARY = ROOT / "book" / "glossary.md"
PAPER = "he2024natmu"


def markdown_cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]


def blank(pattern: re.Pattern, text: str) -> str:
    """``text`` with every match of ``pattern`` replaced by as many spaces (positions stay)."""
    return pattern.sub(lambda m: " " * len(m.group()), text)


# Markdown that says nothing in words: code, roles ({glue:text}, {cite}, {term}, ...), maths, link
# targets, headings, MyST targets, comments, and the numbers of numbered lists.
NOT_PROSE = [re.compile(p, f) for p, f in (
    (r"^ *(```|~~~).*?^ *\1", re.S | re.M), (r"\$\$.*?\$\$", re.S), (r"\{[\w:.-]+\}`[^`]*`", 0),
    (r"`[^`]*`", 0), (r"(?<!\\)\$[^$\n]+\$", 0), (r"\]\([^)]*\)", 0), (r"^#+ .*$", re.M),
    (r"<!--.*?-->", re.S), (r"^\(.*\)=\s*$", re.M), (r"^ *\d+\. ", re.M))]
# Numbers that name something rather than state a result.
NAMES = [re.compile(p) for p in (
    # the paper's figures, tables, sections and equations; the book's chapters and assignments
    r"\b(?:Figs?\.|Tables?|Tabs?\.|Secs?\.|Eqs?\.)\s*\d+(?:\.\d+)?[a-z]?(?:\s*(?:[-–/,]|and|or)\s*\d+(?:\.\d+)?[a-z]?)*",
    r"\b(?:[Cc]hapters?|[Aa]ssignments?)\s+\d+(?:\s*(?:[-–/,]|and|or|to)\s*\d+)*",
    r"[^\W\d_]+-?\d+[\w%]*",  # names with digits: CIFAR-100, ResNet18, ℓ1, LRP-0, bf16, random-1%
    r"\b(?:seed|trial)s? \d+\b",  # a seed or a trial by its number
    r"\b1% (?:or|and) 10%|\b10% to 1%",  # the paper's forgetting ratios, and its transfer (Fig. 4)
    r"\b95%(?= (?:\{term\}`)?(?:confidence |Student-t )?intervals?)",  # the intervals' level
)]
# Numbers a chapter may state because they hold by definition, with the reason.
ALLOWED = {"07": [re.compile(r"\b50%")]}  # U-LiRA's accuracy with no trace: 50% by construction
NUMBERS = re.compile(r"\d+(?:[.,]\d+)*%?|\b(?:three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
                     r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|hundreds?|"
                     r"thousands?|dozens?)\b", re.I)
# Claims the chapters once typed in where they could compute them; none may come back.
TYPED_IN = {"01": ["classifies every forget sample correctly"], "02": ["100 forget images"],
            "05": ["the shift is small", "lands in between", "rises on most rows"], "06": ["24 noisy scores"],
            "07": ["sixteen models"]}


def typed_numbers(chapter: str, cells: list[str]) -> list[str]:
    """Every number (in digits, or in words from three up) that the Markdown ``cells`` of ``chapter``
    state in prose, outside glue roles, maths, code, citations, headings and names."""
    found = []
    for i, text in enumerate(cells):
        for pattern in NAMES + ALLOWED.get(chapter, []) + NOT_PROSE:
            text = blank(pattern, text)
        found += [f"Markdown cell {i}: ...{' '.join(text[max(m.start() - 50, 0):m.end() + 20].split())}..."
                  for m in NUMBERS.finditer(text)]
    return found


def typed_claims(chapter: str, cells: list[str]) -> list[str]:
    text = " ".join(" ".join(cells).replace("*", "").split()).lower()
    return [claim for claim in TYPED_IN.get(chapter, []) if claim in text]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_prose_states_only_computed_numbers(chapter):
    """A number about the chapter's results, or a parameter (a budget, a number of models or seeds,
    a forget set's size), comes from the chapter's own run through ``glue`` (``{glue:text}`name```),
    so that the prose stays true when the numbers change."""
    cells = markdown_cells(chapter)
    claims = typed_claims(chapter.name[:2], cells)
    assert not claims, f"{chapter.name} types in claims it should compute: {claims}"
    numbers = typed_numbers(chapter.name[:2], cells)
    assert not numbers, f"{chapter.name} types numbers into its prose (glue them):\n" + "\n".join(numbers)


def glossary_terms() -> list[str]:
    """The terms of the glossary page's ``{glossary}`` blocks (a term line is not indented)."""
    blocks = re.findall(r"^```\{glossary\}\n(.*?)^```", GLOSSARY.read_text(), re.S | re.M)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line[0].isspace() and not line.startswith(":")]


def term_pattern(term: str) -> re.Pattern:
    """A term as a word (plural too); case-sensitive for names (RA, Retrain), not for lower-case terms."""
    return re.compile(rf"(?<![\w-]){re.escape(term)}(?:s|es)?(?![\w-])", 0 if term != term.lower() else re.I)


def unlinked_terms(texts: list[str], terms: list[str]) -> list[str]:
    """The terms whose first use in ``texts`` (one page's Markdown, in order) is not a ``{term}`` link."""
    doc = "\n\n".join(texts)
    linked = {}
    for m in re.finditer(r"\{term\}`([^`]*)`", doc):
        target = re.search(r"<([^<>]*)>\s*$", m.group(1))
        linked.setdefault((target.group(1) if target else m.group(1)).strip(), m.start())
    prose = doc
    for pattern in [re.compile(r"\[[^\]]*\]\([^)]*\)"), *NOT_PROSE]:  # a link's text is a link already
        prose = blank(pattern, prose)
    out = []
    for term in terms:
        use = term_pattern(term).search(prose)
        if use and linked.get(term, len(doc)) > use.start():
            out.append(f"{term!r} at ...{' '.join(prose[max(use.start() - 40, 0):use.end() + 20].split())}...")
    return out


def test_glossary_defines_the_books_terms():
    terms = glossary_terms()
    assert len(terms) == len(set(terms)), "a term is defined twice"
    for name in ("RA", "FA", "MIA", "AvgGap", "ToW", "U-LiRA", "Retrain", "Original", "NatMU", "Finetune", "GA",
                 "Amnesiac", "BadTeacher", "SalUn", "SSD", "NegGrad+", "SCRUB", "ℓ1-sparse", "MixUp", "LRP", "TPE",
                 "Optuna", "Student-t interval", "distillation", "temperature", "saliency"):
        assert name in terms, f"the glossary does not define {name}"
    toc = (ROOT / "_toc.yml").read_text()
    assert "file: book/glossary" in toc, "the glossary is not in the table of contents"


@pytest.mark.parametrize("page", [*CHAPTERS, ROOT / "book" / "intro.md"], ids=lambda p: p.stem)
def test_first_use_of_each_term_links_the_glossary(page):
    texts = markdown_cells(page) if page.suffix == ".ipynb" else [page.read_text()]
    unlinked = unlinked_terms(texts, glossary_terms())
    assert not unlinked, (f"{page.name}: the first use of these terms is not a {{term}} link to the glossary:\n"
                          + "\n".join(unlinked))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_the_paper_and_ends_with_summary_and_exercises(chapter):
    """The opening cites the paper (the claim the chapter tests); after the last code cell come a
    Summary and two or three Exercises."""
    cells = json.loads(chapter.read_text())["cells"]
    assert cells[0]["cell_type"] == "markdown" and re.search(rf"\{{cite(:[tp])?\}}`[^`]*{PAPER}", "".join(
        cells[0]["source"])), f"{chapter.name} does not cite the paper in its opening"
    last_code = max(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    tail = "\n".join("".join(c["source"]) for c in cells[last_code + 1:])
    assert re.search(r"^## Summary\s*$", tail, re.M), f"{chapter.name} ends without a Summary"
    exercises = re.search(r"^## Exercises\s*$(.*)", tail, re.M | re.S)
    assert exercises, f"{chapter.name} ends without Exercises"
    count = len(re.findall(r"^\d+\. ", exercises.group(1), re.M))
    assert 2 <= count <= 3, f"{chapter.name} has {count} exercises"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_display_only_code_is_folded(chapter):
    """Code that only builds Markdown for the page is folded away (``hide-input``) or removed from the
    page (``remove-input``, ``remove-cell``): the page shows its result."""
    for i, cell in enumerate(json.loads(chapter.read_text())["cells"]):
        if cell["cell_type"] == "code" and "Markdown(" in "".join(cell["source"]):
            assert {"hide-input", "remove-input", "remove-cell"} & set(cell["metadata"].get("tags", [])), \
                f"{chapter.name}, cell {i} builds Markdown"
