"""Preprocessing: any image -> the 28x28 grey numeral the network reads.

One function, :func:`preprocess_image`, serves the training data and a single
image a user wants recognised, so both see exactly the same steps:

1. decode (JPEGs at reduced size: the codec's DCT scaling does most of the work),
2. convert to grey,
3. invert dark-on-light images so the numeral is white on black (auto-detected
   from the border, or forced),
4. frame: crop to the numeral's bounding box and pad to a centred square with a
   margin (TibetanMNIST numerals fill their frame, so margin 0),
5. resize to 28x28 with Lanczos anti-aliasing,

and :func:`numeral.data.dataset.vectorize` then scales to [0, 1] and flattens.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from numeral.data.dataset import IMAGE_SIZE
from numeral.errors import DataError

MAX_PIXELS = 40_000_000  # larger images are refused (decompression bombs)


@dataclass(frozen=True)
class Preprocessing:
    """Parameters of :func:`preprocess_image`; stored inside every trained model."""

    size: int = IMAGE_SIZE
    invert: str = "auto"  # "auto", "yes" or "no"
    frame: bool = True  # crop to the ink and centre it in a square
    margin: float = 0.0  # blank border around the numeral, as a fraction of the side
    threshold: float = 0.2  # ink is brighter than this fraction of the brightest pixel

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Preprocessing:
        return cls(**(d or {}))


def require_pillow() -> Any:
    """PIL.Image, or a DataError that says how to install Pillow."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - depends on the install
        raise DataError(
            "reading images needs Pillow: pip install 'numeral[images]'"
        ) from None
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    return Image


def open_image(source: Any, name: str = "image") -> Any:
    """Open a path, bytes, file object, PIL image or array as a PIL image (not yet decoded)."""
    image_mod = require_pillow()
    if isinstance(source, image_mod.Image):
        return source
    if isinstance(source, np.ndarray):
        arr = source
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return image_mod.fromarray(arr)
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    too_large = DataError(
        f"{name} is too large (over {MAX_PIXELS // 1_000_000} megapixels); "
        "resize it before recognising it"
    )
    try:
        img = image_mod.open(source)
    except image_mod.DecompressionBombError:
        raise too_large from None
    except image_mod.UnidentifiedImageError:
        raise DataError(
            f"{name} is not a readable image (not PNG, JPEG, BMP, GIF, TIFF or WebP, or corrupt)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name} is not a readable image ({exc})") from None
    if img.width * img.height > MAX_PIXELS:  # Pillow itself only warns below 2x its limit
        raise too_large
    return img


def read_path(path: str | Path) -> bytes:
    """The bytes of an image file, or a DataError naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None


def preprocess_image(
    source: Any, params: Preprocessing | None = None, name: str = "image"
) -> np.ndarray:
    """Any image (path, bytes, PIL image, array) -> (28, 28) uint8, white numeral on black."""
    params = params or Preprocessing()
    image_mod = require_pillow()
    if isinstance(source, str | Path):
        source, name = read_path(source), str(source)
    img = open_image(source, name)
    try:
        if img.format == "JPEG":
            img.draft("L", (params.size * 3 // 2, params.size * 3 // 2))  # decode at 1/2..1/8 size
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")  # transparent background -> white paper
            bg = image_mod.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = image_mod.alpha_composite(bg, rgba)
        grey = np.asarray(img.convert("L"), dtype=np.float32)
    except image_mod.DecompressionBombError:
        raise DataError(f"{name} is too large; resize it before recognising it") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name} is not a readable image ({exc})") from None
    if grey.size == 0:
        raise DataError(f"{name} is an empty image")
    return grey_to_input(grey, params)


def should_invert(grey: np.ndarray) -> bool:
    """True when the border is mostly light, i.e. a dark numeral on light paper."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(border)) > 127.0


def grey_to_input(grey: np.ndarray, params: Preprocessing | None = None) -> np.ndarray:
    """A grey image (h, w) in 0..255 -> (size, size) uint8 after steps 3-5 above."""
    params = params or Preprocessing()
    image_mod = require_pillow()
    grey = np.asarray(grey, dtype=np.float32)
    if params.invert == "yes" or (params.invert == "auto" and should_invert(grey)):
        grey = 255.0 - grey
    if params.frame:
        grey = frame_numeral(grey, params.margin, params.threshold)
    img = image_mod.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    img = img.resize((params.size, params.size), image_mod.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def frame_numeral(grey: np.ndarray, margin: float, threshold: float) -> np.ndarray:
    """Crop to the bounding box of the ink (pixels > threshold * max) and pad to a centred
    square whose side is the box's longer side / (1 - 2 margin). Blank images pass through."""
    peak = float(grey.max())
    if peak <= 0:
        return grey
    ink = grey > threshold * peak
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    side = int(np.ceil(max(h, w) / max(1.0 - 2.0 * margin, 0.1)))
    out = np.zeros((side, side), np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = crop
    return out
