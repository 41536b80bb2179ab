"""Delayed labels through the live path (:func:`watchkeeper.sdk.replay.replay`, local mode on a
simulated clock) with the default rule pack: an accuracy collapse is alerted within the label
delay plus one window of its onset, never before it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from watchkeeper.errors import InputError
from watchkeeper.sdk.replay import replay

DAY = 86_400.0
START = 1_650_000_000.0 - 1_650_000_000.0 % DAY
ONSET = START + 15.5 * DAY  # half-way through a daily window
SPEC = {
    "name": "credit",
    "task": "classification",
    "features": {"income": "numeric"},
    "windows": [86_400],
}


def _stream(seed: int = 11, days: int = 30, per_day: int = 150) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = days * per_day
    times = START + np.sort(rng.uniform(0, days * DAY, rows))
    truth = rng.integers(0, 2, rows)
    right = rng.random(rows) < np.where(times < ONSET, 0.95, 0.5)
    return pd.DataFrame(
        {
            "timestamp": times,
            "income": rng.normal(size=rows),
            "prediction": np.where(right, truth, 1 - truth),
            "label": truth,
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"income": rng.normal(size=2000), "prediction": rng.integers(0, 2, 2000)})


def _accuracy_firing(result: object) -> list[dict]:
    return [
        change
        for change in result.firing()  # type: ignore[attr-defined]
        if change["rule"] == "CreditAccuracyDrop"
    ]


@pytest.mark.parametrize("delay", [0.0, 14 * DAY])
def test_accuracy_collapse_alerted_within_label_delay_plus_one_window(
    reference: pd.DataFrame, delay: float
) -> None:
    result = replay(
        _stream(), spec=SPEC, reference=reference, label_column="label", label_delay=delay
    )
    assert result.events == result.labels == 4500
    firing = _accuracy_firing(result)
    assert firing, "the collapse must be alerted"
    first = firing[0]
    assert first["at"] > ONSET
    assert first["known_at"] <= ONSET + delay + DAY
    assert first["labels"]["severity"] == "critical"
    # Every window after the onset is below the floor: one alert, firing to the end.
    assert len(firing) == 1
    assert all(w["signals"]["label_coverage"] == 1.0 for w in result.windows)


def test_labels_with_their_own_arrival_times(reference: pd.DataFrame) -> None:
    stream = _stream(seed=12)
    rng = np.random.default_rng(4)
    stream["labelled_at"] = stream["timestamp"] + rng.uniform(0, 3 * DAY, len(stream))
    result = replay(
        stream,
        spec=SPEC,
        reference=reference,
        label_column="label",
        label_time_column="labelled_at",
    )
    (first, *_) = _accuracy_firing(result)
    assert first["at"] > ONSET
    assert first["known_at"] <= ONSET + 3 * DAY + DAY
    early = stream.assign(labelled_at=stream["timestamp"] - 1.0)
    with pytest.raises(InputError, match="labelled_at: row row-0 has its label before"):
        replay(
            early,
            spec=SPEC,
            reference=reference,
            label_column="label",
            label_time_column="labelled_at",
        )
