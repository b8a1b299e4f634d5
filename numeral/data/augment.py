"""Random distortions of whole batches, vectorised in NumPy (Simard et al. 2003).

Each output pixel p (centred coordinates) samples the input at

    src(p) = A (p + e(p)) + t,    A = R(theta) [[s_x, k], [0, s_y]]

with per-image rotation theta, scales s_x, s_y, shear k, shift t, and an
elastic field e = alpha * G_sigma * U: uniform noise U smoothed by a Gaussian,
applied as two small matrix products per image (G U G^T). The value is read by
bilinear interpolation; pixels from outside the frame are black.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random distortions (0 switches one off)."""

    shift: float = 2.0  # pixels, uniform in [-shift, shift] per axis
    rotate: float = 10.0  # degrees
    scale: float = 0.1  # relative, uniform in [1 - scale, 1 + scale]
    shear: float = 0.1  # shear factor
    elastic_alpha: float = 0.0  # displacement in pixels (e.g. 1.5); 0 turns elastic off
    elastic_sigma: float = 3.0  # smoothness of the elastic field, pixels
    size: int = 28

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """G with G[i, j] = exp(-(i - j)^2 / (2 sigma^2)), rows normalised to sum 1."""
    i = np.arange(size)
    g = np.exp(-((i[:, None] - i[None, :]) ** 2) / (2.0 * sigma**2))
    return (g / g.sum(axis=1, keepdims=True)).astype(np.float32)


class Augmenter:
    """Distorts batches of flattened images; the same rng state gives the same batch."""

    def __init__(self, params: Augmentation | None = None) -> None:
        self.params = params or Augmentation()
        n = self.params.size
        c = (n - 1) / 2.0
        gy, gx = np.mgrid[0:n, 0:n].astype(np.float32)
        self.gx, self.gy = (gx - c).reshape(-1), (gy - c).reshape(-1)  # centred grid
        self.centre = c
        self.gauss = _gaussian_matrix(n, self.params.elastic_sigma)

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """X (n, size*size) in [0, 1] -> distorted copy of the same shape and dtype."""
        p, n, size = self.params, len(X), self.params.size
        f32 = np.float32

        def uniform(r: float) -> np.ndarray:
            return rng.uniform(-r, r, n).astype(f32)[:, None]

        theta = np.deg2rad(uniform(p.rotate))
        sx, sy = 1 + uniform(p.scale), 1 + uniform(p.scale)
        k = uniform(p.shear)
        cos, sin = np.cos(theta), np.sin(theta)
        a11, a12, a21, a22 = cos * sx, cos * k * sx - sin * sy, sin * sx, sin * k * sx + cos * sy
        gx = np.broadcast_to(self.gx, (n, size * size))
        gy = np.broadcast_to(self.gy, (n, size * size))
        if p.elastic_alpha:
            noise = rng.uniform(-1, 1, (2, n, size, size)).astype(f32)
            field = self.gauss @ noise @ self.gauss.T  # G U G^T, smooth per image
            field *= p.elastic_alpha / max(float(np.abs(field).max()), 1e-6)
            gx = gx + field[0].reshape(n, -1)
            gy = gy + field[1].reshape(n, -1)
        src_x = a11 * gx + a12 * gy + (self.centre + 1) + uniform(p.shift)  # +1: padded frame
        src_y = a21 * gx + a22 * gy + (self.centre + 1) + uniform(p.shift)
        return self._bilinear(X, src_x, src_y)

    def _bilinear(self, X: np.ndarray, src_x: np.ndarray, src_y: np.ndarray) -> np.ndarray:
        n, size = len(X), self.params.size
        side = size + 2  # one black pixel of padding on every side
        padded = np.zeros((n, side, side), np.float32)
        padded[:, 1:-1, 1:-1] = X.reshape(n, size, size)
        np.clip(src_x, 0, side - 1.001, out=src_x)
        np.clip(src_y, 0, side - 1.001, out=src_y)
        x0, y0 = src_x.astype(np.int32), src_y.astype(np.int32)  # floor: coordinates >= 0
        fx, fy = src_x - x0, src_y - y0
        base = y0 * side + x0 + (np.arange(n, dtype=np.int32) * side * side)[:, None]
        flat = padded.reshape(-1)
        top = flat[base] * (1 - fx) + flat[base + 1] * fx
        bottom = flat[base + side] * (1 - fx) + flat[base + side + 1] * fx
        out = top * (1 - fy) + bottom * fy
        return out.astype(X.dtype, copy=False)
