"""Training functions named by the retraining tests' specs (``tests.retrain.trainers:fit``)."""

from __future__ import annotations

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
