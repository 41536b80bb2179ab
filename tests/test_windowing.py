"""Window lengths: fixed and calendar windows, their boundaries, DST, and the spec syntax."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper.errors import ConfigError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.windowing import WindowLength

PARIS = "Europe/Paris"
HOUR = 3600
DAY = 86_400


def at(text: str, zone: str = "UTC") -> float:
    """Epoch seconds of a local wall time ``YYYY-MM-DD HH:MM`` in ``zone``."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def length(form: int | str, zone: str = "UTC") -> WindowLength:
    return WindowLength.parse(form, timezone=zone, key="windows[0]")


def bounds(form: str, ts: float, zone: str = "UTC") -> tuple[float, float]:
    window = length(form, zone)
    start = window.start(ts)
    return start, window.end(start)


@pytest.mark.parametrize(
    ("moment", "first", "following"),
    [
        # December runs into the next year; January starts it.
        ("2024-12-31 23:59", "2024-12-01 00:00", "2025-01-01 00:00"),
        ("2025-01-01 00:00", "2025-01-01 00:00", "2025-02-01 00:00"),
        # February of leap years (2024, 2000) has 29 days, of others (2023, 2100) 28.
        ("2024-02-29 12:00", "2024-02-01 00:00", "2024-03-01 00:00"),
        ("2000-02-15 00:00", "2000-02-01 00:00", "2000-03-01 00:00"),
        ("2023-02-28 23:59", "2023-02-01 00:00", "2023-03-01 00:00"),
        ("2100-02-10 00:00", "2100-02-01 00:00", "2100-03-01 00:00"),
    ],
)
def test_month_windows_across_year_ends_and_leap_years(
    moment: str, first: str, following: str
) -> None:
    assert bounds("month", at(moment)) == (at(first), at(following))


def test_month_lengths_over_four_years_sum_to_the_calendar() -> None:
    month = length("month")
    start, lengths = at("2023-01-01 00:00"), []
    for _ in range(48):
        end = month.end(start)
        lengths.append(round((end - start) / DAY))
        start = end
    assert start == at("2027-01-01 00:00")
    assert lengths[1] == 28
    assert lengths[13] == 29
    assert lengths[25] == 28
    assert sum(lengths) == 365 * 3 + 366


@pytest.mark.parametrize(
    ("moment", "monday"),
    [
        # ISO weeks start on Monday; the week of 2025-01-01 (a Wednesday) began in 2024.
        ("2025-01-01 10:00", "2024-12-30 00:00"),
        ("2025-01-05 23:59", "2024-12-30 00:00"),  # Sunday night: still that week
        ("2025-01-06 00:00", "2025-01-06 00:00"),  # Monday midnight: the new week
        ("2024-02-29 00:00", "2024-02-26 00:00"),
    ],
)
def test_week_windows_start_on_monday(moment: str, monday: str) -> None:
    start, end = bounds("week", at(moment))
    assert (start, end) == (at(monday), at(monday) + 7 * DAY)
    assert datetime.fromtimestamp(start, UTC).weekday() == 0


def test_an_event_exactly_at_midnight_belongs_to_the_new_window() -> None:
    for form, day in (("day", "2025-03-01"), ("week", "2025-03-03"), ("month", "2025-03-01")):
        midnight = at(f"{day} 00:00", PARIS)
        window = length(form, PARIS)
        assert window.start(midnight) == midnight
        assert window.start(midnight - 1e-3) < midnight
        assert window.end(window.start(midnight - 1e-3)) == midnight


def test_days_in_a_zone_with_dst_last_23_or_25_hours() -> None:
    day = length("day", PARIS)
    spring = day.start(at("2025-03-30 12:00", PARIS))
    autumn = day.start(at("2025-10-26 12:00", PARIS))
    assert spring == at("2025-03-30 00:00", PARIS) == at("2025-03-29 23:00")
    assert day.end(spring) - spring == 23 * HOUR
    assert day.end(autumn) - autumn == 25 * HOUR
    assert day.end(day.start(at("2025-06-01 12:00", PARIS))) - at("2025-06-01 00:00", PARIS) == DAY
    month = length("month", PARIS)
    march = month.start(at("2025-03-15 00:00", PARIS))
    assert month.end(march) - march == 31 * DAY - HOUR
    week = length("week", PARIS)
    october = week.start(at("2025-10-26 12:00", PARIS))
    assert october == at("2025-10-20 00:00", PARIS)
    assert week.end(october) - october == 7 * DAY + HOUR


def test_day_in_utc_is_the_fixed_day_and_fixed_lengths_ignore_the_zone() -> None:
    assert length("day") == length(86_400) == length("86400")
    assert length("day").id == 86_400
    assert length("day", PARIS).id == -1
    assert length("day", PARIS).is_calendar
    # A fixed hour is aligned to the epoch, whatever the zone (Kolkata is UTC+05:30).
    assert length("1h", "Asia/Kolkata").start(at("2025-01-01 10:45", "Asia/Kolkata")) == at(
        "2025-01-01 05:00"
    )


