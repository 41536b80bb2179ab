from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.alerts import Sample, fingerprint
from watchkeeper.alerts.model import ZERO_TIME, format_duration, format_timestamp, parse_duration
from watchkeeper.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1d", 86400.0),
        (90, 90.0),
        (1.5, 1.5),
    ],
)
def test_parse_duration_reads_prometheus_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "5 minutes", "m5", "", "-5m", -1, True, "5m3"])
def test_parse_duration_names_the_key_on_bad_input(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"^rules\[2\]\.for: expected a .*duration such as 5m"):
        parse_duration(bad, key="rules[2].for")


@given(st.integers(min_value=0, max_value=10**9))
def test_format_duration_round_trips(milliseconds: int) -> None:
    seconds = milliseconds / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_fingerprint_is_stable_and_order_free() -> None:
    labels = {"alertname": "Drift", "model": "credit", "feature": "age"}
    assert fingerprint(labels) == fingerprint(dict(reversed(list(labels.items()))))
    assert fingerprint({"a": "b", "c": ""}) != fingerprint({"a": "bc"})
    assert fingerprint({"alertname": "Drift", "model": "credit"}) == "e7ccf77249d5d6d2"


def test_sample_of_adds_the_feature_label_for_drift_signals() -> None:
    sample = Sample.of(
        model="credit",
        signal="drift.income_band.score",
        value=0.3,
        timestamp=1.0,
        version="3",
        segment="region=eu",
    )
    assert dict(sample.labels) == {
        "model": "credit",
        "signal": "drift.income_band.score",
        "version": "3",
        "segment": "region=eu",
        "feature": "income_band",
    }
    assert "feature" not in Sample.of(model="m", signal="accuracy", value=1, timestamp=0).labels


def test_timestamps_are_rfc3339_utc_with_alertmanager_zero_time() -> None:
    assert format_timestamp(0.0) == "1970-01-01T00:00:00.000Z"
    assert format_timestamp(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"
    assert format_timestamp(None) == ZERO_TIME
    assert not math.isnan(parse_duration("1w"))
