"""Load a student's functions from a notebook or a .py file, as the file runs, with errors meant for students.

The code cells run in order (a .py file's cells are split at ``# %%`` lines; without them it is one cell), each
within the per-call time limit (:data:`CALL_TIMEOUT`, ``--call-timeout``), all of them within a loading budget.
A cell that raises or runs past its limit stops there, as in Jupyter, but the rest of it still runs its imports,
definitions and assignments that call nothing, so that one failing line costs only what it computes; the next
cell runs as usual. Once the budget is spent, the remaining cells (and, on a restart, the cells that ran out of
time before) run only those definitions. :attr:`Student.problems` says, cell by cell, what did not run in full
and why. IPython lines (``%pip ...``, ``!ls``) and the hand-out's self-check (``self_check(In, ...)``) are not run.
(The grader runs this in a jailed process of its own, with a time and a memory limit: see
:mod:`natmu_lite.classroom.server`.)
"""

from __future__ import annotations

import ast
import contextlib
import json
import linecache
import re
import signal
import sys
import threading
import time
import traceback
import types
from pathlib import Path
from typing import Any

from .checking import check, fail

KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
CALL_TIMEOUT = 60.0  # seconds per call of a student's function (the references take well under one)


class TimeLimit(BaseException):
    """Raised in a student's code when its time is up: a BaseException, so that the student's own
    ``except Exception`` cannot swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the block with :class:`TimeLimit` after ``seconds`` (SIGALRM: the main thread of a POSIX
    process, and Python code, which is where endless loops run; C code is interrupted once it returns).
    Without SIGALRM, off the main thread, or with ``seconds <= 0``, there is no limit."""
    if seconds <= 0 or not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimeLimit

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def error(e: BaseException) -> str:
    """An exception as a student reads it."""
    if isinstance(e, MemoryError):
        return "MemoryError: more memory than the grader allows (look for something that grows without end)"
    return f"{type(e).__name__}: {e}"


def calls(node: ast.AST) -> bool:
    """Whether evaluating ``node`` calls anything (a lambda's body runs later, when it is called)."""
    if isinstance(node, ast.Lambda):
        return any(calls(d) for d in [*node.args.defaults, *node.args.kw_defaults] if d is not None)
    if isinstance(node, ast.Call | ast.Await | ast.Yield | ast.YieldFrom | ast.NamedExpr):
        return True
    return any(calls(child) for child in ast.iter_child_nodes(node))


def definition(node: ast.stmt) -> bool:
    """Whether a statement only defines: an import, a function or class, an assignment that calls nothing."""
    if isinstance(node, KEEP):
        return True
    return isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None and not calls(node.value)


def self_check(node: ast.stmt) -> bool:
    """The hand-out's self-check cell (``from natmu_lite.classroom import self_check``, ``self_check(In, ...)``):
    grading does not run it."""
    if isinstance(node, ast.ImportFrom):
        return node.module == "natmu_lite.classroom" and [a.name for a in node.names] == ["self_check"]
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and \
        getattr(node.value.func, "id", None) == "self_check"


def code_cells(path: Path) -> list[tuple[str, str]]:
    """(name for messages and tracebacks, source) of each code cell; a .py file's cells keep the file's line
    numbers."""
    if path.suffix != ".ipynb":
        lines = path.read_text().splitlines(True)
        starts = [0, *(i for i, line in enumerate(lines) if line.startswith("# %%") and i)]
        return [(f"{path}, cell at line {a + 1}", "\n" * a + "".join(lines[a:b]))
                for a, b in zip(starts, [*starts[1:], len(lines)])]
    try:
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        return [(f"{path.name}, code cell {i}", "".join(c["source"])) for i, c in enumerate(cells, 1)]
    except (ValueError, KeyError, TypeError) as e:  # ValueError: JSONDecodeError, UnicodeDecodeError
        where = f" (line {e.lineno}, column {e.colno}: {e.msg})" if isinstance(e, json.JSONDecodeError) else ""
    fail(f"{path.name} is not a readable notebook{where}: it may be truncated or damaged. Save it again in "
         "Jupyter (or download it again) and grade again.")


def without_magics(source: str) -> str:
    """IPython-only lines become ``pass`` (keeping indentation, so ``except: %pip ...`` still parses)."""
    if source.lstrip().startswith("%%"):
        return ""
    lines = source.splitlines()
    return "\n".join(line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!"))
                     else line for line in lines)


