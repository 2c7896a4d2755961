"""A hostile class: submissions that try to forge their grade, harm their classmates or the teacher, or call the
package's own answers, graded beside honest ones. Each gets only the points it earned and a flag in the
gradebook, the honest ones are unaffected, no file outside the students' private folders changes (the class
folder, the gradebook after the grader ends, and the teacher's HOME are hashed before and after), and no process
is left. The student's code runs in bubblewrap where it works here (else the test says so and skips), and once
more in the plain fallback, where the checks and the student still run in two processes."""

import csv
import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from natmu_lite.classroom import sandbox

ROOT = Path(__file__).resolve().parents[1]
LIMITS = ["--time-limit", "150", "--memory-mb", "4608", "--call-timeout", "8"]
CORRECT = (ROOT / "assignments" / "source" / "01_masks.py").read_text()
ZERO = '''import torch


def natmu_masks(height, width, delta=0.0):
    return torch.zeros(4, height, width)


def blend(forget_x, retain_x, masks):
    return torch.zeros_like(forget_x)
'''
LAMBDA = '''import torch

tent = lambda n: torch.minimum(torch.arange(n) * 1.0, n - 1 - torch.arange(n) * 1.0) / (n / 2)  # noqa: E731


def natmu_masks(height, width, delta=0.0):
    m1, m2 = tent(height)[:, None].expand(height, width), tent(width)[None].expand(height, width)
    m3, m4 = (height / 2 - 1) / (height / 2) - m1, (width / 2 - 1) / (width / 2) - m2
    return (torch.stack([m1, m2, m3, m4]) + delta).clamp(0, 1)
'''
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
        "lambda": (CORRECT.split("# %%\ndef natmu_masks")[0] + LAMBDA + "\n\ndef blend" +
                   CORRECT.split("\ndef blend")[1], 20, ""),
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


def grade(tmp_path: Path, env: dict[str, str], students=None) -> tuple[dict, dict, dict]:
    """Grade the hostile class (or some of its ``students``); (expected, gradebook rows, hashes before and
    after)."""
    cls, home, out = tmp_path / "class", tmp_path / "home", tmp_path / "grades"
    home.mkdir()
    (home / "notes.txt").write_text("the teacher's own file\n")
    expected = {k: v for k, v in hostile(cls, home, out).items() if students is None or k in students}
    for student, (source, _, _) in expected.items():
        (cls / student).mkdir(parents=True)
        (cls / student / "01_masks.py").write_text(source)
    before = {"class": digest(cls), "home": digest(home)}
    run = subprocess.run([sys.executable, "-m", "natmu_lite.cli", "grade", str(cls), "--out", str(out), "--workers",
                          "2", "--quiet", "--hidden", str(ROOT / "assignments" / "hidden"), *LIMITS], cwd=tmp_path,
                         env={**os.environ, **env, "HOME": str(home), "PYTHONPATH": str(ROOT),
                              "MPLCONFIGDIR": str(tmp_path / "mpl")},  # the grader's own font cache: not HOME
                         capture_output=True,
                         text=True, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    graded = digest(out)
    time.sleep(3)  # a detached child would write the gradebook now
    after = {"class": digest(cls), "home": digest(home), "grades": digest(out)}
    with (out / "gradebook.csv").open() as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    return expected, rows, {"before": {**before, "grades": graded}, "after": after}


def check_points_and_flags(expected: dict, rows: dict, students) -> None:
    for student in students:
        _, points, flag = expected[student]
        row = rows[student]
        assert float(row["01_masks/public (20)"]) == points, (student, row["01_masks/note"], row["01_masks/flags"])
        if flag:
            said = row["01_masks/flags"] + row["01_masks/note"]
            assert any(f in said for f in flag.split("|")), (student, row["01_masks/flags"])
        else:
            assert student not in ("honest", "lambda") or not row["01_masks/flags"], (student, row["01_masks/flags"])


@pytest.mark.slow
def test_a_hostile_class_gets_only_what_it_earned_in_bubblewrap(tmp_path):
    if not sandbox.bubblewrap_works():
        if os.environ.get("NATMU_REQUIRE_BWRAP"):
            pytest.fail("NATMU_REQUIRE_BWRAP is set but bubblewrap (bwrap) cannot run here")
        pytest.skip("bubblewrap (Debian's bubblewrap package) is not installed or cannot run here")
    expected, rows, hashes = grade(tmp_path, {"NATMU_SANDBOX": "bwrap"})
    check_points_and_flags(expected, rows, expected)
    assert float(rows["honest"]["01_masks/hidden (6)"]) == 6, "the hidden checks count for honest work"
    assert float(rows["lambda"]["01_masks/hidden (6)"]) == 6
    assert hashes["before"] == hashes["after"], "a file outside the students' private folders changed"
    assert not leftovers(tmp_path / "class")


@pytest.mark.slow
def test_the_plain_fallback_still_keeps_the_checks_apart(tmp_path):
    """Without bubblewrap the student's code still runs in a process of its own: forging, the package's answers
    and a crash earn nothing, and nothing is left running. (Files are protected only where the grader is root and
    Python is open to other users; see the instructors' page.)"""
    students = ["honest", "lambda", "forge_fail", "forge_main", "package", "exits", "endless", "interrupts"]
    expected, rows, _ = grade(tmp_path, {"NATMU_SANDBOX": "plain"}, students)
    check_points_and_flags(expected, rows, students)
    assert not leftovers(tmp_path / "class")
