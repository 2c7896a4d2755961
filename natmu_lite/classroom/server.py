"""The student's process: ``python -m natmu_lite.classroom.server ASSIGNMENT FILE``, started by the checking
process (:mod:`~natmu_lite.classroom.remote`) inside the jail of :mod:`~natmu_lite.classroom.sandbox`.

Before any of the student's code runs it limits itself (memory, file size, processes, no core files), becomes the
unprivileged user it was given, and makes the package's own versions of the functions the assignment asks for
unavailable (calling one raises :class:`Blocked`, and the reply says so), as well as the classroom's checks and
references. Then it runs the student's file as it runs in Jupyter (:class:`~natmu_lite.classroom.student.Student`:
cell by cell, with time limits) and answers calls, one frame in, one frame out (:mod:`wire`): whatever the student's
code does here, including writing to these pipes, it only changes its own answers. A call of a blocked function
while the file loads (the hand-out's cells compare with the package) fails that cell; during the checks it is
also flagged.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import importlib.util
import json
import os
import pickle
import sys
import traceback
from pathlib import Path

from . import wire
from .checking import Failed
from .checks import load
from .student import Student

REQUEST_LIMIT = 2**30  # the checks' own calls (trusted)
EVENTS: set[str] = set()  # what the student's code did that the teacher should know (the gradebook's flags)
CHECKING: list[bool] = []  # not empty once the file is loaded and the checks call
SOURCES: set[str] = set()  # the files of the package's modules that define the functions blocked
WATCHED = {"subprocess.Popen": "started a program", "os.fork": "started a process", "os.forkpty": "started a process",
           "os.posix_spawn": "started a program", "os.exec": "replaced its process with a program",
           "os.kill": "sent a signal", "os.killpg": "sent a signal", "socket.connect": "opened a network connection",
           "ctypes.dlopen": "loaded a C library"}


class Blocked(Exception):
    """A package function the assignment asks the student to write, called while grading."""


def limit(memory_mb: int, file_mb: int, processes: int | None) -> None:
    """Address space, size of any file written (the output log too), no core files; processes and threads of
    the user (only where the user is the student's own)."""
    try:
        import resource
    except ImportError:
        return
    caps = [(resource.RLIMIT_AS, memory_mb), (resource.RLIMIT_FSIZE, file_mb), (resource.RLIMIT_CORE, 0)]
    for what, mb in caps:
        with contextlib.suppress(ValueError, OSError):  # macOS refuses RLIMIT_AS
            resource.setrlimit(what, (mb * 2**20, mb * 2**20))
    if processes is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))


