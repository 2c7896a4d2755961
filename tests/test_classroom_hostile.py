"""A hostile class: submissions that try to forge their grade, harm their classmates or the teacher, or call,
reload or read the package's own answers, graded beside honest ones (one a notebook whose helper needs its cells
run, with a cell that fails). Each gets only the points it earned and a flag in the gradebook, the honest ones
are unaffected, no file outside the students' private folders changes (the class folder, the gradebook after the
grader ends, and the teacher's HOME are hashed before and after), and no process is left. Then the teacher's next
steps: hand points entered and saved with semicolons, a second assignment graded into the same gradebook (with a
submission hard-coding the public answers, which the hidden checks catch). The student's code runs in bubblewrap
where it works here (else the test says so and skips), and once more in the plain fallback, where the checks and
the student still run in two processes. (A crash while the gradebook is written: tests/test_gradebook.py.)"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from natmu_lite.classroom import sandbox

from .test_assignments import hard_coded
from .test_gradebook import HAND, edit, table

ROOT = Path(__file__).resolve().parents[1]
LIMITS = ["--time-limit", "150", "--memory-mb", "4608", "--call-timeout", "8"]
CORRECT = (ROOT / "assignments" / "source" / "01_masks.py").read_text()
ZERO = '''import torch


def natmu_masks(height, width, delta=0.0):
    return torch.zeros(4, height, width)


def blend(forget_x, retain_x, masks):
    return torch.zeros_like(forget_x)
'''
NOTEBOOK = ["import torch\n\nONE = torch.ones(())  # a call: only running the cell defines it\n"
            "tent = lambda n: ONE * torch.minimum(torch.arange(n) * 1.0, n - 1 - torch.arange(n) * 1.0) / (n / 2)",
            "raise RuntimeError('a figure that fails to draw')",
            "def natmu_masks(height, width, delta=0.0):\n"
            "    m1, m2 = tent(height)[:, None].expand(height, width), tent(width)[None].expand(height, width)\n"
            "    m3, m4 = (height / 2 - 1) / (height / 2) - m1, (width / 2 - 1) / (width / 2) - m2\n"
            "    return (torch.stack([m1, m2, m3, m4]) + delta).clamp(0, 1)",
            "def blend" + CORRECT.split("\ndef blend")[1].split("# %%")[0]]
BLEND_ONLY = 10  # the points of the blend's checks, for a submission whose natmu_masks fails


def at_load(code: str) -> str:
    """``code`` in a class body: the autograder runs it when it loads the file."""
    return "\n\nclass Attack:\n" + textwrap.indent(code.strip("\n"), "    ") + "\n"


def hostile(cls: Path, home: Path, out: Path) -> dict[str, tuple[str, float, str]]:
    """Each student's file, the points it earns and a word its flags must hold ("" for none)."""
    victim, gradebook = cls / "honest" / "01_masks.py", out / "gradebook.csv"
    targets = [victim, gradebook, home / "notes.txt", cls / "results.jsonl"]
    attack = f'''
import os
for target in {[str(t) for t in targets]!r}:
    try:
        with open(target, "a") as f:
            f.write("def natmu_masks(*a):\\n    raise SystemExit\\n")
    except OSError:
        pass
for pid in os.listdir("/proc"):
    try:
        os.readlink(f"/proc/{{pid}}/cwd"), open(f"/proc/{{pid}}/environ", "rb").read()
    except OSError:
        pass
'''
    detach = f'''
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(60):
            time.sleep(1)
            try:
                open({str(gradebook)!r}, "w").write("student\\nforged\\n")
            except OSError:
                pass
    os._exit(0)
'''
    return {
        "honest": (CORRECT, 20, ""),
        "notebook": ({"cells": [{"cell_type": "code", "source": c, "metadata": {}, "outputs": []} for c in NOTEBOOK],
                      "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, 20, ""),
        "forge_fail": (ZERO + at_load("try:\n    import natmu_lite.classroom.checking as c\n    c.fail = c.check = "
                                      "print\nexcept ImportError:\n    pass\n"), 0, "tried to import the autograder"),
        "forge_main": (ZERO + at_load("import sys\nm = sys.modules['__main__']\nfor k in list(vars(m)):\n"
                                      "    if callable(getattr(m, k)):\n        setattr(m, k, print)\n"), 0,
                       "changed the autograder"),
        "results_file": (ZERO + at_load("import os, json\ntry:\n    open('../results.jsonl', 'a').write(json.dumps("
                                        "{'check': 'tents_m1_m2', 'case': '', 'passed': True, 'message': ''}))\n"
                                        "except OSError:\n    pass\nos._exit(0)\n"), 0, "ended the grading process"),
        "harm": (ZERO + at_load(attack), 0, "tried to write"),
        "detached": (ZERO + at_load(detach), 0, "started a process"),
        "reload": (ZERO + at_load("import importlib\nimport natmu_lite.methods.natmu as m\ntry:\n"
                                  "    m = importlib.reload(m)\nexcept ImportError:\n    pass\n") +
                   "\n\nnatmu_masks, blend = Attack.m.natmu_masks, Attack.m.blend\n", 0, "again"),
        "source": (ZERO + at_load("import natmu_lite\ncopied = open(natmu_lite.__file__.replace('__init__.py', "
                                  "'methods/natmu.py')).read()\n"), 0, "source of the functions"),
        "package": (ZERO + "import natmu_lite as nl\nfrom natmu_lite.methods.natmu import blend as b\n\n\n"
                    "def natmu_masks(h, w, delta=0.0):\n    return nl.natmu_masks(h, w, delta)\n\n\n"
                    "def blend(x, y, m):\n    return b(x, y, m)\n", 0, "called the package's own"),
        "references": (CORRECT + "\n\ndef natmu_masks(h, w, delta=0.0):\n"
                       "    from natmu_lite.classroom.references import ref_masks\n"
                       "    return torch.from_numpy(ref_masks(h, w, delta)).float()\n", BLEND_ONLY,
                       "tried to import the autograder"),
        "endless": (CORRECT + "\n\ndef natmu_masks(h, w, delta=0.0):\n    while True:\n        pass\n", BLEND_ONLY,
                    "time limit"),
        "exits": (CORRECT + "\n\ndef natmu_masks(h, w, delta=0.0):\n    import os\n    os._exit(0)\n", BLEND_ONLY,
                  "ended the grading process"),
        "interrupts": (CORRECT + "\n\ndef natmu_masks(h, w, delta=0.0):\n    raise KeyboardInterrupt\n",
                       BLEND_ONLY, ""),
        "loud": (CORRECT + "\n\ndef natmu_masks(h, w, delta=0.0):\n    while True:\n        print('x' * 10**6)\n",
                 BLEND_ONLY, ""),
        "greedy_children": (CORRECT + "\n\ndef natmu_masks(h, w, delta=0.0):\n    import subprocess, sys, time\n"
                            "    for _ in range(6):\n        subprocess.Popen([sys.executable, '-c', 'import time; "
                            "x = b\"1\" * 10**9; time.sleep(60)'])\n    time.sleep(60)\n", BLEND_ONLY,
                            "more than|time limit"),  # whichever comes first on a busy machine
    }


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(cls: Path) -> list[str]:
    """Processes of the students' users, or running a student's server."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if 61000 <= uid < 65000 or "natmu_lite.classroom.server" in cmdline or str(cls) in cmdline:
            found.append(f"{pid} (uid {uid}): {cmdline[:100]}")
    return found


def run_grader(cls: Path, tmp_path: Path, env: dict[str, str]) -> None:
    """``natmu-lite grade`` on a class folder into tmp_path/grades, with the hidden checks, HOME the fake one."""
    env = {**os.environ, **env, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT),
           "MPLCONFIGDIR": str(tmp_path / "mpl")}  # the grader's own font cache: not HOME
    run = subprocess.run([sys.executable, "-m", "natmu_lite.cli", "grade", str(cls), "--out", str(tmp_path / "grades"),
                          "--workers", "2", "--quiet", "--hidden", str(ROOT / "assignments" / "hidden"), *LIMITS],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]


def grade(tmp_path: Path, env: dict[str, str], students=None) -> tuple[dict, dict, dict]:
    """Grade the hostile class (or some of its ``students``); (expected, gradebook rows, hashes before and
    after)."""
    cls, home, out = tmp_path / "class", tmp_path / "home", tmp_path / "grades"
    home.mkdir()
    (home / "notes.txt").write_text("the teacher's own file\n")
    expected = {k: v for k, v in hostile(cls, home, out).items() if students is None or k in students}
    for student, (source, _, _) in expected.items():
        (cls / student).mkdir(parents=True)
        if isinstance(source, dict):
            (cls / student / "01_masks.ipynb").write_text(json.dumps(source))
        else:
            (cls / student / "01_masks.py").write_text(source)
    before = {"class": digest(cls), "home": digest(home)}
    run_grader(cls, tmp_path, env)
    graded = digest(out)
    time.sleep(3)  # a detached child would write the gradebook now
    after = {"class": digest(cls), "home": digest(home), "grades": digest(out)}
    return expected, table(out / "gradebook.csv"), {"before": {**before, "grades": graded}, "after": after}


def check_points_and_flags(expected: dict, rows: dict, students) -> None:
    for student in students:
        _, points, flag = expected[student]
        row = rows[student]
        assert float(row["01_masks/public (20)"]) == points, (student, row["01_masks/note"], row["01_masks/flags"])
        if flag:
            said = row["01_masks/flags"] + row["01_masks/note"]
            assert any(f in said for f in flag.split("|")), (student, row["01_masks/flags"])
        else:
            assert student not in ("honest", "notebook") or not row["01_masks/flags"], (student, row["01_masks/flags"])


def second_assignment(tmp_path: Path, rows: dict) -> None:
    """The teacher's next steps: hand points and a comment entered in a spreadsheet that saves with semicolons, then
    another assignment graded into the same gradebook (an honest submission, and one that hard-codes the public
    cases' answers). Every point and column stays; the hard-coded one earns the public points only."""
    path = tmp_path / "grades" / "gradebook.csv"
    edit(path, {("honest", HAND): "2"}, delimiter=";", extra="comments")
    week3 = tmp_path / "week3"
    for student, source in [("honest", (ROOT / "assignments" / "source" / "03_overforgetting.py").read_text()),
                            ("copycat", hard_coded())]:
        (week3 / student).mkdir(parents=True)
        (week3 / student / "03_overforgetting.py").write_text(source)
    before = digest(week3), digest(tmp_path / "home")
    run_grader(week3, tmp_path, {"NATMU_SANDBOX": "bwrap"})
    assert (digest(week3), digest(tmp_path / "home")) == before
    assert path.read_text().splitlines()[0].count(";") > 10, "a semicolon gradebook stays one"
    now = table(path)
    assert set(now) == set(rows) | {"copycat"}, "every student of the first assignment stays"
    for student, row in rows.items():
        first = {k: v for k, v in row.items() if k.startswith("01_masks/") and k != HAND}
        assert {k: now[student][k] for k in first} == first, student
    assert now["honest"][HAND] == "2" and now["honest"]["comments"] == "about honest"
    public, hidden = "03_overforgetting/public (20)", "03_overforgetting/hidden (4)"
    assert (now["honest"][public], now["honest"][hidden], now["copycat"][public]) == ("20", "4", "20")
    assert float(now["copycat"][hidden]) < 4, "the hidden checks catch hard-coded answers"


@pytest.mark.slow
def test_a_hostile_class_gets_only_what_it_earned_in_bubblewrap(tmp_path):
    if not sandbox.bubblewrap_works():
        if os.environ.get("NATMU_REQUIRE_BWRAP"):
            pytest.fail("NATMU_REQUIRE_BWRAP is set but bubblewrap (bwrap) cannot run here")
        pytest.skip("bubblewrap (Debian's bubblewrap package) is not installed or cannot run here")
    expected, rows, hashes = grade(tmp_path, {"NATMU_SANDBOX": "bwrap"})
    check_points_and_flags(expected, rows, expected)
    assert float(rows["honest"]["01_masks/hidden (6)"]) == 6, "the hidden checks count for honest work"
    assert float(rows["notebook"]["01_masks/hidden (6)"]) == 6
    feedback = (tmp_path / "grades" / "feedback" / "notebook.md").read_text()
    assert "- 01_masks.ipynb, code cell 2 raised RuntimeError: a figure that fails to draw at line 1" in feedback
    assert "read the package's source" in rows["source"]["01_masks/flags"]
    assert hashes["before"] == hashes["after"], "a file outside the students' private folders changed"
    assert not leftovers(tmp_path / "class")
    second_assignment(tmp_path, rows)
    assert not leftovers(tmp_path / "week3")


@pytest.mark.slow
def test_the_plain_fallback_still_keeps_the_checks_apart(tmp_path):
    """Without bubblewrap the student's code still runs in a process of its own: forging, the package's answers
    and a crash earn nothing, and nothing is left running. Where the grader is root (as here, and on Colab), the
    student's code runs as a user of its own, so the harmful submissions change no file either."""
    root = os.geteuid() == 0
    students = ["honest", "notebook", "forge_fail", "forge_main", "package", "reload", "exits", "endless",
                "interrupts", *(["harm", "detached"] if root else [])]
    expected, rows, hashes = grade(tmp_path, {"NATMU_SANDBOX": "plain"}, students)
    check_points_and_flags(expected, rows, students)
    assert not root or hashes["before"] == hashes["after"], "a file outside the students' private folders changed"
    assert not leftovers(tmp_path / "class")