ZONES = ["UTC", PARIS, "America/New_York", "Australia/Lord_Howe", "America/Santiago"]
FORMS = ["day", "week", "month", 3600, 900, 86_400]


@settings(max_examples=300, deadline=None)
@given(
    ts=st.floats(min_value=0.0, max_value=4.2e9, allow_nan=False),
    zone=st.sampled_from(ZONES),
    form=st.sampled_from(FORMS),
)
def test_every_instant_has_exactly_one_window(ts: float, zone: str, form: int | str) -> None:
    """Windows tile time: start <= ts < end, and each window ends where the next starts,
    including zones whose clocks jump at midnight (Santiago) or by half an hour (Lord Howe)."""
    window = length(form, zone)
    start = window.start(ts)
    end = window.end(start)
    assert start <= ts < end
    assert window.start(start) == start
    assert window.start(end) == end
    assert window.start(end - 1e-3) == start


def test_midnight_skipped_or_repeated_by_dst() -> None:
    """Santiago moves clocks at midnight: 2024-09-08 starts at 01:00, and on 2025-04-06 the hour
    before midnight repeats; each instant still falls in exactly one day."""
    day = length("day", "America/Santiago")
    skipped = day.start(at("2024-09-08 12:00", "America/Santiago"))
    assert datetime.fromtimestamp(skipped, ZoneInfo("America/Santiago")).hour == 1
    assert day.end(skipped) - skipped == 23 * HOUR
    sweep = np.arange(at("2025-04-04 00:00"), at("2025-04-08 00:00"), 600.0)
    starts = day.starts(sweep)
    assert (starts <= sweep).all()
    assert all(ts < day.end(start) for ts, start in zip(sweep, starts, strict=True))
    lengths = sorted({day.end(start) - start for start in set(starts.tolist())})
    assert 25 * HOUR in lengths


def test_vectorised_starts_match_the_scalar_ones() -> None:
    rng = np.random.default_rng(7)
    ts = rng.uniform(at("2024-01-01 00:00"), at("2026-01-01 00:00"), size=2000)
    for form in ("day", "week", "month", 3600):
        window = length(form, PARIS)
        assert window.starts(ts).tolist() == [window.start(value) for value in ts.tolist()]


# ---------------------------------------------------------------------- the spec syntax

BASE = {"name": "m", "task": "regression", "features": {"x": "numeric"}}


def test_old_specs_with_seconds_are_unchanged() -> None:
    spec = ModelSpec.from_dict(BASE | {"windows": [3600, 86400]})
    assert spec.to_dict()["windows"] == [3600, 86400]
    assert spec.timezone == "UTC"
    assert [window.id for window in spec.windows] == [3600, 86400]
    assert [window.start(5000.0) for window in spec.windows] == [3600.0, 0.0]
    # A spec stored before calendar windows has no timezone key.
    stored = {key: value for key, value in spec.to_dict().items() if key != "timezone"}
    assert ModelSpec.from_dict(stored) == spec


def test_calendar_spec_round_trips_and_finds_its_windows() -> None:
    spec = ModelSpec.from_dict(
        BASE | {"windows": ["30m", 3600, "day", "week", "month"], "timezone": PARIS}
    )
    assert spec.to_dict()["windows"] == [1800, 3600, "day", "week", "month"]
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert spec.window("month") is spec.windows[4]
    assert spec.window(-7) is spec.windows[3]  # by stored id
    assert spec.window("1h") is spec.window(3600) is spec.windows[1]
    with pytest.raises(ConfigError, match=r"keeps the windows 1800, 3600, 'day', 'week', 'month'"):
        spec.window(7200)


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"windows": [3600, "fortnight"]}, "windows[1]", "'day', 'week', 'month'"),
        ({"windows": [3600, -5]}, "windows[1]", "positive number of seconds"),
        ({"windows": [True]}, "windows[0]", "positive number of seconds"),
        ({"windows": ["1d"], "timezone": PARIS}, "windows[0]", "use 'day' for calendar days"),
        ({"windows": ["month", "week"]}, "windows", "shortest first"),
        ({"windows": ["day", 86400]}, "windows", "distinct"),
        ({"windows": []}, "windows", "non-empty"),
        ({"windows": "month"}, "windows", "list of window lengths"),
        ({"timezone": "Europe/Pari"}, "timezone", "unknown IANA time zone 'Europe/Pari'"),
        ({"timezone": 2}, "timezone", "unknown IANA time zone"),
        ({"timezone": "../etc/passwd"}, "timezone", "unknown IANA time zone"),
    ],
)
def test_bad_windows_and_time_zones_name_the_field(
    changes: dict[str, object], key: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        ModelSpec.from_dict(BASE | changes)
    assert caught.value.key == key


def test_lengths_built_by_hand_are_checked() -> None:
    assert WindowLength("month", 0, PARIS) == length("month", PARIS)
    for bad in (("fixed", 0), ("fixed", 60, PARIS), ("day", 0, "UTC"), ("year", 0), ("week", 7)):
        with pytest.raises(ConfigError, match="not a window length"):
            WindowLength(*bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown IANA time zone"):
        WindowLength("week", 0, "Mars/Olympus")
