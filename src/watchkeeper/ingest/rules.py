"""The one table of ingest field rules: what each field accepts, its canonical value, the reason.

Every ingest path (JSON events, Arrow and Parquet columns, labels, feedback) checks its values
with the rules of this module, so the same value gets the same verdict and the same reason
whatever the body format. A :class:`Rule` has two halves:

- ``check`` takes one raw value (as JSON decodes it: ``None``, ``bool``, ``int``, ``float``,
  ``str``, ``dict``, ``list``) and returns its canonical value or a :class:`Bad` carrying the
  reason: it is the authority and the one place where each message is built;
- ``column`` takes a whole column of raw values and returns the canonical values of the rows it
  can vouch for with cheap whole-column tests (the set of value types, NumPy range checks), and a
  mask of the rows it cannot; only those go through ``check`` (:func:`apply`).

So decisions and messages are those of ``check`` by construction, and a clean batch costs a few
vectorised passes per field. The limits (documented in docs/service.md):

========================================================  =====================
ids, versions, label ids, user ids, units, segment values  1 to 256 characters
arms (the router arm that made a prediction)               1 to 64 letters, digits, _ or -,
                                                           starting with a letter
categories, class labels (predictions, labels)             at most 1,024
text features, feedback comments                           at most 65,536
========================================================  =====================

Every stored string must also be valid Unicode without NUL characters (``\\u0000``): PostgreSQL
keeps neither NUL nor lone surrogates (an unpaired ``\\ud800`` escape in JSON, or invalid UTF-8
in an Arrow string column), so both stores accept exactly the same values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from watchkeeper.errors import IngestError
from watchkeeper.labels import MAX_EXACT_INTEGER, canonical_label
from watchkeeper.schema import ColumnKind, TaskType

__all__ = [
    "ARM",
    "ARM_PATTERN",
    "ARM_RULE",
    "FLAG",
    "ID",
    "LATENCY",
    "MAX_CATEGORY_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_TEXT_LENGTH",
    "MISSING",
    "MISSING_VERSION",
    "PREDICTION",
    "PROBABILITY",
    "TAG",
    "UNIT",
    "VERSION",
    "Bad",
    "FloatColumn",
    "OutOfRange",
    "Rule",
    "Window",
    "apply",
    "arm_name",
    "boolean",
    "category",
    "feature_rule",
    "identifier",
    "instant",
    "json_type",
    "label_rule",
    "number",
    "parse_iso",
    "text",
    "text_problem",
]

MAX_ID_LENGTH: Final = 256
MAX_CATEGORY_LENGTH: Final = 1024
MAX_TEXT_LENGTH: Final = 65_536
# Epoch seconds pass 1e11 only in the year 5138; epoch milliseconds passed it in 1973.
_MILLISECONDS_THRESHOLD = 1e11
_NOT_FINITE = "NaN and infinity are not allowed; send null for a missing value"
_CATEGORY_TYPES = "a string, an integer or a boolean"
_TAG_RULE = f"must have 1 to {MAX_ID_LENGTH} characters and no ',' or '='"
MISSING_VERSION: Final = "missing: every event needs the model version that produced it"
#: What an arm name may hold: the registry's alias rule, so an arm can be named after an alias.
ARM_PATTERN: Final = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,63}")
ARM_RULE: Final = "must be 1 to 64 letters, digits, '_' or '-', starting with a letter"


class Bad:
    """A failed check: the reason travels back instead of a value."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class OutOfRange:
    """A JSON integer with more digits than Python converts (read as this marker, not an int)."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


class _Missing:
    """An absent feature (a key missing from ``features``, a column missing from a table)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def json_type(value: object) -> str:
    """How a raw value is named in a reason (``"a string"``, ``"an object"``, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, OutOfRange):
        return f"a {value.digits}-digit number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def text_problem(value: str, limit: int) -> str | None:
    """Why a string cannot be stored (too long, NUL, lone surrogate); None when it can."""
    if len(value) > limit:
        return f"must have at most {limit} characters, got {len(value)}"
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which the stores cannot keep"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            return (
                f"is not valid Unicode: a lone surrogate {value[error.start]!r} at character "
                f"{error.start} (an unpaired \\ud800-\\udfff escape, or invalid UTF-8)"
            )
    return None


def _storable(values: Sequence[str]) -> bool:
    """Whether every string of a column is free of NUL and lone surrogates (one pass)."""
    joined = "".join(values)
    if "\x00" in joined:
        return False
    if joined.isascii():
        return True
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --------------------------------------------------------------------------- one value


def number(value: object) -> float | Bad | None:
    """A finite number as float64; null is missing."""
    if value is None:
        return None
    if isinstance(value, OutOfRange):
        return Bad("number is out of the float64 range")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Bad(f"expected a number, got {json_type(value)}")
    try:
        result = float(value)
    except OverflowError:
        return Bad("number is out of the float64 range")
    if not math.isfinite(result):
        return Bad(_NOT_FINITE)
    return result


def category(value: object) -> str | Bad | None:
    """A category or class label in :func:`~watchkeeper.labels.canonical_label` form."""
    if value is None:
        return None
    if isinstance(value, str):
        problem = text_problem(value, MAX_CATEGORY_LENGTH)
        return value if problem is None else Bad(problem)
    if isinstance(value, float) and not (
        math.isfinite(value) and value.is_integer() and abs(value) <= MAX_EXACT_INTEGER
    ):
        return Bad(f"expected {_CATEGORY_TYPES}, got the non-integral number {value!r}")
    if isinstance(value, bool | int | float):
        label = canonical_label(value)
        if label is not None and len(label) > MAX_CATEGORY_LENGTH:
            return Bad(f"must have at most {MAX_CATEGORY_LENGTH} characters, got {len(label)}")
        return label
    return Bad(f"expected {_CATEGORY_TYPES}, got {json_type(value)}")


def boolean(value: object) -> bool | Bad | None:
    """``true``/``false`` or 0/1."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    shown = value if isinstance(value, int | float) else ""
    return Bad(f"expected true/false or 0/1, got {json_type(value)} {shown!r}"[:200])


