"""Calendar windows in the live service: assignment at boundaries, DST, signals on the real
window length, series that return every window or page explicitly, range reports that name the
range they cover, recovery, and old numeric specs (SQLite file and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.test_windowing import DAY, HOUR, PARIS, at
from watchkeeper.config import Settings
from watchkeeper.errors import ConfigError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor import MonitorService
from watchkeeper.store import Store
from watchkeeper.store import tables as t


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def service_on(store: Store, clock: Clock) -> MonitorService:
    service = MonitorService(
        store,
        settings=Settings(max_event_age_seconds=900 * DAY, max_event_future_seconds=HOUR),
        clock=clock,
    )
    service.start()
    return service


def model(windows: list[int | str], *, name: str = "cal", zone: str | None = PARIS) -> ModelSpec:
    config: dict[str, Any] = {
        "name": name,
        "task": "regression",
        "features": {"x": "numeric"},
        "windows": windows,
        "retention_days": 3650,
        "profile_retention_days": 3650,
    }
    if zone is not None:
        config["timezone"] = zone
    return ModelSpec.from_dict(config)


def stamped(timestamps: list[float] | np.ndarray, prefix: str = "e") -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{index}", "timestamp": float(ts), "version": "v1",
         "features": {"x": float(index % 7)}, "prediction": 1.0}
        for index, ts in enumerate(timestamps)
    ]  # fmt: skip


def ingest(service: MonitorService, name: str, events: list[dict[str, Any]]) -> None:
    for first in range(0, len(events), 1000):
        assert service.ingest_events(name, events[first : first + 1000]).accepted == len(
            events[first : first + 1000]
        )


def test_events_fall_in_calendar_days_and_throughput_uses_the_real_length(store: Store) -> None:
    clock = Clock(at("2025-11-01 00:00", PARIS))
    service = service_on(store, clock)
    service.register_model(model(["day", "month"]))
    spring, autumn = at("2025-03-30 00:00", PARIS), at("2025-10-26 00:00", PARIS)
    timestamps = [
        spring - 1e-3,  # the last instant of 29 March
        *np.linspace(spring, spring + 23 * HOUR - 1, 46),
        spring + 23 * HOUR,  # midnight of 31 March: the new day
        *np.linspace(autumn, autumn + 25 * HOUR - 1, 50),
    ]
    ingest(service, "cal", stamped(timestamps))
    service.tick()

    days = service.series(
        "cal", "count", window_seconds="day", start=spring - HOUR, end=spring + 2 * DAY
    )
    assert [(p["start"], p["end"] - p["start"], p["value"]) for p in days] == [
        (spring - DAY, DAY, 1.0),
        (spring, 23 * HOUR, 46.0),
        (spring + 23 * HOUR, DAY, 1.0),
    ]
    (throughput,) = service.series(
        "cal", "throughput", window_seconds="day", start=spring, end=spring + HOUR
    )
    assert throughput["value"] == pytest.approx(46 / (23 * HOUR))
    (long_day,) = service.series(
        "cal", "throughput", window_seconds="day", start=autumn, end=autumn + HOUR
    )
    assert long_day["end"] - long_day["start"] == 25 * HOUR
    assert long_day["value"] == pytest.approx(50 / (25 * HOUR))
    months = service.series("cal", "count", window_seconds="month", start=0.0, end=clock.now)
    assert [(p["start"], p["value"]) for p in months] == [
        (at("2025-03-01 00:00", PARIS), 48.0),
        (at("2025-10-01 00:00", PARIS), 50.0),
    ]
    with pytest.raises(ConfigError, match="end must be after start"):
        service.series("cal", "count", window_seconds="month", start=spring, end=spring)
    with pytest.raises(ConfigError, match="keeps the windows 'day', 'month', not 'week'"):
        service.series("cal", "count", window_seconds="week", start=None, end=None)


def test_series_returns_every_window_or_pages_with_a_cursor(store: Store) -> None:
    """The issue's case: 50 weekly windows, no start. All 50 come back, or pages say where the
    rest starts."""
    first_monday = at("2025-01-06 00:00", PARIS)
    clock = Clock(first_monday + 52 * 7 * DAY)
    service = service_on(store, clock)
    service.register_model(model(["week"]))
    mondays = [first_monday + week * 7 * DAY for week in range(50)]
    # Two events a week, one of them exactly at Monday midnight (it opens its week).
    ingest(service, "cal", stamped([ts for monday in mondays for ts in (monday, monday + DAY)]))
    service.tick()

    points = service.series("cal", "count", start=None, end=None)
    assert [p["start"] for p in points] == [at(f"{d} 00:00", PARIS) for d in _mondays(50)]
    assert [p["value"] for p in points] == [2.0] * 50

    pages, cursor = [], None
    while True:
        page = service.series_page("cal", "count", limit=20, start=cursor)
        pages.append(page["points"])
        cursor = page["next"]
        if cursor is None:
            break
        assert cursor == pages[-1][-1]["end"]  # contiguous: the next window's start
    assert [len(page) for page in pages] == [20, 20, 10]
    assert [p for page in pages for p in page] == points
    with pytest.raises(ConfigError, match="limit"):
        service.series_page("cal", "count", limit=0)


def _mondays(count: int) -> list[str]:
    first = np.datetime64("2025-01-06")
    return [str(first + np.timedelta64(7 * week, "D")) for week in range(count)]


def test_range_reports_cover_exactly_or_name_the_range_they_cover(store: Store) -> None:
    clock = Clock(at("2025-06-01 00:00"))
    service = service_on(store, clock)
    service.register_model(model(["day", "week", "month"]))
    service.register_model(model(["week"], name="weekly"))
    timestamps = np.arange(at("2025-01-01 00:00"), at("2025-05-01 00:00"), 6 * HOUR) + 60.0
    ingest(service, "cal", stamped(timestamps))
    ingest(service, "weekly", stamped(timestamps))
    service.tick()

    def rows_between(start: float, end: float) -> int:
        return int(((timestamps >= start) & (timestamps < end)).sum())

    # A calendar month in Paris: the month window, exactly.
    march, april = at("2025-03-01 00:00", PARIS), at("2025-04-01 00:00", PARIS)
    report = service.range_report("cal", start=march, end=april)
    window = report["window"]
    assert (window["start"], window["end"], window["exact"]) == (march, april, True)
    assert (window["window"], window["windows"], window["timezone"]) == ("month", 1, PARIS)
    assert report["current"]["rows"] == rows_between(march, april) == 4 * 31
    assert report["current"]["name"] == "cal [2025-02-28T23:00:00Z, 2025-03-31T22:00:00Z)"

    # Two weeks from Monday to Monday: weeks, exactly.
    monday = at("2025-03-03 00:00", PARIS)
    report = service.range_report("cal", start=monday, end=monday + 14 * DAY)
    assert (report["window"]["window"], report["window"]["windows"]) == ("week", 2)
    assert report["current"]["rows"] == rows_between(monday, monday + 14 * DAY)

    # A UTC month does not align with Paris days: the covering days, and the report says so.
    utc_march, utc_april = at("2025-03-01 00:00"), at("2025-04-01 00:00")
    report = service.range_report("cal", start=utc_march, end=utc_april)
    window = report["window"]
    assert window["exact"] is False
    assert window["requested"] == {"start": utc_march, "end": utc_april}
    assert (window["start"], window["end"]) == (march, at("2025-04-02 00:00", PARIS))
    assert (window["window"], window["windows"]) == ("day", 32)
    assert report["current"]["rows"] == rows_between(window["start"], window["end"])

    # The case: a month over weekly windows covers whole weeks, up to 6 days past the
    # requested end, and the report names that range instead of claiming the month.
    report = service.range_report("weekly", start=march, end=april)
    window = report["window"]
    assert (window["start"], window["end"]) == (
        at("2025-02-24 00:00", PARIS),
        at("2025-04-07 00:00", PARIS),
    )
    assert window["exact"] is False
    assert window["requested"]["end"] == april
    assert report["current"]["rows"] == rows_between(window["start"], window["end"])
    with pytest.raises(ConfigError, match="finite"):
        service.range_report("cal", start=float("-inf"), end=april)


def open_counts(service: MonitorService, name: str) -> dict[Any, int]:
    return {key: window.events for key, window in service._shared.open[name].items()}


def test_recovery_gives_back_open_calendar_windows(store: Store) -> None:
    clock = Clock(at("2025-03-30 12:00", PARIS))
    live = service_on(store, clock)
    live.register_model(model([3600, "day", "week", "month"]))
    ingest(live, "cal", stamped(np.linspace(at("2025-03-24 00:00", PARIS), clock.now, 300)))
    assert live.checkpoint() > 0
    ingest(live, "cal", stamped(np.linspace(at("2025-03-30 00:00", PARIS), clock.now, 50), "s"))
    expected = open_counts(live, "cal")
    keys = {(key.window_seconds, key.window_start, key.end) for key in expected}
    assert (-1, at("2025-03-30 00:00", PARIS), at("2025-03-31 00:00", PARIS)) in keys
    assert (-7, at("2025-03-24 00:00", PARIS), at("2025-03-31 00:00", PARIS)) in keys
    assert (-31, at("2025-03-01 00:00", PARIS), at("2025-04-01 00:00", PARIS)) in keys
    # No close(): as after a kill -9; resumed from the checkpoint, then rebuilt from raw events.
    assert open_counts(service_on(store, clock), "cal") == expected
    with store.engine.begin() as connection:
        connection.execute(t.checkpoints.delete())
    rebuilt = service_on(store, clock)
    assert open_counts(rebuilt, "cal") == expected
    clock.now = at("2025-04-01 00:00", PARIS)
    closed = rebuilt.tick()
    counts: dict[str, list[int]] = {}
    for window in closed:
        counts.setdefault(str(window["window"]), []).append(window["count"])
    assert len(counts["day"]) == 1  # the earlier days closed as their events came
    assert (counts["week"], counts["month"]) == ([350], [350])


def test_old_numeric_specs_keep_their_windows_and_keys(store: Store) -> None:
    clock = Clock(6 * DAY + 10)
    service = service_on(store, clock)
    service.register_model(model([3600, 86400], name="old", zone=None))
    spec = service.get_model("old")
    assert spec.to_dict()["windows"] == [3600, 86400]
    assert spec.timezone == "UTC"
    ingest(service, "old", stamped([6 * DAY + 0.5, 6 * DAY + 5.0]))
    clock.now = 8 * DAY
    closed = service.tick()
    assert sorted((w["window_seconds"], w["start"], w["count"]) for w in closed) == [
        (3600, 6 * DAY, 2),
        (86400, 6 * DAY, 2),
    ]
    model_id = service._shared.model("old").model_id
    rows = store.windows(model_id, window_seconds=86400, start=0.0, end=clock.now)
    assert [(row.window_start, row.event_count, row.closed) for row in rows] == [(6 * DAY, 2, True)]
