"""The classroom assignments: the committed notebooks are what assignments/build.py makes of their sources,
the instructor solutions get every point of the checks (as notebooks and as the .py sources), and every check
fails on the untouched student stubs, with a message that tells the student what to do; each check carries its
points. (Grading a class, in processes of their own: tests/test_classroom.py.)"""

import importlib.util
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from natmu_lite.classroom.checking import Failed, checks, run_checks
from natmu_lite.classroom.checks import ASSIGNMENTS, hidden_module, load
from natmu_lite.classroom.student import Student

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p.stem for p in (ROOT / "assignments" / "source").glob("[0-9]*.py"))
STUDENT = ROOT / "natmu_lite" / "classroom" / "notebooks"


def build_module():
    spec = importlib.util.spec_from_file_location("assignments_build", ROOT / "assignments" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build


def test_every_assignment_has_its_checks_with_points_and_a_rubric():
    """At least four assignments, each with at least three checks, every check worth some points, and the functions
    the checks call (FUNCTIONS, which also recognise a submission) defined in the student notebook."""
    assert len(SOURCES) >= 4 and tuple(SOURCES) == ASSIGNMENTS
    for name in ASSIGNMENTS:
        module = load(name)
        assert checks(hidden_module(name, ROOT / "assignments" / "hidden")), f"{name} has no hidden checks"
        assert len(checks(module)) >= 3 and all(c.points > 0 for c in checks(module)), name
        assert module.RUBRIC and all(p > 0 for p in module.RUBRIC.values()), name
        stub = (STUDENT / f"{name}.ipynb").read_text()
        for fn in module.FUNCTIONS:
            assert f"def {fn}(" in stub, (name, fn)
            assert re.search(rf"[\"']{fn}[\"']", (ROOT / "natmu_lite/classroom/checks" / f"a{name}.py").read_text())


def test_committed_notebooks_are_generated_from_the_sources(tmp_path):
    written = build_module().build(tmp_path)
    assert len(written) == 2 * len(SOURCES)
    for rel in written:
        committed = ROOT / rel
        assert committed.exists(), f"{rel} is not committed: run python assignments/build.py"
        assert committed.read_text() == (tmp_path / rel).read_text(), \
            f"{rel} differs from its source: run python assignments/build.py"


def results(name: str, path: Path, timeout: float = 60.0) -> dict[tuple[str, str], tuple[bool, str]]:
    """Every case of an assignment's checks on one file, in this process: (check, case) -> (passed, message)."""
    return {(r["check"], r["case"]): (r["passed"], r["message"])
            for r in run_checks(load(name), Student(path, timeout))}


@pytest.mark.slow
@pytest.mark.parametrize("folder,suffix", [("assignments/solutions", ".ipynb"), ("assignments/source", ".py")])
def test_instructor_solutions_pass_every_check(folder, suffix):
    for name in ASSIGNMENTS:
        student = Student(ROOT / folder / f"{name}{suffix}")
        assert not student.problems, student.problems
        failed = {k: v for k, v in results(name, ROOT / folder / f"{name}{suffix}").items() if not v[0]}
        assert not failed, failed


@pytest.mark.slow
def test_the_hidden_checks_pass_on_the_solutions_and_fail_on_the_stubs():
    for path in sorted((ROOT / "assignments" / "hidden").glob("a*.py")):
        name = path.stem[1:]
        module = hidden_module(name, path.parent)
        assert checks(module), name
        solved = list(run_checks(module, Student(ROOT / "assignments" / "source" / f"{name}.py")))
        assert solved and all(r["passed"] for r in solved), solved
        assert not any(r["passed"] for r in run_checks(module, Student(STUDENT / f"{name}.ipynb"))), name


def test_untouched_stubs_fail_every_check():
    for name in ASSIGNMENTS:
        outcome = results(name, STUDENT / f"{name}.ipynb")
        assert len(outcome) >= 3
        passed = [k for k, (ok, _) in outcome.items() if ok]
        assert not passed, f"these checks pass on the empty stubs, so they grade nothing: {passed}"
        for key, (_, message) in outcome.items():
            assert "YOUR CODE HERE" in message, (key, message)  # the friendly message, not a traceback


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


@pytest.mark.slow
def test_a_function_that_never_returns_fails_its_checks_and_the_others_still_run(tmp_path):
    student = tmp_path / "01_masks.py"
    student.write_text(ENDLESS)
    a01 = load("01_masks")
    some = SimpleNamespace(tents=a01.check_tents_m1_m2, axis=a01.check_blend_accepts_masks_with_a_channel_axis)
    outcome = list(run_checks(some, Student(student, timeout=0.5)))
    assert [r["passed"] for r in outcome] == [False] * 4 + [True], outcome
    assert all("`natmu_masks` did not return within 0.5 s" in r["message"] for r in outcome[:4])


def test_a_truncated_notebook_gives_one_clear_message(tmp_path):
    text = (STUDENT / "01_masks.ipynb").read_text()
    notebook = tmp_path / "01_masks.ipynb"
    notebook.write_text(text[: len(text) // 2])
    with pytest.raises(Failed) as e:
        Student(notebook)
    assert str(e.value).startswith("01_masks.ipynb is not a readable notebook (line"), e.value
    assert not any(w in str(e.value) for w in ("Traceback", "JSONDecodeError", "decoder.py"))


def test_a_cell_that_cannot_run_is_skipped_and_named(tmp_path):
    """As in Jupyter: a cell with a syntax error defines nothing, the other cells still count, and the checks of
    what it should have defined say why it is missing."""
    notebook = json.loads((ROOT / "assignments" / "solutions" / "01_masks.ipynb").read_text())
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code" and "def natmu_masks" in "".join(c["source"]))
    cell["source"] = "".join(cell["source"]).replace("def natmu_masks(", "def natmu_masks(:", 1)
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(notebook))
    student = Student(path)
    assert len(student.problems) == 1 and "is not valid Python (line 1" in student.problems[0]
    outcome = results("01_masks", path)
    masks = [v for (check, _), v in outcome.items() if not check.startswith("blend")]
    blend = [v for (check, _), v in outcome.items() if check.startswith("blend")]
    assert masks and not any(ok for ok, _ in masks) and all(ok for ok, _ in blend)
    assert "does not define a function `natmu_masks` (broken.ipynb, code cell" in masks[0][1]


def test_a_notebook_loads_as_it_runs(tmp_path):
    """Cells run in order: a helper made by a lambda over a computed value works; a cell that raises or runs out of
    time stops there but still defines what follows it; once the budget is spent, or on a restart for a cell that
    ran out of time, a cell runs only its definitions; each such cell is named, with why."""
    cells = ["import torch\nSCALE = torch.tensor(0.5)\ntent = lambda n: torch.arange(n) * SCALE",
             "raise ValueError('a plot failed')\ndef offset():\n    return 1",
             "def total(n):\n    return tent(n).sum().item() + offset()",
             "import time\ntime.sleep(5)\nLATE = 2",
             "WORK = sum(range(10))\ndef last():\n    return WORK",
             "from natmu_lite.classroom import self_check\nself_check(In, '01_masks')"]
    path = tmp_path / "mine.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": c, "metadata": {}, "outputs": []}
                                          for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    student = Student(path, timeout=0.5, budget=1.5)
    assert student("total", 4) == 4.0 and student.stopped == {4}
    assert student.problems[0] == "mine.ipynb, code cell 2 raised ValueError: a plot failed at line 1; the rest " \
                                  "of the cell ran only its imports and definitions"
    assert student.problems[1].startswith("mine.ipynb, code cell 4 was stopped after 0.5 s, at line 2")
    assert student("last") == 45
    restarted = Student(path, timeout=0.5, budget=1e-9, definitions_only=frozenset(student.stopped))
    said = "\n".join(restarted.problems)
    assert "code cell 4 ran only its imports and definitions: it ran out of time when the file was first" in said
    assert "code cell 5 ran only its imports and definitions: the time for running cells was spent" in said
    with pytest.raises(Failed, match="`WORK` is set in mine.ipynb, code cell 5, which did not run in full"):
        restarted("last")


def hard_coded() -> str:
    """Assignment 3's solution, but with first_crossing and overforgetting looking up the answers of every public
    case (recorded from the solution) instead of computing them."""
    solution = Student(ROOT / "assignments" / "source" / "03_overforgetting.py")
    answers = {}

    def recording(name, *args):
        value = solution(name, *args)
        if name in ("first_crossing", "overforgetting"):
            answers[repr((name, *args))] = value
        return value

    recording.raises = solution.raises
    list(run_checks(load("03_overforgetting"), recording))
    lookup = "\n\n".join(f"def {fn}(curve, reference):\n    return ANSWERS.get(repr(({fn!r}, curve, reference)))"
                          for fn in ("first_crossing", "overforgetting"))
    return (ROOT / "assignments" / "source" / "03_overforgetting.py").read_text() + \
        f"\n\n# %%\nANSWERS = {answers!r}\n\n{lookup}\n"


def test_hard_coded_public_answers_pass_the_public_checks_only(tmp_path):
    """A submission that looks up the answers of every public case earns the public points and fails the hidden
    checks, which use other cases (the hostile class grades it too)."""
    path = tmp_path / "03_overforgetting.py"
    path.write_text(hard_coded())
    cheat = Student(path)
    assert all(r["passed"] for r in run_checks(load("03_overforgetting"), cheat))
    hidden = [r for r in run_checks(hidden_module("03_overforgetting", ROOT / "assignments" / "hidden"), cheat)
              if r["check"] == "summaries_on_other_curves"]
    assert hidden and not any(r["passed"] for r in hidden)