def text(value: object) -> str | Bad | None:
    """A text feature: a string of at most :data:`MAX_TEXT_LENGTH` characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        return Bad(f"expected a string, got {json_type(value)}")
    problem = text_problem(value, MAX_TEXT_LENGTH)
    return value if problem is None else Bad(problem)


def parse_iso(value: str) -> float | None:
    """Epoch seconds of an ISO-8601 date-time (naive means UTC); None when it does not parse."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def instant(value: object) -> float | Bad | None:
    """An ISO-8601 string or epoch seconds, as epoch seconds."""
    if value is None:
        return None
    if isinstance(value, str):
        parsed = parse_iso(value)
        if parsed is None:
            return Bad(f"cannot parse {value[:60]!r} as an ISO-8601 date-time")
        return parsed
    if isinstance(value, bool) or not isinstance(value, int | float | OutOfRange):
        return Bad(f"expected an ISO-8601 string or epoch seconds, got {json_type(value)}")
    return number(value)


def identifier(value: object, *, missing: str | None = None) -> str | Bad | None:
    """An id or version: 1 to :data:`MAX_ID_LENGTH` characters; null fails with ``missing``."""
    if value is None:
        return None if missing is None else Bad(missing)
    if not isinstance(value, str):
        return Bad(f"expected a string, got {json_type(value)}")
    if not value:
        return Bad(f"must have 1 to {MAX_ID_LENGTH} characters, got 0")
    problem = text_problem(value, MAX_ID_LENGTH)
    if problem is not None and len(value) > MAX_ID_LENGTH:
        return Bad(f"must have 1 to {MAX_ID_LENGTH} characters, got {len(value)}")
    return value if problem is None else Bad(problem)


def arm_name(value: object) -> str | Bad | None:
    """The name of a router arm (``champion``, ``canary-2``): :data:`ARM_PATTERN`; null is none."""
    if value is None:
        return None
    if not isinstance(value, str):
        return Bad(f"expected a string, got {json_type(value)}")
    if not ARM_PATTERN.fullmatch(value):
        shown = value if len(value) <= 70 else f"{value[:67]}..."
        return Bad(f"{ARM_RULE}, got {shown!r}")
    return value


def _tag(value: object) -> str | Bad | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return Bad(f"expected a string, got {json_type(value)}")
    if not 0 < len(value) <= MAX_ID_LENGTH or "," in value or "=" in value:
        return Bad(_TAG_RULE)
    problem = text_problem(value, MAX_ID_LENGTH)
    return value if problem is None else Bad(problem)


def _probability(value: object) -> float | Bad | None:
    result = number(value)
    if isinstance(result, float) and not 0.0 <= result <= 1.0:
        return Bad(f"probability {result:g} is outside [0, 1]")
    return result


def _latency(value: object) -> float | Bad | None:
    result = number(value)
    if isinstance(result, float) and result < 0:
        return Bad("must be >= 0")
    return result


