"""Performance metrics agree with scikit-learn; bad input raises InputError."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from watchkeeper.errors import EmptyDataError, InputError
from watchkeeper.stats.performance import (
    classification_metrics,
    compare_metrics,
    regression_metrics,
)

TOLERANCE = 1e-12


def assert_matches_sklearn_labels(
    result: dict[str, object], y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]
) -> None:
    """Every label-based metric of ``result`` equals scikit-learn's with zero_division=0."""
    true = y_true.astype(str)
    pred = y_pred.astype(str)
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(true, pred), abs=TOLERANCE)
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            true, pred, labels=classes, average=average, zero_division=0
        )
        assert result[f"precision_{average}"] == pytest.approx(precision, abs=TOLERANCE)
        assert result[f"recall_{average}"] == pytest.approx(recall, abs=TOLERANCE)
        assert result[f"f1_{average}"] == pytest.approx(f1, abs=TOLERANCE)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        true, pred, labels=classes, average=None, zero_division=0
    )
    per_class = result["per_class"]
    assert isinstance(per_class, dict)
    for position, label in enumerate(classes):
        assert per_class[label]["precision"] == pytest.approx(precision[position], abs=TOLERANCE)
        assert per_class[label]["recall"] == pytest.approx(recall[position], abs=TOLERANCE)
        assert per_class[label]["f1"] == pytest.approx(f1[position], abs=TOLERANCE)
        assert per_class[label]["support"] == support[position]
    assert result["confusion_matrix"] == {
        "labels": classes,
        "matrix": skm.confusion_matrix(true, pred, labels=classes).tolist(),
    }


# --- classification: golden values against scikit-learn ---------------------------------------


@pytest.mark.parametrize("seed", range(30))
def test_multiclass_labels_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    names = np.array([f"class_{i}" for i in range(k)])
    n = int(rng.integers(5, 400))
    y_true = names[rng.integers(0, k, n)]
    # Predictions right about half the time, and from a sometimes narrower set of classes,
    # so some classes are never predicted (precision 0/0) or never true (recall 0/0).
    y_pred = np.where(rng.random(n) < 0.5, y_true, names[rng.integers(0, max(1, k - 1), n)])
    classes = sorted(set(y_true) | set(y_pred))
    result = classification_metrics(y_true, y_pred)
    assert result["classes"] == classes
    assert result["rows"] == n
    assert result["dropped_rows"] == 0
    assert_matches_sklearn_labels(result, y_true, y_pred, classes)


@pytest.mark.parametrize("seed", range(20))
def test_multiclass_probabilities_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    k = int(rng.integers(3, 6))
    classes = [f"c{i}" for i in range(k)]
    n = int(rng.integers(k * 4, 500))
    y_true = np.array(classes)[np.r_[np.arange(k), rng.integers(0, k, n - k)]]
    logits = rng.normal(size=(n, k)) + 1.5 * (np.array(classes)[None, :] == y_true[:, None])
    if seed % 2:
        logits = np.round(logits)  # ties in the scores
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    result = classification_metrics(y_true, None, proba, classes=classes)
    y_pred = np.array(classes)[np.argmax(proba, axis=1)]
    assert_matches_sklearn_labels(result, y_true, y_pred, classes)
    expected_auc = skm.roc_auc_score(
        y_true, proba, multi_class="ovr", average="macro", labels=classes
    )
    assert result["roc_auc"] == pytest.approx(expected_auc, abs=1e-12)
    assert result["log_loss"] == pytest.approx(
        skm.log_loss(y_true, proba, labels=classes), rel=1e-12
    )
    per_class = result["per_class"]
    assert isinstance(per_class, dict)
    for position, label in enumerate(classes):
        assert per_class[label]["roc_auc"] == pytest.approx(
            skm.roc_auc_score(y_true == label, proba[:, position]), abs=1e-12
        )


