"""The classroom assignments: the committed notebooks are what assignments/build.py makes of their sources,
the instructor solutions pass the autograder (as notebooks and as the .py sources), and every autograder
test fails on the untouched student stubs, with a message that tells the student what to do; the autograder's
copies of the test references stay verbatim."""

import ast
import importlib.util
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p.stem for p in (ROOT / "assignments" / "source").glob("[0-9]*.py"))


def test_there_are_at_least_four_assignments_each_with_its_autograder():
    assert len(SOURCES) >= 4
    for name in SOURCES:
        assert (ROOT / "assignments" / "autograder" / f"test_{name}.py").exists(), name


def test_committed_notebooks_are_generated_from_the_sources(tmp_path):
    spec = importlib.util.spec_from_file_location("assignments_build", ROOT / "assignments" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    written = build.build(tmp_path)
    assert len(written) == 2 * len(SOURCES)
    for rel in written:
        committed = ROOT / rel
        assert committed.exists(), f"{rel} is not committed: run python assignments/build.py"
        assert committed.read_text() == (tmp_path / rel).read_text(), \
            f"{rel} differs from its source: run python assignments/build.py"


def definitions(path: Path) -> dict[str, str]:
    """The source lines (decorators and comments included) of each top-level function and assignment of a Python
    file, by name."""
    lines = path.read_text().splitlines()
    out = {}
    for node in ast.parse("\n".join(lines)).body:
        names = [t.id for t in node.targets if isinstance(t, ast.Name)] if isinstance(node, ast.Assign) else \
            [node.name] if isinstance(node, ast.FunctionDef) else []
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        for name in names:
            out[name] = "\n".join(lines[first - 1:node.end_lineno])
    return out


def test_the_autograders_independent_references_are_verbatim_copies_of_the_tests():
    """The autograder must run where only the package is installed, without tests/, so it holds its own copy of
    the test references it uses; a fix to one must reach the other."""
    copies = definitions(ROOT / "assignments" / "autograder" / "references.py")
    copied = ast.literal_eval(copies["COPIED"].split("=", 1)[1].strip())  # {test file: names copied from it}
    assert len(copied) >= 2
    for original, names in copied.items():
        sources = definitions(ROOT / original)
        for name in names:
            assert name in copies and name in sources, (original, name)
            assert copies[name] == sources[name], f"{name} in the autograder's references differs from {original}"


def grade(folder: Path, tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Run the whole autograder on a folder of submissions: test id -> (outcome, message)."""
    report = tmp_path / "report.xml"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                    f"--junitxml={report}", "assignments/autograder", "--student", str(folder)],
                   cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        problem = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        key = f"{case.get('classname')}::{case.get('name')}"
        out[key] = ("passed", "") if problem is None else (problem.tag, problem.get("message") or "")
    return out


@pytest.mark.parametrize("folder", ["notebooks/assignments", "assignments/source"])
def test_instructor_solutions_pass_the_autograder(folder, tmp_path):
    results = grade(ROOT / folder, tmp_path)
    for name in SOURCES:
        assert sum(f"test_{name}" in k for k in results) >= 3, f"{name} has fewer than 3 autograder tests"
    failed = {k: v for k, v in results.items() if v[0] != "passed"}
    assert not failed, failed


def test_untouched_stubs_fail_every_autograder_test(tmp_path):
    results = grade(ROOT / "assignments" / "student", tmp_path)
    assert len(results) >= 4 * 3
    passed = [k for k, (outcome, _) in results.items() if outcome == "passed"]
    assert not passed, f"these tests pass on the empty stubs, so they grade nothing: {passed}"
    for key, (outcome, message) in results.items():
        assert outcome == "failure", (key, outcome, message)
        assert "YOUR CODE HERE" in message, (key, message)  # the friendly message, not a traceback


def autograde(test_file: str, student: Path, *options: str) -> str:
    """Grade one assignment in a subprocess (with a deadline: a hang fails this test) and return its output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rN", "-p", "no:cacheprovider", "-o", "addopts=",
                             f"assignments/autograder/{test_file}", "--student", str(student), *options],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return result.stdout + result.stderr


ENDLESS = '''import natmu_lite as nl


def natmu_masks(height, width, delta=0.0):
    while True:  # an endless loop that even swallows exceptions
        try:
            pass
        except Exception:
            pass


def blend(forget_x, retain_x, masks):
    return nl.blend(forget_x, retain_x, masks)
'''


def test_a_function_that_never_returns_fails_its_tests_and_the_others_still_run(tmp_path):
    student = tmp_path / "01_masks.py"
    student.write_text(ENDLESS)
    out = autograde("test_01_masks.py", student, "--call-timeout", "0.5", "-k", "tents or channel_axis")
    assert out.count("`natmu_masks` did not return within 0.5 s") == 4, out
    assert "4 failed, 1 passed" in out, out


def test_a_truncated_notebook_gives_one_clear_message(tmp_path):
    text = (ROOT / "assignments" / "student" / "01_masks.ipynb").read_text()
    notebook = tmp_path / "01_masks.ipynb"
    notebook.write_text(text[: len(text) // 2])
    out = autograde("test_01_masks.py", notebook)
    assert not any(w in out for w in ("Traceback", "During handling", "JSONDecodeError", "decoder.py")), out
    assert out.count("01_masks.ipynb is not a readable notebook (line") == 1, out
    assert "not graded: 01_masks.ipynb could not be loaded (see the first failure)" in out, out
