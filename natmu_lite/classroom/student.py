"""Load a student's functions from a notebook or a .py file, with errors meant for students.

Only imports, function and class definitions and assignments that call nothing (``N = 4``, ``tent = lambda i:
...``) are executed, cell by cell: the rest of a notebook (training runs, plots) is skipped, so grading takes
seconds and never depends on what the student's notebook printed. :attr:`Student.skipped` says which lines were
skipped, and a ``NameError`` for a name that a skipped line assigns says so. IPython lines (``%pip ...``,
``!ls``) and the hand-out's self-check cell are ignored.
Every call of a student's function, and each cell's definitions, has a time limit (:data:`CALL_TIMEOUT`,
``--call-timeout``), so an endless loop fails its check with a message and the other checks still run. (The
grader also runs each submission in a process of its own, with a time and a memory limit: see
:mod:`natmu_lite.classroom.worker`.)
"""

from __future__ import annotations

import ast
import contextlib
import json
import linecache
import signal
import sys
import threading
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


def kept(node: ast.stmt) -> bool:
    """Whether the autograder runs a top-level statement: imports (not the hand-out's self-check), definitions,
    and assignments that call nothing."""
    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("natmu_lite.classroom"):
        return False
    if isinstance(node, KEEP):
        return True
    return isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None and not calls(node.value)


def assigned(node: ast.stmt) -> list[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
    return [n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)]


def code_cells(path: Path) -> list[tuple[str, str]]:
    """(name for messages, source) of each code cell; a .py file is one cell."""
    if path.suffix != ".ipynb":
        return [(str(path), path.read_text())]
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
    """The definitions found in one student file; ``student("fn", *args)`` calls ``fn`` with friendly errors.

    A cell that cannot run (invalid Python, an error or an endless loop in its definitions) is skipped, as
    Jupyter would stop in it and go on with the next: what it defines is missing, and :attr:`problems` says
    why. Only a file that is not a readable notebook cannot be loaded at all."""

    def __init__(self, path: Path, timeout: float = CALL_TIMEOUT):
        self.path, self.timeout = path, timeout
        self.module = types.ModuleType("student")
        sys.modules["student"] = self.module  # dataclasses look their module up
        self.skipped: list[str] = []  # the lines not run, by cell
        self.unset: dict[str, str] = {}  # a name a skipped line assigns -> where
        cells = [(name, without_magics(source)) for name, source in code_cells(path)]
        self.problems = [e for e in (self._define(name, source) for name, source in cells) if e]

    def _define(self, name: str, source: str) -> str | None:
        """Run the imports, definitions and constants of one cell; an error message if that fails."""
        try:
            tree = ast.parse(source, name)
        except SyntaxError as e:
            return f"{name} is not valid Python (line {e.lineno}: {e.msg})"
        skipped = [node for node in tree.body if not kept(node)]
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)  # for tracebacks
        try:
            with time_limit(self.timeout):
                for node in [node for node in tree.body if kept(node)]:
                    try:
                        exec(compile(ast.Module([node], []), name, "exec"), self.module.__dict__)
                    except NameError:  # an assignment that reads what a skipped line sets: skipped as well
                        if not isinstance(node, ast.Assign | ast.AnnAssign):
                            raise
                        skipped.append(node)
        except TimeLimit:
            return f"the imports and definitions in {name} did not finish within {self.timeout:g} s"
        except (Exception, SystemExit) as e:  # SystemExit: exit() in a class body or a default argument
            return f"the imports and definitions in {name} failed to run: {error(e)}"
        finally:
            self.note_skipped(name, sorted(skipped, key=lambda n: n.lineno))
        return None

    def note_skipped(self, cell: str, nodes: list[ast.stmt]) -> None:
        lines = [f"{n.lineno}" if n.end_lineno == n.lineno else f"{n.lineno}-{n.end_lineno}" for n in nodes
                 if not (isinstance(n, ast.Expr) and "self_check" in ast.unparse(n))]
        if lines:
            self.skipped.append(f"{cell}: line{'s' * (len(lines) > 1)} {', '.join(lines)}")
        for n in nodes:
            self.unset.update({v: f"{cell}, line {n.lineno}" for v in assigned(n) if v not in self.unset})

    def function(self, name: str):
        fn = self.module.__dict__.get(name)
        skipped = f" ({self.problems[0]}{' and more' if len(self.problems) > 1 else ''})" if self.problems else ""
        check(callable(fn), f"{self.path.name} does not define a function `{name}`{skipped}. Keep the name and the "
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
        """The error, and for a name a skipped line would have set, why it is missing."""
        where = self.unset.get(getattr(e, "name", None) or "") if isinstance(e, NameError) else None
        return error(e) + (f" (`{e.name}` is set in {where}, a line the autograder does not run: it runs only "
                           "imports, definitions and assignments that call nothing; define it with `def`)"
                           if where else "")

    def _trace(self, e: BaseException) -> str:
        """The traceback lines that point into the student's own code."""
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith(self.path.name)
                  or f.filename == str(self.path)]
        return "".join(traceback.format_list(frames)).rstrip()

