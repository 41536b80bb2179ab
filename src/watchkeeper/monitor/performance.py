"""Mergeable performance accumulators: realized model performance as delayed labels join.

A window keeps only sums and counts, so the performance of any range of windows is the merge
of theirs, and a label that joins a window long after it closed is one more :meth:`update`.

Classification keeps the confusion counts (accuracy, macro precision / recall / F1 are exact),
per-window sums for log loss (exact), and for every declared class a histogram of the class
score over :data:`AUC_BINS` equal-width bins on [0, 1], split by whether the row belongs to the
class. ROC AUC is read off those histograms as the Mann–Whitney U statistic with every pair of
scores in the same bin counted as a tie (Hanley & McNeil 1982): the error is at most half the
share of positive–negative pairs that fall in one bin, and is zero when no two such scores share
a bin. Regression keeps sums of errors and the target's moments (Chan, Golub & LeVeque 1979),
so MAE, RMSE, MAPE, R² and mean error are exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from watchkeeper.errors import InputError
from watchkeeper.labels import canonical_labels
from watchkeeper.profiles.numeric import combine_moments

__all__ = [
    "AUC_BINS",
    "ClassificationAccumulator",
    "PerformanceAccumulator",
    "RegressionAccumulator",
    "performance_from_state",
]

AUC_BINS = 1000
_EPSILON = float(np.finfo(np.float64).eps)


def _natural_sort(labels: Sequence[str]) -> list[str]:
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def _ratio(numerator: npt.NDArray[np.float64], denominator: npt.NDArray[np.float64]) -> Any:
    safe = np.where(denominator > 0.0, denominator, 1.0)
    return np.where(denominator > 0.0, numerator / safe, 0.0)


class ClassificationAccumulator:
    """Confusion counts, log-loss sums and per-class score histograms of one window.

    ``classes`` are the declared class labels (the keys of the model's ``proba``); with two
    classes the last one is the positive class, as in :func:`watchkeeper.stats.performance.
    classification_metrics`. Labels and predictions are compared by their canonical labels
    (:mod:`watchkeeper.labels`), so the classes of a model with boolean labels are "0" and "1".
    """

    __slots__ = (
        "_classes",
        "_confusion",
        "_log_loss_count",
        "_log_loss_sum",
        "_negative",
        "_positive",
        "labeled",
    )

    def __init__(self, *, classes: Sequence[str] = ()) -> None:
        self._classes = tuple(classes)
        self._confusion: dict[tuple[str, str], int] = {}
        self.labeled = 0
        self._log_loss_sum = 0.0
        self._log_loss_count = 0
        width = len(self._classes)
        self._positive = np.zeros((width, AUC_BINS), dtype=np.int64)
        self._negative = np.zeros((width, AUC_BINS), dtype=np.int64)

    @property
    def classes(self) -> tuple[str, ...]:
        """The declared class labels."""
        return self._classes

    def update(
        self,
        labels: Sequence[object],
        predictions: Sequence[object],
        probas: Sequence[Mapping[str, float] | None],
    ) -> None:
        """Fold in labelled rows: true labels, predicted labels and class probabilities."""
        if not len(labels) == len(predictions) == len(probas):
            raise InputError("labels, predictions and probas must have the same length")
        if not labels:
            return
        # Labels and predictions are named as the batch report names them (True is "1").
        truths: list[str | None] = canonical_labels(labels).tolist()
        predicted: list[str | None] = canonical_labels(predictions).tolist()
        width = len(self._classes)
        scores = np.full((len(truths), width), np.nan)
        if width:
            for row, proba in enumerate(probas):
                if proba:
                    scores[row] = [proba.get(label, np.nan) for label in self._classes]
            if width == 2:
                # A binary model may send only one class's probability; the other is implied.
                first, second = scores[:, 0], scores[:, 1]
                scores[:, 0] = np.where(np.isnan(first), 1.0 - second, first)
                scores[:, 1] = np.where(np.isnan(second), 1.0 - first, second)
        for row, label in enumerate(predicted):
            if label is None and width and not np.isnan(scores[row]).all():
                predicted[row] = self._classes[int(np.nanargmax(scores[row]))]
        for truth, guess in zip(truths, predicted, strict=True):
            if truth is not None and guess is not None:
                self._confusion[(truth, guess)] = self._confusion.get((truth, guess), 0) + 1
        self.labeled += sum(truth is not None for truth in truths)
        if width:
            self._fold_scores(truths, scores)

    def _fold_scores(self, truths: list[str | None], scores: npt.NDArray[np.float64]) -> None:
        if len(self._classes) == 1:
            self._fold_positive_scores(truths, scores[:, 0])
            return
        position = {label: index for index, label in enumerate(self._classes)}
        true_index = np.array([position.get(t, -1) if t is not None else -1 for t in truths])
        known = true_index >= 0
        chosen = scores[np.flatnonzero(known), true_index[known]]
        usable = ~np.isnan(chosen)
        if usable.any():
            clipped = np.clip(chosen[usable], _EPSILON, 1.0 - _EPSILON)
            self._log_loss_sum += float(-np.log(clipped).sum())
            self._log_loss_count += int(usable.sum())
        bins = np.clip((np.nan_to_num(scores) * AUC_BINS).astype(np.int64), 0, AUC_BINS - 1)
        for column in range(len(self._classes)):
            present = known & ~np.isnan(scores[:, column])
            is_class = present & (true_index == column)
            others = present & (true_index != column)
            self._positive[column] += np.bincount(bins[is_class, column], minlength=AUC_BINS)
            self._negative[column] += np.bincount(bins[others, column], minlength=AUC_BINS)

    def _fold_positive_scores(
        self, truths: list[str | None], scores: npt.NDArray[np.float64]
    ) -> None:
        """A binary model that declares only its positive class's probability ``p``: every
        labelled row counts, the others with ``1 - p`` (log loss) and as negatives (ROC AUC)."""
        positive_class = self._classes[0]
        labelled = np.array([truth is not None for truth in truths], dtype=bool)
        is_positive = np.array([truth == positive_class for truth in truths], dtype=bool)
        usable = labelled & ~np.isnan(scores)
        if not usable.any():
            return
        clipped = np.clip(scores[usable], _EPSILON, 1.0 - _EPSILON)
        positive = is_positive[usable]
        self._log_loss_sum += float(
            -np.log(clipped[positive]).sum() - np.log1p(-clipped[~positive]).sum()
        )
        self._log_loss_count += int(usable.sum())
        bins = np.clip((scores[usable] * AUC_BINS).astype(np.int64), 0, AUC_BINS - 1)
        self._positive[0] += np.bincount(bins[positive], minlength=AUC_BINS)
        self._negative[0] += np.bincount(bins[~positive], minlength=AUC_BINS)

    def merge(self, other: ClassificationAccumulator) -> ClassificationAccumulator:
        """A new accumulator holding both; neither input changes."""
        if other._classes != self._classes:
            raise InputError(
                f"cannot merge performance of classes {list(self._classes)} with "
                f"{list(other._classes)}"
            )
        merged = ClassificationAccumulator(classes=self._classes)
        merged._confusion = dict(self._confusion)
        for key, count in other._confusion.items():
            merged._confusion[key] = merged._confusion.get(key, 0) + count
        merged.labeled = self.labeled + other.labeled
        merged._log_loss_sum = self._log_loss_sum + other._log_loss_sum
        merged._log_loss_count = self._log_loss_count + other._log_loss_count
        merged._positive = self._positive + other._positive
        merged._negative = self._negative + other._negative
        return merged

    def _auc(self, column: int) -> float | None:
        positive = self._positive[column].astype(np.float64)
        negative = self._negative[column].astype(np.float64)
        n_positive, n_negative = positive.sum(), negative.sum()
        if n_positive == 0 or n_negative == 0:
            return None
        below = np.concatenate(([0.0], np.cumsum(negative)[:-1]))
        return float((positive * (below + 0.5 * negative)).sum() / (n_positive * n_negative))

    def metrics(self) -> dict[str, Any]:
        """Accuracy, macro precision / recall / F1, ROC AUC and log loss (None when undefined)."""
        result: dict[str, Any] = {"rows": sum(self._confusion.values()), "labeled": self.labeled}
        labels = _natural_sort(list({label for pair in self._confusion for label in pair}))
        if labels:
            index = {label: position for position, label in enumerate(labels)}
            matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
            for (truth, guess), count in self._confusion.items():
                matrix[index[truth], index[guess]] = count
            true_positive = np.diagonal(matrix).astype(np.float64)
            predicted = matrix.sum(axis=0).astype(np.float64)
            support = matrix.sum(axis=1).astype(np.float64)
            precision = _ratio(true_positive, predicted)
            recall = _ratio(true_positive, support)
            f1 = _ratio(2.0 * true_positive, predicted + support)
            result |= {
                "classes": labels,
                "accuracy": float(true_positive.sum() / matrix.sum()),
                "precision_macro": float(precision.mean()),
                "recall_macro": float(recall.mean()),
                "f1_macro": float(f1.mean()),
                "confusion_matrix": {"labels": labels, "matrix": matrix.tolist()},
            }
        else:
            result |= dict.fromkeys(("accuracy", "precision_macro", "recall_macro", "f1_macro"))
        if self._classes:
            if len(self._classes) == 2:
                auc = self._auc(1)
            else:
                defined = [a for a in map(self._auc, range(len(self._classes))) if a is not None]
                auc = float(np.mean(defined)) if defined else None
            result["roc_auc"] = auc
            result["roc_auc_approximate"] = True
            result["log_loss"] = (
                self._log_loss_sum / self._log_loss_count if self._log_loss_count else None
            )
        return result

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state that :meth:`from_state` reads back."""
        rows, columns = np.nonzero(self._positive + self._negative)
        return {
            "kind": "classification",
            "classes": list(self._classes),
            "confusion": [[t, p, c] for (t, p), c in sorted(self._confusion.items())],
            "labeled": self.labeled,
            "log_loss": [self._log_loss_sum, self._log_loss_count],
            "scores": [
                rows.tolist(),
                columns.tolist(),
                self._positive[rows, columns].tolist(),
                self._negative[rows, columns].tolist(),
            ],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ClassificationAccumulator:
        """Rebuild an accumulator from :meth:`to_state`."""
        accumulator = cls(classes=state["classes"])
        accumulator._confusion = {(str(t), str(p)): int(c) for t, p, c in state["confusion"]}
        accumulator.labeled = int(state["labeled"])
        accumulator._log_loss_sum = float(state["log_loss"][0])
        accumulator._log_loss_count = int(state["log_loss"][1])
        rows, columns, positive, negative = state["scores"]
        accumulator._positive[rows, columns] = positive
        accumulator._negative[rows, columns] = negative
        return accumulator


class RegressionAccumulator:
    """Error sums and target moments of one window (MAE, RMSE, MAPE, R², mean error)."""

    __slots__ = (
        "abs_error",
        "abs_percentage_error",
        "error",
        "labeled",
        "rows",
        "squared_error",
        "target_m2",
        "target_mean",
        "zero_targets",
    )

    def __init__(self) -> None:
        self.labeled = 0
        self.rows = 0
        self.abs_error = 0.0
        self.squared_error = 0.0
        self.abs_percentage_error = 0.0
        self.error = 0.0
        self.zero_targets = 0
        self.target_mean = math.nan
        self.target_m2 = 0.0

    def update(
        self,
        labels: Sequence[object],
        predictions: Sequence[object],
        probas: Sequence[Mapping[str, float] | None] | None = None,
    ) -> None:
        """Fold in labelled rows; rows without a numeric prediction only count as labelled."""
        del probas
        if len(labels) != len(predictions):
            raise InputError("labels and predictions must have the same length")
        if not labels:
            return
        target = np.array([np.nan if v is None else v for v in labels], dtype=np.float64)
        guess = np.array([np.nan if v is None else v for v in predictions], dtype=np.float64)
        self.labeled += int(np.count_nonzero(~np.isnan(target)))
        keep = ~(np.isnan(target) | np.isnan(guess))
        target, guess = target[keep], guess[keep]
        if target.size == 0:
            return
        error = guess - target
        absolute = np.abs(error)
        self.abs_error += float(absolute.sum())
        self.squared_error += float(error @ error)
        self.abs_percentage_error += float((absolute / np.maximum(np.abs(target), _EPSILON)).sum())
        self.error += float(error.sum())
        self.zero_targets += int(np.count_nonzero(np.abs(target) < _EPSILON))
        batch_mean = float(target.mean())
        deviations = target - batch_mean
        self.target_mean, self.target_m2 = combine_moments(
            self.rows,
            self.target_mean,
            self.target_m2,
            target.size,
            batch_mean,
            float(deviations @ deviations),
        )
        self.rows += int(target.size)

    def merge(self, other: RegressionAccumulator) -> RegressionAccumulator:
        """A new accumulator holding both; neither input changes."""
        merged = RegressionAccumulator()
        for name in (
            "labeled",
            "rows",
            "abs_error",
            "squared_error",
            "abs_percentage_error",
            "error",
            "zero_targets",
        ):
            setattr(merged, name, getattr(self, name) + getattr(other, name))
        merged.target_mean, merged.target_m2 = combine_moments(
            self.rows,
            self.target_mean,
            self.target_m2,
            other.rows,
            other.target_mean,
            other.target_m2,
        )
        return merged

    def metrics(self) -> dict[str, Any]:
        """MAE, RMSE, MAPE, R² and mean error, defined as in ``regression_metrics``."""
        rows = self.rows
        if rows == 0:
            empty: dict[str, Any] = {"rows": 0, "labeled": self.labeled, "zero_targets": 0}
            return empty | dict.fromkeys(("mae", "rmse", "mape", "r2", "mean_error"))
        if rows < 2:
            r2 = None
        elif self.target_m2 == 0.0:
            r2 = 1.0 if self.squared_error == 0.0 else 0.0
        else:
            r2 = 1.0 - self.squared_error / self.target_m2
        return {
            "rows": rows,
            "labeled": self.labeled,
            "zero_targets": self.zero_targets,
            "mae": self.abs_error / rows,
            "rmse": math.sqrt(self.squared_error / rows),
            "mape": self.abs_percentage_error / rows,
            "r2": r2,
            "mean_error": self.error / rows,
        }

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state that :meth:`from_state` reads back."""
        state: dict[str, Any] = {"kind": "regression"}
        for name in self.__slots__:
            value = getattr(self, name)
            state[name] = None if isinstance(value, float) and math.isnan(value) else value
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RegressionAccumulator:
        """Rebuild an accumulator from :meth:`to_state`."""
        accumulator = cls()
        for name in cls.__slots__:
            value = state[name]
            setattr(accumulator, name, math.nan if value is None else value)
        return accumulator


PerformanceAccumulator = ClassificationAccumulator | RegressionAccumulator


def performance_from_state(state: Mapping[str, Any]) -> PerformanceAccumulator:
    """Rebuild either accumulator from its ``to_state`` form."""
    if state.get("kind") == "classification":
        return ClassificationAccumulator.from_state(state)
    if state.get("kind") == "regression":
        return RegressionAccumulator.from_state(state)
    raise InputError(f"unknown performance state kind {state.get('kind')!r}")
