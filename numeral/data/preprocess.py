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

# Limits on what is decoded (decompression bombs: a small file that decodes to a huge image).
CAMERA_PIXELS = 250_000_000  # no camera or scanner makes more (phones: 12-200 megapixels)
FULL_DECODE_PIXELS = 64_000_000  # PNG, TIFF, ... decode in full: this bounds their memory
BOMB_RATIO = 1_000  # pixels per byte of file: deflate's limit; no camera's JPEG passes 100
BOMB_CHECKED = 16_000_000  # images this large are checked for that ratio
MIN_CONTRAST = 40.0  # grey levels between ink and paper: less is a blank page
MAX_FRAME = 512  # a numeral longer than this is shrunk before it is framed in its square


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
    Image.MAX_IMAGE_PIXELS = CAMERA_PIXELS  # numeral's own checks below say what is wrong
    return Image


def open_image(source: Any, name: str = "image") -> Any:
    """Open a path, bytes, file object, PIL image or array as a PIL image (not yet decoded).
    Images no camera makes (over CAMERA_PIXELS, or more pixels per byte than BOMB_RATIO) and
    formats that decode in full above FULL_DECODE_PIXELS are refused, saying why."""
    image_mod = require_pillow()
    if isinstance(source, image_mod.Image):
        return source
    if isinstance(source, np.ndarray):
        return image_mod.fromarray(to_uint8(source, name))
    size = len(source) if isinstance(source, bytes | bytearray) else None
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    try:
        img = image_mod.open(source)
    except image_mod.DecompressionBombError:
        raise DataError(f"{name} is too large: over {CAMERA_PIXELS // 1_000_000} megapixels, "
                        "more than any camera makes (refused as a possible decompression "
                        "bomb); resize it") from None
    except image_mod.UnidentifiedImageError:
        raise DataError(
            f"{name} is not a readable image (not PNG, JPEG, BMP, GIF, TIFF or WebP, or corrupt)"
        ) from None
    except Exception as exc:  # Pillow's header parsers fail on damaged files in varied ways
        raise DataError(f"{name} is not a readable image ({exc})") from None
    check_size(img, name, size)
    return img


def check_size(img: Any, name: str, n_bytes: int | None) -> None:
    """Refuse what no camera makes, and what would not decode in bounded memory."""
    pixels = img.width * img.height
    mp = f"{img.width}x{img.height} ({pixels / 1e6:.0f} megapixels)"
    if pixels > CAMERA_PIXELS:  # Pillow itself only warns below 2x its limit
        raise DataError(f"{name} is too large: {mp}, more than any camera makes (limit "
                        f"{CAMERA_PIXELS // 1_000_000} megapixels; refused as a possible "
                        "decompression bomb); resize it")
    if n_bytes and pixels > BOMB_CHECKED and pixels > BOMB_RATIO * n_bytes:
        raise DataError(f"{name} is too large for its file: {n_bytes} bytes unpack into {mp}, "
                        f"over {BOMB_RATIO} pixels a byte, which no camera or scanner writes "
                        "(refused as a possible decompression bomb); resize it")
    if img.format != "JPEG" and pixels > FULL_DECODE_PIXELS:
        raise DataError(f"{name} is too large to decode: a {img.format or 'non-JPEG'} image of "
                        f"{mp}; JPEGs are decoded at a reduced size, other formats up to "
                        f"{FULL_DECODE_PIXELS // 1_000_000} megapixels; resize it or save it "
                        "as JPEG")


