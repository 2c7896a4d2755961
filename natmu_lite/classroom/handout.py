"""The student notebooks to hand out, shipped with the package (``natmu_lite/classroom/notebooks/``, generated
from the assignments' sources by ``assignments/build.py``): ``natmu-lite handout FOLDER`` writes each
assignment's notebook into a folder of its own and a zip of that folder, ready for a learning platform or a
shared drive. Each notebook starts with the cell that installs the package (on Colab) and ends with the cell
that checks the student's work."""

from __future__ import annotations

import zipfile
from importlib import resources
from pathlib import Path

from .checks import ASSIGNMENTS


def notebook(assignment: str) -> bytes:
    """The student notebook of ``assignment``, as shipped."""
    return (resources.files(__package__) / "notebooks" / f"{assignment}.ipynb").read_bytes()


def handout(out: Path, assignments: list[str] | None = None) -> list[Path]:
    """Write ``out/NN_name/NN_name.ipynb`` and ``out/NN_name.zip`` for each assignment (default: all); returns
    the zips."""
    unknown = sorted(set(assignments or []) - set(ASSIGNMENTS))
    if unknown:
        raise ValueError(f"unknown assignment {unknown[0]!r}; valid: {', '.join(ASSIGNMENTS)}")
    zips = []
    for name in assignments or ASSIGNMENTS:
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.ipynb").write_bytes(notebook(name))
        with zipfile.ZipFile(out / f"{name}.zip", "w", zipfile.ZIP_DEFLATED) as z:
            z.write(folder / f"{name}.ipynb", f"{name}/{name}.ipynb")
        zips.append(out / f"{name}.zip")
    return zips
