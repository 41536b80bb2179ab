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


def test_a_change_not_yet_evaluated_survives_a_restart(store_url: str) -> None:
    """Changes stay stored until the engine acknowledges them: read or not, a restart (a new
    process on the same database, no close) hands them over again."""
    clock = Clock(T0 + 10)
    first = events(300, T0, seed=1)
    with Store.open(store_url) as store:
        service = make_service(store, clock)
        service.register_model(spec(), reference=reference_frame())
        service.ingest_events("churn", first)
        clock.now = T0 + HOUR + 1
        service.tick()
        (closed,) = service.changed_windows()
        service.acknowledge_windows()  # evaluated
        # Labels join after the evaluation; the process dies before the next one.
        service.ingest_labels("churn", true_labels(first, seed=3)[:100])
        del service
    with Store.open(store_url) as store:
        restarted = make_service(store, clock)
        (joined,) = restarted.changed_windows()
        assert (joined["start"], _signal(joined, "labeled_count")) == (closed["start"], 100.0)
        # Read but not acknowledged (the round failed, or the process died): kept.
        del restarted
    with Store.open(store_url) as store:
        again = make_service(store, clock)
        (joined,) = again.changed_windows()
        assert again.changed_windows() == [], "reading empties the feed"
        again.acknowledge_windows()
        del again
    with Store.open(store_url) as store:
        assert make_service(store, clock).changed_windows() == []
        assert store.changed_windows() == []


def test_a_window_that_changes_while_read_is_not_forgotten(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    first = events(300, T0, seed=1)
    service.ingest_events("churn", first)
    clock.now = T0 + HOUR + 1
    service.tick()
    assert len(service.changed_windows()) == 1
    # Labels join between the read and the acknowledgement: a newer change, kept.
    service.ingest_labels("churn", true_labels(first, seed=3)[:50])
    service.acknowledge_windows()
    (joined,) = service.changed_windows()
    assert _signal(joined, "labeled_count") == 50.0
