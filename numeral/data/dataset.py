"""The in-memory dataset every source produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

IMAGE_SIZE = 28


@dataclass
class Dataset:
    """Preprocessed images with labels.

    images  (n, 28, 28) uint8, white numeral on black
    y       (n,) int64 class labels 0..k-1
    groups  (n,) int64 writer proxy (TibetanMNIST sheet), -1 where unknown
    names   (n,) where each sample came from (file name or "file[index]")
    """

    images: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    names: np.ndarray
    source: str = ""
    class_names: list[str] = field(default_factory=lambda: [str(i) for i in range(10)])
    notes: list[str] = field(default_factory=list)  # what the loader did (skipped files, ...)
    preprocessing: dict[str, Any] = field(default_factory=dict)  # how a new image must be framed

    def __post_init__(self) -> None:
        n = len(self.images)
        for key in ("y", "groups", "names"):
            if len(getattr(self, key)) != n:
                raise ValueError(f"{key} has {len(getattr(self, key))} entries for {n} images")

    @cached_property
    def X(self) -> np.ndarray:
        """(n, 784) float32 in [0, 1]: each 28x28 image scaled by 1/255 and flattened row-major."""
        return vectorize(self.images)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: np.ndarray) -> Dataset:
        """The samples at ``index`` (a new Dataset sharing nothing mutable)."""
        return Dataset(
            self.images[index],
            self.y[index],
            self.groups[index],
            self.names[index],
            self.source,
            list(self.class_names),
            list(self.notes),
            dict(self.preprocessing),
        )

    def class_counts(self) -> dict[int, int]:
        labels, counts = np.unique(self.y, return_counts=True)
        return {int(k): int(v) for k, v in zip(labels, counts, strict=True)}


def vectorize(images: np.ndarray) -> np.ndarray:
    """2-D images (n, h, w) uint8 -> 1-D input vectors (n, h*w) float32 in [0, 1]."""
    images = np.asarray(images)
    out = images.reshape(len(images), -1).astype(np.float32)
    out *= np.float32(1.0 / 255.0)
    return out
