"""numeral.Classifier as scikit-learn's own checks, clone, GridSearchCV and Pipeline see it."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import numeral
from numeral.data import Dataset
from numeral.errors import ConfigError, InputError
from numeral.train.classifier import Classifier, NotFittedError
from numeral.train.config import Config

# scikit-learn warns that Classifier does not inherit its BaseEstimator: on purpose, numeral
# does not depend on scikit-learn; these tests are what shows the contract holds.
pytestmark = pytest.mark.filterwarnings("ignore:Estimator Classifier does not inherit")

ESTIMATORS = [
    Classifier(),  # the defaults
    Classifier(hidden=(24,), lr=0.01, epochs=30, dtype="float64", ensemble=2, dropout=0.1),
]


def expected_failures(estimator: Classifier) -> dict[str, str]:
    failures = {
        "check_estimators_unfitted": (
            "numeral does not depend on scikit-learn, so it raises its own NotFittedError "
            "(a ValueError and an AttributeError, as scikit-learn's is) rather than an "
            "instance of sklearn.exceptions.NotFittedError"),
    }
    if estimator.dtype == "float32":
        failures["check_methods_sample_order_invariance"] = (
            "float32 arithmetic: the matrix-product kernel sums a row's products in an order "
            "that depends on where the row falls in its tile, so probabilities differ by about "
            "1e-7 relative with the rows' order, and the check asks rtol=1e-7 (float64 passes)")
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_scikit_learn_estimator_checks(estimator: Classifier, check: Any) -> None:
    check(estimator)


def test_the_keyword_arguments_are_the_config_keys_with_the_same_defaults() -> None:
    params = inspect.signature(Classifier.__init__).parameters
    config = Config()
    for name, param in params.items():
        if name in ("self", "verbose"):
            continue
        default = getattr(config, name)
        assert (list(param.default) if isinstance(param.default, tuple) else param.default) \
            == default, name
    run_only = {"name", "description", "split", "test_fraction", "split_seed", "study",
                "train_metrics_sample", "snapshot_epochs", "latent_layer"}
    assert {f.name for f in dataclasses.fields(Config)} - set(params) == run_only


def test_string_labels_map_to_and_from_the_networks_classes(tibetan: Dataset) -> None:
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    pick = np.random.default_rng(0).choice(len(tibetan.y), 1500, replace=False)
    X, y = tibetan.X[pick], names[tibetan.y[pick]]
    clf = Classifier(hidden=(32,), epochs=4, seed=1).fit(X, y)
    assert list(clf.classes_) == sorted(names)  # sorted, as np.unique gives them
    proba = clf.predict_proba(X[:200])
    assert proba.shape == (200, 10)
    assert list(clf.predict(X[:200])) == list(clf.classes_[np.argmax(proba, axis=1)])
    assert clf.score(X, y) > 0.8 and clf.n_features_in_ == 784
    with pytest.raises(InputError, match="label 'ten' is not among the classes"):
        clf.fit(X[:100], y[:100], X[:3], ["ten", "one", "two"])


def test_get_set_params_and_clone_keep_settings_unchanged_until_fit() -> None:
    clf = Classifier(hidden=(64,), epochs=3, lr=np.float64(0.01))
    assert clf.get_params()["hidden"] == (64,) and clf.get_params(deep=True)["epochs"] == 3
    copy = clone(clf)
    assert copy.get_params() == clf.get_params() and copy is not clf
    assert is_classifier(clf)
    assert clf.set_params(epochs=-1) is clf and clf.epochs == -1  # stored, not yet checked
    with pytest.raises(ConfigError, match=r"'epochs'.*must be >= 1"):
        clf.fit(np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(InputError, match="invalid parameter 'colour'"):
        clf.set_params(colour="red")
    assert repr(Classifier(hidden=(64,), epochs=3)) == "Classifier(hidden=(64,), epochs=3)"
    with pytest.raises(NotFittedError, match="not fitted yet"):
        Classifier().predict(np.zeros((1, 2)))


def test_grid_search_over_a_pipeline(tibetan: Dataset) -> None:
    """What the README shows: a Pipeline with a scaler, searched by GridSearchCV."""
    pick = np.random.default_rng(0).choice(len(tibetan.y), 1200, replace=False)
    X, y = tibetan.X[pick], tibetan.y[pick]
    pipe = make_pipeline(StandardScaler(), numeral.Classifier(epochs=5, hidden=(32,)))
    search = GridSearchCV(pipe, {"classifier__lr": [1e-4, 3e-3],
                                 "classifier__hidden": [(16,), (64,)]}, cv=3)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["classifier__lr"] == 3e-3  # 1e-4 is far too slow for 5 epochs
    assert search.score(X, y) > 0.9


def test_partial_fit_continues_training_epoch_by_epoch(tibetan: Dataset) -> None:
    pick = np.random.default_rng(1).choice(len(tibetan.y), 2000, replace=False)
    X, y = tibetan.X[pick], tibetan.y[pick]
    clf = Classifier(hidden=(32,), epochs=5, seed=0)
    with pytest.raises(InputError, match="needs classes="):
        clf.partial_fit(X, y)
    errors = []
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.arange(10))
        errors.append(1 - clf.score(X, y))
    assert len(clf.history_) == 3 and errors[2] < errors[0]
    whole = Classifier(hidden=(32,), epochs=5, seed=0).fit(X, y)
    fitted_then_more = clone(whole).fit(X, y).partial_fit(X, y)  # continues the fitted model
    assert len(fitted_then_more.history_) == 1
    assert fitted_then_more.score(X, y) >= whole.score(X, y) - 0.02
