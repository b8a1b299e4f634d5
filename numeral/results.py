"""What numeral answers: small typed results, the same in Python, on the command line and in the
JSON API (``to_dict()`` is exactly what ``numeral predict --json``, ``numeral read --json``,
``/api/predict`` and ``/api/read`` give).

    r = numeral.recognize("seven.png")     # Recognition: one numeral
    r.class_name, r.probability, r.top3    # "7", 0.998, [Candidate("7", 7, 0.998), ...]

    n = numeral.read("photo.jpg")           # Reading: the numerals on one line, left to right
    n.text, n.tibetan, n.confidence        # "2026", "༢༠༢༦", 0.97
    [d.box for d in n.digits]              # each numeral's box (x0, y0, x1, y1) in the image

A leaf module: it imports nothing from numeral, so every layer may use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


def _rounded(p: float) -> float:
    return round(float(p), 6)


@dataclass(frozen=True)
class Candidate:
    """One class the model considers: its name, index and probability."""

    class_name: str
    label: int
    probability: float

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.class_name, "label": self.label,
                "probability": _rounded(self.probability)}


@dataclass(frozen=True)
class Recognition:
    """One numeral recognised: the most probable class (None when the image holds no numeral,
    then ``reason`` says why), the top 3 and every class's probability."""

    class_name: str | None
    label: int | None
    probability: float
    top3: list[Candidate] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    reason: str | None = None

    @classmethod
    def of(cls, proba: Any, class_names: list[str]) -> Recognition:
        """From the model's probabilities for one image."""
        order = sorted(range(len(proba)), key=lambda i: -float(proba[i]))
        top3 = [Candidate(class_names[i], i, float(proba[i])) for i in order[:3]]
        return cls(top3[0].class_name, top3[0].label, top3[0].probability, top3,
                   [float(p) for p in proba])

    @classmethod
    def nothing(cls, reason: str) -> Recognition:
        """The answer for an image that holds no numeral: no class, and why."""
        return cls(None, None, 0.0, reason=reason)

    @property
    def confidence(self) -> float:
        """How sure the model is: the top class's probability (0 when nothing was found)."""
        return self.probability

    def to_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "label": self.label, "class": self.class_name,
            "probabilities": [_rounded(p) for p in self.probabilities],
            "top3": [c.to_dict() for c in self.top3]}
        if self.reason is not None:
            answer["reason"] = self.reason
        return answer


@dataclass(frozen=True)
class Digit:
    """One numeral of a reading: its class, box in the image (x0, y0, x1, y1; x1 and y1
    exclusive), probability and top 3."""

    class_name: str
    label: int
    probability: float
    box: tuple[int, int, int, int]
    top3: list[Candidate]

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.class_name, "label": self.label,
                "probability": _rounded(self.probability), "box": list(self.box),
                "top3": [c.to_dict() for c in self.top3]}


@dataclass(frozen=True)
class Reading:
    """The numerals on one line of an image, left to right: the text (class names joined), the
    same in Tibetan script when the classes are the digits 0-9 (else None), each numeral, and
    the confidence that every numeral is right (the product of their probabilities). Nothing
    read: ``text`` is empty and ``reason`` says why. ``size`` is the image's (width, height)
    as read."""

    text: str
    digits: list[Digit]
    confidence: float
    reason: str | None
    size: tuple[int, int]
    tibetan: str | None = None

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "text": self.text, "digits": [d.to_dict() for d in self.digits],
            "confidence": _rounded(self.confidence), "reason": self.reason,
            "size": list(self.size)}
        if self.tibetan is not None:
            answer["tibetan"] = self.tibetan
        return answer


def with_check(answer: dict[str, Any], min_confidence: float | None) -> dict[str, Any]:
    """``answer`` (a reading's or a recognition's JSON) with ``"check"``: true when a person
    should look at the image, because nothing was read or the answer is less sure than
    ``min_confidence`` (a reading's ``confidence``, a numeral's top probability). Unchanged when
    ``min_confidence`` is None, or for an error."""
    if min_confidence is None or "error" in answer:
        return answer
    if "confidence" in answer:  # a whole number
        read, sure = bool(answer.get("text")), float(answer["confidence"])
    else:  # one numeral
        read = bool(answer.get("top3")) and answer.get("label") is not None
        sure = float(answer["top3"][0]["probability"]) if read else 0.0
    return {**answer, "check": not read or sure < min_confidence}


def probability(text: str, example: str = "0.9") -> float:
    """A minimum confidence given as text (``--min-confidence``, ``?min_confidence=``): a
    number from 0 to 1, else ValueError saying so (and showing ``example``)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{text!r} is not a probability: give a number from 0 to 1, such as "
                         f"{example}")
    return value
