"""Learning-rate schedules: lr(progress) for progress = step / total_steps in [0, 1].

=============  =====================================================================
``constant``   lr
``step``       lr * gamma ** floor(progress * epochs / step_epochs)
``cosine``     lr * (1 + cos(pi s)) / 2, s the progress after a linear warm-up
``onecycle``   linear warm-up from lr/25 to lr over ``warmup`` of the run, then cosine to ~0
=============  =====================================================================
"""

from __future__ import annotations

import math

from numeral.nn.errors import InputError

SCHEDULES = ("constant", "step", "cosine", "onecycle")


def learning_rate(
    name: str,
    base_lr: float,
    progress: float,
    *,
    epochs: int = 1,
    warmup: float = 0.0,
    step_epochs: int = 10,
    gamma: float = 0.5,
) -> float:
    """The learning rate at ``progress`` (0 at the first step, 1 after the last)."""
    if name == "constant":
        return base_lr
    if name == "step":
        return base_lr * gamma ** math.floor(progress * epochs / step_epochs + 1e-9)
    if name == "cosine":
        if progress < warmup:
            return base_lr * (progress / warmup)
        s = (progress - warmup) / max(1.0 - warmup, 1e-12)
        return base_lr * 0.5 * (1 + math.cos(math.pi * s))
    if name == "onecycle":
        warm = warmup or 0.3
        if progress < warm:
            return base_lr * (1 / 25 + (1 - 1 / 25) * progress / warm)
        s = (progress - warm) / max(1.0 - warm, 1e-12)
        return base_lr * (1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * s)))
    raise InputError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
