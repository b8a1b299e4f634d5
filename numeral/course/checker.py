"""check(): a learner's function against numeral's fast code, with a diagnosis when wrong.

Every diagnosis is found by comparing the learner's output with the right one: the
transpose of it, a multiple of it (-1, n, 1/n, 2, ...), the answer without the upstream
gradient, or one of the exercise's typical mistakes, computed on the same inputs.
"""

from __future__ import annotations

import itertools
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from numeral.course.exercises import EXERCISES, Exercise
from numeral.course.harness import (
    Failure,
    Inputs,
    Outputs,
    Raised,
    WrongReturn,
    describe,
    run_plain,
    shape_text,
)

# Relative to the largest |value| of the right answer. Measured over 20 seeds x 5 problems:
# the reference solutions agree with numeral's fast code to 7e-16 (Adam's step p_new - p to
# 6e-14: the difference of two values ~1e3 times the step), so 1e-7 leaves a margin of 1e6
# and more, while the mistakes recognised are off by 1e-3 and more.
RTOL = 1e-7
# Finite differences (h = 1e-5) agree with the fast code to 2.5e-9 at worst (logits near
# 1000, where h is small beside z; 4e-10 elsewhere), so 1e-6 leaves a factor 400.
FD_RTOL = 1e-6
HERE = str(Path(__file__).resolve().parent)


@dataclass
class CheckResult:
    """The outcome of one check: ``passed``, the one-line ``message`` (what is wrong and a
    hint), ``kind`` (a short code: "ok", "transposed", "factor_n", a mistake's key, ...)
    and ``details`` (the problem it failed on)."""

    name: str
    passed: bool
    message: str
    kind: str = "ok"
    details: str = ""
    printed: bool = field(default=False, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        if not self.printed:  # check() printed it already: not twice in a notebook
            print(self.message + (f"\n  {self.details}" if self.details else ""))


def close(got: np.ndarray, want: np.ndarray, rtol: float = RTOL) -> bool:
    """got equals want within rtol of want's largest value (shapes must be equal)."""
    if got.shape != want.shape or not np.isfinite(got).all():
        return False
    scale = float(np.abs(want).max()) if want.size else 0.0
    return bool(np.abs(got - want).max() <= rtol * max(scale, 1e-300)) if want.size else True


def check(name: str, fn: Callable[..., Any], *, seed: int = 0, shapes: int = 5,
          verbose: bool = True) -> CheckResult:
    """Check ``fn`` on ``shapes`` random problems (seeded, float64); print and return the result."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            result = _check(name, fn, seed, max(1, int(shapes)))
    except Exception as error:  # a bug of the check itself: still no traceback for a learner
        kind = type(error).__name__
        result = CheckResult(name, False, f"✗ {name}: the check itself failed ({kind}: "
                             f"{error}); please report this", "internal")
    if verbose:
        print(result.message + (f"\n  {result.details}" if result.details else ""))
        result.printed = True
    return result


def _check(name: str, fn: Callable[..., Any], seed: int, shapes: int) -> CheckResult:
    ex = EXERCISES.get(name)
    if ex is None:
        return CheckResult(name, False, f"✗ unknown exercise {name!r}; the exercises are: "
                           f"{', '.join(EXERCISES)}", "unknown")
    if not callable(fn):
        return CheckResult(name, False, f"✗ {name}: expected your function, got a "
                           f"{type(fn).__name__}. Hint: pass the function itself, "
                           f"check({name!r}, my_function), without calling it", "not_callable")
    rng = np.random.default_rng(seed)
    for i in range(shapes):
        inputs = ex.make(rng, i)
        failure = _problem(ex, fn, inputs)
        if failure is not None:
            where = ", ".join(f"{k} {describe(v)}" for k, v in inputs.items())
            return CheckResult(name, False, f"✗ {name}: {failure.what}. Hint: {failure.hint}",
                               failure.kind, f"(problem {i + 1} of {shapes}: {where})")
    fd = " and finite differences" if ex.numeric else ""
    return CheckResult(name, True, f"✓ {name}: matches {ex.compared_with}{fd} on {shapes} "
                       f"{ex.unit}")


def _run(ex: Exercise, fn: Callable[..., Any], inputs: Inputs) -> Outputs:
    return ex.run(fn, inputs) if ex.run else run_plain(fn, inputs, ex.outputs)


def _problem(ex: Exercise, fn: Callable[..., Any], inputs: Inputs) -> Failure | None:
    """None when fn is right on this problem, else what is wrong."""
    try:
        if ex.judge is not None:
            return ex.judge(fn, inputs)
        got = _run(ex, fn, inputs)
    except Raised as raised:
        return _raised(raised, inputs)
    except WrongReturn as wrong:
        return wrong.failure
    want = ex.answer(inputs)
    others = _Alternatives(ex, inputs)
    counts = ex.counts(inputs) if ex.counts else {}
    labels = ex.outputs
    for j, i in itertools.permutations(range(len(labels)), 2):
        if not close(got[j], want[j]) and close(got[j], want[i]):
            return Failure("order", f"{labels[j]} is where {labels[i]} belongs",
                           f"return {', '.join(labels)}, in this order")
    for j in ex.order or range(len(labels)):
        failure = _diagnose(ex, ex.outputs[j], got[j], want[j], others.get(j), counts)
        if failure is not None:
            return failure
    if ex.numeric is not None:
        for label, mine, numeric in zip(ex.outputs, got, ex.numeric(inputs), strict=True):
            if numeric is not None and not close(mine, numeric, FD_RTOL):
                return Failure("fd", f"{label} matches numeral's code but not finite "
                               f"differences (off by {_off(mine, numeric):.2g})",
                               "numeral itself is wrong here: please report it")
    return None


def _raised(raised: Raised, inputs: Inputs) -> Failure:
    """The learner's exception, named, with the line of their code that raised it."""
    error = raised.error
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    text = text if len(text) <= 200 else text[:197] + "..."
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not f.filename.startswith(HERE) and "numpy" not in Path(f.filename).parts]
    line = (frames[-1].line or "").strip() if frames else ""
    line = line if len(line) <= 80 else line[:77] + "..."
    where = f" (line {frames[-1].lineno}: {line})" if line else ""
    step = f" at step {raised.step}" if raised.step else ""
    shapes = ", ".join(f"{k} {describe(v)}" for k, v in inputs.items())
    if isinstance(error, NotImplementedError):
        hint = "write the function's body: it still raises NotImplementedError"
    elif isinstance(error, ValueError | IndexError) and any(
            word in str(error) for word in ("shape", "broadcast", "dimension", "size", "index")):
        hint = (f"a shape mismatch: the inputs were {shapes}; print the shapes of your arrays "
                "line by line to see where they stop fitting")
    else:
        hint = f"call it yourself on inputs of these shapes to see where: {shapes}"
    return Failure("exception", f"your function raised {text}{step}{where}", hint)


