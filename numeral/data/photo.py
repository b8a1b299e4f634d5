"""Photos of numbers written on paper, made from dataset numerals, to measure numeral.read.

    photo_number(images, rng, CONDITIONS["squared"])   # JPEG bytes of a colour photo

What people send are phone photos of numbers written in exercise books: plain, ruled or
squared paper, black or blue ink, the page tilted a few degrees, lit unevenly (a shadow across
it), slightly out of focus, JPEG-compressed. :func:`photograph` turns the bright ink of a laid
out number (:func:`numeral.data.compose.lay_out`) into such a photo, one step per cause, each
drawn from the ranges of a :class:`Photo`; :data:`CONDITIONS` names one condition per failure
seen in users' photos, each on top of the same mild defaults, and ``"everything"`` (all of
them at random). ``benchmarks/bench_read.py --photos`` reads a table of them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from numeral.data.compose import Layout, lay_out

BLACK = (28.0, 28.0, 34.0)
BLUE = (30.0, 55.0, 165.0)  # a ballpoint's blue
LINE = (120.0, 160.0, 215.0)  # an exercise book's light blue lines


@dataclass(frozen=True)
class Photo:
    """The ranges a photo's properties are drawn from (uniformly)."""

    paper: str = "plain"  # "plain", "ruled" (lines about a numeral apart) or "squared"
    height: tuple[float, float] = (60.0, 140.0)  # a numeral's height, photo pixels
    ink: tuple[float, float, float] = BLACK
    tilt: tuple[float, float] = (0.0, 1.5)  # degrees, either way
    shadow: tuple[float, float] = (0.0, 0.1)  # how much darker the shadowed part of the page is
    blur: tuple[float, float] = (0.3, 0.7)  # Gaussian sigma, in pixels
    jpeg: tuple[int, int] = (80, 92)  # JPEG quality
    breaks: float = 0.0  # gaps cut across the strokes, per numeral
    line_dark: tuple[float, float] = (0.35, 0.7)  # a printed line's strength against the ink's
    mixed: bool = False  # each photo takes one or more of the conditions below at random


CONDITIONS: dict[str, Photo] = {
    "plain": Photo(),
    "ruled": Photo(paper="ruled"),
    "squared": Photo(paper="squared"),
    "blue ink": Photo(ink=BLUE),
    "tilted 3-6 degrees": Photo(tilt=(3.0, 6.0)),
    "shadow across": Photo(shadow=(0.3, 0.5)),
    "blurred": Photo(blur=(1.5, 2.5)),
    "JPEG quality 25-40": Photo(jpeg=(25, 40)),
    "broken strokes": Photo(breaks=1.0),
    "small on squares, blue": Photo(paper="squared", height=(28.0, 45.0), ink=BLUE),
    "everything": Photo(mixed=True),
}


def mixed(rng: np.random.Generator) -> Photo:
    """A photo with several of the conditions at once: the paper, the ink, tilt, shadow,
    blur and compression each changed with probability one half."""
    photo = Photo(paper=str(rng.choice(["plain", "ruled", "squared"])))
    changes: tuple[tuple[str, Any], ...] = (
        ("ink", BLUE), ("tilt", (3.0, 6.0)), ("shadow", (0.3, 0.5)), ("blur", (1.5, 2.5)),
        ("jpeg", (25, 40)), ("breaks", 1.0))
    for name, changed in changes:
        if rng.random() < 0.5:
            photo = replace(photo, **{name: changed})
    return photo


def photo_number(images: np.ndarray, rng: np.random.Generator, photo: Photo = Photo()) -> bytes:
    """(k, 28, 28) uint8 numerals -> the JPEG bytes of a colour photo of them written on one
    line (see the module)."""
    if photo.mixed:
        photo = mixed(rng)
    ink = lay_out(images, rng, Layout(height=photo.height, specks=0))
    return photograph(ink, rng, photo, count=len(images))