def to_uint8(arr: np.ndarray, name: str = "image") -> np.ndarray:
    """Grey or colour values as uint8: 0..1 (floats) and 0..65535 (16-bit) scaled to 0..255."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))) or arr.size == 0:
        raise DataError(f"{name}: an image array must be (height, width) or (height, width, "
                        f"3 or 4) with at least one pixel, not {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    values = arr.astype(np.float64)
    if not np.isfinite(values).all():
        raise DataError(f"{name}: the image array holds NaN or infinite values")
    top = float(values.max())
    scale = 255.0 if top <= 1.0 else 255.0 / 65535 if top > 255 else 1.0
    return np.clip(values * scale, 0, 255).astype(np.uint8)


def decode_grey(img: Any, name: str = "image", draft: int | None = None,
                longest: int | None = None, dtype: Any = np.float32) -> np.ndarray:
    """A PIL image -> grey float32 (h, w), 0..255 (or ``dtype``: uint8 holds every value
    exactly): the first frame or page; transparency as white paper; 16-bit, integer and float
    images scaled to 0..255. ``draft``: a JPEG decodes
    at the smallest size the codec's DCT scaling offers whose sides are both at least
    ``draft`` (or, with ``longest``, that fits ``longest``). ``longest``: a larger image is
    scaled down (bicubic) to that longer side."""
    image_mod = require_pillow()
    try:
        size = None  # the size to scale down to, if any
        if longest and max(img.size) > longest:
            scale = longest / max(img.size)
            size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            if img.format == "JPEG":
                img.draft("L", size)  # JPEGs decode at a reduced size: bounded memory
        elif draft and img.format == "JPEG":
            img.draft("L", (draft, draft))  # decode at 1/2..1/8 size
        if img.mode in ("RGBA", "LA") and img.getchannel("A").getextrema()[0] == 255:
            pass  # opaque (a browser's canvas): composing on white would change nothing
        elif img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")  # transparent background -> white paper
            bg = image_mod.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = image_mod.alpha_composite(bg, rgba)
        if img.mode.startswith(("I", "F")):  # 16-bit, 32-bit integer or float grey
            img = image_mod.fromarray(to_uint8(np.asarray(img), name))
        img = img.convert("L") if img.mode != "L" else img  # (convert would copy)
        if size is not None and img.size != size:
            img = img.resize(size)
        grey = np.asarray(img, dtype=dtype)
    except DataError:
        raise
    except Exception as exc:  # Pillow's decoders fail on damaged files in varied ways
        raise DataError(f"{name} is not a readable image ({exc})") from None
    if grey.size == 0:
        raise DataError(f"{name} is an empty image (0 pixels)")
    return grey


def read_path(path: str | Path) -> bytes:
    """The bytes of an image file, or a DataError naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None


def open_source(source: Any, name: str = "image") -> tuple[Any, str]:
    """A path (read, and then named by it), bytes, PIL image or array, opened as a PIL image
    (not yet decoded), and the name errors will give it."""
    if isinstance(source, str | Path):
        source, name = read_path(source), str(source)
    return open_image(source, name), name