@pytest.mark.parametrize("seed", range(20))
def test_binary_probabilities_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(10, 2000))
    y_true = rng.integers(0, 2, n)
    y_true[:2] = [0, 1]
    proba = np.clip(0.25 * y_true + rng.uniform(0.0, 0.75, n), 0.0, 1.0)
    if seed % 3 == 0:
        proba = np.round(proba, 1)  # many ties
    if seed % 4 == 0:
        proba[:3] = [0.0, 1.0, 1.0]  # certain, one of them wrong: exercises clipping
    result = classification_metrics(y_true, None, proba)
    assert result["positive_label"] == "1"
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, proba), abs=1e-12)
    assert result["log_loss"] == pytest.approx(skm.log_loss(y_true, proba), rel=1e-12)
    y_pred = (proba >= 0.5).astype(int)
    assert_matches_sklearn_labels(result, y_true, y_pred, ["0", "1"])
    assert result["precision"] == pytest.approx(
        skm.precision_score(y_true, y_pred, zero_division=0), abs=TOLERANCE
    )
    assert result["recall"] == pytest.approx(skm.recall_score(y_true, y_pred), abs=TOLERANCE)
    assert result["f1"] == pytest.approx(skm.f1_score(y_true, y_pred), abs=TOLERANCE)


@settings(max_examples=80, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.booleans(), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])),
        min_size=2,
        max_size=80,
    )
)
def test_binary_auc_with_ties_is_mann_whitney(pairs: list[tuple[bool, float]]) -> None:
    y_true = np.array([label for label, _ in pairs])
    proba = np.array([score for _, score in pairs])
    result = classification_metrics(y_true, y_true, proba)
    if y_true.all() or not y_true.any():
        assert result["roc_auc"] is None
    else:
        assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, proba), abs=1e-12)
    assert result["log_loss"] == pytest.approx(
        skm.log_loss(y_true, proba, labels=[False, True]), rel=1e-12
    )


@pytest.mark.filterwarnings("ignore:A single label was found")
@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["a", "b", "c", "e"])),
        min_size=1,
        max_size=60,
    )
)
def test_label_metrics_property(labels: list[tuple[str, str]]) -> None:
    y_true = np.array([true for true, _ in labels])
    y_pred = np.array([pred for _, pred in labels])
    result = classification_metrics(y_true, y_pred)
    assert_matches_sklearn_labels(result, y_true, y_pred, sorted(set(y_true) | set(y_pred)))


def test_multiclass_auc_skips_classes_absent_from_the_target() -> None:
    rng = np.random.default_rng(5)
    classes = ["a", "b", "c"]
    y_true = rng.choice(["a", "b"], 300)
    proba = rng.dirichlet([1.0, 1.0, 1.0], 300)
    result = classification_metrics(y_true, None, proba, classes=classes)
    per_class = result["per_class"]
    assert isinstance(per_class, dict)
    assert per_class["c"]["roc_auc"] is None
    defined = [skm.roc_auc_score(y_true == label, proba[:, i]) for i, label in enumerate("ab")]
    assert result["roc_auc"] == pytest.approx(np.mean(defined), abs=1e-12)
    assert per_class["c"]["support"] == 0


def test_labels_compare_as_strings() -> None:
    y_true = np.array([1, 0, 2, 2, 10], dtype=np.int64)
    y_pred = np.array(["1", "0", "2", "10", "10"], dtype=object)
    as_float = np.array([1.0, 0.0, 2.0, 10.0, 10.0])
    result = classification_metrics(y_true, y_pred)
    assert result["classes"] == ["0", "1", "2", "10"]  # numeric order when all are numbers
    assert result["accuracy"] == pytest.approx(0.8)
    assert classification_metrics(y_true, as_float)["accuracy"] == result["accuracy"]
    booleans = classification_metrics(np.array([True, False]), np.array([1, 0]))
    assert booleans["accuracy"] == 1.0
    assert booleans["classes"] == ["0", "1"]
    # Text is taken as written, as in category_counts: "2.0" is not the label "2".
    assert classification_metrics(np.array([2]), np.array(["2.0"]))["accuracy"] == 0.0


def test_given_classes_set_order_and_averaging() -> None:
    y_true = np.array(["cat", "dog", "dog"])
    y_pred = np.array(["cat", "dog", "cat"])
    classes = ["dog", "cat", "bird"]
    result = classification_metrics(y_true, y_pred, classes=classes)
    assert result["confusion_matrix"] == {
        "labels": classes,
        "matrix": [[1, 1, 0], [0, 1, 0], [0, 0, 0]],
    }
    assert_matches_sklearn_labels(result, y_true, y_pred, classes)
    assert "positive_label" not in result


