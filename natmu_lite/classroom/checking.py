"""Checks with points, and messages meant for students: what the assignments' check modules are written with.

A check is a function ``check_<what>(student, ...)`` decorated with :func:`graded`, which gives it its points and,
optionally, its cases (as ``pytest.mark.parametrize`` would): a check with cases is still one check, worth its
points once, and earns them in proportion to the cases it passes. Inside a check, :func:`check` and :func:`fail`
fail the case with a message for the student. Nothing here needs pytest: grading runs wherever the package is
installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NoReturn


class Failed(Exception):
    """A case failed; the message is for the student."""


def fail(message: str) -> NoReturn:
    raise Failed(message)


def check(condition: Any, message: str) -> None:
    if not condition:
        fail(message)


@dataclass(frozen=True)
class Check:
    """One gradebook column: a check function, its points and its cases (keyword arguments, by label)."""

    name: str
    points: float
    fn: Callable
    cases: tuple[tuple[str, dict], ...]


def graded(points: float, argnames: str = "", cases: Sequence = ()) -> Callable[[Callable], Callable]:
    """Make the decorated ``check_<what>(student, ...)`` a check worth ``points``, run once, or once per case:
    ``argnames`` ("h,w") names the arguments each case gives (a tuple of them, or the one value)."""
    names = [n.strip() for n in argnames.split(",") if n.strip()]

    def kwargs(case) -> dict:
        return dict(zip(names, case if len(names) > 1 else (case,)))

    calls = tuple((", ".join(f"{k}={v!r}" for k, v in kwargs(c).items()), kwargs(c)) for c in cases) or (("", {}),)

    def register(fn: Callable) -> Callable:
        fn.check = Check(fn.__name__.removeprefix("check_"), points, fn, calls)
        return fn
    return register


def checks(module: ModuleType) -> list[Check]:
    """A check module's checks, in the order they are written."""
    return [f.check for f in vars(module).values() if isinstance(getattr(f, "check", None), Check)]


def run_checks(module: ModuleType, student) -> Iterator[dict]:
    """Run every case of every check against ``student``: ``{"check", "case", "passed", "message"}`` for each.
    A case that fails otherwise than through :func:`fail` (an error on a strange return value, or the student's
    code exiting) fails with the error named."""
    for item in checks(module):
        for label, kwargs in item.cases:
            message = ""
            try:
                item.fn(student, **kwargs)
            except Failed as e:
                message = str(e)
            except (Exception, SystemExit) as e:
                message = f"checking stopped with {type(e).__name__}: {e}"
            yield {"check": item.name, "case": label, "passed": not message, "message": message}