def photograph(ink: np.ndarray, rng: np.random.Generator, photo: Photo = Photo(),
               count: int = 1) -> bytes:
    """Bright ink (h, w), 0..255, of ``count`` numerals -> JPEG bytes: on a page, with the
    paper's lines, in the ink's colour, lit, tilted, blurred and compressed as ``photo`` says."""
    from PIL import Image, ImageFilter

    h, w = ink.shape
    line = h / 1.7  # lay_out's canvas is 1.7 numerals high
    pad_y, pad_x = round(0.9 * line), round(0.4 * line)
    ink = np.pad(ink, ((pad_y, pad_y), (pad_x, pad_x)))
    ink = broken(ink, rng, round(photo.breaks * count), line)
    h, w = ink.shape
    paper = np.full((h, w, 3), rng.uniform(215, 245), np.float32)
    paper *= np.array([1.0, rng.uniform(0.97, 1.0), rng.uniform(0.9, 1.0)], np.float32)  # warm
    alpha = rng.uniform(0.8, 0.95) * (ink / 255.0)[..., None]
    printed = ruling(h, w, rng, photo.paper, line) * rng.uniform(*photo.line_dark)
    page = paper * (1 - printed[..., None]) + np.array(LINE, np.float32) * printed[..., None]
    page = page * (1 - alpha) + np.array(photo.ink, np.float32) * alpha
    page *= lighting(h, w, rng, rng.uniform(*photo.shadow))[..., None]
    page += rng.normal(0, rng.uniform(2, 6), (h, w, 1))  # the sensor's grain
    picture = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), "RGB")
    angle = rng.uniform(*photo.tilt) * rng.choice([-1.0, 1.0])
    fill = tuple(int(v) for v in np.median(page.reshape(-1, 3), axis=0))
    picture = picture.rotate(angle, Image.Resampling.BICUBIC, fillcolor=fill)
    picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(*photo.blur)))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=int(rng.integers(photo.jpeg[0], photo.jpeg[1] + 1)))
    return out.getvalue()


def ruling(h: int, w: int, rng: np.random.Generator, paper: str, line: float) -> np.ndarray:
    """The printed lines of the paper, 0..1: none, horizontal lines about 1.2 numerals apart,
    or squares of about half a numeral, 1-2 pixels thick."""
    out = np.zeros((h, w), np.float32)
    if paper == "plain":
        return out
    step = line * (rng.uniform(1.1, 1.4) if paper == "ruled" else rng.uniform(0.45, 0.6))
    thick = int(rng.integers(1, 3))
    for y in np.arange(rng.uniform(0, step), h, step).astype(int):
        out[y : y + thick] = 1.0
    if paper == "squared":
        for x in np.arange(rng.uniform(0, step), w, step).astype(int):
            out[:, x : x + thick] = 1.0
    return out


def lighting(h: int, w: int, rng: np.random.Generator, shadow: float) -> np.ndarray:
    """How lit each pixel is, about 0.5..1: a gentle gradient, and a shadow of the given
    depth over one side of a line across the page, with a soft edge."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ys, xs = ys / max(h, w), xs / max(h, w)
    slope = rng.uniform(-0.12, 0.12, 2)
    light = 1.0 + slope[0] * (xs - xs.mean()) + slope[1] * (ys - ys.mean())
    if shadow > 0:
        theta = rng.uniform(0, 2 * np.pi)
        across = np.cos(theta) * (xs - xs.mean()) + np.sin(theta) * (ys - ys.mean())
        edge = rng.uniform(-0.15, 0.15)
        light *= 1.0 - shadow / (1.0 + np.exp(-(across - edge) / 0.02))
    return np.clip(light, 0.3, 1.1).astype(np.float32)


def broken(ink: np.ndarray, rng: np.random.Generator, breaks: int, line: float) -> np.ndarray:
    """The ink with ``breaks`` gaps cut across its strokes (a pen that skipped): a disc about a
    stroke wide erased around inked points picked at random."""
    if breaks <= 0:
        return ink
    ys, xs = np.nonzero(ink > 128)
    if not len(ys):
        return ink
    out = ink.copy()
    radius = 0.07 * line
    for k in rng.choice(len(ys), size=min(breaks, len(ys)), replace=False):
        y, x = int(ys[k]), int(xs[k])
        r = int(np.ceil(radius))
        y0, x0 = max(0, y - r), max(0, x - r)
        gy, gx = np.ogrid[y0 : y + r + 1, x0 : x + r + 1]
        out[y0 : y + r + 1, x0 : x + r + 1][(gy - y) ** 2 + (gx - x) ** 2 <= radius**2] = 0.0
    return out
