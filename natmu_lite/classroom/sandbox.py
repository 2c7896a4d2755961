"""Where a student's code runs: a process of its own, started by the checking process, in the strongest jail this
machine offers, and every process it started killed when it ends.

- **bubblewrap** (``bwrap``, Debian's ``bubblewrap`` package), where it is installed and works: new mount, PID,
  network, IPC and UTS namespaces. The process sees Python and its packages read-only, this package, and a private
  working folder (a size-capped tmpfs holding a copy of the submission); nothing else of the file system: not the
  class folder, the other submissions, the gradebook or anyone's home. No network. Killing it kills its whole PID
  namespace, detached children included.
- **plain**, elsewhere (macOS, containers that refuse namespaces): a process in a session of its own, in a private
  working folder, with the same limits; files and network are not hidden.

In both, when the grader runs as root (Colab, a container), the student's process runs as an unprivileged user
of its own (:func:`student_uid`), so it cannot write what the grader wrote; where that user could not read Python
itself (installed under ``/root``), the process loads the hand-out's modules first and drops its rights after.
:mod:`~natmu_lite.classroom.server` limits its memory, processes and file sizes before any of the student's code
runs. ``NATMU_SANDBOX=plain`` (or
``bwrap``) forces a choice.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import natmu_lite

PACKAGE = Path(natmu_lite.__file__).resolve().parent
WORK = "/work"  # the private folder's path inside bubblewrap
LIB = "/natmu"  # where this package is seen inside bubblewrap
SYSTEM = ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/sbin", "/etc/alternatives", "/etc/ld.so.cache",
          "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/ssl", "/etc/fonts", "/etc/passwd",
          "/etc/group")


@dataclass(frozen=True)
class Jail:
    kind: str  # "bubblewrap" or "plain"
    uid: int | None  # the unprivileged user the student's code runs as, when the grader is root
    preload: bool = False  # that user cannot read Python: modules are loaded before the rights are dropped

    def describe(self) -> str:
        user = "as an unprivileged user of its own" if self.uid is not None else "as the grader's user"
        return f"{self.kind}, {user}" + " (modules loaded before dropping rights)" * self.preload


def student_uid() -> int:
    """A user id of its own for this checking process's student (no account needed): its processes can be
    counted and killed by user, and cannot touch another student's."""
    return 61000 + os.getpid() % 4000


@functools.cache
def bubblewrap_works() -> bool:
    """Whether ``bwrap`` is installed and may create namespaces here (containers often refuse)."""
    if not shutil.which("bwrap") or sys.platform != "linux":
        return False
    probe = bwrap_command([sys.executable, "-c", "pass"], None, {})
    try:
        return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def world_readable(path: Path) -> bool:
    """Whether every folder above ``path`` lets any user through (else an unprivileged user cannot run Python)."""
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def choose() -> Jail:
    """The strongest jail available (``NATMU_SANDBOX`` may force one)."""
    wanted = os.environ.get("NATMU_SANDBOX", "")
    if wanted not in ("", "bwrap", "plain"):
        raise ValueError(f"NATMU_SANDBOX={wanted!r}: expected bwrap or plain")
    kind = "bubblewrap" if wanted != "plain" and bubblewrap_works() else "plain"
    if wanted == "bwrap" and kind != "bubblewrap":
        raise ValueError("NATMU_SANDBOX=bwrap, but bubblewrap (bwrap) is not installed or cannot run here")
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return Jail(kind, None)
    readable = kind == "bubblewrap" or world_readable(Path(sys.prefix)) and world_readable(PACKAGE)
    return Jail(kind, student_uid(), preload=not readable)


