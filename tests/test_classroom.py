"""The classroom end to end, as a teacher runs it: a class's submissions, named as students and platforms name
them, graded by ``natmu-lite grade`` (each in a process of its own, with a time and a memory limit) into the
gradebook with the points each deserves and one feedback file per student; hand-out; the files' students and
assignments told apart before any grading, with clear errors; and grading from an installed wheel alone,
outside the repository."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from natmu_lite.classroom.collect import find, unpack
from natmu_lite.cli import main

from .conftest import build_wheel

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "assignments" / "solutions" / "01_masks.ipynb"
STUB = ROOT / "natmu_lite" / "classroom" / "notebooks" / "01_masks.ipynb"
LIMITS = ["--time-limit", "60", "--memory-mb", "4608", "--call-timeout", "10"]  # short, for the test's sake


def cli(*args: str, cwd: Path, pythonpath: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(pythonpath)}
    return subprocess.run([sys.executable, "-m", "natmu_lite.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def notebook(path: Path, edit=None, metadata: bool = True) -> None:
    """The solution of assignment 1 with ``edit(cell source) -> source`` applied to its code cells."""
    nb = json.loads(SOLUTION.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and edit:
            cell["source"] = edit("".join(cell["source"]))
    if not metadata:  # e.g. a platform that drops it: recognised by the functions defined
        nb["metadata"].pop("natmu_lite")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))


def python(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


CORRECT = (ROOT / "assignments" / "source" / "01_masks.py").read_text()
SPIN = "import signal\n\n\nclass Spin:  # ignores the per-cell time limit, and never ends\n" \
       "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        pass\n\n\n"
GREEDY = "class Greedy:  # takes memory until none is left\n    chunks = []\n    while True:\n" \
         "        chunks.append(bytearray(10**9))\n\n\n"


def a_class(root: Path) -> dict[str, dict[str, float]]:
    """Eight submissions of assignment 1 in a learning platform's layouts, and the points each deserves."""
    notebook(root / "alice" / "01_masks.ipynb")  # correct
    # partly correct: tents over n // 2, wrong for odd sides only: half the cases of three checks, no case of two
    notebook(root / "bob" / "01_masks.ipynb", lambda s: s.replace("/ (n / 2)", "/ (n // 2)"))
    python(root / "bob" / "helper.py", "def unrelated():\n    return 1\n")  # no assignment: skipped
    shutil.copyfile(STUB, root / "carol_01_masks.ipynb")  # the untouched stub, in a flat folder
    notebook(root / "dave" / "01_masks.ipynb", lambda s: s.replace("def blend(", "def blend((", 1))  # syntax error
    notebook(root / "erin" / "Copy of 01_masks.ipynb", metadata=False)  # Colab's name for the student's copy
    python(root / "frank" / "01_masks.py", SPIN + CORRECT)  # loops forever at import
    python(root / "grace" / "01_masks.py", GREEDY + CORRECT)  # allocates without bound in its first cell only
    full = {"tents_m1_m2": 2, "complements_m3_m4": 2, "delta_shifts_and_clips": 2, "blend_matches_the_formula": 3,
            "blend_accepts_masks_with_a_channel_axis": 2, "masks_match_the_papers_equations": 2,
            "masks_worked_out_by_hand": 2, "blend_worked_out_by_hand": 2, "blend_truncates_the_exact_value": 3}
    blend_only = {k: (v if k.startswith("blend") else 0) for k, v in full.items()}
    nothing = dict.fromkeys(full, 0)
    odd_wrong = {**full, "tents_m1_m2": 1, "complements_m3_m4": 1, "delta_shifts_and_clips": 0,
                 "masks_match_the_papers_equations": 1, "masks_worked_out_by_hand": 0}
    return {"alice": full, "bob": odd_wrong, "carol": nothing, "dave": {k: full[k] - blend_only[k] for k in full},
            "erin": full, "frank": nothing, "grace": full}


