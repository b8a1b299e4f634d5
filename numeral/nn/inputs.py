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

Orientation (``input_transform="orientation"``) replaces the pixels by which way the
strokes' edges run, the gradient-direction features of classic handwriting recognisers (Liu
et al. 2003). The Sobel gradient of the image (I correlated with a 3x3 kernel, y downwards),

    gx = I (*) [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 4,    gy = I (*) that kernel transposed,

has magnitude m = sqrt(gx^2 + gy^2) and direction theta = atan2(gy, gx) mod 180 degrees
(the gradient points across the edge, so theta = 0 is a vertical edge, 90 a horizontal one,
and the sign is dropped: a stroke's two sides count alike). Each pixel gives m to the two
nearest of the directions 0, 45, 90 and 135 degrees in proportion to closeness (theta = 30
degrees: 1/3 of m to 0, 2/3 to 45), making four planes; each plane is then summed over 2x2
cells. A 28x28 image becomes 4 planes of 14x14: 784 values again, so the network's shape is
unchanged. An edge that moves by a pixel mostly stays in its cell, so the first layer sees a
shape that tolerates the small shifts of handwriting, which raw pixels do not. Gamma and the
training-time distortions act on the image first.

A network holds its transforms (the classes of :mod:`numeral.nn.layers.transforms`) in one
:class:`Inputs`, ``net.inputs``, in front of its layers:

    raw X --images()--> the images training distorts --features()--> what the first layer reads
          (gamma, deskew)                                (orientation planes)

``net.inputs(X)`` is both steps; ``net.inputs.shape`` is one sample as the first layer reads
it; ``net.inputs.signature`` is equal for networks that read X alike (a key for caches).
``net.inputs.prepare(X)`` is ``net.inputs(X)`` with that signature attached
(:class:`Features`): the prediction methods take it in place of X and skip the transforms,
which is how a committee or the trainer reuses one transformed array for many networks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np

from numeral.nn.checks import check_inputs
from numeral.nn.errors import InputError

INPUT_TRANSFORMS = ("none", "deskew", "orientation")
Shape = tuple[int, ...]
# what Inputs.__call__ depends on: the transforms' layer strings, X's width, the dtype
Signature = tuple[tuple[str, ...], int, str]


class Features(NamedTuple):
    """Rows of what a network's first layer reads (``values``, flat), made by inputs of
    ``signature``. A network's prediction methods take them in place of X: they check the
    signature is their own and skip the transforms."""

    values: np.ndarray
    signature: Signature


class Transform(Protocol):
    """What :class:`Inputs` needs of a transform (numeral.nn.layers.transforms has them)."""

    name: ClassVar[str]
    stage: ClassVar[str]  # "image" (gamma, deskew) or "feature" (orientation planes)
    in_shape: Shape
    out_shape: Shape

    def build(self, in_shape: Shape, dtype: np.dtype[Any]) -> Shape: ...

    def apply(self, flat: np.ndarray) -> np.ndarray: ...

    def spec(self) -> str: ...

    def export(self) -> dict[str, Any]: ...


class Inputs:
    """The fixed transforms in front of a network's layers, and the shape of what they give.

    ``transforms`` run in order on samples of ``input_shape`` (X comes as flat rows): first
    those of stage "image" (gamma, deskew), then those of stage "feature" (orientation
    planes). No transforms: X reaches the first layer as it is."""

    def __init__(self, transforms: Sequence[Transform] = (), input_shape: Sequence[int] = (784,),
                 dtype: Any = "float32") -> None:
        self.transforms = list(transforms)
        self.input_shape: Shape = tuple(int(s) for s in input_shape)
        self.dtype = np.dtype(dtype)
        shape = self.input_shape
        features = False  # whether a transform into features came already
        for transform in self.transforms:
            if features and transform.stage == "image":
                raise InputError(f"{transform.spec()} is an input transform: it goes first, "
                                 "image transforms (gamma, deskew) before orientation")
            features |= transform.stage == "feature"
            shape = transform.build(shape, self.dtype)
        self.shape: Shape = shape  # one sample as the first layer reads it

    @property
    def size(self) -> int:
        """How many values one sample of X has."""
        return math.prod(self.input_shape)

    @property
    def specs(self) -> tuple[str, ...]:
        """The transforms' layer strings, e.g. ``("gamma 0.3", "orientation")``."""
        return tuple(transform.spec() for transform in self.transforms)

    @property
    def signature(self) -> Signature:
        """What the transforms' output depends on: inputs with equal signatures turn any X
        into the same features, so they can share them."""
        return (self.specs, self.size, str(self.dtype))

    @property
    def input_transform(self) -> str:
        """``orientation``, ``deskew`` or ``none``: what the transforms make of images."""
        names = {transform.name for transform in self.transforms}
        return next((t for t in ("orientation", "deskew") if t in names), "none")

    @property
    def gamma(self) -> float:
        """The gamma applied to every pixel (1.0: none)."""
        return next((float(getattr(t, "gamma", 1.0)) for t in self.transforms
                     if t.name == "gamma"), 1.0)

    def _run(self, X: np.ndarray, stage: str) -> np.ndarray:
        for transform in self.transforms:
            if transform.stage == stage:
                X = transform.apply(X.reshape(len(X), -1))
        return X.reshape(len(X), -1)

    def images(self, X: Any) -> np.ndarray:
        """X checked (``size`` values a row, converted to ``dtype``) and through the image
        transforms: what training distorts, flat rows."""
        X, _ = check_inputs(X, n_features=self.size, dtype=self.dtype)
        return self._run(X, "image")

    def features(self, images: np.ndarray) -> np.ndarray:
        """Images (from :meth:`images`, perhaps distorted) -> what the first layer reads, flat
        rows: orientation planes where a transform makes them, the images themselves else."""
        return self._run(images, "feature")

    def __call__(self, X: Any) -> np.ndarray:
        """X as the first layer reads it: ``features(images(X))``."""
        return self.features(self.images(X))

    def prepare(self, X: Any) -> Features:
        """``self(X)`` marked as made by these inputs: what a network whose inputs have this
        signature reads without transforming again."""
        return Features(self(X), self.signature)

    def check_features(self, features: Features) -> np.ndarray:
        """The values of ``features`` if inputs like these made them (the same signature) and
        they are rows of ``shape``, else InputError saying what made them."""
        if features.signature != self.signature:
            made = ", ".join(features.signature[0]) or "no transforms"
            raise InputError(f"these features were made by inputs of {made} from "
                             f"{features.signature[1]} values; this network's inputs are "
                             f"{', '.join(self.specs) or 'no transforms'} from {self.size}: "
                             "pass the images instead")
        X, _ = check_inputs(features.values, n_features=math.prod(self.shape), dtype=self.dtype)
        return X

    def __repr__(self) -> str:
        steps = ", ".join(self.specs) or "none"
        return f"Inputs({steps}; {self.input_shape} -> {self.shape})"


def image_side(transform: str, pixels: int) -> int:
    """The side of the square images of ``pixels`` values that ``transform`` reads (deskew:
    any square; orientation: a square of even side, for its 2x2 cells), or ValueError."""
    side = round(pixels**0.5)
    if side * side != pixels:
        raise ValueError(f"{transform} needs square images; {pixels} inputs are not a square")
    if transform == "orientation" and side % 2:
        raise ValueError(f"orientation needs square images of even side; {pixels} inputs "
                         f"are {side}x{side}")
    return side


def deskew(X: np.ndarray) -> np.ndarray:
    """(n, side*side) square images -> the same images deskewed, as float X.dtype."""
    n, pixels = X.shape
    side = image_side("deskew", pixels)
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
    coords = np.empty((2, n, side, side), X.dtype)  # (axis, image, y, x), as the sampler reads
    coords[0] = out_x + alpha[:, None, None] * out_y + cx[:, None, None]
    coords[1] = out_y + cy[:, None, None]
    return BilinearSampler(side)(X, coords.reshape(2, n, pixels))


def orientation_planes(X: np.ndarray) -> np.ndarray:
    """(n, side*side) square images, side even -> (n, side*side) orientation features: four
    planes (gradient at 0, 45, 90, 135 degrees) of (side/2)^2 cells, as the module says."""
    n, pixels = X.shape
    side = image_side("orientation", pixels)
    padded = np.zeros((n, side + 2, side + 2), X.dtype)  # zeros outside the frame
    padded[:, 1:-1, 1:-1] = X.reshape(n, side, side)
    down = padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]  # [1, 2, 1] along y
    across = padded[:, :, :-2] + 2 * padded[:, :, 1:-1] + padded[:, :, 2:]  # along x
    gx = (down[:, :, 2:] - down[:, :, :-2]) / 4
    gy = (across[:, 2:, :] - across[:, :-2, :]) / 4
    gx2, gy2 = gx * gx, gy * gy
    magnitude = np.sqrt(gx2 + gy2)
    # the gradient's angle doubled, 2 theta = atan2(2 gx gy, gx^2 - gy^2), makes opposite gradients
    # one direction; in steps of 45 degrees of theta it runs over (-2, 2], where the four
    # directions sit at 0 (0 degrees), 1 (45), 2 and -2 (90) and -1 (135)
    gx2 -= gy2
    gx *= gy
    direction = np.arctan2(gx, gx2 * X.dtype.type(0.5)) * X.dtype.type(2 / np.pi)
    planes = np.empty((n, 4, side, side), X.dtype)
    for at, plane in zip((0, 1, 2, -1), planes.transpose(1, 0, 2, 3), strict=True):
        distance = np.abs(direction - at)
        np.minimum(distance, 4 - distance, out=distance)  # round the circle: 2 is 0 from -2
        share = np.maximum(1 - distance, 0, out=distance)  # 1 there, 0 from the next one
        np.multiply(share, magnitude, out=plane)
    rows = planes[:, :, 0::2] + planes[:, :, 1::2]  # 2x2 sums: pairs of rows, then columns
    return (rows[..., 0::2] + rows[..., 1::2]).reshape(n, pixels)


MAX_BATCH = 8192  # images sampled at once: their flat pixel indices (< n * 30^2) stay below 2^24


class BilinearSampler:
    """Reads square images at real source coordinates by bilinear interpolation:

        out = (1-fy) ((1-fx) I[y0, x0]   + fx I[y0, x0+1])
            +    fy  ((1-fx) I[y0+1, x0] + fx I[y0+1, x0+1])

    with (x0, y0) the integer parts of the coordinates and (fx, fy) the fractions; pixels
    outside the frame are black. One sampler serves deskew() here and the training-time
    distortions of numeral.data.augment, which calls it for every batch: it keeps its
    scratch arrays between calls of the same shape (fresh ones would page-fault each time),
    lays every array out (axis, image, pixel) so each pass is contiguous, and reads the four
    neighbours with one index array from four shifted views of the batch."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._scratch: dict[str, np.ndarray] = {}
        self._shape: tuple[int, int, np.dtype] | None = None

    def __call__(
        self, X: np.ndarray, coords: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """X (n, size*size) images, coords (2, n, pixels) the x and y each output pixel reads
        (image coordinates, 0 .. size-1 inside; overwritten) -> (n, pixels), in ``out`` when
        given, of X's float dtype."""
        n, pixels = coords.shape[1:]
        out = np.empty((n, pixels), X.dtype) if out is None else out
        for start in range(0, n, MAX_BATCH):  # slices keep flat indices exact in float32
            stop = min(start + MAX_BATCH, n)
            self._sample(X[start:stop], coords[:, start:stop], out[start:stop])
        return out

    def _sample(self, X: np.ndarray, coords: np.ndarray, out: np.ndarray) -> None:
        n, pixels = coords.shape[1:]
        side = self.size + 2  # the batch is copied into frames with a black border 1 pixel wide
        buf = self._buffers(n, pixels, X.dtype)
        padded = buf["padded"]
        padded[:, 1:-1, 1:-1] = X.reshape(n, self.size, self.size)
        np.clip(coords, -1, self.size - 0.001, out=coords)  # -1 and size: the black border
        corner = buf["corner"]
        np.floor(coords, out=corner[:2])
        coords -= corner[:2]  # the fractional parts
        fx, fy = coords
        # flat index of the top-left neighbour in the padded batch, (x0 + 1) + side (y0 + 1)
        # + image offset, as one product [1, side, 1] @ [x0; y0; offset + side + 1] (exact in
        # float32 below 2^24), then one cast to the native integers take() is fastest with
        base_f = buf["base_f"]
        np.matmul(buf["index_weights"], corner.reshape(3, -1), out=base_f.reshape(-1))
        base = buf["base"]
        base[...] = base_f
        # the four neighbours: one index into the batch shifted by 0, 1, side and side + 1
        # pixels (views, no copies). Indices are in range by construction, where mode="wrap"
        # is the identity and take()'s fastest loop
        flat = padded.reshape(-1)
        top = np.take(flat, base, mode="wrap", out=out)  # the result
        right = np.take(flat[1:], base, out=buf["right"], mode="wrap")
        right -= top
        right *= fx
        top += right  # lerp(I00, I01, fx)
        bottom = np.take(flat[side:], base, out=buf["bottom"], mode="wrap")
        right = np.take(flat[side + 1:], base, out=buf["right"], mode="wrap")
        right -= bottom
        right *= fx
        bottom += right  # lerp(I10, I11, fx)
        bottom -= top
        bottom *= fy
        top += bottom  # lerp(top, bottom, fy)

    def _buffers(self, n: int, pixels: int, dtype: np.dtype) -> dict[str, np.ndarray]:
        """Scratch arrays for n images of ``pixels`` outputs, made when the shape changes."""
        if self._shape != (n, pixels, dtype):
            side = self.size + 2
            offsets = np.arange(n, dtype=dtype) * side**2 + side + 1  # + (1, 1): the border
            corner = np.empty((3, n, pixels), dtype)  # rows x0, y0 (per call) and offset
            corner[2] = offsets[:, None]
            self._scratch = {
                "padded": np.zeros((n, side, side), dtype),  # the border stays black
                "corner": corner,
                "index_weights": np.array([1, side, 1], dtype),
                "base_f": np.empty((n, pixels), dtype),
                "base": np.empty((n, pixels), np.intp),
                "right": np.empty((n, pixels), dtype),
                "bottom": np.empty((n, pixels), dtype),
            }
            self._shape = (n, pixels, dtype)
        return self._scratch