def _flag(value: object) -> bool | Bad:
    if value is None or isinstance(value, bool):
        return value is True
    return Bad(f"expected true or false, got {json_type(value)}")


# --------------------------------------------------------------------------- whole columns

Column = Callable[[list[Any]], tuple[list[Any], np.ndarray | None]]
_NONE: frozenset[type] = frozenset({type(None)})
_NUMBER_OR_NULL: frozenset[type] = frozenset({float, int, type(None)})
_FLOAT_OR_NULL: frozenset[type] = frozenset({float, type(None)})
_STRING_OR_NULL: frozenset[type] = frozenset({str, type(None)})
_BOOL_OR_NULL: frozenset[type] = frozenset({bool, type(None)})


def _others(column: list[Any], allowed: frozenset[type]) -> np.ndarray | None:
    """Rows whose value is of a type outside ``allowed`` (exact types: a bool is no int here);
    None when there are none."""
    if set(map(type, column)) <= allowed:
        return None
    return np.fromiter((type(value) not in allowed for value in column), bool, len(column))


def _merge(*masks: np.ndarray | None) -> np.ndarray | None:
    found = [mask for mask in masks if mask is not None and mask.any()]
    if not found:
        return None
    result = found[0].copy()
    for mask in found[1:]:
        result |= mask
    return result


class FloatColumn(list[Any]):
    """A raw column of floats and nulls (a list like any other) that also carries them as
    float64 with NaN for null, and its null mask: Arrow's float columns arrive this way, so the
    rules need not convert them back."""

    __slots__ = ("floats", "nulls")

    def __init__(self, floats: np.ndarray, nulls: np.ndarray) -> None:
        values = _as_objects(floats, nulls) if nulls.any() else floats.tolist()
        super().__init__(values)
        self.floats = floats
        self.nulls = nulls