def test_binary_string_labels_with_explicit_positive_label() -> None:
    y_true = np.array(["spam", "ham", "ham", "spam", "ham"])
    y_pred = np.array(["spam", "spam", "ham", "ham", "ham"])
    proba_ham = np.array([0.2, 0.4, 0.9, 0.6, 0.8])
    result = classification_metrics(y_true, y_pred, proba_ham, positive_label="ham")
    assert result["positive_label"] == "ham"
    assert result["precision"] == pytest.approx(
        skm.precision_score(y_true, y_pred, pos_label="ham")
    )
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true == "ham", proba_ham))
    assert result["log_loss"] == pytest.approx(skm.log_loss(y_true == "ham", proba_ham), rel=1e-12)


def test_two_column_probabilities_use_the_positive_column() -> None:
    y_true = np.array(["no", "yes", "yes", "no"])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.5, 0.5], [0.4, 0.6]])
    result = classification_metrics(y_true, None, proba, classes=["no", "yes"])
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true == "yes", proba[:, 1]))
    assert result["log_loss"] == pytest.approx(
        skm.log_loss(y_true, proba, labels=["no", "yes"]), rel=1e-12
    )
    # p(yes) = 0.5 predicts "yes", as with a single positive-class column.
    assert result["confusion_matrix"] == {"labels": ["no", "yes"], "matrix": [[1, 1], [0, 2]]}


def test_binary_probability_with_a_single_label_present() -> None:
    result = classification_metrics(np.array([1, 1, 1]), None, np.array([0.9, 0.4, 0.7]))
    assert result["classes"] == ["0", "1"]
    assert result["roc_auc"] is None
    assert result["log_loss"] == pytest.approx(
        skm.log_loss([1, 1, 1], [0.9, 0.4, 0.7], labels=[0, 1]), rel=1e-12
    )
    assert result["accuracy"] == pytest.approx(2 / 3)


