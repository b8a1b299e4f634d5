"""A scikit-learn-style estimator over the NumPy network, for notebooks.

    clf = numeral.Classifier(hidden=(320, 160), activation="sigmoid", epochs=10)
    clf.fit(X_train, y_train, X_val, y_val)
    clf.score(X_test, y_test); clf.predict_proba(X_test); clf.history_
    clf.save("model.npz")

Every keyword is a key of :class:`numeral.train.config.Config` and is validated
the same way as a TOML config.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numeral.data.splits import stratified_split
from numeral.errors import InputError
from numeral.nn import Ensemble, Network
from numeral.train.config import from_dict
from numeral.train.loop import Split, Trainer


class Classifier:
    """Fully connected network classifier trained by hand-written back-propagation."""

    def __init__(self, hidden: tuple[int, ...] | list[int] = (512, 256), *,
                 verbose: bool = False, **settings: Any) -> None:
        if settings.get("early_stopping") and not settings.get("val_fraction"):
            settings["val_fraction"] = 0.1  # used when fit() is given no validation data
        self.config = from_dict({"hidden": list(hidden), **settings}, origin="Classifier")
        self.verbose = verbose
        self.model_: Network | Ensemble | None = None
        self.history_: list[dict[str, float]] = []

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.config.to_dict().items() if k not in ("study",)}

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> Classifier:
        """Train on (X, y). Validation data (X_val, y_val), or else ``val_fraction`` of (X, y),
        is tracked in ``history_`` and drives ``early_stopping`` when that is set."""
        probe = Network([np.shape(X)[1] if np.ndim(X) == 2 else 1, 2], dtype=self.config.dtype)
        X_arr, _ = probe.check_inputs(X)
        y_arr = np.asarray(y)
        if y_arr.ndim != 1 or len(y_arr) != len(X_arr):
            raise InputError(f"y has shape {y_arr.shape}; expected ({len(X_arr)},)")
        if not np.issubdtype(y_arr.dtype, np.integer) or (len(y_arr) and y_arr.min() < 0):
            raise InputError("y must hold integer class labels 0..k-1")
        k = max(int(y_arr.max()) + 1, 2)
        X_arr, y_arr = X_arr.astype(np.float32), y_arr.astype(np.int64)
        val = None
        if X_val is not None:
            X_v, _ = probe.check_inputs(X_val)
            val = Split(X_v.astype(np.float32), np.asarray(y_val, np.int64))
        elif self.config.val_fraction:  # carve the validation split from the training data
            fit_idx, val_idx = stratified_split(y_arr, self.config.val_fraction, self.config.seed)
            val = Split(X_arr[val_idx], y_arr[val_idx])
            X_arr, y_arr = X_arr[fit_idx], y_arr[fit_idx]
        trainer = Trainer(self.config, Split(X_arr, y_arr), val=val, n_classes=k,
                          progress=self.verbose, log=print if self.verbose else None)
        result = trainer.run()
        self.model_, self.history_ = result.model, result.history
        return self

    def _fitted(self) -> Network | Ensemble:
        if self.model_ is None:
            raise InputError("this Classifier is not fitted yet; call fit(X, y) first")
        return self.model_

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n, classes) class probabilities."""
        return self._fitted().predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row of X."""
        return np.argmax(self.predict_proba(X), axis=1)

    def score(self, X: Any, y: Any) -> float:
        """Accuracy: the fraction of rows of X whose predicted class is y."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def save(self, path: str) -> None:
        self._fitted().save(path)

    def __repr__(self) -> str:
        c = self.config
        return (f"Classifier(hidden={tuple(c.hidden)}, activation={c.activation!r}, "
                f"optimizer={c.optimizer!r}, epochs={c.epochs})")
