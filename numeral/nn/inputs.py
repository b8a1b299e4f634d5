"""Fixed normalisations of the input images that a network carries with it.

A network applies them to every image before its first layer, in training and in prediction
alike, so the saved model needs no preprocessing beside it. In order:

Gamma (``input_gamma`` = g): x' = max(x, 0)^g per pixel. With g < 1 faint strokes come up
(g = 0.3: a pixel at 0.1 becomes 0.5) while background stays 0 and full ink stays 1, so a
numeral written with a pen that skips is still seen whole.

Deskew (``input_transform="deskew"``, LeCun et al. 1998) removes the slant of the
handwriting: with the image's intensity I(x, y) as weights, its centroid (x̄, ȳ) and second
moments

    mu_11 = E[(x - x̄)(y - ȳ)],    mu_02 = E[(y - ȳ)^2],    slant alpha = mu_11 / mu_02,

the output pixel p (centred coordinates) reads the input at

    src(p) = [[1, alpha], [0, 1]] p + (x̄, ȳ),

a horizontal shear that makes the principal axis vertical and puts the centroid in the
middle of the frame. Values are read by bilinear interpolation; outside the frame is black.
Networks that see the images straightened err on different images from networks that see
them as written, which is what makes a committee of both better than either.
"""

from __future__ import annotations

import numpy as np

INPUT_TRANSFORMS = ("none", "deskew")


def deskew(X: np.ndarray) -> np.ndarray:
    """(n, side*side) square images -> the same images deskewed, as float X.dtype."""
    n, pixels = X.shape
    side = round(pixels**0.5)
    if side * side != pixels:
        raise ValueError(f"deskew needs square images, got rows of {pixels} values")
    images = X.reshape(n, side, side)
    coord = np.arange(side, dtype=X.dtype)
    row_mass, col_mass = images.sum(axis=2), images.sum(axis=1)  # (n, side): by y, by x
    mass = row_mass.sum(axis=1) + np.finfo(X.dtype).tiny
    cy, cx = row_mass @ coord / mass, col_mass @ coord / mass
    dy = coord[None, :] - cy[:, None]  # (n, side) y - ȳ
    dx = coord[None, :] - cx[:, None]
    mu02 = (row_mass * dy**2).sum(axis=1) / mass
    mu11 = np.einsum("ny,nyx,nx->n", dy, images, dx) / mass
    alpha = mu11 / np.maximum(mu02, 1e-3)
    centre = (side - 1) / 2.0
    out_y = coord[None, :, None] - centre  # output pixel, centred: (1, side, 1) and (1, 1, side)
    out_x = coord[None, None, :] - centre
    src_x = out_x + alpha[:, None, None] * out_y + cx[:, None, None]  # (n, side, side)
    src_y = np.broadcast_to(out_y + cy[:, None, None], src_x.shape)
    return sample_bilinear(images, src_x, src_y).reshape(n, pixels)


def sample_bilinear(images: np.ndarray, src_x: np.ndarray, src_y: np.ndarray) -> np.ndarray:
    """images (n, h, w) read at real coordinates src_x, src_y (n, h, w):

        out = (1-fy) ((1-fx) I[y0, x0]   + fx I[y0, x0+1])
            +    fy  ((1-fx) I[y0+1, x0] + fx I[y0+1, x0+1])

    with (x0, y0) the integer parts and (fx, fy) the fractions; zero outside the image."""
    n, h, w = images.shape
    padded = np.zeros((n, h + 2, w + 2), images.dtype)  # a black frame one pixel wide
    padded[:, 1:-1, 1:-1] = images
    x = np.clip(src_x + 1, 0, w + 0.999).astype(images.dtype)  # into the padded frame
    y = np.clip(src_y + 1, 0, h + 0.999).astype(images.dtype)
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    top_left = (np.arange(n)[:, None, None] * (h + 2) + y0.astype(np.intp)) * (w + 2) \
        + x0.astype(np.intp)
    flat = padded.reshape(-1)
    top = flat[top_left] * (1 - fx) + flat[top_left + 1] * fx
    bottom = flat[top_left + w + 2] * (1 - fx) + flat[top_left + w + 3] * fx
    return top * (1 - fy) + bottom * fy


def transform_inputs(name: str, X: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """max(X, 0)^gamma, then the named transform; X itself when there is nothing to do."""
    if gamma != 1.0:
        X = np.power(np.maximum(X, 0), X.dtype.type(gamma))
    if name == "none":
        return X
    if name == "deskew":
        return deskew(X)
    raise ValueError(f"unknown input transform {name!r}; choose from {INPUT_TRANSFORMS}")
