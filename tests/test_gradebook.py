"""The course's gradebook never loses a point in a teacher's normal steps: a second assignment graded into it, a
regrade, a copy saved by a spreadsheet with semicolons, a score overridden by hand, a column added, a crash while
it is written; every file collected is listed; and the export for learning platforms adds up each assignment."""

import csv
import zipfile
from pathlib import Path

import pytest

from natmu_lite.classroom import gradebook
from natmu_lite.classroom.checking import checks
from natmu_lite.classroom.checks import load
from natmu_lite.classroom.collect import Skipped, Submission, find, unpack
from natmu_lite.classroom.grade import Graded
from natmu_lite.classroom.gradebook import export, read_table, write_gradebook

ROOT = Path(__file__).resolve().parents[1]


def graded(student: str, assignment: str, passed: bool = True, lms_id: str = "") -> Graded:
    """A submission whose every case passed (or failed), as the grader would return it."""
    out = Graded(Submission(student, assignment, Path(f"{student}.py"), f"{student}/{assignment}.py", lms_id),
                 checks(load(assignment)))
    out.cases = {(c.name, label): (passed, "") for c in out.checks for label, _ in c.cases}
    return out


def table(path: Path) -> dict[str, dict]:
    _, rows, _ = read_table(path)
    return {row["student"]: row for row in rows}


def edit(path: Path, changes: dict[tuple[str, str], str], delimiter: str = ",", extra: str = "") -> None:
    """What a teacher does in a spreadsheet: cells changed, perhaps a column added, saved with ``delimiter``."""
    header, rows, _ = read_table(path)
    for row in rows:
        row.update({column: value for (student, column), value in changes.items() if student == row["student"]})
        if extra:
            row[extra] = f"about {row['student']}"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header + ([extra] if extra else []), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)


HAND = "01_masks/by hand: question on delta (2)"
AUTO = "01_masks/autograder (20)"


def test_two_assignments_and_regrades_keep_every_point(tmp_path):
    path = tmp_path / "gradebook.csv"
    write_gradebook([graded("ann", "01_masks"), graded("ben", "01_masks", passed=False)], path)
    edit(path, {("ann", HAND): "2", ("ben", AUTO): "15", ("ben", "01_masks/override"): "17"}, delimiter=";",
         extra="comments")
    # the second assignment: only ann submitted; then the first again, ann's file now failing
    write_gradebook([graded("ann", "05_mia")], path)
    write_gradebook([graded("ann", "01_masks", passed=False), graded("ben", "01_masks", passed=False)], path)
    rows = table(path)
    assert set(rows) == {"ann", "ben"}, "a student without a second submission stays"
    assert rows["ann"][HAND] == "2" and rows["ann"]["comments"] == "about ann"
    assert rows["ann"][AUTO] == "0" and rows["ann"]["05_mia/autograder (20)"] == "20"
    assert rows["ben"][AUTO] == "15", "the teacher's edit of an automatic score stays"
    assert rows["ben"]["01_masks/override"] == "17" and rows["ben"]["05_mia/autograder (20)"] == ""
    assert path.read_text().splitlines()[0].count(";") > 5, "a semicolon gradebook stays one"
    export(path, tmp_path / "lms.csv")
    with (tmp_path / "lms.csv").open() as f:
        lms = {row["Student"]: row for row in csv.DictReader(f)}
    assert lms["ann"]["01_masks"] == "2" and lms["ann"]["05_mia"] == "20" and lms["ben"]["01_masks"] == "17"
    assert list(lms["ann"])[:4] == ["Student", "ID", "SIS User ID", "Section"]


def test_a_crash_while_writing_leaves_the_gradebook_whole(tmp_path, monkeypatch):
    path = tmp_path / "gradebook.csv"
    write_gradebook([graded("ann", "01_masks"), graded("ben", "01_masks")], path)
    edit(path, {("ann", HAND): "1.5"})
    before = path.read_bytes()

    def crash(self, rows):
        raise UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(csv.DictWriter, "writerows", crash)
    with pytest.raises(UnicodeEncodeError):
        write_gradebook([graded("ann", "01_masks", passed=False)], path)
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 2  # and .gradebook.json


def test_every_collected_file_is_accounted_for(tmp_path):
    """Canvas's names (the student, its id, the late marker), a file that answers nothing, a file of nobody, two
    files of one student (the later one is graded), and a name that is not UTF-8."""
    solution = (ROOT / "assignments" / "source" / "01_masks.py").read_bytes()
    archive = tmp_path / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(zipfile.ZipInfo("smithalice_1001_70001_01_masks.py", (2026, 1, 5, 10, 0, 0)), solution)
        z.writestr(zipfile.ZipInfo("smithalice_late_1001_70002_01_masks-1.py", (2026, 1, 6, 10, 0, 0)), solution)
        z.writestr(zipfile.ZipInfo("jonesbob_1002_70003_notes.py", (2026, 1, 5, 10, 0, 0)), "x = 1\n")
    found, skipped = find(unpack(archive, tmp_path / "class"))
    assert [(s.student, s.lms_id, s.late, s.name) for s in found] == [
        ("smithalice", "1001", True, "smithalice_late_1001_70002_01_masks-1.py")]
    assert "smithalice_1001_70001_01_masks.py" in found[0].note
    assert {(s.student, s.why.split(",")[0]) for s in skipped} == {
        ("smithalice", "an older file of 01_masks"), ("jonesbob", "it answers none of the assignments (name it in "
                                                                  "--mapping to grade it)")}
    path = tmp_path / "gradebook.csv"
    write_gradebook([graded("smithalice", "01_masks", lms_id="1001")],
                    path, [*skipped, Skipped("caf\udce9.py", "caf\udce9.py", "whose it is cannot be told")])
    rows = table(path)
    assert rows["smithalice"]["lms id"] == "1001" and "jonesbob_1002_70003_notes.py" in rows["jonesbob"][
        gradebook.FILES]
    assert len(rows) == 3


def test_points_entered_by_hand_are_read_back(tmp_path):
    path = tmp_path / "gradebook.csv"
    write_gradebook([graded("ann", "01_masks")], path)
    edit(path, {("ann", HAND): "2", ("ann", "01_masks/override"): "21"}, delimiter=";")
    assert gradebook.read_rubric(path) == {"ann": {HAND: "2", "01_masks/override": "21"}}
