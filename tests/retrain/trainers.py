"""Training functions named by the retraining tests' specs (``tests.retrain.trainers:fit``)."""

from __future__ import annotations

import time

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from watchkeeper.retrain import TrainingContext


def fit(frame: pd.DataFrame, context: TrainingContext) -> HistGradientBoostingClassifier:
    """The demo's model, trained on the assembled rows."""
    model = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=0)
    model.fit(frame[list(context.features)], frame[context.label].astype(int))
    return model


def broken(frame: pd.DataFrame, context: TrainingContext) -> None:
    """A training function that fails."""
    raise RuntimeError(f"out of memory on {len(frame)} rows")


def slow(frame: pd.DataFrame, context: TrainingContext) -> HistGradientBoostingClassifier:
    """:func:`fit`, after ``params["sleep"]`` seconds (a run long enough to be interrupted)."""
    time.sleep(float(context.params.get("sleep", 10.0)))
    return fit(frame, context)
