"""numeral.course — exercises that check a learner's own NumPy code against numeral's.

    from numeral.course import check, exercises, solution
    check("dense_backward", my_function)   # prints ✓ or ✗ with a hint; returns a CheckResult
    exercises()                            # (name, description, signature) of each exercise
    solution("dense_backward")             # the reference solution

Each check runs the function on seeded random float64 problems and compares it with
numeral's fast layers, losses, initialisers and optimisers (and with finite differences
where a gradient is asked for). The exercises are listed in ``exercises.py``, their
solutions in ``solutions.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numeral.course import solutions as _solutions
from numeral.course.checker import CheckResult, check
from numeral.course.exercises import EXERCISES


def exercises() -> list[tuple[str, str, str]]:
    """(name, one-line description, signature) of every exercise, in the course's order."""
    return [(ex.name, ex.description, ex.signature) for ex in EXERCISES.values()]


def solution(name: str) -> Callable[..., Any]:
    """The reference solution of exercise ``name``."""
    if name not in EXERCISES:
        raise KeyError(f"unknown exercise {name!r}; the exercises are: {', '.join(EXERCISES)}")
    fn: Callable[..., Any] = getattr(_solutions, name)
    return fn


__all__ = ["CheckResult", "check", "exercises", "solution"]