def python_paths() -> list[str]:
    """What Python needs to be seen inside bubblewrap: its prefixes and its site-packages folders."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(sys.executable).resolve().parent.parent)}
    paths |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()}
    return sorted(p for p in paths if not any(p.startswith(s + "/") or p == s for s in SYSTEM))


def bwrap_command(argv: list[str], work: Path | None, env: dict[str, str], tmpfs_mb: int = 256) -> list[str]:
    """``argv`` inside bubblewrap, with ``work`` (a folder holding the submission) copied to a private tmpfs."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    command = ["bwrap", "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-net",
               "--unshare-uts", "--unshare-cgroup-try"]
    if not root:
        command.append("--unshare-user")  # unprivileged bubblewrap needs a user namespace
    for path in SYSTEM:
        if os.path.lexists(path):
            kind = "--symlink" if os.path.islink(path) else "--ro-bind"
            command += [kind, os.readlink(path), path] if kind == "--symlink" else [kind, path, path]
    for path in python_paths():
        for parent in reversed(Path(path).parents[:-1]):  # folders above it, open to the student's user
            command += ["--perms", "0755", "--dir", str(parent)]
        command += ["--ro-bind", path, path]
    command += ["--perms", "0755", "--dir", LIB, "--ro-bind", str(PACKAGE), f"{LIB}/natmu_lite",
                "--proc", "/proc", "--dev", "/dev",
                "--perms", "01777", "--size", str(tmpfs_mb * 2**20), "--tmpfs", "/tmp",
                "--perms", "01777", "--size", str(tmpfs_mb * 2**20), "--tmpfs", WORK, "--chdir", WORK]
    if work is not None:
        for item in work.iterdir():
            command += ["--ro-bind", str(item), f"{WORK}/{item.name}"]
    for key, value in env.items():
        command += ["--setenv", key, value]
    return [*command, *argv]


def environment(work: str, lib: str) -> dict[str, str]:
    """The student's environment: none of the grader's variables (tokens, paths, HOME)."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8",
            "PYTHONPATH": lib, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "MPLBACKEND": "Agg", "NATMU_CACHE": f"{work}/cache"}


def start(jail: Jail, argv: list[str], work: Path, log: Path) -> subprocess.Popen:
    """Start ``python argv`` for the student in ``jail``, in a copy of ``work``; pipes on stdin and stdout, stderr
    to ``log``."""
    python = [sys.executable, *argv]
    if jail.kind == "bubblewrap":
        env = environment(WORK, LIB)
        command, cwd, environ = bwrap_command(python, work, env), None, {"PATH": os.environ.get("PATH", "")}
    else:
        private = work.parent / "private"
        private.mkdir(mode=0o700)
        for item in work.iterdir():
            shutil.copyfile(item, private / item.name)
        if jail.uid is not None:
            work.parent.chmod(0o711)
            for p in [private, *private.iterdir()]:
                os.chown(p, jail.uid, jail.uid)
        command, cwd = python, private
        environ = environment(str(private), str(PACKAGE.parent))
    with log.open("ab") as err:
        return subprocess.Popen(command, cwd=cwd, env=environ, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, start_new_session=True)



def children() -> dict[int, list[int]]:
    """Every process's children, from /proc (empty where there is none: macOS)."""
    out: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = Path(f"/proc/{entry.name}/stat").read_text()
                    out.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    return out


def descendants(pid: int) -> list[int]:
    tree, out, todo = children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def resident_mb(pids: list[int]) -> float:
    """The memory these processes hold (resident), MB."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20 if total else 0.0


def kill_user(uid: int) -> None:
    """Every process of ``uid`` (a child that becomes that user and signals all it may)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def kill_all(proc: subprocess.Popen, jail: Jail) -> None:
    """The student's process and everything it started: its session, whatever hangs below this process
    (orphans come here: see :func:`become_subreaper`), and every process of its user."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in [proc.pid, *descendants(os.getpid())]:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if jail.uid is not None:
        kill_user(jail.uid)
    proc.wait()
    reap()


def reap() -> None:
    """Collect the orphans that ended (they became this process's children)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def become_subreaper() -> None:
    """Linux: orphans of the student's processes become this process's children (so that none escapes
    :func:`kill_all`), and this process's memory and files in /proc are closed to other processes of its user."""
    if sys.platform != "linux":
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE: 0
