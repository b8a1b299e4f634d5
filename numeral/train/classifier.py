"""A scikit-learn estimator over the NumPy network: clone, GridSearchCV and Pipeline use it.

    clf = numeral.Classifier(hidden=(320, 160), activation="sigmoid", epochs=10)
    clf.fit(X_train, y_train, X_val, y_val)
    clf.score(X_test, y_test); clf.predict_proba(X_test); clf.classes_; clf.history_
    clf.save("model.npz")

It follows scikit-learn's estimator contract without depending on scikit-learn: every
setting is an explicit keyword argument of ``__init__``, stored unchanged, and checked in
``fit`` (each one is a key of :class:`numeral.train.config.Config`, validated as a TOML
config is); ``get_params`` / ``set_params``; any label values (numbers or strings), mapped
to the network's class indices and back, with ``predict_proba``'s columns in ``classes_``
order; ``partial_fit`` trains one more epoch. The tests run scikit-learn's own estimator
checks on it.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np

from numeral.data.splits import stratified_split
from numeral.errors import InputError, NumeralError
from numeral.nn import Ensemble, Network, Optimizer
from numeral.nn.checks import check_inputs
from numeral.train.config import Config, from_dict
from numeral.train.loop import Split, Trainer, quiet_overflow


class DataConversionWarning(UserWarning):
    """y came in a shape that was converted (a column vector ravelled)."""


class NotFittedError(NumeralError, ValueError, AttributeError):
    """The estimator is used before ``fit`` (scikit-learn's checks accept either base)."""


class Classifier:
    """A fully connected network classifier trained by hand-written back-propagation.

    The keyword arguments are the keys of :class:`numeral.train.config.Config` that describe
    the network and its training (see the presets for worked examples), plus ``verbose``
    (progress bars and one line per epoch). ``early_stopping`` without ``val_fraction`` or
    validation data holds out 10 % of the training data.
    """

    # what partial_fit continues: the network, its optimiser and the epochs done
    _partial: tuple[Network, Optimizer, int] | None = None

    def __init__(
        self,
        hidden: tuple[int, ...] | list[int] = (512, 256),
        *,
        activation: str | tuple[str, ...] | list[str] = "relu",
        init: str = "he",
        dropout: float = 0.0,
        layers: tuple[str, ...] | list[str] = (),
        input_shape: tuple[int, ...] | list[int] = (),
        dtype: str = "float32",
        standardize: bool = False,
        input_transform: str | tuple[str, ...] | list[str] = "none",
        input_gamma: float = 1.0,
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        schedule: str = "constant",
        warmup: float = 0.0,
        step_epochs: int = 10,
        gamma: float = 0.5,
        batch_size: int = 128,
        epochs: int = 20,
        shuffle: bool = True,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        l1: float = 0.0,
        l2: float = 0.0,
        val_fraction: float = 0.0,
        early_stopping: int = 0,
        augment: bool = False,
        augment_shift: float = 2.0,
        augment_rotate: float = 10.0,
        augment_scale: float = 0.1,
        augment_shear: float = 0.1,
        augment_elastic: float = 0.0,
        augment_stroke: float = 0.0,
        augment_ink: float = 0.0,
        augment_break: float = 0.0,
        augment_until: float = 1.0,
        ensemble: int = 1,
        members: tuple[dict[str, Any], ...] | list[dict[str, Any]] = (),
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.init = init
        self.dropout = dropout
        self.layers = layers
        self.input_shape = input_shape
        self.dtype = dtype
        self.standardize = standardize
        self.input_transform = input_transform
        self.input_gamma = input_gamma
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.warmup = warmup
        self.step_epochs = step_epochs
        self.gamma = gamma
        self.batch_size = batch_size
        self.epochs = epochs
        self.shuffle = shuffle
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self.l1 = l1
        self.l2 = l2
        self.val_fraction = val_fraction
        self.early_stopping = early_stopping
        self.augment = augment
        self.augment_shift = augment_shift
        self.augment_rotate = augment_rotate
        self.augment_scale = augment_scale
        self.augment_shear = augment_shear
        self.augment_elastic = augment_elastic
        self.augment_stroke = augment_stroke
        self.augment_ink = augment_ink
        self.augment_break = augment_break
        self.augment_until = augment_until
        self.ensemble = ensemble
        self.members = members
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Every setting, by name (``deep`` is accepted for scikit-learn: nothing is nested)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Classifier:
        """Change settings by name; they are checked when ``fit`` runs."""
        names = self._param_names()
        for key, value in params.items():
            if key not in names:
                raise InputError(f"invalid parameter {key!r} for Classifier; valid parameters "
                                 f"are: {', '.join(names)}")
            setattr(self, key, value)
        return self

    def config(self) -> Config:
        """The training config these settings describe (raises ConfigError when one is
        impossible)."""
        settings = {k: getattr(self, k) for k in self._param_names() if k != "verbose"}
        for key, value in settings.items():
            if isinstance(value, np.generic):  # e.g. np.int64 from a parameter grid
                settings[key] = value.item()
            elif isinstance(value, tuple | list):
                settings[key] = [v.item() if isinstance(v, np.generic) else v for v in value]
        if settings["early_stopping"] and not settings["val_fraction"]:
            settings["val_fraction"] = 0.1  # used when fit() gets no validation data
        return from_dict(settings, origin="Classifier")

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not _same(v, defaults[k].default)]
        return f"Classifier({', '.join(changed)})"

    # ------------------------------------------------------------- checking
    def _check_X(self, X: Any, dtype: Any, width: int | None = None) -> np.ndarray:
        """X as rows of ``dtype`` (and ``width`` columns, when given), with the messages
        scikit-learn's conventions ask for when it is not."""
        if type(X).__module__.startswith("scipy.sparse") or hasattr(X, "toarray"):
            raise InputError("X is a sparse matrix; numeral.Classifier needs dense input: pass "
                             "X.toarray()")
        X = np.asarray(X)
        if np.iscomplexobj(X):
            raise InputError(f"Complex data not supported: X has dtype {X.dtype}; pass real "
                             "numbers")
        if X.dtype == object:
            try:
                X = X.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"X holds values that are not numbers: {exc}") from None
        if width is not None and X.ndim == 2 and X.shape[1] != width:
            raise InputError(f"X has {X.shape[1]} features, but Classifier is expecting "
                             f"{width} features as input")
        X_arr, _ = check_inputs(X, dtype=dtype)
        if not len(X_arr):
            raise InputError(f"Found array with 0 sample(s) (shape={X_arr.shape}) while a "
                             "minimum of 1 is required")
        return X_arr

    def _encode(self, y: Any, *, fitting: bool) -> np.ndarray:
        """Labels -> indices into ``classes_`` (set here when fitting)."""
        if y is None:
            raise InputError("Classifier requires y to be passed, but the target y is None")
        y_arr = np.asarray(y)
        if y_arr.ndim == 2 and y_arr.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; "
                          "ravelled to shape (n,)", DataConversionWarning, stacklevel=3)
            y_arr = y_arr.ravel()
        if y_arr.ndim != 1:
            raise InputError(f"y has shape {y_arr.shape}; y should be a 1d array of labels")
        if np.issubdtype(y_arr.dtype, np.number):
            if not np.isfinite(y_arr.astype(np.float64)).all():
                raise InputError("Input y contains NaN or infinity; every sample needs a label")
            if np.issubdtype(y_arr.dtype, np.inexact) and not np.all(y_arr == np.round(y_arr)):
                raise InputError("Unknown label type: continuous (y holds fractions); a "
                                 "classifier needs class labels")
        if fitting:
            try:
                classes = np.unique(y_arr)
            except TypeError:
                raise InputError("Unknown label type: y mixes labels of different types "
                                 "(numbers and strings); use one type") from None
            if len(classes) < 2:
                raise InputError(f"y has only one class ({classes.tolist()[0]!r}); a "
                                 "classifier needs at least two")
            self.classes_ = classes
        index = np.searchsorted(self.classes_, y_arr)
        unknown = (index >= len(self.classes_)) | (
            self.classes_[np.minimum(index, len(self.classes_) - 1)] != y_arr)
        if unknown.any():
            raise InputError(f"label {y_arr[unknown].tolist()[0]!r} is not among the classes "
                             f"seen in fit: {self.classes_.tolist()}")
        return index.astype(np.int64)

    # --------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> Classifier:
        """Train on (X, y) from scratch. Validation data (X_val, y_val), or else
        ``val_fraction`` of (X, y), is tracked in ``history_`` and drives ``early_stopping``
        when that is set."""
        config = self.config()
        X_arr = self._check_X(X, config.dtype)
        y_idx = self._encode(y, fitting=True)
        if len(y_idx) != len(X_arr):
            raise InputError(f"X has {len(X_arr)} rows but y has {len(y_idx)} labels")
        self.n_features_in_ = X_arr.shape[1]
        train = Split(X_arr, y_idx)
        val = None
        if X_val is not None:
            val = Split(self._check_X(X_val, config.dtype, X_arr.shape[1]),
                        self._encode(y_val, fitting=False))
        elif config.val_fraction:  # carve the validation split from the training data
            fit_idx, val_idx = stratified_split(y_idx, config.val_fraction, config.seed)
            train, val = Split(X_arr[fit_idx], y_idx[fit_idx]), Split(X_arr[val_idx],
                                                                     y_idx[val_idx])
        result = self._trainer(config, train, val).run()
        self.model_, self.history_ = result.model, result.history
        self.model_.meta["class_names"] = [str(c) for c in self.classes_]
        self._partial = None  # partial_fit starts over from the fitted model
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> Classifier:
        """One more epoch of mini-batches over (X, y), continuing the network and the
        optimiser's state. The first call (on an unfitted estimator) needs ``classes``, all
        the labels that will ever be seen; the learning-rate schedule counts each call as
        one of ``epochs`` epochs. After ``fit``, it continues the fitted network (the first
        of an ensemble) with a fresh optimiser."""
        config = self.config()
        first = not hasattr(self, "model_")
        if first:
            if classes is None:
                raise InputError("the first call of partial_fit needs classes=, every label "
                                 "that will be seen")
            self._encode(np.asarray(classes), fitting=True)
        X_arr = self._check_X(X, config.dtype, None if first else self.n_features_in_)
        y_idx = self._encode(y, fitting=False)
        trainer = self._trainer(config, Split(X_arr, y_idx), None)
        if first or self._partial is None:
            net = trainer.new_network(0) if first else self.model_.members[0]
            self.n_features_in_ = X_arr.shape[1]
            self._partial = (net, trainer.new_optimizer(net), 0)
            self.history_ = []
        net, opt, epoch = self._partial
        with quiet_overflow():
            trainer.run_epoch(net, opt, 0, min(epoch + 1, config.epochs))
        self._partial = (net, opt, epoch + 1)
        self.model_, self.history_ = net, self.history_ + trainer.history
        net.meta["class_names"] = [str(c) for c in self.classes_]
        return self

    def _trainer(self, config: Config, train: Split, val: Split | None) -> Trainer:
        return Trainer(config, train, val=val, n_classes=len(self.classes_),
                       progress=bool(self.verbose), log=print if self.verbose else None)

    # ------------------------------------------------------------ predicting
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def _fitted(self) -> Network | Ensemble:
        if not hasattr(self, "model_"):
            raise NotFittedError("this Classifier is not fitted yet; call fit(X, y) first")
        return self.model_

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n, classes) class probabilities, columns in ``classes_`` order."""
        model = self._fitted()
        X_arr = self._check_X(X, model.members[0].dtype, self.n_features_in_)
        return model.predict_proba(X_arr)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each row of X (values from ``classes_``)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy: the fraction of rows of X whose predicted label is y."""
        return float(np.mean(self.predict(X) == np.asarray(y).ravel()))

    def save(self, path: str) -> None:
        """Write the fitted model (with the class names) to ``path``; numeral.load_model,
        `numeral predict` and `numeral serve` read it."""
        self._fitted().save(path)

    def __sklearn_tags__(self) -> Any:
        """What scikit-learn's tools and checks need to know (scikit-learn >= 1.6)."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(), input_tags=InputTags())


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):  # arrays compare element-wise
        return False


__all__ = ["Classifier", "DataConversionWarning", "NotFittedError"]
