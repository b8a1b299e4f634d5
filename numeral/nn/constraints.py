"""One declarative table of what every setting may be, shared by the core and the configs.

The network (``Network``), the optimiser (``Optimizer``) and the training config
(``numeral.train.config``) all check their settings against :data:`CONSTRAINTS`, so a
range is written once (the idea of scikit-learn's ``_parameter_constraints``)::

    check("dropout", 1.0)   # InputError: dropout must be in [0, 1), got 1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from numeral.nn.errors import InputError
from numeral.nn.init import INITIALISERS
from numeral.nn.inputs import INPUT_TRANSFORMS

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Interval:
    """Real numbers between ``low`` and ``high`` (None: unbounded); ``closed`` names the ends
    that belong to it: ``"both"``, ``"left"``, ``"right"`` or ``"neither"``."""

    low: float | None
    high: float | None
    closed: str = "both"

    def __contains__(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if math.isnan(value) or math.isinf(value):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (value == self.low and not left)):
            return False
        return not (self.high is not None
                    and (value > self.high or (value == self.high and not right)))

    def describe(self) -> str:
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.high is None:
            return f"{'>=' if left else '>'} {self.low:g}"
        return f"in {'[' if left else '('}{self.low:g}, {self.high:g}{']' if right else ')'}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of names."""

    values: tuple[str, ...]

    def __contains__(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.values

    def describe(self) -> str:
        return f"one of {', '.join(self.values)}"


Constraint = Interval | Options

UNIT = Interval(0.0, 1.0, "left")  # a probability or a fraction: [0, 1)
NON_NEGATIVE = Interval(0.0, None, "left")

CONSTRAINTS: dict[str, Constraint] = {
    # the network
    # the names of numeral.nn.layers.activations.ACTIVATIONS (a test keeps them equal; this
    # table sits below the layers, which check their settings against it)
    "activation": Options(("sigmoid", "tanh", "relu", "leaky_relu", "identity")),
    "init": Options(INITIALISERS),
    "dtype": Options(DTYPES),
    "dropout": UNIT,
    "input_transform": Options(INPUT_TRANSFORMS),
    "input_gamma": Interval(0.0, 10.0, "right"),
    # the loss
    "l1": NON_NEGATIVE,
    "l2": NON_NEGATIVE,
    "label_smoothing": UNIT,
    "reduction": Options(("mean", "sum")),
    # the optimiser and its schedule
    "lr": Interval(0.0, None, "neither"),
    "momentum": UNIT,
    "beta1": UNIT,
    "beta2": UNIT,
    "weight_decay": NON_NEGATIVE,
    "warmup": UNIT,
}


def violation(name: str, value: Any, table: dict[str, Constraint] | None = None) -> str | None:
    """``"must be ..."`` when ``value`` breaks the constraint on ``name`` in ``table``
    (default :data:`CONSTRAINTS`), else None."""
    constraint = (table or CONSTRAINTS)[name]
    return None if value in constraint else f"must be {constraint.describe()}"


def check(name: str, value: Any) -> None:
    """Raise :class:`InputError` ``"NAME must be ..., got VALUE"`` unless ``value`` satisfies
    the constraint on ``name`` in :data:`CONSTRAINTS`."""
    why = violation(name, value)
    if why:
        raise InputError(f"{name} {why}, got {value!r}")