def become(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def preload(assignment: str) -> None:
    """Import what the assignment's hand-out imports, while this process may still read Python's files (the user it
    becomes may not, where Python is installed under /root): the student's code finds them loaded."""
    from .handout import notebook

    for cell in json.loads(notebook(assignment))["cells"]:
        for name in imported("".join(cell["source"])) if cell["cell_type"] == "code" else []:
            with contextlib.suppress(Exception):
                importlib.import_module(name)
    import numpy as np
    import torch

    wire.encode(wire.pack({"value": (torch.zeros(1), np.zeros(1), print)}, id))  # what the replies import


def imported(source: str) -> list[str]:
    """The modules a cell imports."""
    try:
        nodes = list(ast.walk(ast.parse(source)))
    except SyntaxError:
        return []
    return [*(a.name for n in nodes if isinstance(n, ast.Import) for a in n.names),
            *(n.module for n in nodes if isinstance(n, ast.ImportFrom) and n.module)]


def stub(name: str, assignment: str):
    def blocked(*args, **kwargs):
        if CHECKING:
            EVENTS.add(f"called the package's own `{name}`, which the assignment asks students to write (blocked)")
        raise Blocked(f"the package's own `{name}` is not available while assignment {assignment} is graded: "
                      "it is what the assignment asks you to write. Use your own function.")
    blocked.__name__ = name
    return blocked


def block(assignment: str, functions: tuple[str, ...]) -> None:
    """Replace the package's versions of ``functions`` wherever the package holds them; make the classroom (its
    checks, references and solutions' helpers) impossible to import, and the package's modules impossible to load
    again (a reload would bring the functions back); note the files that define them, whose reading is flagged."""
    loaded = {name: m for name, m in list(sys.modules.items()) if name.split(".")[0] == "natmu_lite"}
    for module in loaded.values():
        for fn in functions:
            real = getattr(module, fn, None)
            if callable(real):
                source = getattr(sys.modules.get(getattr(real, "__module__", "")), "__file__", None)
                SOURCES.update({os.path.realpath(source), os.path.realpath(importlib.util.cache_from_source(
                    source))} if source else set())
                setattr(module, fn, stub(fn, assignment))
    for name in [n for n in sys.modules if n.startswith("natmu_lite.classroom")]:
        del sys.modules[name]
    sys.modules["natmu_lite"].__dict__.pop("classroom", None)
    sys.meta_path.insert(0, Guard({n for n in loaded if not n.startswith("natmu_lite.classroom")}))


class Guard:
    """An import hook: the classroom cannot be imported by the student's code, and the package's modules loaded
    before it ran cannot be loaded again."""

    def __init__(self, loaded: set[str]):
        self.loaded = loaded

    def find_spec(self, name, path=None, target=None):
        if name.startswith("natmu_lite.classroom"):
            EVENTS.add("tried to import the autograder (natmu_lite.classroom)")
            raise ImportError(f"{name} is not available while grading (the autograder's checks and references)")
        if name in self.loaded:
            EVENTS.add(f"tried to load the package's `{name}` again (a reload would undo the blocked functions)")
            raise ImportError(f"{name} cannot be loaded again while grading")
        return None


class Server:
    """Calls the student's functions for the checking process; keeps what must live here between calls: the
    functions the student's code returned, and the lists and dicts the checks passed (a callback appends to the
    list it was made with)."""

    def __init__(self, student: Student):
        self.student, self.code = student, own_code()
        self.functions: dict[int, object] = {}
        self.tracked: dict[int, object] = {}

    def keep(self, fn) -> int:
        self.functions[len(self.functions)] = fn
        return len(self.functions) - 1

    def track(self, key: int | None, value):
        """The object the checks know as ``key``: the same one as in earlier calls, updated to their content."""
        if key is None or not isinstance(value, list | dict):
            return value
        mine = self.tracked.setdefault(key, value)
        if mine is not value:
            mine.clear()
            mine.extend(value) if isinstance(mine, list) else mine.update(value)
        return mine

    def call(self, target, args, kwargs, keys, expected: str | None) -> dict:
        args = [self.track(k, a) for k, a in zip(keys, args)]
        try:
            fn = self.functions[target] if isinstance(target, int) else self.student.function(target)
        except (Failed, KeyError) as e:
            return {"missing": str(e)}
        reply = {"name": getattr(fn, "__name__", "your function")}
        try:
            reply["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: B036 (SystemExit and KeyboardInterrupt end one call, not the grading)
            reply.update(raised=type(e).__name__, expected=expected is not None and expects(e, expected),
                         message=self.student.explain(e), trace=self.student._trace(e) or trace_of(e))
        reply["tensors"] = {k: a for k, a in zip(keys, args) if k is not None and is_tensor(a)}
        reply["tracked"] = self.tracked
        if own_code() != self.code:
            EVENTS.add("changed the autograder's code in its own process")
        reply["events"] = sorted(EVENTS)
        return reply


def own_code() -> dict[str, int]:
    """The functions this process answers with (a submission that replaces them only changes its own answers,
    but the teacher should know)."""
    spaces = {"server": globals(), "wire": vars(wire), "main": vars(sys.modules["__main__"])}
    return {f"{where}.{k}": id(v) for where, space in spaces.items() for k, v in list(space.items()) if callable(v)}


def audit(event: str, args: tuple) -> None:
    """Note what the student's code does that an answer never needs (an audit hook: it cannot be removed)."""
    if event in WATCHED:
        EVENTS.add(WATCHED[event])
    elif event == "open" and isinstance(args[0], str | bytes) and os.path.realpath(os.fsdecode(args[0])) in SOURCES:
        EVENTS.add(f"read the package's source of the functions the assignment asks for ({os.fsdecode(args[0])})")
    elif event == "open" and isinstance(args[0], str) and writes(args[1], args[2]):
        path = os.path.abspath(args[0])
        if not path.startswith((os.getcwd() + os.sep, "/dev/")):
            EVENTS.add(f"tried to write {path[:200]}")


def writes(mode, flags) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))


def is_tensor(value) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def expects(e: BaseException, expected: str) -> bool:
    return any(c.__name__ == expected and c.__module__ == "builtins" for c in type(e).__mro__)


def trace_of(e: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(e), e)).strip()[-500:]


def serve(student: Student, inp: int, out: int) -> None:
    server = Server(student)
    while True:
        try:
            request = pickle.loads(wire.receive(inp, REQUEST_LIMIT))
        except EOFError:
            return
        reply = server.call(*request)
        wire.send(out, wire.encode(wire.pack(reply, server.keep)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("file", type=Path)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--file-mb", type=int, required=True)
    parser.add_argument("--cell-timeout", type=float, required=True)
    parser.add_argument("--budget", type=float, default=0.0, help="seconds for running cells in full, in all")
    parser.add_argument("--definitions-only", type=int, nargs="*", default=[], help="cells (from 1) not run in full")
    parser.add_argument("--uid", type=int, default=None)
    parser.add_argument("--processes", type=int, default=64)
    parser.add_argument("--preload", action="store_true", help="load the hand-out's modules before --uid")
    args = parser.parse_args(argv)
    inp, out = os.dup(0), os.dup(1)  # the pipes to the checks; the student's prints go to the log on stderr
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    limit(args.memory_mb, args.file_mb, args.processes if args.uid is not None else None)
    if args.preload:
        preload(args.assignment)
    if args.uid is not None:
        become(args.uid)
    import torch

    torch.set_num_threads(1)
    block(args.assignment, load(args.assignment).FUNCTIONS)
    sys.addaudithook(audit)
    code = own_code()
    try:
        student = Student(args.file, args.cell_timeout, args.budget, frozenset(args.definitions_only))
    except Failed as e:
        wire.send(out, wire.encode({"error": str(e), "events": sorted(EVENTS)}))
        return 0
    if own_code() != code:
        EVENTS.add("changed the autograder's code in its own process")
    wire.send(out, wire.encode({"loaded": True, "problems": student.problems, "stopped": sorted(student.stopped),
                                "events": sorted(EVENTS)}))
    CHECKING.append(True)
    serve(student, inp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
