"""The data a retraining run learns from: labelled events whose labels are mature, split in time.

A window whose labels are still arriving is biased: the labels that come first are not a random
sample (fast-resolving cases, complaints). So only predictions made at least ``label_delay``
ago are used, and only those with a label. The most recent share of them (in event time, never
shuffled across time) is the holdout on which the champion and the candidate are compared; the
rest is the training data, with optional base data (a frame, a callable or a
:mod:`~watchkeeper.retrain.sources` source) appended before it; base rows with a ``timestamp`` in
the holdout's period are dropped, so the gate never scores rows the candidate trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from watchkeeper.errors import InputError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.retrain.sources import TIMESTAMP, BaseRequest, BaseSource
from watchkeeper.retrain.spec import RetrainSpec
from watchkeeper.schema import TaskType
from watchkeeper.store import Store

__all__ = ["LABEL", "TrainingData", "assemble"]

#: The label column of the assembled frames.
LABEL = "label"


@dataclass(frozen=True, slots=True)
class TrainingData:
    """Training rows and the later holdout rows: features plus ``label`` (and ``timestamp``)."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    features: tuple[str, ...]
    start: float
    end: float
    split_at: float

    def summary(self) -> dict[str, Any]:
        """Rows, time range and class balance, for the run's record."""
        return {
            "train_rows": len(self.train),
            "holdout_rows": len(self.holdout),
            "start": self.start,
            "end": self.end,
            "split_at": self.split_at,
            "label_share": _shares(self.train[LABEL]) if len(self.train) else {},
        }


def assemble(
    store: Store,
    spec: ModelSpec,
    retrain: RetrainSpec,
    *,
    now: float,
    base: pd.DataFrame | Callable[[], pd.DataFrame] | BaseSource | None = None,
) -> TrainingData:
    """Labelled, mature events of ``spec``'s model from the store, split in time.

    Raises :class:`InputError` naming the check that failed: too few rows, a class too rare
    in the training or the holdout rows, base data without the model's features.
    """
    model = store.get_model(spec.name)
    end = now - retrain.label_delay_seconds
    start = now - retrain.lookback_seconds
    if end <= start:
        raise InputError(
            f"retrain.label_delay ({retrain.label_delay_seconds:g} s) leaves no mature data in "
            f"the lookback ({retrain.lookback_seconds:g} s)",
            column="label_delay",
        )
    features = tuple(spec.features)
    rows: list[dict[str, Any]] = []
    chunk: list[Any] = []

    def flush() -> None:
        labels = store.labels_for(model.id, [event.event_id for event in chunk])
        for event in chunk:
            label = labels.get(event.event_id)
            if label is None or label.label is None:
                continue
            row = {name: event.features.get(name) for name in features}
            row[LABEL] = label.label
            row["timestamp"] = event.ts
            rows.append(row)
        chunk.clear()

    for event in store.events_between(model.id, start, end):
        chunk.append(event)
        if len(chunk) >= 5000:
            flush()
    if chunk:
        flush()
    frame = pd.DataFrame(rows, columns=[*features, LABEL, "timestamp"])
    if spec.task is not TaskType.CLASSIFICATION:
        frame[LABEL] = pd.to_numeric(frame[LABEL], errors="coerce")
        frame = frame[np.isfinite(frame[LABEL].to_numpy(dtype=float))]
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    if len(frame) < retrain.min_rows:
        raise InputError(
            f"retrain.min_rows: {len(frame)} labelled events with mature labels between "
            f"{start:.0f} and {end:.0f}, fewer than {retrain.min_rows}",
            column="min_rows",
        )
    cut = round(len(frame) * (1.0 - retrain.holdout_fraction))
    split_at = float(frame["timestamp"].iloc[cut])
    # Events of one instant (a batch stamped at once) all go to one side: the store returns
    # them in no set order, and cutting inside them would make the split depend on it.
    before = int((frame["timestamp"] < split_at).sum())
    cut = before if before > 0 else cut
    train, holdout = frame.iloc[:cut], frame.iloc[cut:]
    if base is not None:
        if isinstance(base, pd.DataFrame):
            extra = base
        elif callable(base):
            extra = base()
        else:
            extra = base.load(BaseRequest(spec.name, features, start, end))
        if TIMESTAMP in extra.columns:
            extra = extra[extra[TIMESTAMP] < split_at]
        missing = [name for name in (*features, LABEL) if name not in extra.columns]
        if missing:
            raise InputError(
                f"base data lacks {', '.join(map(repr, missing))}; it needs the model's "
                f"features and '{LABEL}'",
                column=missing[0],
            )
        train = pd.concat([extra[[*features, LABEL]], train], ignore_index=True)
    if spec.task is TaskType.CLASSIFICATION:
        _check_balance(train, "training", retrain.min_class_share)
        _check_balance(holdout, "holdout", retrain.min_class_share)
    return TrainingData(
        train=train.reset_index(drop=True),
        holdout=holdout.reset_index(drop=True),
        features=features,
        start=start,
        end=end,
        split_at=split_at,
    )


def _shares(labels: pd.Series) -> dict[str, float]:
    counts = labels.astype(str).value_counts(normalize=True)
    return {str(name): round(float(share), 4) for name, share in counts.items()}


def _check_balance(frame: pd.DataFrame, part: str, floor: float) -> None:
    shares = _shares(frame[LABEL])
    if len(shares) < 2:
        raise InputError(
            f"retrain.min_class_share: the {part} rows have one class only ({shares})",
            column="min_class_share",
        )
    rare = {name: share for name, share in shares.items() if share < floor}
    if rare:
        raise InputError(
            f"retrain.min_class_share: class {next(iter(rare))!r} is {min(rare.values()):.1%} of "
            f"the {part} rows, below {floor:.1%}",
            column="min_class_share",
        )
