"""The page under the numerals, taken away: its lighting and its printed lines.

    ink, inverted = lift_ink(grey)      # bright ink on 0, whether the ink was dark
    ink = remove_lines(ink)

Two things on a photo of a written number are not ink and are not smooth: the edge of a shadow
across the page, and the lines of an exercise book (ruled or squared). Both join numerals into
one piece, or make pieces of nothing, if they are left for the ink threshold (numeral.read).

- The page's brightness is a grey *opening* of the image (a minimum then a maximum filter over
  squares wider than any pen stroke): it follows the page wherever a square fits on it, a
  shadow's edge included, and leaves out the strokes, which no square fits in. The ink is what
  stands above it.
- Printed lines are long, thin and straight; numerals are not. The page's angle is found first
  (the angle that makes the rows' and columns' ink sums sharpest, on a small copy), then in the
  straightened image an opening along rows (and along columns) keeps only ink that runs on
  straight for a quarter of the page; what of it reaches across most of the page, thinner than
  the pen's strokes, is a printed line. Its brightness is subtracted, where it lies, from the
  ink: a numeral's stroke that crosses a line keeps its own ink above the line's.
"""

from __future__ import annotations

import numpy as np

from numeral.data.preprocess import should_invert

BACKGROUND_SQUARE = 1 / 4  # the opening's square, a share of the shorter side
MAX_TILT = 8.0  # degrees: the page angles searched, either way
COARSE_SIDE = 250  # pixels: the page's light and lines are found at about this size
PEN_SQUARE = 2.0  # the page is found again with squares this many times the thickest ink
LINE_RUN = 0.25  # a printed line runs straight for this share of the page at least
LINE_SPAN = 0.7  # and reaches across this share of it
LINE_THIN = 0.75  # and is thinner than this share of the pen's strokes


def lift_ink(grey: np.ndarray) -> tuple[np.ndarray, bool]:
    """A grey image (h, w), 0..255 -> its ink, bright on 0 (see :func:`flatten_background`),
    and whether the ink was dark on a light page (:func:`dark_ink`).

    >>> page = np.full((60, 90), 220.0); page[20:40, 30:34] = 40.0   # a dark stroke
    >>> ink, dark = lift_ink(page)
    >>> dark, round(float(ink[30, 31])), float(ink[5, 5])
    (True, 180, 0.0)
    """
    inverted = dark_ink(grey)
    return flatten_background(255.0 - grey if inverted else grey, inverted), inverted


