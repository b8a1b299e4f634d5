"""Reading whole numbers: the numerals written on one line of a photo, a scan or a canvas.

    numeral read photo.jpg [--json]
    numeral.read("photo.jpg").text                            # "2026" (a Reading)
    NumberReader(Recognizer.from_file("best")).reading("photo.jpg")   # another model, kept

1. grey, at most 1,200 pixels on the longer side; the page taken away (numeral.data.paper):
   which way the ink is (by blocks), the page's light and shadows (a grey opening; the ink
   divided by the light), printed lines (long, thin and straight at the page's angle) and
   marks along the border (numeral/data/paper.py says what each step was measured on); then
   a light Gaussian blur (1.5 pixels) against paper grain;
2. ink: pixels above Otsu's threshold of what remains, if there is contrast enough to hold ink;
   faint ink (above a fifth of that threshold) joined to it, as in hysteresis thresholding;
3. connected components of the ink (scipy.ndimage, 8-connected); specks (under 3 % of the
   largest component's area, or a few pixels) dropped; several lines are told apart by the
   numeral-sized components only (a stroke the pen broke off is not a line);
4. the parts of one numeral (a pen that skipped) merged: components whose columns overlap,
   neighbours that faint ink joins and that together are no wider than a numeral, and pieces
   smaller than half a numeral joined to their nearest neighbour;
5. numerals that touch split: a piece 1.5 times wider than a numeral is (0.96 of the line's
   height, the median TibetanMNIST numeral's width-to-height ratio) is cut into as many
   numerals; each cut is tried at 7 columns near the even cut (the thinnest ink among them)
   and made where the recogniser reads the pieces most surely;
6. the pieces of a numeral the pen broke apart joined: neighbours (up to 3, no wider together
   than 1.25 numerals) become one numeral when the recogniser reads them, as one, more surely
   than apart (the geometric mean of the probabilities, each piece counted once);
7. each numeral, its own ink only (the faint ink goes to the nearest numeral), prepared
   exactly as numeral.data prepares a training image (framed, 28x28 with Lanczos) and
   recognised; left to right.

The result: the string (class names joined; for the digits 0-9 also in Tibetan script), each
numeral's box, top 3 and probability, and a confidence: the product of the numerals'
probabilities (the chance that every one is right, were they independent). An image with no ink,
with only specks, or with writing on several lines gives an empty string with its reason.
"""

from __future__ import annotations

import itertools
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from numeral.data import Preprocessing
from numeral.data.paper import lift_ink, otsu_level, remove_lines
from numeral.data.preprocess import (
    MIN_CONTRAST,
    decode_grey,
    grey_to_input,
    open_source,
)
from numeral.errors import DataError
from numeral.nn import Ensemble, Network
from numeral.predict import Model, Recognizer, recognizer_for
from numeral.results import Digit, Reading, Recognition

WORK_SIDE = 1200  # larger photos are read at this size (longer side)
SPECK = 0.03  # components under this share of the largest one's area are specks
MAX_PIECES = 60  # more candidate numerals than this is not a written number
CUT_TRIES = 7  # columns tried for each cut between touching numerals
BLUR = 1.5  # pixels: the Gaussian that evens out paper grain before the ink is found
FAINT = 0.2  # faint ink: above this share of the ink threshold, and joined to ink
LINE_PART = 0.5  # parts at least this share of the tallest one's height tell the lines apart
JOIN_WIDTH = 1.3  # neighbours joined by faint ink are one numeral if no wider than this many
EDGE_THIN = 0.25  # a mark along the border thinner than this share of its length is an edge
MERGE_WIDTH = 1.25  # neighbouring pieces no wider together than this many numerals may be one
MERGE_MOST = 3  # and as many as this
ASPECT = 0.96  # a numeral's width / height: the median of TibetanMNIST's (5-95 %: 0.82-1.08)
OWN_BLUR = 60  # a numeral's ink is blurred by at most its height / this (validation photos:
# small numerals on squares 85.0 -> 87.8 % whole of 400, the others unchanged)
TIBETAN_ZERO = 0x0F20  # ༠; the digits ༠-༩ follow it


@dataclass
class Piece:
    """One numeral found on the image: its box (in working pixels) and its ink."""

    x0: int
    y0: int
    x1: int  # exclusive
    y1: int
    ink: np.ndarray  # (y1 - y0, x1 - x0), 0..255, zero outside the numeral's own pixels


