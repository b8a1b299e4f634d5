"""Recognise new images with a trained model, using exactly its training preprocessing.

    r = Recognizer.from_file("runs/best/model.npz")
    r.recognize_file("my_numeral.png")  # {"label": 3, "class": "3", "top3": [...], ...}

The model file stores the preprocessing parameters its training data went
through (:class:`numeral.data.Preprocessing`), so a photo of a numeral written
dark on light paper, at any size, is framed, inverted and resized the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from numeral.data import Preprocessing, preprocess_image, vectorize
from numeral.data.preprocess import blank_reason, grey_to_input, load_grey
from numeral.nn import Ensemble, Network, load_model

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

    @classmethod
    def from_file(cls, path: str | Path = "tibetan") -> Recognizer:
        """A model file, or the name of a model that ships with numeral (numeral.models)."""
        from numeral.models import resolve_model

        return cls(load_model(resolve_model(path)))

    def image_to_input(self, source: Any, name: str = "image") -> np.ndarray:
        """Any image (path, bytes, array) -> the (28, 28) uint8 image the network sees."""
        return preprocess_image(source, self.preprocessing, name=name)

    def prepare(self, source: Any, name: str = "image") -> tuple[np.ndarray, str | None]:
        """Any image (path, bytes, PIL image, array) -> the (28, 28) uint8 input the network
        sees, and why the image holds no numeral (None when it has ink)."""
        grey = load_grey(source, self.preprocessing, name)
        return grey_to_input(grey, self.preprocessing), blank_reason(grey)

    def recognize(self, source: Any, name: str = "image") -> dict[str, Any]:
        """Any image (path, bytes, PIL image, array) -> :meth:`recognize_image`'s answer, or,
        for an image with no ink, ``label`` and ``class`` None and the ``reason``."""
        image28, reason = self.prepare(source, name)
        return nothing_found(reason) if reason else self.recognize_image(image28)

    def recognize_image(self, image28: np.ndarray) -> dict[str, Any]:
        """Label, class name, all probabilities and the top 3 for one 28x28 image (white
        numeral on black); an image whose values span under BLANK_RANGE holds no numeral."""
        if int(np.ptp(image28)) < BLANK_RANGE:
            return nothing_found("no numeral found: the image is blank")
        proba = self.model.predict_proba(vectorize(image28[None]))[0].astype(float)
        order = np.argsort(proba)[::-1]
        return {
            "label": int(order[0]),
            "class": self.class_names[int(order[0])],
            "probabilities": [round(float(p), 6) for p in proba],
            "top3": [
                {"label": int(i), "class": self.class_names[int(i)],
                 "probability": round(float(proba[i]), 6)}
                for i in order[:3]
            ],
        }

    def recognize_file(self, path: str | Path) -> dict[str, Any]:
        return {"image": str(path), **self.recognize(Path(path))}


def nothing_found(reason: str) -> dict[str, Any]:
    """The answer for an image that holds no numeral: no label, and why."""
    return {"label": None, "class": None, "probabilities": [], "top3": [], "reason": reason}
