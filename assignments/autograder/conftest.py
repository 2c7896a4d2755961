"""``pytest assignments/autograder/test_01_masks.py --student my_copy.ipynb`` grades one assignment;
``pytest assignments/autograder --student FOLDER`` grades every assignment found in FOLDER, each test
file reading ``NN_name.ipynb`` (or ``NN_name.py``) for its own ``test_NN_name.py``."""

from pathlib import Path

import pytest
import torch
from grading import Student, fail

torch.set_num_threads(1)


def pytest_addoption(parser):
    parser.addoption("--student", default=None, help="your notebook or .py file (or a folder of them)")


@pytest.fixture(scope="module")
def student(request) -> Student:
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
    return Student(path)