def find_pieces(ink: np.ndarray, score: Score | None = None) -> tuple[list[Piece], str | None]:
    """The numerals on the ink image, left to right, or none and the reason."""
    from scipy import ndimage

    raw, blur = ink, min(BLUR, min(ink.shape) / 80)
    ink = ndimage.gaussian_filter(ink, blur)
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        return [], "no ink found: the image looks blank"
    scaled = ink * (255.0 / peak)
    level = otsu_level(scaled, 40.0, 160.0)  # Otsu's, kept off the extremes
    mask = scaled > level
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count == 0:
        return [], "no ink found: the image looks blank"
    areas = np.bincount(labels.ravel())[1:]
    boxes = ndimage.find_objects(labels)
    edges = [k + 1 for k, box in enumerate(boxes) if box and edge_strip(box, mask.shape)]
    areas[np.array(edges, dtype=np.int64) - 1] = 0
    if not areas.any():
        return [], "no ink found: only the edge of the page or of a shadow"
    keep = np.flatnonzero(areas >= max(SPECK * areas.max(), 6)) + 1
    if len(keep) == 0:
        return [], f"only specks: {count} marks, each too small to be a numeral"
    if len(keep) > 4 * MAX_PIECES:
        return [], f"{len(keep)} separate marks: this does not look like a written number"
    parts = [(boxes[k - 1], int(k)) for k in keep]
    tallest = max(b[0].stop - b[0].start for b, _ in parts)
    lines = line_count([b for b, _ in parts if b[0].stop - b[0].start >= LINE_PART * tallest])
    if lines > 1:
        return [], (f"the writing is on {lines} lines (or in columns): numeral reads one line "
                    "of numerals; crop the image to one line")
    groups = merge_overlapping(parts)
    heights = np.array([y1 - y0 for _, _, y0, y1 in map(extent, groups)], dtype=np.float64)
    height = float(np.median(heights[heights >= 0.5 * heights.max()]))  # the line's numerals
    owner, faint = faint_ink(scaled, labels, keep, FAINT * level)
    # the numerals' own ink, blurred against grain no more than their size allows: small
    # numerals' strokes are a few pixels wide, and the full blur smeared them
    own_blur = min(blur, height / OWN_BLUR)
    numerals = scaled if own_blur == blur else np.minimum(
        ndimage.gaussian_filter(raw, own_blur) * (255.0 / peak), 255.0)
    groups = attach_fragments(join_faintly_linked(groups, faint, labels, height), height)
    pieces: list[Piece] = []
    for members in groups:
        own = np.isin(owner, [k for _, k in members])
        rows, cols = np.flatnonzero(own.any(axis=1)), np.flatnonzero(own.any(axis=0))
        ys, xs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
        # the floor taken off, so that the numeral fades to 0 at its edges as a scan does
        region = np.where(own[ys, xs], np.maximum(numerals[ys, xs] - FAINT * level, 0.0), 0.0)
        pieces += split_touching(region, xs.start, ys.start, height, score)
    if len(pieces) > MAX_PIECES:
        return [], f"{len(pieces)} numerals: this does not look like one written number"
    return (merge_broken(pieces, height, score) if score is not None else pieces), None


def merge_broken(pieces: list[Piece], height: float, score: Score) -> list[Piece]:
    """The pieces of a numeral the pen broke apart, joined: of all the ways to group the line's
    pieces into numerals, each numeral a run of at most MERGE_MOST neighbours no wider together
    than MERGE_WIDTH numerals, the one the recogniser reads most surely: the largest sum over
    the pieces of the log top probability of the numeral each is part of (a dynamic programme
    over the line, left to right). Counting each piece once, not each numeral, compares
    geometric means: two pieces join when the joined one reads surer than the pieces do on
    average (p > sqrt(p_a p_b)), so fewer numerals are not favoured for being fewer (a model
    trained with label smoothing never says more than about 0.9), and a numeral elsewhere on
    the line does not matter. A tie keeps the pieces apart."""
    n = len(pieces)
    limit = MERGE_WIDTH * ASPECT * height
    runs = [(i, j) for j in range(1, n + 1)
            for i in range(j - 1, max(0, j - MERGE_MOST) - 1, -1)  # the single piece first
            if j - i == 1 or max(p.x1 for p in pieces[i:j]) - min(p.x0 for p in pieces[i:j])
            <= limit]
    if len(runs) == n:  # nothing could be joined
        return pieces
    candidates = [pieces[i] if j - i == 1 else joined(pieces[i:j]) for i, j in runs]
    sure = np.nan_to_num(score(candidates), nan=-1e9, neginf=-1e9)  # (a broken score: apart)
    best = np.full(n + 1, -np.inf)
    best[0] = 0.0
    start = np.zeros(n + 1, dtype=np.int64)  # where the best grouping's last numeral begins
    for (i, j), s in zip(runs, sure, strict=True):  # by j, so best[i] is final when used
        if best[i] + (j - i) * s > best[j]:
            best[j], start[j] = best[i] + (j - i) * s, i
    ends = [n]
    while ends[-1] > 0:
        ends.append(int(start[ends[-1]]))
    chosen = {(i, j): c for (i, j), c in zip(runs, candidates, strict=True)}
    return [chosen[i, j] for j, i in itertools.pairwise(ends)][::-1]


