"""Whole numbers made from single numerals, to test and measure numeral.read.

:func:`compose_number` lays numerals (28x28 dataset images, white on black) side by side as a
writer might: each scaled (the line's size, and each numeral's own), spaced at random (from
apart to touching and overlapping their neighbours), its baseline jittered, and the line written
dark on paper: uneven lighting, grain, and a few specks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    height: tuple[float, float] = (60.0, 140.0)  # the line's numeral height, pixels
    scale: tuple[float, float] = (0.85, 1.15)  # each numeral's own size against the line's
    gap: tuple[float, float] = (-0.12, 0.35)  # space between numerals / height (< 0: overlap)
    jitter: float = 0.08  # baseline moves up or down by up to this share of the height
    specks: int = 40  # small dark dots on the paper
    noise: tuple[float, float] = (3.0, 10.0)  # grain, grey levels


def ink_columns(image: np.ndarray) -> np.ndarray:
    cols = np.flatnonzero(image.max(axis=0) > 40)
    return image[:, cols[0] : cols[-1] + 1] if len(cols) else image


def compose_number(images: np.ndarray, rng: np.random.Generator,
                   layout: Layout = Layout()) -> np.ndarray:
    """(k, 28, 28) uint8 numerals -> one grey uint8 image of them written left to right,
    dark on light paper."""
    return on_paper(lay_out(images, rng, layout), rng, layout)


def lay_out(images: np.ndarray, rng: np.random.Generator,
            layout: Layout = Layout()) -> np.ndarray:
    """(k, 28, 28) uint8 numerals -> their bright ink (float32, 0..255) laid out left to right
    on one line, with a margin: what :func:`on_paper` (or numeral.data.photo) writes down."""
    from PIL import Image

    line = rng.uniform(*layout.height)
    tiles = []
    for image in images:
        side = max(8, round(line * rng.uniform(*layout.scale)))
        big = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC),
                         dtype=np.float32)
        tiles.append(ink_columns(np.clip(big, 0, 255)))
    margin = round(0.4 * line)
    gaps = [round(line * rng.uniform(*layout.gap)) for _ in tiles]
    width = sum(t.shape[1] for t in tiles) + sum(max(g, 0) for g in gaps) + 2 * margin
    height = round(1.7 * max(t.shape[0] for t in tiles))
    ink = np.zeros((height, width), np.float32)
    x = margin
    for tile, gap in zip(tiles, gaps, strict=True):
        h, w = tile.shape
        y = (height - h) // 2 + round(line * rng.uniform(-layout.jitter, layout.jitter))
        y = min(max(y, 0), height - h)
        x = min(max(x, 0), width - w)
        np.maximum(ink[y : y + h, x : x + w], tile, out=ink[y : y + h, x : x + w])
        x += w + gap
    return ink


def on_paper(ink: np.ndarray, rng: np.random.Generator, layout: Layout = Layout()) -> np.ndarray:
    """Bright ink (0..255) -> dark ink on paper: a light page, lit unevenly, with grain and
    specks."""
    h, w = ink.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    slope = rng.uniform(-25, 25, 2)
    paper = (rng.uniform(200, 240) + slope[0] * (xs / w - 0.5) + slope[1] * (ys / h - 0.5)
             - rng.uniform(0, 25) * ((xs / w - rng.uniform()) ** 2 + (ys / h - rng.uniform()) ** 2))
    paper += rng.normal(0, rng.uniform(*layout.noise), (h, w))
    for _ in range(layout.specks):
        r, c = rng.integers(0, h), rng.integers(0, w)
        paper[r : r + 2, c : c + 2] -= rng.uniform(40, 120)
    dark = rng.uniform(0.6, 0.85)
    return np.clip(paper - dark * ink, 0, 255).astype(np.uint8)
