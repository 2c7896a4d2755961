"""The package is complete as a wheel: it declares every package it imports (and nothing it does not), and
a wheel installed on its own holds every module, the student notebooks and the committed results the
chapters read, and finds those results. (Every chapter run from such an install: tools/colab_like.py.)"""

import ast
import importlib.util
import json
import re
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from natmu_lite import results

from .conftest import build_wheel

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "natmu_lite"
# Imported by the package but not a dependency of it, and why.
OPTIONAL = {
    "myst_nb": "glue in the book build only (natmu_lite.notebook falls back to printing)",
    "IPython": "shows a figure only inside a notebook, whose kernel is IPython",
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"(?ms)^dependencies = \[(.*?)^\]", text).group(1)
    return {canonical(re.match(r"[A-Za-z0-9_.-]+", d).group(0)) for d in re.findall(r'"([^"]+)"', block)}


def sources(path: Path) -> list[str]:
    """A module's source, or each code cell of a notebook as Python (IPython's magics made calls)."""
    if path.suffix != ".ipynb":
        return [path.read_text()]
    from IPython.core.inputtransformer2 import TransformerManager

    return [TransformerManager().transform_cell("".join(c["source"]))
            for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def imported() -> dict[str, list[str]]:
    """Top-level name -> the files that import it: every import of the package's modules and of the
    notebooks it ships, at the top or inside a function, outside the standard library and the package."""
    found: dict[str, list[str]] = {}
    for path in sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.ipynb")]):
        for node in (n for source in sources(path) for n in ast.walk(ast.parse(source))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            else:
                continue
            for name in {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {"natmu_lite"}:
                found.setdefault(name, []).append(path.relative_to(ROOT).as_posix())
    return found


def test_every_import_is_a_declared_dependency_and_every_dependency_is_imported():
    names = imported()
    assert set(OPTIONAL) <= set(names), f"no longer imported, drop from OPTIONAL: {sorted(set(OPTIONAL) - set(names))}"
    where = packages_distributions()
    unknown = sorted(n for n in names if n not in where and n not in OPTIONAL)
    assert not unknown, f"imported but installed by no distribution here: {unknown}"
    used = {canonical(d): n for n in names if n not in OPTIONAL for d in where[n]}
    missing = {d: names[n] for d, n in used.items() if d not in declared()}
    assert not missing, f"imported but not in pyproject.toml's dependencies: {missing}"
    unused = sorted(declared() - set(used))
    assert not unused, f"declared in pyproject.toml but imported nowhere in natmu_lite: {unused}"


def test_every_package_folder_is_listed():
    """pyproject.toml lists the package's folders (it maps results/ in as one of them): a new folder must
    be added there, or the wheel would leave it out."""
    listed = set(re.findall(r'"(natmu_lite[a-z_.]*)"', re.search(r"(?ms)^packages = \[(.*?)\]",
                                                                   (ROOT / "pyproject.toml").read_text()).group(1)))
    folders = {p.parent.relative_to(ROOT).as_posix().replace("/", ".") for p in PACKAGE.rglob("__init__.py")}
    assert listed == folders | {"natmu_lite.committed"}, listed ^ (folders | {"natmu_lite.committed"})


@pytest.mark.slow
def test_an_installed_wheel_holds_the_package_and_finds_the_committed_results(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*") if p.suffix in (".py", ".ipynb")
               and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts}
    assert sources <= names, f"left out of the wheel: {sorted(sources - names)}"
    committed = {f"natmu_lite/committed/{p.name}" for p in (ROOT / "results").glob("*.json")}
    assert {"natmu_lite/committed/default.json", "natmu_lite/committed/ulira-default.json"} <= committed
    assert {n for n in names if n.startswith("natmu_lite/committed/")} == committed, \
        "only the JSON exports travel in the wheel (not the Optuna storage or the pinned models)"
    subprocess.run([sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", "install", "--no-deps",
                    "--target", str(tmp_path / "site"), str(wheel)], check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("from natmu_lite import results\n"
            "doc, audit = results.load_protocol('default'), results.load_audit('ulira-default')\n"
            "print(results.path('default'), len(doc['runs']), len(audit['audits']))")
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "site")})
    assert out.returncode == 0, out.stderr
    found, runs, audits = out.stdout.split()
    assert Path(found) == tmp_path / "site" / "natmu_lite" / "committed" / "default.json"
    doc, audit = results.load_protocol("default"), results.load_audit("ulira-default")
    assert (int(runs), int(audits)) == (len(doc["runs"]), len(audit["audits"]))


def test_a_clone_reads_the_results_where_they_are_written():
    """In a clone (and an editable install) the chapters read the repository's results/, which the
    protocol and the audit export to: one copy, no second one to keep in step."""
    assert results.path("default") == ROOT / "results" / "default.json"
    assert not results.PACKAGED.exists(), "natmu_lite/committed exists only in a built wheel"


def test_one_version():
    """The version the wheel is built as (and the install cells pin) is the one the package reports."""
    import natmu_lite

    version = re.search(r'(?m)^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert version == natmu_lite.__version__


def test_the_colab_check_covers_every_notebook_and_its_quick_parameters_exist():
    """tools/colab_like.py (CI's `make colab`) runs every chapter and every solution; the smaller parameters
    it gives a training chapter are names that chapter's parameters cell defines (a renamed one would be
    set in vain)."""
    spec = importlib.util.spec_from_file_location("colab_like", ROOT / "tools" / "colab_like.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    covered = {p for pattern in tool.NOTEBOOKS for p in ROOT.glob(pattern)}
    assert covered == {*ROOT.glob("notebooks/[0-9]*.ipynb"), *ROOT.glob("assignments/solutions/*.ipynb")}
    for name, lines in tool.QUICK.items():
        cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
        parameters = next("".join(c["source"]) for c in cells if "".join(c["source"]).startswith("# Parameters"))
        defined = {t.id for node in ast.parse(parameters).body if isinstance(node, ast.Assign) for t in node.targets}
        assigned = {t.id for node in ast.parse(lines).body for t in node.targets}
        assert assigned <= defined, (name, assigned - defined)
