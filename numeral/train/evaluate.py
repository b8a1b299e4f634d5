"""A saved model scored on a dataset (``numeral evaluate``): which images it is scored on,
the evaluation (numeral.train.metrics) and the table that shows it."""

from __future__ import annotations

from typing import Any

from numeral.data import load, resolve_data_path
from numeral.data.splits import recorded_test_split
from numeral.errors import NumeralError
from numeral.nn import Ensemble, Network
from numeral.train.metrics import evaluation


def score_model(model: Network | Ensemble, data: str | None = None, *,
                train: str | None = None, test: str | None = None,
                split: str | None = None) -> dict[str, Any]:
    """``model``'s evaluation (accuracy, loss, per class, confusion matrix, misclassified)
    on ``test`` (or ``train``) as it is, else on ``data``'s test split: the one the model
    was trained beside, ``split`` (``random``, ``sheet``) or all of it (``all``). The result
    names what it scored in ``data``."""
    meta = model.members[0].meta  # a network is its own only member
    given = test or train
    if given:
        ds, where = load(given), str(given)
    else:
        full = load(resolve_data_path(data))
        how = split or meta.get("split", "random")
        if how == "all":
            ds, where = full, f"all of {full.source}"
        else:
            indices = recorded_test_split(full.y, full.groups, meta, how)
            ds, where = full.subset(indices), f"{how} test split of {full.source}"
    if len(ds.class_names) > model.n_classes:
        raise NumeralError(f"{where} has {len(ds.class_names)} classes but the model knows "
                           f"{model.n_classes}")
    result = evaluation(model.predict_proba(ds.X), ds.y, meta.get("class_names", ds.class_names),
                        ds.names)
    result["data"] = where
    return result


def evaluation_table(result: dict[str, Any], shown: int = 20) -> str:
    """The evaluation as ``numeral evaluate`` prints it: accuracy and loss, a table per
    class, the confusion matrix, and the first ``shown`` misclassified images."""
    lines = [f"{result['data']}: {result['n']} samples, accuracy {result['accuracy']:.2%}, "
             f"loss {result['loss']:.4f}",
             f"{'class':>6} {'precision':>9} {'recall':>7} {'F1':>7} {'support':>8}"]
    lines += [f"{row['class']:>6} {row['precision']:>9.4f} {row['recall']:>7.4f} "
              f"{row['f1']:>7.4f} {row['support']:>8}" for row in result["per_class"]]
    lines.append("confusion matrix (rows: true class, columns: predicted):")
    lines += ["  " + " ".join(f"{v:5d}" for v in row) for row in result["confusion_matrix"]]
    wrong = result["misclassified"]
    lines.append(f"{len(wrong)} misclassified" + (f" (first {shown}):" if len(wrong) > shown
                                                  else ":"))
    lines += [f"  {m['name']}: true {m['true']}, predicted {m['predicted']} "
              f"({m['confidence']:.0%})" for m in wrong[:shown]]
    return "\n".join(lines)
