"""The checks' view of a student: ``student("fn", *args)`` calls ``fn`` in the student's process
(:mod:`~natmu_lite.classroom.server`) and returns its result, or fails the case with a message for the student.

The arguments go there pickled; the result comes back through :mod:`~natmu_lite.classroom.wire`, of bounded size.
A call that runs past its time limit, holds more memory than allowed (all the student's processes together), or
ends the process (a crash, ``os._exit``, a signal) fails its case; the process and everything it started is
killed, and the next call starts a new one, so one failure costs one case. A function that ran past the limit
once, or ended the process twice, is not called again (each further case fails at once), so that one endless
loop or crash cannot use up the time of the others.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

from . import sandbox, wire
from .checking import fail

POLL = 0.2  # seconds between two looks at the student's memory


class Gone(Exception):
    """The student's process did not answer: why, for the student."""


class RemoteFunction:
    """A function the student's code returned: it lives in the student's process."""

    def __init__(self, student: Remote, generation: int, handle: int, name: str):
        self.student, self.generation, self.handle, self.__name__ = student, generation, handle, name

    def __call__(self, *args, **kwargs):
        return self.student(self, *args, **kwargs)


class Remote:
    """One submission's functions, called in a jailed process of their own."""

    def __init__(self, file: Path, assignment: str, limits, scratch: Path, jail: sandbox.Jail):
        self.file, self.assignment, self.limits, self.scratch, self.jail = file, assignment, limits, scratch, jail
        self.path = Path(file.name)
        self.problems: list[str] = []  # the cells that did not run in full, why
        self.stopped: list[int] | None = None  # the cells that ran out of time at the first load
        self.flags: set[str] = set()  # what the teacher should look at
        self.timed_out: set[str] = set()
        self.crashes: dict[str, int] = {}  # functions that ended the student's process, how often
        self.tracked: dict[int, Any] = {}  # the lists and dicts passed to the student, kept alive by id
        self.proc: subprocess.Popen | None = None
        self.generation, self.buffer, self.dead, self.checked = 0, bytearray(), "", 0.0
        self.log = scratch / "output.log"

    # -- the process

    def start(self) -> None:
        """Start the student's process and load the submission; :class:`Gone` if that fails (then for good)."""
        work = self.scratch / "submission"
        work.mkdir(exist_ok=True)
        if not (work / self.file.name).exists():
            (work / self.file.name).write_bytes(self.file.read_bytes())
        limits, uid = self.limits, self.jail.uid
        argv = ["-m", "natmu_lite.classroom.server", self.assignment, self.file.name, "--memory-mb",
                str(limits.memory_mb), "--file-mb", str(limits.file_mb), "--cell-timeout", str(limits.call_timeout),
                "--budget", str(limits.cells), "--definitions-only", *map(str, self.stopped or []),
                *(["--uid", str(uid)] if uid is not None else []), *(["--preload"] * self.jail.preload)]
        if self.jail.kind != "bubblewrap":
            (self.scratch / "private").exists() and self.clear_private()
        self.proc, self.buffer = sandbox.start(self.jail, argv, work, self.log), bytearray()
        self.generation += 1
        try:
            reply = self.receive(limits.load_timeout + limits.cells, "loading your file")
        except Gone as e:
            self.dead = str(e)
            raise
        self.flags |= set(reply.get("events", []))
        if "error" in reply:
            self.dead = reply["error"]
            raise Gone(self.dead)
        if self.stopped is None:  # a restart runs the same cells, but not again those that ran out of time
            self.problems, self.stopped = reply["problems"], reply["stopped"]

    def clear_private(self) -> None:
        import shutil

        shutil.rmtree(self.scratch / "private", ignore_errors=True)

    def stop(self) -> None:
        if self.proc is not None:
            sandbox.kill_all(self.proc, self.jail)
            self.proc = None

    def receive(self, timeout: float, doing: str) -> dict:
        """The next reply, within ``timeout`` seconds and the memory limit; :class:`Gone` (the process killed)
        otherwise."""
        deadline, fd = time.monotonic() + timeout, self.proc.stdout.fileno()
        while True:
            frame = self.frame()
            if frame is not None:
                return wire.unpack(wire.decode(frame), self.function)
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                self.flags.add(f"ran past the time limit ({doing})")
                raise Gone(f"did not finish {doing} within {timeout:g} s")
            if time.monotonic() > self.checked + POLL and self.memory() > self.limits.memory_mb:
                self.stop()
                self.flags.add(f"held more than {self.limits.memory_mb} MB in all its processes")
                raise Gone(f"needed more than {self.limits.memory_mb} MB of memory in all its processes together "
                           f"while {doing}")
            if select.select([fd], [], [], min(POLL, left))[0]:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    code = self.proc.wait()
                    self.stop()
                    self.flags.add(f"ended the grading process ({ended(code)})")
                    raise Gone(f"ended the grading process while {doing} ({ended(code)}{self.last_words()})")
                self.buffer += chunk

    def frame(self) -> bytes | None:
        """A whole frame from the buffer, if there is one."""
        if len(self.buffer) < wire.HEADER.size:
            return None
        (size,) = wire.HEADER.unpack(self.buffer[:wire.HEADER.size])
        if size > self.limits.result_mb * 2**20:
            self.stop()
            raise Gone(f"returned more than {self.limits.result_mb} MB")
        if len(self.buffer) < wire.HEADER.size + size:
            return None
        frame = bytes(self.buffer[wire.HEADER.size: wire.HEADER.size + size])
        del self.buffer[: wire.HEADER.size + size]
        return frame

    def memory(self) -> float:
        self.checked = time.monotonic()
        return sandbox.resident_mb(sandbox.descendants(os.getpid()))

    def last_words(self) -> str:
        """The last line the student's code printed (read from the end of the log only)."""
        try:
            with self.log.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 2000))
                lines = f.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f"; its last output: {lines[-1][:200]}" if lines else ""

    def function(self, handle: int, name: str) -> RemoteFunction:
        return RemoteFunction(self, self.generation, handle, name)

    # -- calls, as the checks make them

    def __call__(self, name, *args, **kwargs):
        return self._run(name, None, args, kwargs)[0]

    def raises(self, exc: type[Exception], name: str, *args, **kwargs) -> bool:
        """Whether ``name(*args)`` raises ``exc`` (a built-in exception; any other error fails the check)."""
        return self._run(name, exc.__name__, args, kwargs)[1]

    def _run(self, name, expected: str | None, args, kwargs) -> tuple[Any, bool]:
        label = getattr(name, "__name__", name)
        if self.dead:
            fail(f"`{label}` could not be called: your file {self.dead}")
        if label in self.timed_out:
            fail(f"`{label}` was not called again: it did not return within {self.limits.call_timeout:g} s in an "
                 "earlier case (look for a loop that never ends)")
        if self.crashes.get(label, 0) >= 2:
            fail(f"`{label}` was not called again: it ended the grading process in two earlier cases")
        if isinstance(name, RemoteFunction) and name.generation != self.generation:
            fail(f"the function `{label}` that your code returned was lost when the grading process restarted "
                 "after an earlier failure")
        try:
            if self.proc is None:
                self.start()
            reply = self.call(name.handle if isinstance(name, RemoteFunction) else name, args, kwargs, expected)
        except Gone as e:
            if "did not finish calling" in str(e):
                self.timed_out.add(label)
                fail(f"`{label}` did not return within {self.limits.call_timeout:g} s: look for a loop that never "
                     "ends (or work that grows far too fast).")
            self.crashes[label] = self.crashes.get(label, 0) + 1
            fail(f"`{label}` {e}" if not self.dead else f"`{label}` could not be called: your file {self.dead}")
        return self.answer(label, expected, reply)

    def call(self, target, args, kwargs, expected) -> dict:
        keys = [id(a) if isinstance(a, list | dict | torch.Tensor) else None for a in args]
        self.tracked.update({id(a): a for a in args if isinstance(a, list | dict)})
        wire.send(self.proc.stdin.fileno(), pickle.dumps((target, list(args), kwargs, keys, expected)))
        reply = self.receive(self.limits.call_timeout, f"calling `{getattr(target, '__name__', target)}`")
        self.update(dict(zip(keys, args)), reply)
        return reply

    def update(self, passed: dict, reply: dict) -> None:
        """The student's changes to what the checks passed, made here too (a list a callback appends to, an
        image modified in place)."""
        for key, value in reply.get("tracked", {}).items():
            mine = self.tracked.get(key)
            if isinstance(mine, list) and isinstance(value, list):
                mine[:] = value
            elif isinstance(mine, dict) and isinstance(value, dict):
                mine.clear()
                mine.update(value)
        for key, value in reply.get("tensors", {}).items():
            mine = passed.get(key)
            if isinstance(mine, torch.Tensor) and isinstance(value, torch.Tensor) and value.shape == mine.shape \
                    and value.dtype == mine.dtype and not torch.equal(mine, value):
                with contextlib.suppress(RuntimeError):  # an expanded view cannot be written
                    mine.copy_(value)

    def answer(self, label: str, expected: str | None, reply: dict) -> tuple[Any, bool]:
        self.flags |= set(reply.get("events", []))
        if "missing" in reply:
            fail(reply["missing"])
        if "raised" not in reply:
            return reply.get("value"), False
        if expected is not None and reply["expected"]:
            return None, True
        if reply["raised"] == "NotImplementedError":
            fail(f"`{reply['name']}` is not implemented yet: replace `# YOUR CODE HERE` and `raise "
                 "NotImplementedError` with your code.")
        fail(f"`{reply['name']}` raised {reply['message']}\n{reply['trace']}".rstrip())


def ended(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}: sys.exit, os._exit or a crash"