def _floats(
    column: list[Any], kinds: set[type] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """float64 values (NaN where null) and the rows that are not finite numbers or null
    (``kinds``: the set of value types, when the caller has it)."""
    if type(column) is FloatColumn:
        return column.floats, _merge(~np.isfinite(column.floats) & ~column.nulls)
    kinds = set(map(type, column)) if kinds is None else kinds
    if kinds <= _NONE:
        return np.full(len(column), np.nan), None
    odd = None
    if not kinds <= _NUMBER_OR_NULL:
        odd = np.fromiter((type(value) not in _NUMBER_OR_NULL for value in column), bool)
        column = [None if bad else value for value, bad in zip(column, odd.tolist(), strict=True)]
    try:
        values = np.array(column, dtype=np.float64)
    except OverflowError:
        return np.full(len(column), np.nan), np.ones(len(column), dtype=bool)
    # A null reads as NaN and is fine; a real NaN or infinity is not.
    not_finite = ~np.isfinite(values)
    if not_finite.any():
        not_finite &= np.fromiter((value is not None for value in column), bool, len(column))
    return values, _merge(odd, not_finite)


def _as_objects(values: np.ndarray, nulls: np.ndarray) -> list[Any]:
    objects = values.astype(object)
    objects[nulls] = None
    result: list[Any] = objects.tolist()
    return result


def _number_values(column: list[Any]) -> tuple[list[Any], np.ndarray, np.ndarray | None]:
    """Canonical floats (the column itself when it holds only floats and nulls), the float64
    array (NaN where null) and the rows that are not finite numbers or null."""
    kinds = None if type(column) is FloatColumn else set(map(type, column))
    floats, suspect = _floats(column, kinds)
    if kinds is None or kinds <= _FLOAT_OR_NULL:
        return column, floats, suspect
    missing = np.isnan(floats)
    values = _as_objects(floats, missing) if missing.any() else floats.tolist()
    return values, floats, suspect


def _numbers_column(column: list[Any]) -> tuple[list[Any], np.ndarray | None]:
    values, _, suspect = _number_values(column)
    return values, suspect


def _bounded_numbers(low: float | None, high: float | None) -> Column:
    def column_check(column: list[Any]) -> tuple[list[Any], np.ndarray | None]:
        values, floats, suspect = _number_values(column)
        outside = np.zeros(len(column), dtype=bool)
        with np.errstate(invalid="ignore"):
            if low is not None:
                outside |= floats < low
            if high is not None:
                outside |= floats > high
        return values, _merge(suspect, outside)

    return column_check


def _strings_column(
    limit: int, *, empty_ok: bool, nullable: bool = True, forbidden: str = ""
) -> Column:
    allowed = _STRING_OR_NULL if nullable else frozenset({str})
    shortest = 0 if empty_ok else 1

    def column_check(column: list[Any]) -> tuple[list[Any], np.ndarray | None]:
        # Columns repeat their values: each distinct string is checked once. A column with
        # any problem goes through the per-value checks whole (a rare, slower path), which
        # also keeps a long value shared by every row of a dictionary column from being
        # copied once per row.
        if not set(map(type, column)) <= allowed:
            return column, np.ones(len(column), dtype=bool)
        distinct = set(column)
        distinct.discard(None)
        lengths = list(map(len, distinct))
        if (
            (lengths and not shortest <= min(lengths) <= max(lengths) <= limit)
            or not _storable(list(distinct))
            or any(char in value for value in distinct for char in forbidden)
        ):
            return column, np.ones(len(column), dtype=bool)
        return column, None

    return column_check


def _categories_column(column: list[Any]) -> tuple[list[Any], np.ndarray | None]:
    kinds = set(map(type, column))
    if kinds <= _STRING_OR_NULL:
        return _strings_column(MAX_CATEGORY_LENGTH, empty_ok=True)(column)
    return column, np.ones(len(column), dtype=bool)


def _arms_column(column: list[Any]) -> tuple[list[Any], np.ndarray | None]:
    # A batch holds a few arms: each distinct name is matched once.
    if not set(map(type, column)) <= _STRING_OR_NULL:
        return column, np.ones(len(column), dtype=bool)
    distinct = set(column)
    distinct.discard(None)
    if all(ARM_PATTERN.fullmatch(value) for value in distinct):
        return column, None
    return column, np.ones(len(column), dtype=bool)


def _booleans_column(column: list[Any]) -> tuple[list[Any], np.ndarray | None]:
    return column, _others(column, _BOOL_OR_NULL)


def _everything(column: list[Any]) -> tuple[list[Any], np.ndarray | None]:
    return column, np.ones(len(column), dtype=bool)


def _flags_column(column: list[Any]) -> tuple[list[Any], np.ndarray | None]:
    return [value is True for value in column], _others(column, _BOOL_OR_NULL)


@dataclass(frozen=True, slots=True)
class Rule:
    """How one field is checked: ``check`` for one value, ``column`` for a whole column."""

    check: Callable[[Any], Any]
    column: Column = _everything


def apply(rule: Rule, column: list[Any]) -> tuple[list[Any], list[tuple[int, str]]]:
    """Canonical values of ``column`` (None where rejected) and ``(row, reason)`` per failure.

    The returned list is ``column`` itself when every value was already canonical.
    """
    values, suspect = rule.column(column)
    if suspect is None:
        return values, []
    rows = np.flatnonzero(suspect).tolist()
    if not rows:
        return values, []
    if values is column:
        values = list(column)
    failures: list[tuple[int, str]] = []
    check = rule.check
    for row in rows:
        result = check(column[row])
        if type(result) is Bad:
            failures.append((row, result.reason))
            values[row] = None
        else:
            values[row] = result
    return values, failures


def _feature(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check_feature(value: object) -> Any:
        if value is MISSING:
            return Bad("missing: send null for a missing value")
        return check(value)

    return check_feature


_FEATURE_RULES: Final[dict[ColumnKind, Rule]] = {
    ColumnKind.NUMERIC: Rule(_feature(number), _numbers_column),
    ColumnKind.CATEGORICAL: Rule(_feature(category), _categories_column),
    ColumnKind.BOOLEAN: Rule(_feature(boolean), _booleans_column),
    ColumnKind.DATETIME: Rule(_feature(instant)),
    ColumnKind.TEXT: Rule(_feature(text), _strings_column(MAX_TEXT_LENGTH, empty_ok=True)),
}
#: The event fields other than features, timestamp and the class/segment columns.
ID: Final = Rule(identifier, _strings_column(MAX_ID_LENGTH, empty_ok=False))
VERSION: Final = Rule(
    lambda value: identifier(value, missing=MISSING_VERSION),
    _strings_column(MAX_ID_LENGTH, empty_ok=False, nullable=False),
)
#: The unit an event is about (a user, a session, an account): sticky A/B assignment and
#: outcomes by unit read it.
UNIT: Final = Rule(identifier, _strings_column(MAX_ID_LENGTH, empty_ok=False))
#: The router arm that made the prediction (see watchkeeper.serving).
ARM: Final = Rule(arm_name, _arms_column)
PROBABILITY: Final = Rule(_probability, _bounded_numbers(0.0, 1.0))
LATENCY: Final = Rule(_latency, _bounded_numbers(0.0, None))
FLAG: Final = Rule(_flag, _flags_column)
TAG: Final = Rule(_tag, _strings_column(MAX_ID_LENGTH, empty_ok=False, forbidden=",="))
PREDICTION: Final[dict[TaskType, Rule]] = {
    TaskType.CLASSIFICATION: Rule(category, _categories_column),
    TaskType.REGRESSION: Rule(number, _numbers_column),
}


def feature_rule(kind: ColumnKind) -> Rule:
    """The rule of a feature of ``kind`` (an absent feature is rejected as missing)."""
    return _FEATURE_RULES[ColumnKind(kind)]


def label_rule(kind: ColumnKind) -> Callable[[Any], Any]:
    """The check of a delayed label of ``kind`` (class labels in canonical form)."""
    checks: dict[ColumnKind, Callable[[Any], Any]] = {
        ColumnKind.NUMERIC: number,
        ColumnKind.CATEGORICAL: category,
        ColumnKind.BOOLEAN: boolean,
        ColumnKind.DATETIME: instant,
        ColumnKind.TEXT: text,
    }
    return checks[ColumnKind(kind)]


@dataclass(frozen=True, slots=True)
class Window:
    """The accepted time range of timestamps, and the server time for absent ones.

    ``by_retention``: the earliest accepted time is the model's raw-event retention (tighter
    than the accepted age), so an older event is refused for that reason: stored, it would be
    deleted by the next retention pass after having been acknowledged.
    """

    now: float
    earliest: float
    latest: float
    by_retention: bool = False

    @classmethod
    def build(
        cls,
        now: float,
        max_age_seconds: float,
        max_future_seconds: float,
        retention_seconds: float | None = None,
    ) -> Window:
        """The window around ``now``; IngestError for a bad configuration."""
        if not (math.isfinite(now) and max_age_seconds > 0 and max_future_seconds >= 0):
            raise IngestError(
                f"bad validation window: now={now}, max_age_seconds={max_age_seconds}, "
                f"max_future_seconds={max_future_seconds}; ages must be positive"
            )
        by_retention = retention_seconds is not None and retention_seconds < max_age_seconds
        age = retention_seconds if by_retention and retention_seconds else max_age_seconds
        return cls(
            now=now,
            earliest=now - age,
            latest=now + max_future_seconds,
            by_retention=by_retention,
        )

    def _out_of_range(self, ts: float) -> str | None:
        if ts < self.earliest and self.by_retention:
            return (
                f"older than the model's raw-event retention of "
                f"{(self.now - self.earliest) / 86_400:g} days (retention_days): it would be "
                "deleted at the next retention pass; raise retention_days to keep it"
            )
        if ts < self.earliest:
            return f"older than the accepted age of {self.now - self.earliest:g} s"
        if ts > self.latest:
            hint = " (epoch milliseconds? send seconds)" if ts > _MILLISECONDS_THRESHOLD else ""
            return f"more than {self.latest - self.now:g} s in the future{hint}"
        return None

    def timestamp(self, value: object) -> float | Bad:
        """Epoch seconds of an event time (``now`` when null), or why it is rejected."""
        ts = instant(value)
        if ts is None:
            return self.now
        if isinstance(ts, Bad):
            return ts
        problem = self._out_of_range(ts)
        return Bad(problem) if problem else ts

    def rule(self) -> Rule:
        """The timestamp rule of this window."""
        return Rule(self.timestamp, self._column)

    def _column(self, column: list[Any]) -> tuple[list[Any], np.ndarray | None]:
        kinds = set(map(type, column))
        if kinds <= _NUMBER_OR_NULL:
            values, suspect = _floats(column)
            values = np.where(np.isnan(values), self.now, values)
            with np.errstate(invalid="ignore"):
                outside = (values < self.earliest) | (values > self.latest)
            return values.tolist(), _merge(suspect, outside)
        if kinds <= _STRING_OR_NULL | _NUMBER_OR_NULL:
            # Clients send a few distinct date-time strings per batch: parse each once.
            parsed = {value: self.timestamp(value) for value in dict.fromkeys(column)}
            instants = [parsed[value] for value in column]
            failed = np.fromiter((type(value) is Bad for value in instants), bool, len(column))
            if failed.any():
                instants = [self.now if type(value) is Bad else value for value in instants]
                return instants, failed
            return instants, None
        return [self.now] * len(column), np.ones(len(column), dtype=bool)