def test_zero_division_is_zero_and_matches_sklearn_default() -> None:
    y_true = np.array(["a", "a", "b"])
    y_pred = np.array(["a", "a", "a"])  # "b" never predicted: precision 0/0
    result = classification_metrics(y_true, y_pred)
    per_class = result["per_class"]
    assert isinstance(per_class, dict)
    assert per_class["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = skm.precision_score(y_true, y_pred, average="macro")
    assert result["precision_macro"] == pytest.approx(expected)


def test_missing_targets_predictions_and_probabilities_are_dropped() -> None:
    y_true = np.array([1.0, 0.0, math.nan, 1.0, 0.0, 1.0])
    y_pred = np.array([1, 0, 1, None, 1, 1], dtype=object)
    proba = np.array([0.9, 0.1, 0.8, 0.7, math.nan, 0.6])
    result = classification_metrics(y_true, y_pred, proba)
    assert (result["rows"], result["dropped_rows"]) == (3, 3)
    assert result["accuracy"] == 1.0
    series = classification_metrics(pd.Series(["a", None, "b"]), pd.Series(["a", "b", "b"]))
    assert (series["rows"], series["dropped_rows"]) == (2, 1)


@pytest.mark.parametrize(
    ("kwargs", "column", "message"),
    [
        ({"y_true": [1, 0], "y_pred": [1, 0, 1]}, "y_pred", "3 rows but y_true has 2"),
        ({"y_true": [1, 0], "y_pred": [1], "proba": None}, "y_pred", "equal length"),
        ({"y_true": [1, 0], "y_pred": None, "proba": [0.5]}, "proba", "1 rows"),
        ({"y_true": [1, 0], "y_pred": None, "proba": [0.5, 1.2]}, "proba", "outside"),
        ({"y_true": [1, 0], "y_pred": None, "proba": [-0.1, 0.3]}, "proba", "outside"),
        ({"y_true": [1, 0], "y_pred": None, "proba": [math.inf, 0.3]}, "proba", "outside"),
        ({"y_true": [1, 0], "y_pred": None, "proba": ["a", "b"]}, "proba", "numbers"),
        ({"y_true": [1, 0], "y_pred": None}, "y_pred", "nothing to score"),
        ({"y_true": [1, 0, 2], "y_pred": None, "proba": [0.1, 0.2, 0.3]}, "proba", "3 classes"),
        ({"y_true": ["a", "a"], "y_pred": None, "proba": [0.1, 0.2]}, "proba", "classes="),
        ({"y_true": [0, 1, 2], "y_pred": None, "proba": np.eye(3)}, "proba", "classes="),
        ({"y_true": [0, 3], "y_pred": [0, 1], "classes": ["0", "1"]}, "y_true", "not among"),
        ({"y_true": [0, 1], "y_pred": [0, 1], "classes": ["0", "0"]}, "classes", "repeated"),
        ({"y_true": [0, 1], "y_pred": [0, 1], "classes": [None, "1"]}, "classes", "missing"),
        ({"y_true": [0, 1], "y_pred": [0, 1], "classes": [False, 0]}, "classes", "repeated"),
        ({"y_true": [0, 1], "y_pred": [0, 1], "positive_label": "2"}, "positive_label", "not"),
        (
            {"y_true": [0, 1, 2], "y_pred": [0, 1, 2], "positive_label": "1"},
            "positive_label",
            "binary",
        ),
        ({"y_true": [[0, 1]], "y_pred": [[0, 1]]}, "y_true", "one-dimensional"),
    ],
)
def test_classification_bad_input(kwargs: dict[str, object], column: str, message: str) -> None:
    y_true = kwargs.pop("y_true")
    y_pred = kwargs.pop("y_pred")
    with pytest.raises(InputError, match=message) as caught:
        classification_metrics(y_true, y_pred, **kwargs)  # type: ignore[arg-type]
    assert caught.value.column == column


def test_classes_and_positive_label_are_named_by_canonical_labels() -> None:
    y_true = np.array([True, False, True, True])
    result = classification_metrics(
        y_true, [1.0, 0.0, 0.0, 1.0], classes=[False, True], positive_label=True
    )
    assert result["classes"] == ["0", "1"]
    assert result["positive_label"] == "1"
    assert result["recall"] == pytest.approx(2 / 3)


def test_classification_empty_input() -> None:
    with pytest.raises(EmptyDataError, match="empty"):
        classification_metrics(np.array([]), np.array([]))
    with pytest.raises(EmptyDataError, match="dropped"):
        classification_metrics(np.array([None, None]), np.array(["a", "b"]))


def test_classification_on_a_million_rows_matches_sklearn() -> None:
    rng = np.random.default_rng(9)
    n = 1_000_000
    y_true = rng.integers(0, 2, n)
    proba = np.clip(0.2 * y_true + rng.uniform(0.0, 0.8, n), 0.0, 1.0)
    result = classification_metrics(y_true, None, proba)
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, proba), abs=1e-12)


# --- regression --------------------------------------------------------------------------------


