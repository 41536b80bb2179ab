"""The feed of changed windows the alerting engine evaluates in event time, and label coverage."""

from __future__ import annotations

import pytest

from tests.monitor.test_service import (
    HOUR,
    T0,
    Clock,
    events,
    make_service,
    reference_frame,
    spec,
    true_labels,
)
from watchkeeper.store import Store


def _signal(window: dict, name: str) -> float | None:
    values = [s["value"] for s in window["samples"] if s["labels"]["signal"] == name]
    return values[0] if values else None


def test_closing_late_events_and_labels_feed_each_window_once(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    first, second = events(300, T0, seed=1), events(200, T0 + HOUR, seed=2, prefix="f")
    service.ingest_events("churn", first)
    service.ingest_events("churn", second)
    assert service.changed_windows() == []
    clock.now = T0 + 2 * HOUR + 1
    service.tick()
    closed = service.changed_windows()
    assert [(w["start"], w["end"]) for w in closed] == [(T0, T0 + HOUR), (T0 + HOUR, T0 + 2 * HOUR)]
    assert _signal(closed[0], "labeled_count") == 0.0
    assert _signal(closed[0], "label_coverage") == 0.0
    assert _signal(closed[0], "accuracy") is None
    assert all(s["timestamp"] == T0 + HOUR for s in closed[0]["samples"])
    assert service.changed_windows() == [], "reading empties the feed"

    # Labels for a third of the first window join it after it closed: it changes again.
    service.ingest_labels("churn", true_labels(first, seed=3)[:100])
    (joined,) = service.changed_windows()
    assert joined["start"] == T0
    assert _signal(joined, "labeled_count") == 100.0
    assert _signal(joined, "label_coverage") == pytest.approx(100 / 300)
    assert _signal(joined, "accuracy") is not None

    # A late event for the second window (a backfill or a client's backlog) changes it.
    late = events(1, T0 + HOUR + 5, seed=4, prefix="late")
    service.ingest_events("churn", late)
    (folded,) = service.changed_windows()
    assert folded["start"] == T0 + HOUR
    assert _signal(folded, "count") == 201.0

    windows = service.windows("churn", start=T0, end=T0 + 2 * HOUR)
    assert [w["count"] for w in windows] == [300, 201]
    assert windows[0]["signals"]["label_coverage"] == pytest.approx(100 / 300)
    service.close()
