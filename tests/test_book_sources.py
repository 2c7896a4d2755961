"""The book's sources, without building it: the Pages workflow builds it with the README's command,
MathJax comes with the book (no CDN), and notebook code fits the page."""

import json
import re
from pathlib import Path

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
    """(cell number, line) of every line shown as code: code cells and fenced blocks of Markdown."""
    out = []
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code":
            out += [(i, line) for line in source.splitlines()]
        elif cell["cell_type"] == "markdown":
            for block in re.findall(r"^ *(```|~~~)[^\n]*\n(.*?)^ *\1", source, re.S | re.M):
                out += [(i, line) for line in block[1].splitlines()]
    return out


def test_notebook_code_fits_the_page():
    """Code lines of at most 88 characters: longer ones are cut at the page's width. (Edit an
    assignment's source, assignments/source/, and run assignments/build.py.)"""
    notebooks = book_notebooks()
    assert len(notebooks) >= 12
    long = [f"{nb.relative_to(ROOT)}, cell {i}: {len(line)} characters: {line.strip()[:60]}..."
            for nb in notebooks for i, line in code_lines(nb) if len(line) > WIDTH]
    assert not long, f"code lines longer than {WIDTH} characters:\n" + "\n".join(long)