@pytest.mark.slow
def test_a_class_is_graded_into_the_gradebook_with_the_points_each_deserves(tmp_path):
    expected = a_class(tmp_path / "class")
    out = cli("grade", "class", "--out", "grades", "--workers", "2", "--quiet", *LIMITS, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "skipped bob/helper.py: it answers none of the assignments" in out.stderr
    with (tmp_path / "grades" / "gradebook.csv").open() as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(expected)
    for student, points in expected.items():
        row = rows[student]
        got = {k: float(row[f"01_masks/{k} ({v:g})"]) for k, v in expected["alice"].items()}
        assert got == points, (student, got, row["01_masks/note"])
        assert float(row["01_masks/autograder (20)"]) == sum(points.values()), student
        assert row["01_masks/by hand: question on delta (2)"] == "", "the rubric's columns are the teacher's"
    assert rows["erin"]["01_masks/file"] == "erin/Copy of 01_masks.ipynb"
    notes = {s: rows[s]["01_masks/note"] for s in rows}
    assert "time limit" in notes["frank"] and [s for s in notes if notes[s]] == ["frank"]
    feedback = {p.stem: p.read_text() for p in (tmp_path / "grades" / "feedback").glob("*.md")}
    assert "- 01_masks.ipynb, code cell 6 is not valid Python (line 1" in feedback["dave"]
    assert "- 01_masks.py, cell at line 1 raised MemoryError" in feedback["grace"]
    assert set(feedback) == set(expected)
    assert "# Feedback for bob" in feedback["bob"] and "**tents_m1_m2** (1 of 2, 2 of 4 cases)" in feedback["bob"]
    assert "m1 at row" in feedback["bob"]  # the check's own message
    assert "Your instructor grades by hand: question on delta (2)" in feedback["alice"]
    assert "What failed" not in feedback["alice"] and "is not implemented yet" in feedback["carol"]
    assert "grading stopped after 60 s" in feedback["frank"]


@pytest.mark.slow
def test_handout_writes_a_folder_and_a_zip_per_assignment(tmp_path):
    out = cli("handout", "out", "--assignments", "01_masks", "05_mia", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("01_masks", "05_mia"):
        shipped = (ROOT / "natmu_lite" / "classroom" / "notebooks" / f"{name}.ipynb").read_bytes()
        assert (tmp_path / "out" / name / f"{name}.ipynb").read_bytes() == shipped
        with zipfile.ZipFile(tmp_path / "out" / f"{name}.zip") as z:
            assert z.namelist() == [f"{name}/{name}.ipynb"] and z.read(f"{name}/{name}.ipynb") == shipped
    assert not (tmp_path / "out" / "02_hybrid_set").exists()


def test_students_and_assignments_from_a_platforms_download(tmp_path):
    """Canvas-style flat names with a --student-pattern, a zip with student folders and a nested zip, and a
    mapping file for the names nothing else tells apart; recognised by content whatever the file is called."""
    flat = tmp_path / "flat"
    notebook(flat / "smithalice_1234_5678_01_masks.ipynb")
    shutil.copyfile(ROOT / "assignments" / "source" / "05_mia.py", flat / "smithalice_1234_5679_mia-attempt.py")
    shutil.copyfile(STUB, flat / "jonesbob_LATE_1235_5680_Copy of 01_masks (1).ipynb")
    found, skipped = find(flat, pattern=r"^(?P<student>[a-z]+)_")
    assert sorted((s.student, s.assignment) for s in found) == [("jonesbob", "01_masks"), ("smithalice", "01_masks"),
                                                                ("smithalice", "05_mia")] and not skipped
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(SOLUTION, "Alice Smith_123_assignsubmission_file_/01_masks.ipynb")
        inner = tmp_path / "inner.zip"
        with zipfile.ZipFile(inner, "w") as zz:
            zz.write(STUB, "work/masks.ipynb")
        z.write(inner, "Bob Jones_124_assignsubmission_file_/submission.zip")
        z.write(STUB, "Copy of 01_masks.ipynb")
        z.write(STUB, "__MACOSX/._Copy of 01_masks.ipynb")
    (tmp_path / "map.csv").write_text("file,student,assignment\nCopy of 01_masks.ipynb,Carol Lee,01_masks\n")
    found, skipped = find(unpack(archive, tmp_path / "unpacked"), mapping=tmp_path / "map.csv",
                          pattern=r"^(?P<student>[^_/]+)_")
    assert sorted((s.student, s.name) for s in found) == [
        ("Alice Smith", "Alice Smith_123_assignsubmission_file_/01_masks.ipynb"),
        ("Bob Jones", "Bob Jones_124_assignsubmission_file_/submission/work/masks.ipynb"),
        ("Carol Lee", "Copy of 01_masks.ipynb")] and not skipped


@pytest.mark.parametrize("args,message", [
    (["missing"], "missing does not exist"),
    (["class", "--assignment", "06_nothing"], "argument --assignment: invalid choice"),
    (["class", "--time-limit", "0"], "argument --time-limit: must be a positive number of seconds"),
    (["class", "--memory-mb", "100"], "argument --memory-mb: must be an integer >= 2048"),
    (["class", "--student-pattern", "(?P<who>.*)"], "needs a group named student"),
    (["class", "--mapping", "none.csv"], "--mapping none.csv does not exist"),
    (["flat"], "flat holds no submissions (.ipynb or .py files of an assignment); not graded: Copy of "
               "01_masks.ipynb: whose it is cannot be told"),
    (["twice"], "more than one file of the same time for one student and assignment (keep one, or tell them apart "
                "in --mapping): ann (01_masks): ann/a.ipynb, ann/b.ipynb"),
    (["class/ann/notes.txt"], "expected a folder, a .zip, or one .ipynb or .py file"),
    (["class/ann/notes.zip"], "class/ann/notes.zip is not a readable zip file"),
    (["class", "--mapping", "map.csv"], "--mapping map.csv names files that are not in class: ghost.ipynb"),
    (["empty.zip"], "empty.zip holds no submissions"),
])
def test_bad_input_is_refused_before_any_grading(tmp_path, monkeypatch, capsys, args, message):
    shutil.copytree(ROOT / "natmu_lite" / "classroom" / "notebooks", tmp_path / "class" / "ann")
    for name in ("notes.txt", "notes.zip"):
        (tmp_path / "class" / "ann" / name).write_text("not a zip")
    (tmp_path / "map.csv").write_text("file,student\nghost.ipynb,nobody\n")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as z:
        z.writestr("notes.txt", "no notebook here")
    (tmp_path / "flat").mkdir()
    shutil.copyfile(STUB, tmp_path / "flat" / "Copy of 01_masks.ipynb")
    for name in ("a", "b"):
        (tmp_path / "twice" / "ann").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STUB, tmp_path / "twice" / "ann" / f"{name}.ipynb")
        os.utime(tmp_path / "twice" / "ann" / f"{name}.ipynb", (1e9, 1e9))  # two files of one time: no rule applies
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["grade", *args])
    except SystemExit as e:  # argparse's errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "Traceback" not in err and "grading" not in err and not (tmp_path / "grades").exists()