def assert_regression_matches_sklearn(
    result: dict[str, float | int | None], y_true: np.ndarray, y_pred: np.ndarray
) -> None:
    assert result["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred), rel=1e-12)
    assert result["rmse"] == pytest.approx(skm.root_mean_squared_error(y_true, y_pred), rel=1e-12)
    assert result["mape"] == pytest.approx(
        skm.mean_absolute_percentage_error(y_true, y_pred), rel=1e-12
    )
    assert result["r2"] == pytest.approx(skm.r2_score(y_true, y_pred), rel=1e-9, abs=1e-12)
    assert result["mean_error"] == pytest.approx(np.mean(y_pred - y_true), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_regression_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    n = int(rng.integers(2, 2000))
    y_true = rng.normal(rng.uniform(-5, 5), rng.uniform(0.1, 10), n)
    y_pred = y_true * rng.uniform(0.5, 1.5) + rng.normal(0.0, rng.uniform(0.01, 3), n)
    result = regression_metrics(y_true, y_pred)
    assert (result["rows"], result["dropped_rows"], result["zero_targets"]) == (n, 0, 0)
    assert_regression_matches_sklearn(result, y_true, y_pred)


@settings(max_examples=100, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=2, max_size=50)
)
def test_regression_property(pairs: list[tuple[float, float]]) -> None:
    y_true = np.array([true for true, _ in pairs])
    y_pred = np.array([pred for _, pred in pairs])
    result = regression_metrics(y_true, y_pred)
    assert_regression_matches_sklearn(result, y_true, y_pred)
    rmse, mae = float(result["rmse"] or 0.0), float(result["mae"] or 0.0)
    assert rmse >= mae - 1e-9 * max(1.0, mae)


def test_zero_targets_follow_sklearn_mape() -> None:
    y_true = np.array([0.0, 1.0, 2.0])
    y_pred = np.array([0.5, 1.0, 1.0])
    result = regression_metrics(y_true, y_pred)
    assert result["zero_targets"] == 1
    assert result["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y_true, y_pred))
    assert result["mape"] > 1e14  # type: ignore[operator]


def test_constant_target_r2_is_finite_like_sklearn() -> None:
    flat = np.array([3.0, 3.0, 3.0])
    assert regression_metrics(flat, flat)["r2"] == 1.0
    assert regression_metrics(flat, flat + 1.0)["r2"] == 0.0
    assert skm.r2_score(flat, flat + 1.0) == 0.0


def test_one_row_has_no_r2() -> None:
    result = regression_metrics(np.array([1.0]), np.array([2.0]))
    assert result["r2"] is None
    assert (result["mae"], result["rmse"], result["mean_error"]) == (1.0, 1.0, 1.0)


def test_regression_drops_missing_and_reads_numeric_text() -> None:
    y_true = pd.Series(["1.5", None, "3", "4"], dtype=object)
    y_pred = np.array([1.0, 2.0, math.nan, 5.0])
    result = regression_metrics(y_true, y_pred)
    assert (result["rows"], result["dropped_rows"]) == (2, 2)
    assert result["mae"] == pytest.approx(0.75)
    assert result["mean_error"] == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "column", "message"),
    [
        ([1.0, 2.0], [1.0], "y_pred", "1 rows but y_true has 2"),
        ([1.0, math.inf], [1.0, 2.0], "y_true", "infinite"),
        ([1.0, 2.0], [1.0, -math.inf], "y_pred", "infinite"),
        (["1", "two"], [1.0, 2.0], "y_true", "'two'"),
        ([[1.0]], [[1.0]], "y_true", "one-dimensional"),
    ],
)
def test_regression_bad_input(y_true: object, y_pred: object, column: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        regression_metrics(y_true, y_pred)  # type: ignore[arg-type]
    assert caught.value.column == column


def test_regression_empty_input() -> None:
    with pytest.raises(EmptyDataError, match="empty"):
        regression_metrics(np.array([]), np.array([]))
    with pytest.raises(EmptyDataError, match="dropped"):
        regression_metrics(np.array([math.nan]), np.array([1.0]))


# --- comparison --------------------------------------------------------------------------------


def test_compare_metrics_changes() -> None:
    reference = {"accuracy": 0.9, "roc_auc": 0.8, "mean_error": 0.0, "rows": 100, "f1": 0.5}
    current = {"accuracy": 0.81, "roc_auc": None, "mean_error": 0.2, "rows": 90, "log_loss": 0.3}
    assert compare_metrics(reference, current) == {
        "accuracy": {"reference": 0.9, "current": 0.81, "change": -0.09, "relative_change": -0.1},
        "roc_auc": {"reference": 0.8, "current": None, "change": None, "relative_change": None},
        "mean_error": {"reference": 0.0, "current": 0.2, "change": 0.2, "relative_change": None},
        "f1": {"reference": 0.5, "current": None, "change": None, "relative_change": None},
        "log_loss": {"reference": None, "current": 0.3, "change": None, "relative_change": None},
    }


def test_compare_metrics_relative_change_uses_the_absolute_reference() -> None:
    comparison = compare_metrics({"mean_error": -2.0}, {"mean_error": -1.0})
    assert comparison["mean_error"]["relative_change"] == 0.5


def test_compare_metrics_on_full_results_keeps_only_scalar_metrics() -> None:
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 2, 200)
    reference = classification_metrics(y_true, y_true, rng.uniform(size=200))
    current = classification_metrics(y_true, 1 - y_true, rng.uniform(size=200))
    comparison = compare_metrics(reference, current)
    assert set(comparison) == {
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
    }
    assert comparison["accuracy"] == {
        "reference": 1.0,
        "current": 0.0,
        "change": -1.0,
        "relative_change": -1.0,
    }
    regression = compare_metrics(
        regression_metrics(np.arange(5.0), np.arange(5.0) + 1),
        regression_metrics(np.arange(5.0), np.arange(5.0) + 2),
    )
    assert set(regression) == {"mae", "rmse", "mape", "r2", "mean_error"}
