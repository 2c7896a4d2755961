"""Every chapter and assignment notebook run as a Colab reader runs it, outside the repository:
``python tools/colab_like.py`` (``make colab``; CI runs it after the book builds).

1. A wheel is built from a copy of what this checkout's build reads (nothing is written into the checkout).
2. It is installed into a new virtual environment in an empty temporary folder, which holds nothing else
   but what Colab preinstalls (:data:`COLAB`) and what the wheel declares, with what those need: each
   linked from this machine's installed packages (nothing is downloaded; a dependency missing here fails
   the install). The book's tools (myst-nb, Jupyter Book, nbmake, pytest...) are not there, and
   ``natmu_lite`` is the wheel's, never the checkout's.
3. The chapters (``notebooks/0*.ipynb``) and the assignments' solutions (``assignments/solutions``; the
   students' versions stop at their stubs by design) are copied into another empty folder and executed
   there, in order, each in a kernel of that environment. A cell that raises fails the run (exit status 1).

The chapters that train use the setting's sizes unless ``--quick`` gives them the smaller parameters of
:data:`QUICK` (fewer seeds or epochs, through their parameters cell). Trained models come from the
checkpoint cache, ``$NATMU_CACHE``, when it holds them (CI shares the book build's). ``--keep`` leaves the
folder, with the executed notebooks, for inspection.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What Colab preinstalls that the notebooks use (its image holds far more): the scientific stack the package
# builds on, and the Jupyter kernel. captum and optuna are not among them: the wheel brings them.
COLAB = ("torch", "torchvision", "numpy", "pandas", "matplotlib", "seaborn", "scipy", "scikit-learn", "SQLAlchemy",
         "tqdm", "pillow", "ipykernel", "ipython", "ipywidgets", "pip", "setuptools")
NOTEBOOKS = ("notebooks/0*.ipynb", "assignments/solutions/*.ipynb")
QUICK = {  # notebook -> lines run after its parameters cell with --quick
    "02_over_forgetting": "SEEDS = (0, 1)\nEPOCHS = 3",
    "03_natmu_step_by_step": "DELTAS = [0.0, 0.4]",
    "04_why_natural": "SEEDS = (0,)",
}


def run(*command, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], check=True, **kwargs)


def build_wheel(folder: Path) -> Path:
    """A wheel of this checkout in ``folder``/wheel, built from a copy of what the build reads (a build in
    the checkout would leave build/ and *.egg-info there)."""
    src = folder / "src"
    shutil.copytree(ROOT / "natmu_lite", src / "natmu_lite", ignore=shutil.ignore_patterns("__pycache__", "committed"))
    shutil.copytree(ROOT / "results", src / "results")
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, src / name)
    # this machine's setuptools where it has one (no download); else pip fetches one, as on Colab
    offline = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    run(sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps", *offline,
        "-w", folder / "wheel", src)
    shutil.rmtree(src)
    return next((folder / "wheel").glob("natmu_lite-*.whl"))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: list[str]) -> list:
    """The installed distributions of ``roots`` and of everything they require, with the extras they ask
    of each other (torch asks cuda-toolkit's), not those a user might add."""
    from packaging.requirements import Requirement

    found, done, todo = {}, set(), [(name, "") for name in roots]
    while todo:
        name, extra = todo.pop()
        name = canonical(name)
        if (name, extra) in done:
            continue
        done.add((name, extra))
        try:
            found[name] = dist = found.get(name) or distribution(name)
        except PackageNotFoundError:  # an optional or platform-specific requirement not installed here
            continue
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                todo += [(req.name, e) for e in ("", *req.extras)]
    return list(found.values())


def environment(folder: Path, wheel: Path) -> Path:
    """A virtual environment of its own, holding links to the distributions Colab preinstalls and those
    the wheel needs, and the wheel; its python."""
    run(sys.executable, "-m", "venv", "--without-pip", folder / "env")
    python = folder / "env" / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    capture_output=True, text=True).stdout.strip())
    meta = zipfile.ZipFile(wheel).read(next(n for n in zipfile.ZipFile(wheel).namelist()
                                            if n.endswith(".dist-info/METADATA"))).decode()
    declared = [re.match(r"[A-Za-z0-9_.-]+", line.split(":", 1)[1].strip()).group(0)
                for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    for dist in closure([*COLAB, *declared]):
        home = Path(dist.locate_file(""))
        tops = {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")} - {"__pycache__"}
        for top in sorted(tops):  # a package, a module, its .dist-info, a .pth it installs
            if (home / top).exists() and not (site / top).exists():
                (site / top).symlink_to(home / top)
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index", "--no-warn-script-location",
        wheel)  # its dependencies are linked already: a missing one fails here
    return python


def check_environment(python: Path, folder: Path) -> None:
    """natmu_lite is the wheel's; the book's tools are not importable."""
    code = ("import natmu_lite, sys\nprint(natmu_lite.__file__)\n"
            "for name in ('myst_nb', 'jupyter_book', 'nbmake', 'pytest'):\n"
            "    try:\n        __import__(name)\n    except ImportError:\n        continue\n"
            "    sys.exit(f'{name} is importable')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = run(python, "-c", code, capture_output=True, text=True, cwd=folder, env=env).stdout.strip()
    if not Path(where).is_relative_to(folder / "env"):
        sys.exit(f"natmu_lite comes from {where}, not from the wheel installed in {folder / 'env'}")


def execute(python: Path, folder: Path, quick: bool, timeout: int) -> list[tuple[str, float, str]]:
    """Copy the notebooks into an empty folder and run each there: (name, seconds, error or "")."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    kernels = folder / "jupyter" / "kernels" / "colab-like"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Colab-like",
        "language": "python"}))
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(folder / "jupyter"), os.environ.get("JUPYTER_PATH", "")])
    os.environ.pop("PYTHONPATH", None)  # the kernel imports natmu_lite from the wheel only
    work = folder / "notebooks"
    work.mkdir()
    paths = [p for pattern in NOTEBOOKS for p in sorted(ROOT.glob(pattern))]
    for path in paths:
        shutil.copyfile(path, work / path.name)
    outcome = []
    for path in paths:
        nb = nbformat.read(work / path.name, as_version=4)
        if quick and path.stem in QUICK:
            at = next(i for i, c in enumerate(nb.cells) if c.source.startswith("# Parameters"))
            nb.cells.insert(at + 1, nbformat.v4.new_code_cell(f"# tools/colab_like.py --quick\n{QUICK[path.stem]}"))
        start, error = time.perf_counter(), ""
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="colab-like",
                           resources={"metadata": {"path": str(work)}}).execute()
        except CellExecutionError as e:
            error = str(e).strip().splitlines()[-1]
        finally:
            nbformat.write(nb, work / path.name)
        seconds = time.perf_counter() - start
        outcome.append((path.relative_to(ROOT).as_posix(), seconds, error))
        print(f"{'ok    ' if not error else 'FAILED'} {seconds:6.0f} s  {path.relative_to(ROOT)}"
              + (f"\n       {error}" if error else ""), flush=True)
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the training chapters with smaller parameters (QUICK)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a cell may take")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print where it is")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="natmu-colab-like-"))
    try:
        start = time.perf_counter()
        wheel = build_wheel(folder)
        python = environment(folder, wheel)
        check_environment(python, folder)
        print(f"{wheel.name} installed on its own in {folder / 'env'} ({time.perf_counter() - start:.0f} s); "
              f"running the notebooks in {folder / 'notebooks'}", flush=True)
        outcome = execute(python, folder, args.quick, args.timeout)
        failed = [name for name, _, error in outcome if error]
        print(f"{len(outcome) - len(failed)} of {len(outcome)} notebooks ran outside the repository in "
              f"{time.perf_counter() - start:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
        return 1 if failed else 0
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
