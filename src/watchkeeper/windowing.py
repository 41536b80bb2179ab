"""Window lengths: fixed durations aligned to the Unix epoch, and calendar days, ISO weeks and
months in a time zone.

A model spec lists its window lengths (``windows: [3600, "6h", "day", "week", "month"]``) and
the time zone of its calendar (``timezone: "Europe/Paris"``, default ``UTC``). The forms are:

- a positive integer (seconds) or a duration ``"<n>s"``, ``"<n>m"``, ``"<n>h"``: a fixed length,
  aligned to the Unix epoch (so ``3600`` windows start on UTC hours whatever the time zone);
- ``"day"``, ``"week"``, ``"month"``: calendar windows from local midnight of a day, of a Monday
  (ISO 8601 weeks) and of the first day of a month in the time zone. A day is 23 or 25 hours
  on the days clocks change; a month is 28 to 31 days. ``"day"`` in UTC is the fixed 86 400 s
  window, so ``"day"`` and ``86400`` are the same windows there.

Every length has a stable integer :attr:`WindowLength.id`, stored as a window's
``window_seconds``: its seconds for a fixed length (so databases written before calendar
windows read unchanged) and a negative number per calendar unit (:data:`CALENDAR_IDS`).

Example
-------
>>> month = WindowLength.parse("month", timezone="Europe/Paris", key="windows[0]")
>>> start = month.start(1_709_251_200.0)  # 2024-03-01 00:00 UTC, 01:00 in Paris
>>> start, month.end(start) - start  # March in Paris: 31 days less the hour lost to DST
(1709247600.0, 2674800.0)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from watchkeeper.errors import ConfigError

__all__ = ["CALENDAR_IDS", "UTC_NAME", "WindowLength", "check_timezone", "describe_window_id"]

UTC_NAME = "UTC"
#: Storage id of each calendar unit (fixed lengths are stored as their seconds).
CALENDAR_IDS = {"day": -1, "week": -7, "month": -31}
_UNITS_BY_ID = {number: unit for unit, number in CALENDAR_IDS.items()}
# Nominal lengths, only to order a spec's windows and size look-back periods.
_NOMINAL_SECONDS = {"day": 86_400, "week": 7 * 86_400, "month": 2_629_746}
_DURATION = re.compile(r"([1-9][0-9]{0,9})([smh])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}
_FORMS = (
    "a positive number of seconds (3600), a duration ('30m', '6h') or a calendar unit "
    "('day', 'week', 'month')"
)
_FIXED = "fixed"


def check_timezone(name: object, *, key: str = "timezone") -> str:
    """``name`` if it is an IANA time zone (``UTC``, ``Europe/Paris``), else ConfigError."""
    if isinstance(name, str) and name and "\x00" not in name:
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ConfigError(
        f"{key}: unknown IANA time zone {name!r}; use a name such as 'UTC', 'Europe/Paris' or "
        "'America/New_York'",
        key=key,
    )


def describe_window_id(window_id: int) -> int | str:
    """The spec form of a stored window id: its seconds, or ``"day"``/``"week"``/``"month"``."""
    return _UNITS_BY_ID.get(window_id, window_id)


@dataclass(frozen=True, slots=True)
class WindowLength:
    """One window length of a model: a fixed number of seconds or a calendar unit in a zone.

    Build it with :meth:`parse`. ``unit`` is ``"fixed"``, ``"day"``, ``"week"`` or ``"month"``;
    ``seconds`` is the length of a fixed window (0 for calendar units); ``timezone`` is the
    calendar's IANA zone (``UTC`` for fixed lengths, which ignore it).
    """

    unit: str
    seconds: int = 0
    timezone: str = UTC_NAME

    def __post_init__(self) -> None:
        fixed = self.unit == _FIXED and self.seconds > 0 and self.timezone == UTC_NAME
        calendar = self.unit in CALENDAR_IDS and self.seconds == 0
        # A UTC day is the fixed 86400-s day: one length, one storage id.
        if not (fixed or calendar) or (self.unit == "day" and self.timezone == UTC_NAME):
            raise ConfigError(
                f"not a window length: {self!r}; build one with WindowLength.parse", key="windows"
            )
        if calendar:
            check_timezone(self.timezone)

    @classmethod
    def parse(cls, value: object, *, timezone: str, key: str) -> WindowLength:
        """The length written ``value`` in a spec; ConfigError naming ``key`` when invalid."""
        if isinstance(value, WindowLength):
            value = value.to_json()
        if isinstance(value, bool):
            pass
        elif isinstance(value, int) and value > 0:
            return cls(_FIXED, value)
        elif isinstance(value, str):
            text = value.strip().lower()
            duration = _DURATION.fullmatch(text)
            if duration is not None:
                return cls(_FIXED, int(duration[1]) * _DURATION_UNITS[duration[2]])
            if text == "day" and timezone == UTC_NAME:
                return cls(_FIXED, 86_400)
            if text in CALENDAR_IDS:
                return cls(text, 0, timezone)
            if text.isdigit() and int(text) > 0:
                return cls(_FIXED, int(text))
            if re.fullmatch(r"[0-9]+\s*d", text):
                raise ConfigError(
                    f"{key}: {value!r} is ambiguous; use 'day' for calendar days in the model's "
                    "time zone or 86400 for fixed days from UTC midnight",
                    key=key,
                )
        raise ConfigError(f"{key}: expected {_FORMS}, got {value!r}", key=key)

    @property
    def is_calendar(self) -> bool:
        """Whether windows follow the calendar (their lengths vary) rather than the epoch."""
        return self.unit != _FIXED

    @property
    def id(self) -> int:
        """Stable storage id: the seconds of a fixed length, a negative number per unit."""
        return self.seconds if self.unit == _FIXED else CALENDAR_IDS[self.unit]

    @property
    def nominal_seconds(self) -> int:
        """Typical length in seconds (exact for fixed lengths), to order lengths."""
        return self.seconds if self.unit == _FIXED else _NOMINAL_SECONDS[self.unit]

    def to_json(self) -> int | str:
        """The spec form: seconds for a fixed length, the unit name for a calendar one."""
        return self.seconds if self.unit == _FIXED else self.unit

    def __str__(self) -> str:
        if self.unit == _FIXED:
            return f"{self.seconds} s"
        return f"{self.unit} ({self.timezone})"

    def start(self, ts: float) -> float:
        """Start (epoch s) of the window holding instant ``ts``."""
        return self.bounds(ts)[0]

    def bounds(self, ts: float) -> tuple[float, float]:
        """Start and end (epoch s) of the window holding instant ``ts``: ``start <= ts < end``."""
        if self.unit == _FIXED:
            begin = float(math.floor(ts / self.seconds) * self.seconds)
            return begin, begin + self.seconds
        zone = ZoneInfo(self.timezone)
        day = datetime.fromtimestamp(ts, zone).date()
        if self.unit == "week":
            day -= timedelta(days=day.weekday())
        elif self.unit == "month":
            day = day.replace(day=1)
        begin = _midnight(day, zone)
        end = self.end(begin)
        # An hour repeated at midnight (clocks going back at 00:00) reads as the day before.
        while end <= ts:
            begin, end = end, self.end(end)
        return begin, end

    def end(self, start: float) -> float:
        """End (exclusive, epoch s) of the window starting at ``start``."""
        if self.unit == _FIXED:
            return start + self.seconds
        zone = ZoneInfo(self.timezone)
        day = datetime.fromtimestamp(start, zone).date()
        if self.unit == "day":
            following = day + timedelta(days=1)
        elif self.unit == "week":
            following = day + timedelta(days=7 - day.weekday())
        elif day.month == 12:
            following = date(day.year + 1, 1, 1)
        else:
            following = date(day.year, day.month + 1, 1)
        return _midnight(following, zone)

    def starts(self, ts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """:meth:`start` of every instant of ``ts`` (one calendar computation per window)."""
        if self.unit == _FIXED:
            return np.floor(ts / self.seconds) * self.seconds
        if not len(ts):
            return np.empty(0, dtype=np.float64)
        begin, end = self.bounds(float(ts.min()))
        if ts.max() < end:  # the usual batch: one window
            return np.full(len(ts), begin, dtype=np.float64)
        order = np.argsort(ts, kind="stable")
        ordered = ts[order]
        result = np.empty(len(ts), dtype=np.float64)
        position = 0
        while position < len(ordered):
            begin, end = self.bounds(float(ordered[position]))
            stop = int(np.searchsorted(ordered, end, side="left"))
            result[order[position:stop]] = begin
            position = stop
        return result


def _midnight(day: date, zone: ZoneInfo) -> float:
    # fold=0: a midnight skipped by a DST jump maps to the jump's instant, a repeated one to
    # its first occurrence.
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
