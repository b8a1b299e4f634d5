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
from numeral.nn.network import check_inputs
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
        """Every setting, as scikit-learn's estimators report theirs."""
        return {k: v for k, v in self.config.to_dict().items() if k != "study"}

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> Classifier:
        """Train on (X, y). Validation data (X_val, y_val), or else ``val_fraction`` of (X, y),
        is tracked in ``history_`` and drives ``early_stopping`` when that is set."""
        X_arr, y_arr = check_inputs(X, y)  # float32 rows, int64 labels >= 0
        if y_arr is None or not len(y_arr):
            raise InputError("fit(X, y) needs at least one labelled sample")
        k = max(int(y_arr.max()) + 1, 2)
        val = None
        if X_val is not None:
            X_v, y_v = check_inputs(X_val, y_val, n_features=X_arr.shape[1], n_classes=k)
            assert y_v is not None
            val = Split(X_v, y_v)
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