def joined(parts: list[Piece]) -> Piece:
    """One piece made of several: their box, each one's ink where it lies."""
    x0, y0 = min(p.x0 for p in parts), min(p.y0 for p in parts)
    x1, y1 = max(p.x1 for p in parts), max(p.y1 for p in parts)
    ink = np.zeros((y1 - y0, x1 - x0), dtype=parts[0].ink.dtype)
    for p in parts:
        view = ink[p.y0 - y0:p.y1 - y0, p.x0 - x0:p.x1 - x0]
        np.maximum(view, p.ink, out=view)
    return Piece(x0, y0, x1, y1, ink)


def edge_strip(box: tuple[slice, slice], shape: tuple[int, ...]) -> bool:
    """Whether a mark lies along the image's border, thin across it (under EDGE_THIN of its
    length): the edge of the page, of the table under it, or of the photo's fill."""
    (top, bottom), (left, right) = ((b.start, b.stop) for b in box)
    h, w = bottom - top, right - left
    along_rows = (top == 0 or bottom == shape[0]) and h < EDGE_THIN * w
    along_cols = (left == 0 or right == shape[1]) and w < EDGE_THIN * h
    return along_rows or along_cols


def faint_ink(scaled: np.ndarray, labels: np.ndarray, keep: np.ndarray,
              floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Which numeral each pixel of ink belongs to (the label of the nearest kept component,
    0 for none), faint ink included: pixels above ``floor`` joined to a kept component
    through others (hysteresis). Also the labels of the faint ink's components."""
    from scipy import ndimage

    strong = np.isin(labels, keep)
    faint, count = ndimage.label(scaled > floor, structure=np.ones((3, 3)))
    n = int(labels.max()) + 1
    pairs = np.unique(faint[strong].astype(np.int64) * n + labels[strong])  # (faint, kept)
    holds = np.bincount(pairs // n, minlength=count + 1)  # kept components in each faint one
    single = np.zeros(count + 1, labels.dtype)
    single[pairs // n] = pairs % n  # the kept component of those that hold one
    single[holds != 1] = 0
    owner = single[faint]
    boxes = ndimage.find_objects(faint)
    for f in np.flatnonzero(holds > 1):  # shared by several: each pixel to the nearest
        box = boxes[f - 1]
        _, (iy, ix) = ndimage.distance_transform_edt(~strong[box], return_indices=True)
        owner[box] = np.where(faint[box] == f, labels[box][iy, ix], owner[box])
    return owner, faint


def join_faintly_linked(groups: list[list[Any]], faint: np.ndarray, labels: np.ndarray,
                        height: float) -> list[list[Any]]:
    """Neighbouring groups that faint ink joins, and that together are no wider than
    JOIN_WIDTH numerals, are parts of one numeral (a stroke drawn lightly)."""
    def links(group: list[Any]) -> set[int]:
        return {int(v) for box, k in group for v in np.unique(faint[box][labels[box] == k])}

    joined = groups[:1]
    for group in groups[1:]:
        (a0, a1, _, _), (b0, b1, _, _) = extent(joined[-1]), extent(group)
        if max(a1, b1) - min(a0, b0) <= JOIN_WIDTH * ASPECT * height and \
                links(joined[-1]) & links(group):
            joined[-1] = joined[-1] + group
        else:
            joined.append(group)
    return joined


def extent(group: list[Any]) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1): the box around a group's components (x1, y1 exclusive)."""
    return (min(b[1].start for b, _ in group), max(b[1].stop for b, _ in group),
            min(b[0].start for b, _ in group), max(b[0].stop for b, _ in group))


def line_count(boxes: list[tuple[slice, slice]]) -> int:
    """How many horizontal bands the boxes fall into (boxes of one band overlap vertically,
    through a chain of neighbours)."""
    bands = 0
    bottom = -1
    for top, stop in sorted((b[0].start, b[0].stop) for b in boxes):
        if top >= bottom:
            bands += 1
        bottom = max(bottom, stop)
    return bands


def merge_overlapping(parts: list[tuple[tuple[slice, slice], int]]) -> list[list[Any]]:
    """Components whose columns overlap by at least 40 % of the narrower one (or that lie
    within another's columns) belong to one numeral."""
    groups: list[list[Any]] = []
    span: tuple[int, int] | None = None
    for box, label in sorted(parts, key=lambda p: p[0][1].start):
        x0, x1 = box[1].start, box[1].stop
        if span is not None:
            overlap = min(x1, span[1]) - max(x0, span[0])
            if overlap >= 0.4 * min(x1 - x0, span[1] - span[0]):
                groups[-1].append((box, label))
                span = (min(span[0], x0), max(span[1], x1))
                continue
        groups.append([(box, label)])
        span = (x0, x1)
    return groups


def attach_fragments(groups: list[list[Any]], height: float) -> list[list[Any]]:
    """A group smaller than half a numeral both ways is a piece of one (a stroke the pen broke
    off): it joins the group nearest to it along the line."""
    spans = [extent(g) for g in groups]
    whole = [i for i, (x0, x1, y0, y1) in enumerate(spans)
             if max(x1 - x0, y1 - y0) >= 0.5 * height]
    if not whole:
        return groups
    for i, (x0, x1, _, _) in enumerate(spans):
        if i not in whole:
            nearest = min(whole, key=lambda j: max(spans[j][0] - x1, x0 - spans[j][1], 0))
            groups[nearest].extend(groups[i])
            a, b = spans[nearest], spans[i]  # the joined group's span
            spans[nearest] = (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))
    return [groups[i] for i in sorted(whole, key=lambda j: spans[j][0])]


Score = Callable[[list["Piece"]], np.ndarray]


def split_touching(region: np.ndarray, x: int, y: int, height: float,
                   score: Score | None = None) -> list[Piece]:
    """One numeral, or several that touch: a piece wider than a numeral is cut near each of
    its even cuts, where the column ink is thinnest, or (given ``score``, the recogniser's
    confidence in each piece) at whichever of several columns near there makes the surest
    pieces."""
    w = region.shape[1]
    width = ASPECT * height
    count = round(w / width) if w > 1.5 * width else 1
    if count < 2:
        return [trimmed(region, x, y)]
    columns = region.sum(axis=0)
    windows = []
    for j in range(1, count):
        target = j * w / count
        lo, hi = int(target - 0.25 * w / count), int(target + 0.25 * w / count) + 1
        thinnest = lo + int(np.argmin(columns[lo:hi]))
        windows.append(sorted({thinnest, *np.linspace(lo, hi - 1, CUT_TRIES).astype(int)}))
    cuts = [int(np.argmin([columns[c] for c in window])) for window in windows]
    chosen = [window[k] for window, k in zip(windows, cuts, strict=True)]

    def pieces(bounds: list[int]) -> list[Piece]:
        return [trimmed(region[:, a:b], x + a, y) for a, b in itertools.pairwise(bounds)
                if b - a > 1 and region[:, a:b].max() > 0]

    if score is not None:  # each cut in turn, the others held, left to right
        for j, window in enumerate(windows):
            # only the two pieces beside cut j change: score those, every option in one batch
            left, right = ([0, *chosen][j], [*chosen, w][j + 1])
            local = [pieces([left, c, right]) for c in window]
            sure = score([p for option in local for p in option])
            owner = np.repeat(np.arange(len(window)), [len(option) for option in local])
            totals = np.bincount(owner, weights=sure, minlength=len(window))
            chosen[j] = window[int(np.argmax(totals))]
    return pieces([0, *chosen, w])


def trimmed(region: np.ndarray, x: int, y: int) -> Piece:
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return Piece(x + c0, y + r0, x + c1, y + r1, region[r0:r1, c0:c1])


class NumberReader:
    """Reads the numerals on one line of an image with a recognizer's model."""

    def __init__(self, recognizer: Recognizer | Network | Ensemble,
                 probabilities: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """``probabilities`` (28x28 inputs -> class probabilities) replaces the recognizer's
        own: a server passes one that batches the numerals of concurrent requests."""
        if not isinstance(recognizer, Recognizer):
            recognizer = Recognizer(recognizer)  # a bare model: its own preprocessing
        self.recognizer = recognizer
        self.probabilities = probabilities or recognizer.probabilities
        self.params = Preprocessing(**{**recognizer.preprocessing.to_dict(), "invert": "no"})
        names = recognizer.class_names
        self.tibetan = names == [str(i) for i in range(10)]

    def sureness(self, pieces: list[Piece]) -> np.ndarray:
        """How surely the model reads each of these pieces: the log of its top probability."""
        if not pieces:
            return np.zeros(0)
        inputs = np.stack([grey_to_input(p.ink, self.params) for p in pieces])
        proba = self.probabilities(inputs)
        return np.log(np.clip(proba.max(axis=1), 1e-12, None)).astype(np.float64)

    def reading(self, source: Any, name: str = "image") -> Reading:
        """Any image (path, bytes, array, PIL image) -> the :class:`Reading` (see the module)."""
        image, name = open_source(source, name)
        width = image.width  # before a JPEG's reduced decoding changes it
        grey = decode_grey(image, name, longest=WORK_SIDE)
        return self.reading_of_grey(grey, width / grey.shape[1])

    def reading_of_grey(self, grey: np.ndarray, scale: float = 1.0) -> Reading:
        """A grey image (h, w), 0..255 -> the reading; boxes and size multiplied by ``scale``."""
        if grey.size == 0:
            raise DataError("the image is empty (0 pixels)")
        ink, _ = lift_ink(grey)
        ink = remove_lines(ink)
        pieces, reason = find_pieces(ink, self.sureness)
        size = (round(grey.shape[1] * scale), round(grey.shape[0] * scale))
        if not pieces:
            return Reading("", [], 0.0, reason, size, "" if self.tibetan else None)
        inputs = np.stack([grey_to_input(p.ink, self.params) for p in pieces])
        proba = self.probabilities(inputs).astype(float)
        names = self.recognizer.class_names
        digits = []
        for piece, p in zip(pieces, proba, strict=True):
            best = Recognition.of(p, names).top3
            box = (round(piece.x0 * scale), round(piece.y0 * scale),
                   round(piece.x1 * scale), round(piece.y1 * scale))
            digits.append(Digit(best[0].class_name, best[0].label, best[0].probability, box,
                                best))
        tibetan = "".join(chr(TIBETAN_ZERO + d.label) for d in digits) if self.tibetan else None
        return Reading("".join(d.class_name for d in digits), digits,
                       float(np.prod([d.probability for d in digits])), None, size, tibetan)

    def read(self, source: Any, name: str = "image") -> dict[str, Any]:
        """:meth:`reading` as the JSON the API serves."""
        return self.reading(source, name).to_dict()

    def read_grey(self, grey: np.ndarray, scale: float = 1.0) -> dict[str, Any]:
        """:meth:`reading_of_grey` as the JSON the API serves."""
        return self.reading_of_grey(grey, scale).to_dict()


def read_number(image: Any, model: Model | NumberReader = None, *,
                name: str = "image") -> Reading:
    """The numerals on one line of ``image`` (a path, bytes, a PIL image or an array), read by
    ``model`` (the shipped ``tibetan`` unless given; a name, file, network, recognizer or
    reader). ``numeral.read(image)`` is this function."""
    reader = model if isinstance(model, NumberReader) else NumberReader(recognizer_for(model))
    return reader.reading(image, name)


class _CallableModule(types.ModuleType):
    """``numeral.read`` is this module and the function that reads a number: calling the
    module calls :func:`read_number`, so ``numeral.read(image)`` works whether or not the
    module was imported first (importing it makes it the package's ``read`` attribute)."""

    def __call__(self, image: Any, model: Model | NumberReader = None, *,
                 name: str = "image") -> Reading:
        return read_number(image, model, name=name)


sys.modules[__name__].__class__ = _CallableModule
