"""A committee of networks: p(x) = (1/M) sum_m p_m(x)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from numeral.nn.errors import InputError
from numeral.nn.files import save_model
from numeral.nn.inputs import Features, Signature
from numeral.nn.network import Network


class Ensemble:
    """Averages the class probabilities of several networks with the same input and classes."""

    def __init__(self, members: Sequence[Network]) -> None:
        if not members:
            raise InputError("an ensemble needs at least one network")
        first = members[0]
        for net in members[1:]:
            if net.input_size != first.input_size or net.n_classes != first.n_classes:
                raise InputError("ensemble members must share input width and number of classes")
        self.members = list(members)
        self.meta: dict[str, Any] = {}

    @property
    def sizes(self) -> list[int]:
        return self.members[0].sizes

    @property
    def n_classes(self) -> int:
        return self.members[0].n_classes

    def predict_proba(self, X: Any) -> np.ndarray:
        """Mean of the members' class probabilities. Members whose inputs read X alike (the
        same ``net.inputs.signature``) share one ``net.inputs.prepare(X)``."""
        features: dict[Signature, Features] = {}
        for net in self.members:
            if net.inputs.signature not in features:
                features[net.inputs.signature] = net.inputs.prepare(X)
        first, *others = self.members
        total = first.predict_proba(features[first.inputs.signature])
        for net in others:
            total += net.predict_proba(features[net.inputs.signature])
        total /= len(self.members)
        return total

    def predict(self, X: Any) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)

    def save(self, path: str) -> None:
        save_model(self, path)

    def __repr__(self) -> str:
        """Each member as it is: ``Ensemble(2 x Network(...))`` when they are alike (the same
        layers and inputs; their weights differ), else every member in turn."""
        described = [repr(net) for net in self.members]
        if len(set(described)) == 1:
            return f"Ensemble({len(described)} x {described[0]})"
        return f"Ensemble({'; '.join(described)})"