class _Alternatives:
    """The outputs of the typical wrong answers on one problem, computed when first asked."""

    def __init__(self, ex: Exercise, inputs: Inputs) -> None:
        self.ex, self.inputs = ex, inputs
        self.cache: list[tuple[str, Outputs | None, str, str]] | None = None

    def get(self, j: int) -> list[tuple[str, np.ndarray, str, str]]:
        if self.cache is None:
            self.cache = []
            for m in self.ex.mistakes:
                self.cache.append((m.key, self._outputs(m.fn, None), m.what, m.hint))
            if self.ex.upstream:
                self.cache.append((
                    "no_upstream", self._outputs(None, self.ex.upstream),
                    "{label} is not multiplied by the upstream gradient " + self.ex.upstream,
                    "by the chain rule, dL/d(input) = dL/d(output) * d(output)/d(input): "))
        return [(key, outs[j], what, hint) for key, outs, what, hint in self.cache
                if outs is not None]

    def _outputs(self, fn: Callable[..., Any] | None, ones: str | None) -> Outputs | None:
        """A mistake's outputs; or (fn None) the right answer with the input ``ones`` all 1."""
        try:
            if fn is not None:
                return _run(self.ex, fn, self.inputs)
            return self.ex.answer({k: (np.ones_like(v) if k == ones else v)
                                   for k, v in self.inputs.items()})
        except Exception:
            return None


def _off(got: np.ndarray, want: np.ndarray) -> float:
    scale = float(np.abs(want).max()) if want.size else 1.0
    return float(np.abs(got - want).max()) / (scale or 1.0)


