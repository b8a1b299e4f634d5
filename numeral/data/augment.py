"""Random distortions of whole batches, vectorised in NumPy (Simard et al. 2003).

Each output pixel p (centred coordinates) samples the input at

    src(p) = A p + t + e(p),    A = R(theta) [[s_x, k], [0, s_y]]

with per-image rotation theta, scales s_x, s_y, shear k, shift t, and an
elastic displacement field e = alpha * G U G^T: uniform noise U on a coarse grid
(knots sigma apart) interpolated and smoothed by a Gaussian matrix G; a bank of
2048 such fields is drawn once, and a batch of n takes n consecutive ones from a
random start (the fields are independent draws, so any n of them are as random as
n picked one by one, and a slice costs no gather). The value is read by bilinear
interpolation (numeral.nn.inputs.BilinearSampler, shared with deskew); pixels from
outside the frame are black. Every array is laid out (axis, image, pixel) so each step
runs over contiguous memory, and all scratch buffers are reused across batches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from numeral.nn.inputs import MAX_BATCH, BilinearSampler


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
    stroke: float = 0.0  # share of images whose strokes are made thicker (half) or thinner
    ink: float = 0.0  # images are made up to this much fainter (a pen that presses lightly)
    breaks: float = 0.0  # share of images with a gap cut across a stroke (a pen that skipped)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """G (size, m) with G[i, j] = exp(-(i - c_j)^2 / (2 sigma^2)), rows normalised to sum 1,
    for m = ceil(size / sigma) + 1 knots c_j spread evenly over the frame.

    Smoothing noise U (m, m) drawn on that coarse grid as G U G^T gives the same kind of
    smooth random field as smoothing per-pixel noise, from about sigma^2 times fewer
    random numbers."""
    knots = np.linspace(0, size - 1, int(np.ceil(size / max(sigma, 1e-3))) + 1)
    i = np.arange(size)
    g = np.exp(-((i[:, None] - knots[None, :]) ** 2) / (2.0 * sigma**2))
    return (g / g.sum(axis=1, keepdims=True)).astype(np.float32)


ELASTIC_FIELDS = 2048  # smooth displacement fields drawn once per Augmenter (12.8 MB)
ELASTIC_SEED = 2003  # they are the same for every run (Simard et al., 2003)


class Augmenter:
    """Distorts batches of flattened images; the same rng state gives the same batch."""

    def __init__(self, params: Augmentation | None = None) -> None:
        self.params = params or Augmentation()
        n = self.params.size
        self.centre = (n - 1) / 2.0
        gy, gx = np.mgrid[0:n, 0:n].astype(np.float32)
        # homogeneous centred output coordinates [x; y; 1], one column per pixel
        self.grid = np.stack([(gx - self.centre).ravel(), (gy - self.centre).ravel(),
                              np.ones(n * n, np.float32)])
        self.gauss = _gaussian_matrix(n, self.params.elastic_sigma)
        self.fields = self._elastic_fields() if self.params.elastic_alpha else None
        self.sampler = BilinearSampler(n)
        self._coords_buffer = np.empty((2, 0, n * n), np.float32)

    def __call__(
        self, X: np.ndarray, rng: np.random.Generator, out: np.ndarray | None = None
    ) -> np.ndarray:
        """X (n, size*size) in [0, 1] -> distorted copy of the same shape, float32, written
        into ``out`` when given (a reused buffer spares a fresh allocation per batch)."""
        p, n = self.params, len(X)
        if n > MAX_BATCH:  # in slices, so that flat indices stay exact in float32
            out = np.empty(X.shape, np.float32) if out is None else out
            for start in range(0, n, MAX_BATCH):
                self(X[start : start + MAX_BATCH], rng, out=out[start : start + MAX_BATCH])
            return out
        r = rng.random((6, n), dtype=np.float32)
        r *= 2.0
        r -= 1.0  # six uniform numbers in [-1, 1] per image
        theta = np.float32(np.deg2rad(p.rotate)) * r[0]
        sx, sy, k = 1 + p.scale * r[1], 1 + p.scale * r[2], p.shear * r[3]
        cos, sin = np.cos(theta), np.sin(theta)
        # src = A [x; y; 1] (rotation x shear x scale + shift), stored as A[axis, image, :] so
        # that every array below is laid out (axis, image, pixel) and each axis is contiguous
        A = np.empty((2, n, 3), np.float32)
        A[0, :, 0], A[0, :, 1] = cos * sx, cos * k * sx - sin * sy
        A[1, :, 0], A[1, :, 1] = sin * sx, sin * k * sx + cos * sy
        A[0, :, 2] = self.centre + p.shift * r[4]
        A[1, :, 2] = self.centre + p.shift * r[5]
        coords = np.matmul(A, self.grid, out=self._coords(n))  # (2, n, pixels)
        if self.fields is not None:  # + e(p): n consecutive fields of the bank, random start
            bank = self.fields.shape[1]
            if n <= bank:
                start = int(rng.integers(0, bank - n + 1))
                coords += self.fields[:, start : start + n]
            else:
                coords += self.fields[:, rng.integers(0, bank, n)]
        out = self.sampler(X, coords, out)
        if p.stroke or p.ink:  # (drawn only when asked: other runs' random streams unchanged)
            self.pen(out, rng)
        if p.breaks:
            self.skip(out, rng)
        return out

    def pen(self, out: np.ndarray, rng: np.random.Generator) -> None:
        """What differs between writers' pens, in place on distorted images (n, size*size):
        a share ``stroke`` of them drawn thicker (half of it) or thinner, by a random fraction
        w of the step to the grey dilation (erosion) over the pixel's cross of neighbours,
        x + w (max - x) or x - w (x - min): about a pixel at most; and each made up to ``ink``
        fainter, x (1 - ink u)."""
        p, n, size = self.params, len(out), self.params.size
        u, w, faint = rng.random((3, n), dtype=np.float32)
        if p.stroke:
            images = out.reshape(n, size, size)
            for chosen, grow in ((u < p.stroke / 2, True), ((u >= p.stroke / 2) & (u < p.stroke),
                                                            False)):
                if not chosen.any():
                    continue
                x = images[chosen]
                edge = _cross_extreme(x, grow)
                images[chosen] = x + w[chosen, None, None] * (edge - x)
        if p.ink:
            out *= (1.0 - p.ink * faint)[:, None]

    def skip(self, out: np.ndarray, rng: np.random.Generator) -> None:
        """A pen that skipped, in place on distorted images (n, size*size): a share ``breaks``
        of them lose a disc of ink, radius 1.5 to 2.5 pixels (about a stroke's width), around
        a pixel drawn at random among their strokes (value over half the image's brightest):
        a gap across the stroke, as the photos of ``numeral.data.photo`` cut, so that a
        numeral read from its pieces is one the network has seen."""
        n, size = len(out), self.params.size
        chosen = np.flatnonzero(rng.random(n, dtype=np.float32) < self.params.breaks)
        radius = 1.5 + rng.random(len(chosen), dtype=np.float32)
        x = out[chosen]
        inked = x > 0.5 * x.max(axis=1, keepdims=True)
        # a pixel drawn uniformly among the inked ones: the largest of uniform draws there
        centre = np.argmax(rng.random(x.shape, dtype=np.float32) * inked, axis=1)
        cy, cx = np.divmod(centre, size)
        gy, gx = self.grid[1] + self.centre, self.grid[0] + self.centre  # pixel rows, columns
        gap = (gy - cy[:, None]) ** 2 + (gx - cx[:, None]) ** 2 <= (radius**2)[:, None]
        gap &= inked.any(axis=1, keepdims=True)  # a blank image keeps its nothing
        x[gap] = 0.0
        out[chosen] = x

    def _elastic_fields(self) -> np.ndarray:
        """ELASTIC_FIELDS smooth displacement fields (2, k, pixels), e = G U G^T with U
        uniform noise on the coarse grid, each scaled so its largest displacement is alpha.
        Drawn once from a fixed seed: smoothing fresh noise for every image cost half as much
        as the rest of the distortion, and one of 2048 fields, on top of each image's own
        random affine map, varies the data just as well."""
        m = self.gauss.shape[1]
        noise = np.random.default_rng(ELASTIC_SEED).random((ELASTIC_FIELDS, 2, m, m),
                                                          dtype=np.float32)
        noise -= 0.5
        field = self.gauss @ noise @ self.gauss.T
        field *= self.params.elastic_alpha / np.maximum(
            np.abs(field).max(axis=(1, 2, 3), keepdims=True), 1e-6)
        return np.ascontiguousarray(field.reshape(ELASTIC_FIELDS, 2, -1).transpose(1, 0, 2))

    def _coords(self, n: int) -> np.ndarray:
        """The (2, n, pixels) buffer of source coordinates, reused while n stays the same."""
        if len(self._coords_buffer[0]) != n:
            self._coords_buffer = np.empty((2, n, self.params.size ** 2), np.float32)
        return self._coords_buffer


def _cross_extreme(x: np.ndarray, largest: bool) -> np.ndarray:
    """The largest (or smallest) value over each pixel and its 4 neighbours, images (k, h, w);
    outside the frame counts as black (0)."""
    pick = np.maximum if largest else np.minimum
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    h, w = x.shape[1:]
    out = padded[:, 1 : h + 1, 1 : w + 1].copy()
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        pick(out, padded[:, dy : dy + h, dx : dx + w], out=out)
    return out
