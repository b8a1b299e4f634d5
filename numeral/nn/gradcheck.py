"""Check back-propagation against central finite differences.

For every parameter theta_i:

    numeric_i = (L(theta + h e_i) - L(theta - h e_i)) / (2 h)

and for each parameter array the relative error

    ||analytic - numeric||_2 / (||analytic||_2 + ||numeric||_2)

Back-propagation is right when this is tiny (about 1e-8 or less in float64 with
h = 1e-4); a wrong line in the backward pass gives errors near 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numeral.nn.network import Network

TINY_GRADIENT = 1e-7  # below this norm, analytic and numeric gradients are compared absolutely


@dataclass
class GradCheckResult:
    """Relative error per parameter array (in the order of ``params``) and their maximum."""

    errors: list[float]

    @property
    def max_error(self) -> float:
        return max(self.errors)


def gradcheck(
    net: Network,
    X: np.ndarray,
    y: np.ndarray,
    *,
    l1: float = 0.0,
    l2: float = 0.0,
    label_smoothing: float = 0.0,
    dropout_seed: int | None = None,
    h: float = 1e-4,
) -> GradCheckResult:
    """Compare ``net.loss_and_grads`` with central differences over every parameter.

    Use a float64 network: float32 rounding swamps the finite differences.
    """
    kwargs = {"label_smoothing": label_smoothing, "dropout_seed": dropout_seed}
    _, analytic = net.loss_and_grads(X, y, l1, l2, **kwargs)  # type: ignore[arg-type]
    errors = []
    for param, grad in zip(net.params, analytic, strict=True):
        numeric = np.zeros_like(param)
        flat, num_flat = param.reshape(-1), numeric.reshape(-1)
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + h
            plus, _ = net.loss_and_grads(X, y, l1, l2, **kwargs)  # type: ignore[arg-type]
            flat[i] = saved - h
            minus, _ = net.loss_and_grads(X, y, l1, l2, **kwargs)  # type: ignore[arg-type]
            flat[i] = saved
            num_flat[i] = (plus - minus) / (2 * h)
        denom = np.linalg.norm(grad) + np.linalg.norm(numeric)
        # a gradient that is truly zero (a bias just before a BatchNorm, which subtracts
        # it again) has numeric values of rounding size: compare those absolutely
        diff = float(np.linalg.norm(grad - numeric))
        errors.append(diff / float(denom) if denom > TINY_GRADIENT else diff)
    return GradCheckResult(errors)