def _diagnose(ex: Exercise, label: str, got: np.ndarray, want: np.ndarray,
              others: list[tuple[str, np.ndarray, str, str]],
              counts: dict[str, int]) -> Failure | None:
    """None when got is right, else the likeliest reason it is not."""
    hint = ex.hints.get(label, "")
    if want.ndim == 0 and got.size == 1:
        got = got.reshape(())
    if close(got, want):
        return None
    for key, theirs, what, their_hint in others:  # a typical mistake, on the same inputs
        if np.any(theirs) and not close(theirs, want) and close(got, theirs):
            if key == "no_upstream":
                return Failure(key, what.format(label=label), their_hint + hint)
            return Failure(key, what, their_hint)
    if not np.isfinite(got).all():
        return Failure("nan", f"{label} contains nan or inf", ex.nan_hint or hint)
    if got.shape != want.shape:
        return _shape(label, got, want, hint)
    if not np.any(got):
        return Failure("zeros", f"{label} is all zeros", hint)
    return _relation(label, got, want, hint, counts)


def _shape(label: str, got: np.ndarray, want: np.ndarray, hint: str) -> Failure:
    if got.ndim == want.ndim and sorted(got.shape) == sorted(want.shape):
        for axes in itertools.permutations(range(got.ndim)):
            moved = got.transpose(axes)
            if moved.shape == want.shape and close(moved, want):
                if got.ndim == 2:
                    return Failure("transposed", f"{label} is the transpose of the right answer",
                                   hint)
                return Failure("axes", f"{label} has its axes in another order: shape "
                               f"{shape_text(got.shape)}, expected {shape_text(want.shape)}",
                               hint)
    if want.ndim == 0:
        return Failure("shape", f"{label} has shape {shape_text(got.shape)}, expected one "
                       "number", hint)
    if got.size == want.size and close(got.reshape(want.shape), want):
        return Failure("shape", f"{label} has the right values but shape "
                       f"{shape_text(got.shape)}, expected {shape_text(want.shape)}", hint)
    return Failure("shape", f"{label} has shape {shape_text(got.shape)}, expected "
                   f"{shape_text(want.shape)}", hint)


def _relation(label: str, got: np.ndarray, want: np.ndarray, hint: str,
              counts: dict[str, int]) -> Failure:
    """Same shape, other values: a transpose, a multiple, or just different."""
    if got.ndim == 2 and got.shape[0] == got.shape[1] and close(got.T, want):
        return Failure("transposed", f"{label} is the transpose of the right answer", hint)
    norm = float(np.sum(want * want))
    c = float(np.sum(got * want)) / norm if norm else 0.0
    if c and close(got, c * want, 1e-6):
        return _factor(label, c, hint, counts)
    if close(got, want, 1e-3):
        return Failure("precision", f"{label} is close to the right answer but off by "
                       f"{_off(got, want):.1g} of its size: float32 somewhere, or a small term "
                       "such as eps left out or added", hint)
    right = float(np.mean(np.abs(got - want) <= RTOL * max(float(np.abs(want).max()), 1e-300)))
    where = np.unravel_index(int(np.argmax(np.abs(got - want))), want.shape)
    at = f" at {tuple(int(i) for i in where)}" if want.ndim else ""
    part = f"; {right:.0%} of its values are right" if want.size > 1 else ""
    return Failure("mismatch", f"{label} is not the right answer (largest difference{at}: "
                   f"got {float(got[where]):.6g}, expected {float(want[where]):.6g}{part})", hint)


def _factor(label: str, c: float, hint: str, counts: dict[str, int]) -> Failure:
    """got = c * want: name c."""
    sign = "" if c > 0 else " and the wrong sign"
    size = abs(c)
    if abs(c + 1) < 1e-6:
        return Failure("sign", f"{label} has the wrong sign", hint)
    for name, n in counts.items():
        name = f"({name})" if "·" in name else name
        if n > 1 and abs(size / n - 1) < 1e-6:
            return Failure("factor_n", f"{label} is {name} = {n} times the right answer{sign}: "
                           f"the 1/{name} is missing (a sum where a mean belongs)", hint)
        if n > 1 and abs(size * n - 1) < 1e-6:
            return Failure("factor_1/n", f"{label} is 1/{name} = 1/{n} of the right answer"
                           f"{sign}: a mean where a sum belongs", hint)
    if abs(size - 2) < 1e-6 or abs(size - 0.5) < 1e-6:
        word = "twice" if size > 1 else "half"
        return Failure("factor", f"{label} is {word} the right answer{sign}", hint)
    return Failure("factor", f"{label} is {c:.4g} times the right answer", hint)