def dark_ink(grey: np.ndarray) -> bool:
    """Whether the ink is dark on a light page: in blocks of the opening's square (see below),
    the page is most of each block, so the ink lies on one side of the block's median; dark
    when, summed over the blocks, the darkest pixels (2nd percentile) lie further below the
    median than the brightest (98th) lie above it. A shadow or light across the page changes
    the median from block to block, not the side the ink is on (a rule on the border's
    brightness fails where a shadow covers the border)."""
    small, (side, _) = page_scale(grey)
    h, w = small.shape
    block = max(1, min(side, h, w))
    rows, cols = max(1, h // block), max(1, w // block)
    cells = small[: rows * block, : cols * block].reshape(rows, block, cols, block)
    low, mid, high = np.percentile(cells, [2, 50, 98], axis=(1, 3))
    below, above = float((mid - low).sum()), float((high - mid).sum())
    if below == above:  # uniform blocks (a tiny or flat image): the border's rule
        return should_invert(grey)
    return below > above


def page_scale(grey: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The image the page is estimated on (reduced by :func:`coarse`: the page is smooth
    enough) and the opening's square there (a quarter of the shorter side)."""
    from PIL import Image

    factor = coarse(grey.shape)
    small = grey.astype(np.float32)
    if factor > 1:
        small = np.asarray(Image.fromarray(small).reduce(factor))
    side = max(2, round(BACKGROUND_SQUARE * min(grey.shape) / factor))
    return small, (side, side)


def coarse(shape: tuple[int, ...]) -> int:
    """How much the page's light and lines are reduced to be found: to about COARSE_SIDE
    pixels on the shorter side (a 1600x1200 photo by 5, a 600x300 one by 1)."""
    return max(1, round(min(shape) / COARSE_SIDE))


def flatten_background(grey: np.ndarray, bright_page: bool = False) -> np.ndarray:
    """Bright ink on a dark page that may vary across it -> the ink only (0 where the page
    is): minus the page, a grey opening over squares of a quarter of the shorter side.
    ``bright_page``: the image was inverted (dark ink on a light page, as on paper)."""
    from PIL import Image
    from scipy import ndimage

    small, size = page_scale(grey)
    page = ndimage.grey_opening(small, size=size)
    near = pen_square(small - page)
    if near < size[0]:  # the page again, closer: a square a few strokes wide follows a shadow
        page = ndimage.grey_opening(small, size=(near, near))
    if page.shape != grey.shape:
        page = np.asarray(Image.fromarray(page).resize(grey.shape[::-1],
                                                       Image.Resampling.BILINEAR))
    return ink_above(grey.astype(np.float32), page, bright_page)


def pen_square(ink: np.ndarray) -> int:
    """The side of a square that no stroke of the pen fills: PEN_SQUARE times the thickest ink
    above Otsu's threshold (twice its largest distance to the page; printed lines, thin, do
    not make it smaller, and a blob only makes it larger: the page found as before)."""
    from scipy import ndimage

    peak = float(ink.max())
    if peak <= 0:
        return 1 << 30
    scaled = ink * (255.0 / peak)
    mask = scaled > otsu_level(scaled, 96.0, 160.0)  # kept off the faint end (printed lines)
    if not mask.any():
        return 1 << 30
    thickest = 2.0 * float(ndimage.distance_transform_edt(mask).max())
    return max(3, int(np.ceil(PEN_SQUARE * thickest)))


def ink_above(grey: np.ndarray, page: np.ndarray, bright_page: bool) -> np.ndarray:
    """The ink: what stands above the page, less the grain (:func:`paper_grain`). On a light
    page (inverted) light multiplies, so ink in a shadow is fainter by as much as the page is:
    the ink is divided by the page's own light (and multiplied by its median, to keep the
    scale)."""
    ink = np.subtract(grey, page, dtype=np.float32)
    np.maximum(ink, 0, out=ink)
    if bright_page:
        light = np.maximum(255.0 - page, 32.0)  # the page's brightness before inverting
        ink *= float(np.median(light[::4, ::4])) / light
    ink -= paper_grain(ink)
    return np.maximum(ink, 0, out=ink)


def paper_grain(ink: np.ndarray) -> np.ndarray:
    """What the page's grain leaves above the opening (which follows the grain's troughs), on
    each pixel: the 25th percentile of coarse blocks (a sixth of the shorter side, mostly
    page), median-filtered over the blocks (a block full of ink does not count) and
    interpolated back to every pixel."""
    from PIL import Image
    from scipy import ndimage

    h, w = ink.shape
    factor = coarse(ink.shape)
    copy = np.asarray(Image.fromarray(ink).reduce(factor)) if factor > 1 else ink
    block = min(max(8, min(h, w) // 6) // factor, *copy.shape)
    rows, cols = max(1, copy.shape[0] // block), max(1, copy.shape[1] // block)
    cells = copy[: rows * block, : cols * block].reshape(rows, block, cols, block)
    small = np.percentile(cells, 25, axis=(1, 3)).astype(np.float32)
    small = ndimage.median_filter(small, size=3, mode="nearest")
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR))


def page_angle(ink: np.ndarray) -> float:
    """The angle (degrees) the page is turned by, counter-clockwise as shown (so that
    ``Image.rotate(-angle)`` straightens it): of the angles within MAX_TILT either way, the one
    whose rows and columns of ink have the sharpest sums (their sum of squares largest),
    projecting the inked pixels (faint or not: printed lines are faint) of a copy at most 400
    pixels long onto turned axes (whole degrees, then fifths and tenths around the best)."""
    from PIL import Image

    image = Image.fromarray(ink.astype(np.float32))
    small = np.asarray(image.reduce(max(1, max(ink.shape) // 400)))
    ys, xs = np.nonzero(small > 0.1 * np.percentile(small, 99.5))
    weights = np.ones(len(ys))  # a faint printed line counts as much as a pen stroke
    ys, xs = ys - small.shape[0] / 2, xs - small.shape[1] / 2
    reach = int(np.hypot(*small.shape)) + 2

    def sharpness(angle: float) -> float:
        c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        rows = np.bincount((xs * s + ys * c + reach).astype(np.int64), weights, 2 * reach)
        cols = np.bincount((xs * c - ys * s + reach).astype(np.int64), weights, 2 * reach)
        return float((rows**2).sum() + (cols**2).sum())

    if not len(weights):
        return 0.0
    best = 0.0
    for step, span in ((1.0, MAX_TILT), (0.2, 0.8), (0.1, 0.1)):
        angles = best + np.arange(-span, span + step / 2, step)
        best = float(angles[int(np.argmax([sharpness(a) for a in angles]))])
    return round(best, 1)


def stroke_width(mask: np.ndarray) -> float:
    """The pen's stroke width on an ink mask: twice its area over its outline's length (a
    band of width s and length l has area s*l and an outline about 2*l long)."""
    from scipy import ndimage

    area = int(mask.sum())
    outline = area - int(ndimage.binary_erosion(mask).sum())
    return 2.0 * area / max(outline, 1)


def printed_lines(ink: np.ndarray, stroke: float) -> np.ndarray:
    """The printed lines of a straightened ink image, as brightness to subtract (0 elsewhere):
    horizontal and vertical runs that are straight for LINE_RUN of the page, reach across
    LINE_SPAN of it and are thinner than LINE_THIN of the pen's ``stroke``."""
    from scipy import ndimage

    lines = np.zeros_like(ink)
    for axis in (0, 1):  # 0: lines along rows (horizontal), 1: along columns
        along = ink.shape[1 - axis]
        run = max(3, round(LINE_RUN * along))
        wobble = ndimage.maximum_filter1d(ink, 3, axis=axis)  # a pixel of drift either way
        opened = ndimage.grey_opening(wobble, size=(1, run) if axis == 0 else (run, 1))
        level = float(opened.max())
        if level <= 0:
            continue
        labels, _ = ndimage.label(opened > 0.25 * level)
        for k, box in enumerate(ndimage.find_objects(labels), start=1):
            span = box[1 - axis].stop - box[1 - axis].start
            if span < LINE_SPAN * along:
                continue
            here = labels[box] == k
            if ink_thickness(ink, box, axis, float(np.median(opened[box][here])),
                             stroke) >= LINE_THIN * stroke:
                continue
            lines[box] = np.maximum(lines[box], np.where(here, opened[box], 0.0))
    return lines


def ink_thickness(ink: np.ndarray, box: tuple[slice, slice], axis: int, level: float,
                  stroke: float) -> float:
    """How thick the ink is across a found run, measured on the ink itself (not the opened
    copy, which keeps only the straight core of a thick curved stroke): in each column (row)
    along the run, the pixels above half its ``level`` within a stroke of its box; their lower
    quartile over the run's length (numerals written along the line thicken it where they
    cross it)."""
    margin = int(np.ceil(stroke))
    across = box[axis]
    window = slice(max(0, across.start - margin), across.stop + margin)
    part = ink[window, box[1]] if axis == 0 else ink[box[0], window]
    return float(np.percentile((part > 0.5 * level).sum(axis=axis), 25))


def otsu(values: np.ndarray) -> float:
    """Otsu's threshold of grey values 0..255: the split that maximises the between-class
    variance of the histogram."""
    counts = np.bincount(np.clip(values, 0, 255).astype(np.int64).ravel(), minlength=256)
    levels = np.arange(256, dtype=np.float64)
    weight = np.cumsum(counts).astype(np.float64)
    total = weight[-1]
    mean = np.cumsum(counts * levels)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean[-1] * weight - mean * total) ** 2 / (weight * (total - weight))
    between = np.where(np.isfinite(between), between, -1.0)
    return float(np.argmax(between)) if between.max() > 0 else float(mean[-1] / total)


def otsu_level(scaled: np.ndarray, low: float, high: float) -> float:
    """The ink threshold of an image scaled to 0..255: Otsu's threshold of its values above 8
    (128 if it has none), kept within [low, high]."""
    inked = scaled[scaled > 8]
    level = otsu(inked) if inked.size else 128.0
    return min(max(level, low), high)


def remove_lines(ink: np.ndarray) -> np.ndarray:
    """The ink with the page's printed lines taken out (see the module), found on a reduced copy of
    large images. The pen's strokes are measured on the pixels above Otsu's threshold (printed
    lines are mostly fainter)."""
    from PIL import Image
    from scipy import ndimage

    peak = float(ink.max())
    if peak <= 0 or min(ink.shape) < 8:
        return ink
    image = Image.fromarray(ink.astype(np.float32))
    factor = coarse(ink.shape)
    small = image.reduce(factor) if factor > 1 else image
    angle = page_angle(np.asarray(small))
    straight = np.asarray(small.rotate(-angle, Image.Resampling.BILINEAR) if angle else small)
    scaled = straight * (255.0 / peak)
    mask = scaled > otsu_level(scaled, 96.0, 160.0)  # kept off the faint end
    if not mask.any():
        return ink
    lines = printed_lines(straight, stroke_width(mask))
    if not lines.any():
        return ink
    found = Image.fromarray(ndimage.maximum_filter(lines, 3))
    if angle:
        found = found.rotate(angle, Image.Resampling.BILINEAR)
    if factor > 1:
        found = found.resize(image.size, Image.Resampling.BILINEAR)
    return np.clip(ink - np.minimum(np.asarray(found), ink), 0, None)
