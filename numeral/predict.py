"""Recognise new images with a trained model, using exactly its training preprocessing.

    numeral.recognize("my_numeral.png")            # the shipped model; a Recognition
    r = Recognizer.from_file("runs/best/model.npz")
    r.recognition("my_numeral.png").class_name     # "3"
    r.recognize_file("my_numeral.png")  # as JSON: {"label": 3, "class": "3", "top3": [...], ...}

The model file stores the preprocessing parameters its training data went
through (:class:`numeral.data.Preprocessing`), so a photo of a numeral written
dark on light paper, at any size, is framed, inverted and resized the same way.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from numeral.data import Preprocessing, preprocess_image, vectorize
from numeral.data.preprocess import blank_reason, grey_to_input, load_grey, paper_level
from numeral.data.sources import IMAGE_SUFFIXES
from numeral.errors import DataError
from numeral.models import resolve_model
from numeral.nn import Ensemble, Network, load_model
from numeral.nn.calibration import temperature_of, tempered
from numeral.results import Recognition

BLANK_RANGE = 16  # grey levels: a 28x28 input whose values span less holds no numeral


class Recognizer:
    """A model together with the preprocessing its inputs need."""

    def __init__(self, model: Network | Ensemble) -> None:
        self.model = model
        self.meta: dict[str, Any] = model.members[0].meta
        self.class_names: list[str] = list(
            self.meta.get("class_names") or [str(i) for i in range(model.n_classes)]
        )
        known = Preprocessing.__dataclass_fields__
        stored = {k: v for k, v in (self.meta.get("preprocessing") or {}).items() if k in known}
        self.preprocessing = Preprocessing.from_dict(stored)
        # how sure the model is, calibrated: fitted on validation data when it was trained
        # (numeral.nn.calibration), or 1.0 for a model file that records none
        self.temperature = temperature_of(self.meta)

    @classmethod
    def from_file(cls, path: str | Path = "tibetan") -> Recognizer:
        """A model file, or the name of a model that ships with numeral (numeral.models)."""
        return cls(load_model(resolve_model(path)))

    def image_to_input(self, source: Any, name: str = "image") -> np.ndarray:
        """Any image (path, bytes, array) -> the (28, 28) uint8 image the network sees."""
        return preprocess_image(source, self.preprocessing, name=name)

    def prepare(self, source: Any, name: str = "image") -> tuple[np.ndarray, str | None]:
        """Any image (path, bytes, PIL image, array) -> the (28, 28) uint8 input the network
        sees, and why the image holds no numeral (None when it has ink)."""
        grey = load_grey(source, self.preprocessing, name, dtype=np.uint8)
        paper = paper_level(grey)
        return grey_to_input(grey, self.preprocessing, paper), blank_reason(grey, paper)

    def recognition(self, source: Any, name: str = "image") -> Recognition:
        """Any image (path, bytes, PIL image, array) -> what it shows (:class:`Recognition`):
        for an image with no ink, no class and the ``reason``."""
        image28, reason = self.prepare(source, name)
        return Recognition.nothing(reason) if reason else self.recognition_of_image(image28)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """The model's class probabilities (n, classes) for 28x28 inputs (n, 28, 28), at its
        calibrated temperature."""
        return tempered(self.model.predict_proba(vectorize(inputs)), self.temperature)

    def recognition_of_image(self, image28: np.ndarray,
                             proba: np.ndarray | None = None) -> Recognition:
        """The :class:`Recognition` of one 28x28 input (white numeral on black), from the
        model's ``proba`` for it when given (a server computes many in one batch); an
        input whose values span under BLANK_RANGE holds no numeral."""
        if is_blank(image28):
            return Recognition.nothing("no numeral found: the image is blank")
        if proba is None:
            proba = self.probabilities(image28[None])[0]
        return Recognition.of(proba.astype(float), self.class_names)

    def recognize(self, source: Any, name: str = "image") -> dict[str, Any]:
        """:meth:`recognition` as the JSON the API serves."""
        return self.recognition(source, name).to_dict()

    def recognize_image(self, image28: np.ndarray) -> dict[str, Any]:
        """:meth:`recognition_of_image` as the JSON the API serves."""
        return self.recognition_of_image(image28).to_dict()

    def recognize_file(self, path: str | Path) -> dict[str, Any]:
        return {"image": str(path), **self.recognize(Path(path))}


def is_blank(image28: np.ndarray) -> bool:
    """Whether a 28x28 input holds no numeral: its values span under BLANK_RANGE."""
    return int(np.ptp(image28)) < BLANK_RANGE


def nothing_found(reason: str) -> dict[str, Any]:
    """The answer for an image that holds no numeral: no label, and why."""
    return Recognition.nothing(reason).to_dict()


def image_paths(paths: list[Path]) -> list[Path]:
    """The images to recognise: each path, a folder standing for the images directly in it
    (sorted); a folder with none is an error naming it."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not inside:
                raise DataError(f"{path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            found += inside
        else:
            found.append(path)
    return found


Model = str | Path | Network | Ensemble | Recognizer | None


def recognizer_for(model: Model = None) -> Recognizer:
    """A :class:`Recognizer` for ``model``: None for the shipped ``tibetan``, the name of a
    shipped model or a model file (each loaded once while it is unchanged), a network or
    ensemble, or a recognizer as it is."""
    if isinstance(model, Recognizer):
        return model
    if isinstance(model, Network | Ensemble):
        return Recognizer(model)
    path = resolve_model("tibetan" if model is None else model)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = 0  # load_model says what is wrong with the path
    return _loaded(str(path), stamp)


@functools.lru_cache(maxsize=4)
def _loaded(path: str, stamp: int) -> Recognizer:
    return Recognizer(load_model(path))


def recognize(image: Any, model: Model = None, *, name: str = "image") -> Recognition:
    """The numeral in ``image`` (a path, bytes, a PIL image or an array), recognised by
    ``model`` (the shipped ``tibetan`` unless given: see :func:`recognizer_for`)."""
    return recognizer_for(model).recognition(image, name)