class Student:
    """The functions of one student file, loaded as it runs; ``student("fn", *args)`` calls ``fn`` with friendly
    errors.

    ``budget`` is the time for running the cells in full, all together (0: definitions only, as a quick look
    does); ``definitions_only`` numbers cells (from 1) that run only their definitions, such as those that ran
    out of time when the grader first loaded the file. :attr:`problems` names each cell that did not run in
    full, and why; :attr:`stopped` numbers the cells that ran out of time. Only a file that is not a readable
    notebook cannot be loaded at all."""

    def __init__(self, path: Path, timeout: float = CALL_TIMEOUT, budget: float = 0.0,
                 definitions_only: frozenset[int] = frozenset()):
        self.path, self.timeout = path, timeout
        self.module = types.ModuleType("student")
        sys.modules["student"] = self.module  # dataclasses look their module up
        self.problems: list[str] = []
        self.stopped: set[int] = set()
        self.failed: list[tuple[str, str, str]] = []  # (cell, its source, what went wrong in it)
        deadline = time.monotonic() + budget
        for number, (name, source) in enumerate(code_cells(path), 1):
            left = deadline - time.monotonic()
            why = ("it ran out of time when the file was first loaded" if number in definitions_only else
                   "the time for running cells was spent" if budget > 0 and left <= 0 else None)
            seconds = min(timeout, left) if budget > 0 and why is None else None
            problem, late = self._cell(name, without_magics(source), seconds, why)
            if problem or seconds is None:
                self.failed.append((name, source, problem or ""))
            if problem:
                self.problems.append(problem)
            if late:
                self.stopped.add(number)

    def _cell(self, name: str, source: str, seconds: float | None, why: str | None) -> tuple[str | None, bool]:
        """Run one cell for ``seconds`` (None: only its definitions, because of ``why``): what went wrong, if
        anything, and whether the cell ran out of time."""
        try:
            tree = ast.parse(source, name)
        except SyntaxError as e:
            return f"{name} is not valid Python (line {e.lineno}: {e.msg}): it did not run", False
        nodes = [node for node in tree.body if not self_check(node)]
        if nodes:
            linecache.cache[name] = (len(source), None, source.splitlines(True), name)  # for tracebacks
        done, problem, late = 0, None, seconds is None and why is not None
        if seconds is not None:
            try:
                with time_limit(seconds):
                    for node in nodes:
                        self._exec(node, name)
                        done += 1
            except TimeLimit:
                problem, late = f"{name} was stopped after {seconds:g} s, at line {nodes[done].lineno}", True
            except BaseException as e:  # noqa: B036 (exit() or KeyboardInterrupt in a cell ends that cell only)
                problem = f"{name} raised {error(e)} at line {nodes[done].lineno}"
            done += problem is not None
        rest = [node for node in nodes[done:] if definition(node)]
        if late and not problem and nodes:
            problem = f"{name} ran only its imports and definitions: {why}"
        elif problem and rest:
            problem += "; the rest of the cell ran only its imports and definitions"
        return "; ".join(filter(None, [problem, self._definitions(name, rest)])) or None, late

    def _definitions(self, name: str, nodes: list[ast.stmt]) -> str | None:
        """Run imports and definitions (a class body, a default argument may still loop or fail)."""
        try:
            with time_limit(self.timeout):
                for node in nodes:
                    try:
                        self._exec(node, name)
                    except NameError:  # a constant that reads what a line not run sets: not run either
                        if not isinstance(node, ast.Assign | ast.AnnAssign):
                            raise
        except TimeLimit:
            return f"the definitions in {name} did not finish within {self.timeout:g} s"
        except (Exception, SystemExit) as e:
            return f"the definitions in {name} failed: {error(e)}"
        return None

    def _exec(self, node: ast.stmt, name: str) -> None:
        exec(compile(ast.Module([node], []), name, "exec"), self.module.__dict__)

    def function(self, name: str):
        fn = self.module.__dict__.get(name)
        why = next((f" ({problem})" for _, source, problem in self.failed if problem and f"def {name}(" in source), "")
        check(callable(fn), f"{self.path.name} does not define a function `{name}`{why}. Keep the name and the "
                            "signature the exercise gives, so that the autograder can find it.")
        return fn

    def __call__(self, name, *args, **kwargs):
        """Call the student's function ``name`` (or a function the student's code returned)."""
        return self._run(name, None, args, kwargs)[0]

    def raises(self, exc: type[Exception], name: str, *args, **kwargs) -> bool:
        """Whether ``name(*args)`` raises ``exc`` (any other error fails the check, as in a call)."""
        return self._run(name, exc, args, kwargs)[1]

    def _run(self, name, expected: type[Exception] | None, args, kwargs) -> tuple[Any, bool]:
        fn = name if callable(name) else self.function(name)
        name = getattr(fn, "__name__", "your function")
        try:
            with time_limit(self.timeout):
                return fn(*args, **kwargs), False
        except TimeLimit:
            message = (f"`{name}` did not return within {self.timeout:g} s: look for a loop that never ends "
                       "(or work that grows far too fast).")
        except NotImplementedError:
            message = (f"`{name}` is not implemented yet: replace `# YOUR CODE HERE` and `raise NotImplementedError` "
                       "with your code.")
        except (Exception, SystemExit) as e:
            if expected is not None and isinstance(e, expected):
                return None, True
            message = f"`{name}` raised {self.explain(e)}\n{self._trace(e)}"
        fail(message)  # outside the except clause: no chained traceback

    def explain(self, e: BaseException) -> str:
        """The error, and for a name that a cell which did not run in full sets, which cell that is."""
        name = getattr(e, "name", None) if isinstance(e, NameError) else None
        pattern = re.compile(rf"^\s*{re.escape(name or '')}\s*(:[^=]*)?=[^=]", re.M)
        where = next((cell for cell, source, _ in self.failed if name and pattern.search(source)), None)
        return error(e) + (f" (`{name}` is set in {where}, which did not run in full)"
                           if where else "")

    def _trace(self, e: BaseException) -> str:
        """The traceback lines that point into the student's own code."""
        every = traceback.StackSummary.extract(traceback.walk_tb(e.__traceback__), lookup_lines=False)  # no reading
        frames = [f for f in every if f.filename.startswith(self.path.name) or f.filename == str(self.path)]
        return "".join(traceback.format_list(frames)).rstrip()