def load_grey(source: Any, params: Preprocessing, name: str = "image",
              dtype: Any = np.float32) -> np.ndarray:
    """Any image -> the grey image :func:`grey_to_input` takes (a JPEG decoded at the smallest
    size that still holds 1.5 times ``params.size``), float32 or ``dtype``."""
    img, name = open_source(source, name)
    return decode_grey(img, name, params.size * 3 // 2, dtype=dtype)


def preprocess_image(
    source: Any, params: Preprocessing | None = None, name: str = "image"
) -> np.ndarray:
    """Any image (path, bytes, PIL image, array) -> (28, 28) uint8, white numeral on black."""
    params = params or Preprocessing()
    return grey_to_input(load_grey(source, params, name), params)


def paper_level(grey: np.ndarray) -> float:
    """The paper's grey level: the median of the image's border (its outermost pixels)."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if border.dtype != np.uint8:  # (np.median's own rounding, NaN included)
        return float(np.median(border))
    middle = (len(border) - 1) // 2, len(border) // 2  # the one or two middle values
    low, high = np.partition(border, middle)[list(middle)]  # a third of np.median's time
    return (float(low) + float(high)) / 2.0


def should_invert(grey: np.ndarray, paper: float | None = None) -> bool:
    """True when the border is mostly light, i.e. a dark numeral on light paper (``paper``:
    :func:`paper_level`, when already known)."""
    return (paper_level(grey) if paper is None else paper) > 127.0


def blank_reason(grey: np.ndarray, paper: float | None = None) -> str | None:
    """Why an image holds no numeral, or None when it has ink: its ink (the brightest pixel
    after inversion and a 3x3 box blur, so that a lone noisy pixel is not ink) differs from its
    paper (:func:`paper_level`, as for :func:`should_invert`) by less than MIN_CONTRAST grey
    levels. A blank page, a uniform image and one all ink are blank."""
    paper = paper_level(grey) if paper is None else paper
    g = grey if grey.dtype == np.uint8 else np.clip(grey, 0, 255).astype(np.uint8)
    if paper > 127.0:  # dark on light: the ink made bright
        g, paper = 255 - g, 255.0 - paper
    contrast = float((box_blur(g) if min(g.shape) > 2 else g).max()) - paper
    if contrast >= MIN_CONTRAST:
        return None
    return (f"no numeral found: the image looks blank (its ink differs from the paper by "
            f"{max(contrast, 0):.0f} grey levels, under {MIN_CONTRAST:.0f})")


def box_blur(g: np.ndarray) -> np.ndarray:
    """A 3x3 box blur of a uint8 image, exactly as Pillow's ``ImageFilter.BoxBlur(1)`` makes
    it (the mean of the previous, this and the next pixel along each row, rounded to an
    integer, then the same down each column; the edge pixels repeated beyond the edge), in
    NumPy in a third of its time. Pillow rounds a sum s of three by its fixed point,
    (s * (2**24 // 3) + 2**23) >> 24, which is (s + 1) // 3 for every s up to 765: uint16."""
    a = g.astype(np.uint16)
    across = a.copy()  # along each row: left + this + right
    across[:, 1:] += a[:, :-1]
    across[:, :-1] += a[:, 1:]
    across[:, 0] += a[:, 0]  # the edge pixel stands for the one beyond the edge
    across[:, -1] += a[:, -1]
    across += 1
    across //= 3
    down = across.copy()  # then down each column
    down[1:] += across[:-1]
    down[:-1] += across[1:]
    down[0] += across[0]
    down[-1] += across[-1]
    down += 1
    down //= 3
    return down.astype(np.uint8)


def grey_to_input(grey: np.ndarray, params: Preprocessing | None = None,
                  paper: float | None = None) -> np.ndarray:
    """A grey image (h, w) in 0..255 -> (size, size) uint8 after steps 3-5 above (``paper``:
    :func:`paper_level`, when already known). A uint8 image stays uint8 throughout: the same
    result, in less time."""
    params = params or Preprocessing()
    image_mod = require_pillow()
    exact = isinstance(grey, np.ndarray) and grey.dtype == np.uint8
    grey = grey if exact else np.asarray(grey, dtype=np.float32)
    if params.invert == "yes" or (params.invert == "auto" and should_invert(grey, paper)):
        grey = 255 - grey
    if params.frame:
        grey = frame_numeral(grey, params.margin, params.threshold)
    img = image_mod.fromarray(grey if grey.dtype == np.uint8  # (a long crop shrunk: float)
                              else np.clip(grey, 0, 255).astype(np.uint8))
    img = img.resize((params.size, params.size), image_mod.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def frame_numeral(grey: np.ndarray, margin: float, threshold: float) -> np.ndarray:
    """Crop to the bounding box of the ink (pixels > threshold * max) and pad to a centred
    square whose side is the box's longer side / (1 - 2 margin); a box longer than MAX_FRAME
    is first shrunk to it (Lanczos), so the square's memory stays bounded. Blank images pass
    through."""
    peak = float(grey.max())
    if peak <= 0:
        return grey
    ink = grey > threshold * peak
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    if max(crop.shape) > MAX_FRAME:  # shrink first: a long thin image's square would not fit
        scale = MAX_FRAME / max(crop.shape)
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        image_mod = require_pillow()
        crop = np.asarray(image_mod.fromarray(crop.astype(np.float32)).resize(
            size, image_mod.Resampling.LANCZOS), dtype=np.float32)  # float32 from uint8 too
    h, w = crop.shape
    side = int(np.ceil(max(h, w) / max(1.0 - 2.0 * margin, 0.1)))
    out = np.zeros((side, side), crop.dtype)
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = crop
    return out
