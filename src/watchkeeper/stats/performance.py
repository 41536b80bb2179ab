"""Model-performance metrics from labels, for reference and current data.

Classification: accuracy, precision / recall / F1 (macro, weighted, per class, and for the
positive class of a binary task), confusion matrix, and from probabilities ROC AUC and log
loss. Regression: MAE, RMSE, MAPE, R² and mean error. :func:`compare_metrics` puts a reference
and a current result side by side.

Everything is vectorised NumPy (a ``bincount`` confusion matrix, a rank-based AUC), agrees with
scikit-learn's definitions (checked in the tests) and runs on millions of rows. Labels are
compared by their canonical form (:mod:`watchkeeper.labels`), so ``1``, ``1.0``, ``True`` and
``"1"`` are the same class. Rows whose target, prediction or probability is missing are dropped
and counted in ``dropped_rows``. Definitions and conventions are in ``docs/performance.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt

from watchkeeper.errors import EmptyDataError, InputError
from watchkeeper.labels import BOOLEAN_LABELS, canonical_label, label_codes

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["classification_metrics", "compare_metrics", "regression_metrics"]

# Counts that describe the data, not the model; compare_metrics leaves them out.
_COUNT_KEYS = frozenset({"rows", "dropped_rows", "zero_targets"})
_EPSILON = float(np.finfo(np.float64).eps)

_Labels: TypeAlias = npt.NDArray[np.intp]


def classification_metrics(
    y_true: npt.ArrayLike | pd.Series,
    y_pred: npt.ArrayLike | pd.Series | None,
    proba: npt.ArrayLike | pd.Series | pd.DataFrame | None = None,
    *,
    classes: Sequence[object] | None = None,
    positive_label: object = None,
) -> dict[str, object]:
    """Classification metrics of predictions (and probabilities) against true labels.

    Parameters
    ----------
    y_true, y_pred:
        True and predicted labels, compared as strings. ``y_pred`` may be ``None`` when
        ``proba`` is given: the prediction is then the most probable class (binary: the
        positive class when its probability is >= 0.5).
    proba:
        Binary task: the positive-class probability, one value per row. More classes: an
        ``n × k`` matrix whose columns are ``classes`` in order (required then).
    classes:
        All classes (values or their labels: ``True`` is ``"1"``), in the order of the
        confusion matrix and of ``proba``'s columns. Defaults to the labels seen in ``y_true``
        and ``y_pred``, numerically sorted when all are numbers. Macro and weighted averages
        run over these classes.
    positive_label:
        The positive class of a binary task (a value or its label); defaults to the last class
        (``"1"`` for 0/1 and for booleans).

    Returns a JSON-ready dict: ``rows``, ``dropped_rows``, ``classes``, ``accuracy``,
    ``precision_macro`` / ``recall_macro`` / ``f1_macro``, the same ``_weighted``; for two
    classes ``positive_label``, ``precision``, ``recall``, ``f1`` of the positive class; with
    probabilities ``roc_auc`` (``None`` when ``y_true`` has a single class) and ``log_loss``;
    ``per_class`` (precision, recall, f1, support and, with probabilities, roc_auc per label)
    and ``confusion_matrix`` (``labels``, ``matrix`` with true labels as rows). A ratio with a
    zero denominator is 0, as scikit-learn's ``zero_division=0``.

    References: van Rijsbergen (1979), *Information Retrieval*, ch. 7 (F-measure);
    Sokolova & Lapalme (2009), "A systematic analysis of performance measures for
    classification tasks" (macro / weighted averages); Hanley & McNeil (1982), "The meaning and
    use of the area under a ROC curve" (AUC = Mann–Whitney U / (n₊ n₋)); Fawcett (2006),
    "An introduction to ROC analysis" (one-vs-rest AUC); Bishop (2006), *Pattern Recognition
    and Machine Learning*, p. 209 (cross-entropy).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y_true = rng.integers(0, 2, 1000)
    >>> proba = np.clip(0.3 * y_true + rng.uniform(0.0, 0.7, 1000), 0.0, 1.0)
    >>> metrics = classification_metrics(y_true, None, proba)
    >>> round(metrics["accuracy"], 3), round(metrics["roc_auc"], 3)
    (0.689, 0.814)
    """
    true_codes, true_labels = _encode(y_true, "y_true")
    rows = len(true_codes)
    if rows == 0:
        raise EmptyDataError("y_true is empty: no rows to compute metrics on", column="y_true")
    pred_codes: _Labels | None = None
    pred_labels: list[str] = []
    if y_pred is not None:
        pred_codes, pred_labels = _encode(y_pred, "y_pred")
        _require_length(len(pred_codes), rows, "y_pred")
    elif proba is None:
        raise InputError("pass y_pred, proba or both: there is nothing to score", column="y_pred")

    scores = None if proba is None else _probabilities(proba, rows)
    class_list = _resolve_classes(classes, true_labels, pred_labels, scores)
    class_index = {label: position for position, label in enumerate(class_list)}
    true_index = _to_class_index(true_codes, true_labels, class_index, "y_true")
    pred_index = (
        None
        if pred_codes is None
        else _to_class_index(pred_codes, pred_labels, class_index, "y_pred")
    )
    positive = _positive_label(positive_label, class_list)

    keep = true_index >= 0
    if pred_index is not None:
        keep &= pred_index >= 0
    if scores is not None:
        keep &= ~np.isnan(scores).any(axis=1) if scores.ndim == 2 else ~np.isnan(scores)
    used = int(np.count_nonzero(keep))
    if used == 0:
        raise EmptyDataError(
            "no row has a target, a prediction and probabilities; every row was dropped",
            column="y_true",
        )
    if used < rows:
        true_index = true_index[keep]
        pred_index = None if pred_index is None else pred_index[keep]
        scores = None if scores is None else scores[keep]

    k = len(class_list)
    positive_position = None if positive is None else class_index[positive]
    positive_scores = None
    if scores is not None and positive_position is not None:
        positive_scores = scores if scores.ndim == 1 else scores[:, positive_position]
    if pred_index is None:
        if positive_scores is not None and positive_position is not None:
            pred_index = np.where(
                positive_scores >= 0.5, positive_position, 1 - positive_position
            ).astype(np.intp)
        else:
            assert scores is not None  # checked above: y_pred and proba are not both None
            pred_index = np.argmax(scores, axis=1).astype(np.intp)

    matrix = np.bincount(true_index * k + pred_index, minlength=k * k).reshape(k, k)
    true_positive = np.diagonal(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    precision = _ratio(true_positive, predicted)
    recall = _ratio(true_positive, support)
    f1 = _ratio(2.0 * true_positive, predicted + support)
    weights = support / support.sum()

    result: dict[str, object] = {
        "rows": used,
        "dropped_rows": rows - used,
        "classes": list(class_list),
        "accuracy": float(true_positive.sum() / used),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
        "precision_weighted": float(weights @ precision),
        "recall_weighted": float(weights @ recall),
        "f1_weighted": float(weights @ f1),
    }
    if positive_position is not None:
        result["positive_label"] = positive
        result["precision"] = float(precision[positive_position])
        result["recall"] = float(recall[positive_position])
        result["f1"] = float(f1[positive_position])

    per_class_auc: list[float | None] = [None] * k
    if scores is not None:
        if positive_scores is not None:
            # With two classes the negative class's AUC on 1 − p is the same number.
            auc = _roc_auc(positive_scores, true_index == positive_position)
            per_class_auc = [auc, auc]
        else:
            per_class_auc = [_roc_auc(scores[:, c], true_index == c) for c in range(k)]
            defined = [value for value in per_class_auc if value is not None]
            auc = float(np.mean(defined)) if defined else None
        result["roc_auc"] = auc
        result["log_loss"] = _log_loss(scores, true_index, positive_position)

    per_class: dict[str, dict[str, float | int | None]] = {}
    for position, label in enumerate(class_list):
        entry: dict[str, float | int | None] = {
            "precision": float(precision[position]),
            "recall": float(recall[position]),
            "f1": float(f1[position]),
            "support": int(support[position]),
        }
        if scores is not None:
            entry["roc_auc"] = per_class_auc[position]
        per_class[label] = entry
    result["per_class"] = per_class
    result["confusion_matrix"] = {"labels": list(class_list), "matrix": matrix.tolist()}
    return result


def regression_metrics(
    y_true: npt.ArrayLike | pd.Series, y_pred: npt.ArrayLike | pd.Series
) -> dict[str, float | int | None]:
    """Regression metrics of predictions against true values.

    Returns ``rows``, ``dropped_rows`` (rows with a missing target or prediction),
    ``zero_targets`` (targets with ``|y| < machine epsilon``), ``mae``, ``rmse``, ``mape``,
    ``r2`` and ``mean_error`` (mean of prediction − target; positive means over-prediction).

    ``mape`` follows scikit-learn's ``mean_absolute_percentage_error``: the mean of
    ``|y − ŷ| / max(|y|, ε)`` with ε the float64 machine epsilon, as a fraction (not ×100), so a
    zero target makes it huge rather than infinite; ``zero_targets`` tells when that happened.
    ``r2`` is 1 − SS_res / SS_tot; with a constant target it is 1.0 for a perfect prediction and
    0.0 otherwise (scikit-learn's ``force_finite``); ``None`` with fewer than two rows.

    References: Willmott & Matsuura (2005), "Advantages of the mean absolute error (MAE) over
    the root mean square error (RMSE)"; de Myttenaere et al. (2016), "Mean absolute percentage
    error for regression models"; Draper & Smith (1998), *Applied Regression Analysis*, §1.4
    (coefficient of determination).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y_true = rng.normal(10.0, 2.0, 1000)
    >>> metrics = regression_metrics(y_true, y_true + rng.normal(0.5, 1.0, 1000))
    >>> round(metrics["mae"], 3), round(metrics["mean_error"], 3), round(metrics["r2"], 3)
    (0.921, 0.492, 0.662)
    """
    target = _as_float(y_true, "y_true")
    prediction = _as_float(y_pred, "y_pred")
    rows = len(target)
    if rows == 0:
        raise EmptyDataError("y_true is empty: no rows to compute metrics on", column="y_true")
    _require_length(len(prediction), rows, "y_pred")
    keep = ~(np.isnan(target) | np.isnan(prediction))
    used = int(np.count_nonzero(keep))
    if used == 0:
        raise EmptyDataError(
            "no row has both a target and a prediction; every row was dropped", column="y_true"
        )
    if used < rows:
        target, prediction = target[keep], prediction[keep]

    error = prediction - target
    absolute_error = np.abs(error)
    squared_error = float(np.mean(error * error))
    absolute_target = np.abs(target)
    r2 = _r2(target, squared_error * used) if used >= 2 else None
    return {
        "rows": used,
        "dropped_rows": rows - used,
        "zero_targets": int(np.count_nonzero(absolute_target < _EPSILON)),
        "mae": float(np.mean(absolute_error)),
        "rmse": math.sqrt(squared_error),
        "mape": float(np.mean(absolute_error / np.maximum(absolute_target, _EPSILON))),
        "r2": r2,
        "mean_error": float(np.mean(error)),
    }


def _r2(target: npt.NDArray[np.float64], residual_sum_of_squares: float) -> float:
    total_sum_of_squares = float(np.sum((target - target.mean()) ** 2))
    if total_sum_of_squares == 0.0:
        return 1.0 if residual_sum_of_squares == 0.0 else 0.0
    return 1.0 - residual_sum_of_squares / total_sum_of_squares


def compare_metrics(
    reference: Mapping[str, object], current: Mapping[str, object]
) -> dict[str, dict[str, float | None]]:
    """Reference and current value of every scalar metric, with the change.

    For each number present in either result (counts such as ``rows`` left out):
    ``reference``, ``current``, ``change`` = current − reference and ``relative_change`` =
    change / |reference|. Changes are ``None`` where a side is missing or ``None``;
    ``relative_change`` is ``None`` when the reference is 0.

    >>> compare_metrics({"accuracy": 0.9, "rows": 10}, {"accuracy": 0.81, "rows": 12})
    {'accuracy': {'reference': 0.9, 'current': 0.81, 'change': -0.09, 'relative_change': -0.1}}
    """
    names = [name for name in reference if _is_metric(name, reference[name])]
    names += [name for name in current if name not in reference and _is_metric(name, current[name])]
    comparison: dict[str, dict[str, float | None]] = {}
    for name in names:
        before = _scalar(reference.get(name))
        after = _scalar(current.get(name))
        change = None if before is None or after is None else _tidy(after - before)
        relative = None if change is None or before in (None, 0.0) else _tidy(change / abs(before))
        comparison[name] = {
            "reference": before,
            "current": after,
            "change": change,
            "relative_change": relative,
        }
    return comparison


def _is_metric(name: str, value: object) -> bool:
    if name in _COUNT_KEYS or isinstance(value, bool):
        return False
    return value is None or isinstance(value, int | float)


def _scalar(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _tidy(value: float) -> float:
    # Differences of rounded metrics print as 0.08999999999999997; 12 significant digits is
    # far beyond any metric's precision and keeps reports readable.
    return float(f"{value:.12g}")


def _require_length(length: int, expected: int, name: str) -> None:
    if length != expected:
        raise InputError(
            f"{name} has {length} rows but y_true has {expected}; pass arrays of equal length",
            column=name,
        )


def _encode(values: Any, name: str) -> tuple[_Labels, list[str]]:
    """Codes into a list of distinct canonical labels; -1 where the value is missing."""
    import pandas as pd

    if not isinstance(values, pd.Series | pd.Index | np.ndarray):
        values = np.asarray(values, dtype=object)
    if values.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {values.shape}", column=name)
    return label_codes(values)


def _label_of(value: object, name: str) -> str:
    label = canonical_label(value)
    if label is None:
        raise InputError(f"{name} has a missing label ({value!r}); name every class", column=name)
    return label


def _resolve_classes(
    classes: Sequence[object] | None,
    true_labels: list[str],
    pred_labels: list[str],
    scores: npt.NDArray[np.float64] | None,
) -> list[str]:
    observed = list(dict.fromkeys(true_labels + pred_labels))
    if classes is not None:
        class_list = [_label_of(label, "classes") for label in classes]
        if len(set(class_list)) != len(class_list):
            raise InputError(f"classes has repeated labels: {class_list}", column="classes")
        if len(class_list) < 1:
            raise InputError("classes is empty; name at least one class", column="classes")
    elif scores is not None and scores.ndim == 2:
        raise InputError(
            f"proba has {scores.shape[1]} columns; pass classes=[...] naming the class of each "
            "column in order",
            column="proba",
        )
    elif scores is not None and len(observed) < 2 and set(observed) <= set(BOOLEAN_LABELS):
        class_list = list(BOOLEAN_LABELS)
    else:
        class_list = _natural_sort(observed)
    if scores is not None:
        width = 2 if scores.ndim == 1 else scores.shape[1]
        if len(class_list) != width:
            shape = "one positive-class column" if scores.ndim == 1 else f"{width} columns"
            raise InputError(
                f"proba has {shape} but there are {len(class_list)} classes "
                f"({', '.join(class_list[:10])}); for a binary task pass one probability column "
                "and, when the labels do not show both classes, classes=[negative, positive]; "
                "for k classes pass an n × k matrix and classes=[...]",
                column="proba",
            )
    return class_list


def _natural_sort(labels: list[str]) -> list[str]:
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def _to_class_index(
    codes: _Labels, labels: list[str], class_index: Mapping[str, int], name: str
) -> _Labels:
    unknown = [label for label in labels if label not in class_index]
    if unknown:
        raise InputError(
            f"{name} has label(s) not among the classes: {', '.join(unknown[:5])}; "
            f"classes are {', '.join(list(class_index)[:10])}",
            column=name,
        )
    lookup = np.array([class_index[label] for label in labels] + [-1], dtype=np.intp)
    return lookup[codes]


def _positive_label(positive_label: object, class_list: list[str]) -> str | None:
    if positive_label is None:
        return class_list[-1] if len(class_list) == 2 else None
    label = _label_of(positive_label, "positive_label")
    if label not in class_list:
        raise InputError(
            f"positive_label {label!r} is not one of the classes {', '.join(class_list[:10])}",
            column="positive_label",
        )
    if len(class_list) != 2:
        raise InputError(
            f"positive_label is for a binary task, but there are {len(class_list)} classes "
            f"({', '.join(class_list[:10])}); when the data shows only one class, pass "
            "classes=[negative, positive]",
            column="positive_label",
        )
    return label


def _probabilities(proba: Any, rows: int) -> npt.NDArray[np.float64]:
    try:
        scores = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            "proba must hold numbers (probabilities in [0, 1])", column="proba"
        ) from None
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim not in (1, 2):
        raise InputError(f"proba must be 1-D or 2-D, got shape {scores.shape}", column="proba")
    _require_length(scores.shape[0], rows, "proba")
    outside = ~np.isnan(scores) & ((scores < 0.0) | (scores > 1.0))
    if outside.any():
        bad = scores[outside]
        raise InputError(
            f"proba has {bad.size} value(s) outside [0, 1] (e.g. {bad[0]!r}); pass "
            "probabilities, not scores or logits",
            column="proba",
        )
    return scores


def _ratio(
    numerator: npt.NDArray[np.float64], denominator: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    safe = np.where(denominator > 0.0, denominator, 1.0)
    return np.where(denominator > 0.0, numerator / safe, 0.0)


def _roc_auc(scores: npt.NDArray[np.float64], is_positive: npt.NDArray[np.bool_]) -> float | None:
    """Area under the ROC curve as the Mann–Whitney U statistic; ties count one half."""
    positive_scores = np.sort(scores[is_positive])
    negative_scores = np.sort(scores[~is_positive])
    if len(positive_scores) == 0 or len(negative_scores) == 0:
        return None
    # For each positive: negatives scored strictly lower, and negatives tied with it.
    below = np.searchsorted(negative_scores, positive_scores, side="left")
    not_above = np.searchsorted(negative_scores, positive_scores, side="right")
    # Integer arithmetic until the final division keeps the statistic exact.
    twice_u = int(below.sum()) + int(not_above.sum())
    return twice_u / (2 * len(positive_scores) * len(negative_scores))


def _log_loss(
    scores: npt.NDArray[np.float64], true_index: _Labels, positive_position: int | None
) -> float:
    if scores.ndim == 1:
        is_positive = true_index == positive_position
        chosen = np.where(is_positive, scores, 1.0 - scores)
    else:
        chosen = scores[np.arange(len(true_index)), true_index]
    # Clipping to machine epsilon, as scikit-learn does, keeps one confident mistake finite.
    clipped = np.clip(chosen, _EPSILON, 1.0 - _EPSILON)
    return float(-np.mean(np.log(clipped)))


def _as_float(values: Any, name: str) -> npt.NDArray[np.float64]:
    import pandas as pd

    array = values.to_numpy() if isinstance(values, pd.Series | pd.Index) else np.asarray(values)
    if array.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {array.shape}", column=name)
    if array.dtype.kind in "fiub":
        numbers = array.astype(np.float64)
    else:
        series = pd.Series(array, dtype=object)
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        not_numbers = np.isnan(numbers) & ~series.isna().to_numpy()
        if not_numbers.any():
            example = array[np.flatnonzero(not_numbers)[0]]
            raise InputError(
                f"{name} has {int(not_numbers.sum())} value(s) that are not numbers "
                f"(e.g. {example!r}); regression metrics need numeric targets and predictions",
                column=name,
            )
    if np.isinf(numbers).any():
        raise InputError(
            f"{name} has infinite values; remove or cap them before computing metrics",
            column=name,
        )
    return numbers
