"""Optimisers. Each updates one flat parameter vector p from its gradient g in place.

All parameters of a network live in one contiguous vector, so an update is a
handful of vectorised operations over the whole model rather than a Python
loop over layers. ``decay_mask`` is 1 on weights and 0 on biases.

==============  ===============================================================
``sgd``         p <- p - lr (g + wd m p)
``momentum``    v <- mu v - lr g ;          p <- p + v
``nesterov``    v <- mu v - lr g ;          p <- p + mu v - lr g
``adam``        m <- b1 m + (1-b1) g ;  v <- b2 v + (1-b2) g^2
                p <- p - lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
``adamw``       Adam, then decoupled decay p <- p - lr wd m p (Loshchilov & Hutter)
==============  ===============================================================

For ``sgd``/``momentum``/``nesterov``/``adam`` a non-zero ``weight_decay`` is
added to the gradient of the weights (coupled L2); for ``adamw`` it is decoupled.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from numeral.nn.constraints import check
from numeral.nn.errors import InputError

OPTIMISERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
# Elements per block of the Adam update (128 KiB of float32): the ten passes over a
# block then stay in the L2 cache. The update is memory-bound; measured in the training
# loop, 32K blocks beat 8K-1M blocks and splitting it over two threads gained only ~3 %.
_BLOCK = 32768


class Optimizer:
    """Holds the state of one optimiser for one flat parameter vector."""

    def __init__(
        self,
        name: str,
        size: int,
        dtype: np.dtype[Any] | str,
        decay_mask: np.ndarray,
        *,
        momentum: float = 0.9,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if name not in OPTIMISERS:
            raise InputError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMISERS)}")
        for key, value in (("momentum", momentum), ("beta1", beta1), ("beta2", beta2),
                           ("weight_decay", weight_decay)):
            check(key, value)
        self.name = name
        self.momentum, self.beta1, self.beta2, self.eps = momentum, beta1, beta2, eps
        self.weight_decay = weight_decay
        self.decay_mask = decay_mask
        self.t = 0
        # momentum, or Adam's first moment scaled by 1/(1-b1); Adam's second moment / (1-b2)
        self.m = np.zeros(size, dtype=dtype)
        self.v = np.zeros(size if name.startswith("adam") else 0, dtype=dtype)
        self._tmp = np.empty(size, dtype=dtype)

    def step(self, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        """Apply one update to p with gradient g (g may be overwritten)."""
        self.t += 1
        wd, tmp = self.weight_decay, self._tmp
        if wd and self.name != "adamw":
            np.multiply(p, self.decay_mask, out=tmp)
            tmp *= wd
            g += tmp  # g + wd * W
        if self.name == "sgd":
            g *= lr
            p -= g
        elif self.name in ("momentum", "nesterov"):
            self.m *= self.momentum
            g *= lr
            self.m -= g  # v = mu v - lr g
            if self.name == "momentum":
                p += self.m
            else:
                np.multiply(self.m, self.momentum, out=tmp)
                tmp -= g
                p += tmp  # p + mu v - lr g
        else:
            self._adam(p, g, lr)

    def _adam(self, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        """Adam with the moments kept scaled, m~ = m / (1-b1) and v~ = v / (1-b2), so that

            m~ <- b1 m~ + g        v~ <- b2 v~ + g^2
            p  <- p - lr_t m~ / (sqrt(v~) + eps_t)

        with lr_t = lr (1-b1) sqrt(1-b2^t) / ((1-b1^t) sqrt(1-b2)) and
        eps_t = eps sqrt(1-b2^t) / sqrt(1-b2): the textbook update exactly, in ten passes
        over memory instead of twelve (the update is memory-bound).
        """
        b1, b2 = self.beta1, self.beta2
        bc1, bc2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        # Python floats: a NumPy float64 scalar would make each float32 operation below cast
        # through a temporary buffer
        lr_t = lr * (1.0 - b1) * math.sqrt(bc2) / (bc1 * math.sqrt(1.0 - b2))
        eps_t = self.eps * math.sqrt(bc2) / math.sqrt(1.0 - b2)
        decay = lr * self.weight_decay if self.name == "adamw" else 0.0
        # Cache-sized blocks: the passes over a block then stay in L2 instead of memory.
        for start in range(0, p.size, _BLOCK):
            part = slice(start, start + _BLOCK)
            m, v, gb, pb, tmp = self.m[part], self.v[part], g[part], p[part], self._tmp[part]
            m *= b1
            m += gb  # m~ = b1 m~ + g
            gb *= gb
            v *= b2
            v += gb  # v~ = b2 v~ + g^2
            if decay:
                np.multiply(pb, self.decay_mask[part], out=tmp)
                tmp *= decay
                pb -= tmp  # p -= lr wd W   (AdamW)
            np.sqrt(v, out=tmp)
            tmp += eps_t
            np.divide(m, tmp, out=tmp)
            tmp *= lr_t
            pb -= tmp  # p -= lr_t m~ / (sqrt(v~) + eps_t)

    def state(self) -> dict[str, np.ndarray]:
        """Arrays that resume this optimiser exactly (for checkpoints)."""
        return {"t": np.array(self.t), "m": self.m, "v": self.v}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.t = int(state["t"])
        self.m[...] = state["m"]
        self.v[...] = state["v"]
