"""``pytest assignments/autograder/test_01_masks.py --student my_copy.ipynb`` grades one assignment;
``pytest assignments/autograder --student FOLDER`` grades every assignment found in FOLDER, each test
file reading ``NN_name.ipynb`` (or ``NN_name.py``) for its own ``test_NN_name.py``."""

from pathlib import Path

import pytest
import torch
from grading import CALL_TIMEOUT, Student, fail

torch.set_num_threads(1)
_loaded: dict[Path, Student | str] = {}  # per student file: its definitions, or why they could not be loaded


def pytest_addoption(parser):
    parser.addoption("--student", default=None, help="your notebook or .py file (or a folder of them)")
    parser.addoption("--call-timeout", type=float, default=CALL_TIMEOUT,
                     help=f"seconds each call of your functions may take (default {CALL_TIMEOUT:g})")


@pytest.fixture
def student(request) -> Student:
    """The student's definitions, loaded once per file. A file that cannot be loaded fails its first test
    with the reason and every later one with a one-line pointer to it (not the same error again)."""
    path = request.config.getoption("--student")
    if path is None:
        pytest.skip("say whose work to grade: --student PATH (your .ipynb or .py file)")
    path = Path(path)
    if path.is_dir():
        name = request.path.stem.removeprefix("test_")
        found = [p for p in (path / f"{name}.ipynb", path / f"{name}.py") if p.exists()]
        if not found:
            fail(f"{path} holds neither {name}.ipynb nor {name}.py")
        path = found[0]
    if not path.exists():
        fail(f"{path} does not exist")
    if path not in _loaded:
        _loaded[path] = f"not graded: {path.name} could not be loaded (see the first failure)"  # if the next fails
        _loaded[path] = Student(path, request.config.getoption("--call-timeout"))
    if isinstance(_loaded[path], str):
        fail(_loaded[path])
    return _loaded[path]
