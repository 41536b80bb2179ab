"""Mergeable performance accumulators against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from watchkeeper.monitor.performance import AUC_BINS, ClassificationAccumulator


def _binary(seed: int, rows: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, rows)
    # Scores on the AUC grid, so the binned ROC AUC is exact.
    score = np.round(np.clip(0.35 * truth + rng.random(rows) * 0.65, 0.0, 1.0) * AUC_BINS)
    return truth, np.clip(score, 0, AUC_BINS - 1) / AUC_BINS + 0.5 / AUC_BINS


@pytest.mark.parametrize("declared", [("1",), ("0", "1")])
def test_positive_class_probability_alone_matches_sklearn(declared: tuple[str, ...]) -> None:
    """A binary model may send only P(class 1); log loss and ROC AUC cover every row."""
    truth, score = _binary(1)
    accumulator = ClassificationAccumulator(classes=declared)
    halves = np.array_split(np.arange(len(truth)), 2)
    for part in halves:  # two updates, then merged with an empty one: order must not matter
        accumulator.update(
            truth[part].tolist(),
            (score[part] >= 0.5).astype(int).tolist(),
            [{"1": float(p)} for p in score[part]],
        )
    metrics = accumulator.merge(ClassificationAccumulator(classes=declared)).metrics()
    assert metrics["log_loss"] == pytest.approx(log_loss(truth, score), rel=1e-12)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(truth, score), abs=1e-12)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truth, score >= 0.5))


def test_positive_only_rows_without_a_label_or_score_are_left_out() -> None:
    accumulator = ClassificationAccumulator(classes=("1",))
    accumulator.update([1, 0, None, 0], [1, 0, 1, 1], [{"1": 0.9}, {"1": 0.2}, {"1": 0.7}, None])
    metrics = accumulator.metrics()
    assert metrics["log_loss"] == pytest.approx(log_loss([1, 0], [0.9, 0.2]))
    assert metrics["labeled"] == 3