@pytest.mark.slow
def test_a_student_checks_their_own_file(tmp_path):
    notebook(tmp_path / "mine.ipynb", lambda s: s.replace("/ (n / 2)", "/ (n // 2)"))
    out = cli("grade", "mine.ipynb", "--quiet", *LIMITS, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "## 01_masks: 13 of 20 points from the autograder" in out.stdout
    assert not (tmp_path / "grades").exists()


@pytest.mark.slow
def test_grading_needs_only_the_installed_package(tmp_path):
    """A wheel of the package, installed into an empty folder, grades a submission from a folder outside the
    repository: the checks, the references and the hand-out's notebooks all ship with it; the hidden checks
    do not."""
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        shipped = "".join(z.read(n).decode(errors="replace") for n in z.namelist() if n.endswith(".py"))
    sources = "".join(p.read_text() for p in (ROOT / "assignments" / "hidden").glob("*.py"))
    hidden = re.findall(r"def (check_\w+)", sources)
    assert hidden and not [name for name in hidden if name in shipped], "the hidden checks must not ship"
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True,
                   capture_output=True, timeout=300)
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    assert cli("handout", "out", cwd=teacher, pythonpath=tmp_path / "site").returncode == 0
    notebook(teacher / "class" / "ann" / "01_masks.ipynb")
    out = cli("grade", "class", "--quiet", *LIMITS, cwd=teacher, pythonpath=tmp_path / "site")
    assert out.returncode == 0, out.stderr
    with (teacher / "grades" / "gradebook.csv").open() as f:
        assert [row["01_masks/autograder (20)"] for row in csv.DictReader(f)] == ["20"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    where = subprocess.run([sys.executable, "-c", "import natmu_lite; print(natmu_lite.__file__)"], cwd=teacher,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert Path(where).resolve().is_relative_to((tmp_path / "site").resolve()), where
