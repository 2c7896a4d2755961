"""Where and how a committed result was produced: the machine (with the CPU's instruction set), the
code's commit and the versions. One module for every file the project commits (the protocol's exports,
the U-LiRA audits, the pinned original models), so that they all say the same things the same way.

Why the instruction set: CPU kernels differ by it. ATen picks its vectorised kernels by the CPU's
capability (``ATEN_CPU_CAPABILITY`` caps it) and oneDNN its convolutions (``ONEDNN_MAX_CPU_ISA``), so
the same training on an AVX-512 and on an AVX2 machine differs in its last bits, and the runs that
start from it differ as runs of another seed would. A reader who gets other numbers can tell from the
provenance whether the machine, not the code, is why.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

import torch

from . import __version__

ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")  # environment caps on the kernels' instruction set


def cpu_model() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    return cpu


def instruction_set() -> str:
    """The instruction set torch's CPU kernels use: ATen's capability (e.g. ``AVX512``, ``AVX2``), with
    any environment cap that applies (e.g. ``AVX2 (ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2)``)."""
    capability = torch.backends.cpu.get_cpu_capability()
    caps = [f"{v}={os.environ[v]}" for v in ISA_VARIABLES if os.environ.get(v)]
    return f"{capability} ({', '.join(caps)})" if caps else capability


def machine() -> dict:
    """Where something ran: host, device (a GPU's name, or ``cpu``), the CPU's model and the instruction
    set of its kernels, cores, torch threads and versions."""
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"host": platform.node(), "device": gpu or "cpu", "cpu": cpu_model(), "isa": instruction_set(),
            "cores": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "pid": os.getpid()}


def machine_name(where: dict) -> str:
    """A short name for a :func:`machine` record: the GPU's name, or the CPU's model with the instruction
    set of its kernels (a run on another instruction set is close, not bit-identical)."""
    device = where.get("device")
    return device if device not in (None, "cpu") else f"{where.get('cpu')} ({where.get('isa')})"


def git_commit() -> str:
    """The checkout's commit, marked when files it tracks have uncommitted changes."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def record(command: str, **extra) -> dict:
    """The provenance every committed file starts with: the command that produced it, the commit, the
    versions, this machine and the date; ``extra`` adds what is particular to the file."""
    return {"command": command, "git_commit": git_commit(), "natmu_lite": __version__, "torch": torch.__version__,
            "python": platform.python_version(), "machine": machine(), "date": now(), **extra}
