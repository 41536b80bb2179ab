"""Validation of ingested prediction events, labels and feedback (pure: no I/O, no HTTP).

The service hands every decoded batch to :func:`validate_event_batch` (JSON bodies) or
:func:`validate_table` (Arrow IPC / Parquet bodies, decoded by :func:`decode_arrow_stream` /
:func:`decode_parquet`), which return the accepted events as columns (:class:`ValidColumns`);
:func:`validate_events` and :func:`validate_columns` give the same outcome with one
:class:`ValidEvent` per accepted event. Each event is checked on its own: the valid events of
a mixed batch are accepted and every problem of an invalid one is reported as a
:class:`Rejection` with its index in the batch, a dotted field path (``features.age``,
``proba.1``, ``segment.region``, ``timestamp``) and a reason. Only a batch that is not a list,
or is longer than ``max_batch``, raises :class:`~watchkeeper.errors.IngestError` as a whole.

Rules (the same in the JSON and the columnar path):

- ``features``: every declared feature must be present; an explicit ``null`` (a null cell) is a
  missing value, an absent key (an absent column) is an error, an undeclared feature is an
  error. Numeric features take finite numbers; NaN and ±infinity are rejected (send ``null`` for
  a missing value: a NaN that slipped in usually means an upstream bug), and so are numbers in
  strings (``"3.5"``, ``"NaN"``). Boolean features take ``true``/``false`` or 0/1. Categorical
  features take strings, integers, booleans (``"true"``/``"false"``) and integral floats (``2.0``
  becomes ``"2"``); every category is kept as a string. Datetime features take ISO-8601 strings
  or epoch seconds. Text features take strings.
- ``id``: optional string of 1-128 characters; a UUID4 hex is assigned when absent or null.
- ``timestamp``: optional ISO-8601 string (naive means UTC) or epoch seconds; server time when
  absent. Rejected when older than ``max_age_seconds`` or later than ``now +
  max_future_seconds``.
- ``version``: required non-empty string of at most 128 characters.
- ``prediction``: null, or a class label (classification, kept as a string like categories) or
  a finite number (regression).
- ``proba``: null, or a mapping of declared class labels to numbers in [0, 1].
- ``latency_ms``: null or a finite number ≥ 0. ``error``: a boolean (null means false).
- ``segment``: null, or a mapping of declared keys to strings of 1-128 characters without ``,``
  or ``=``; kept as the canonical string ``"k1=v1,k2=v2"`` with sorted keys.
- Any other top-level field is rejected, so a typo (``"feature"``) never loses data silently.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast
from uuid import uuid4

import numpy as np

from watchkeeper.errors import IngestError
from watchkeeper.schema import ColumnKind, TaskType

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "MAX_COMMENT_LENGTH",
    "MAX_ID_LENGTH",
    "EventModel",
    "Rejection",
    "ValidBatch",
    "ValidColumns",
    "ValidEvent",
    "ValidFeedback",
    "ValidLabel",
    "ValidationResult",
    "decode_arrow_stream",
    "decode_parquet",
    "unwrap_batch",
    "validate_columns",
    "validate_event_batch",
    "validate_events",
    "validate_feedback",
    "validate_labels",
    "validate_table",
]

MAX_ID_LENGTH = 128
MAX_COMMENT_LENGTH = 2000
_MAX_TAG_LENGTH = 128
# Integral floats are accepted as categories only where float64 represents every integer.
_MAX_EXACT_INTEGER = 2.0**53
# Epoch seconds pass 1e11 only in the year 5138; epoch milliseconds passed it in 1973.
_MILLISECONDS_THRESHOLD = 1e11
_TAG_RULE = f"must have 1 to {_MAX_TAG_LENGTH} characters and no ',' or '='"
_MISSING_VERSION = "missing: every event needs the model version that produced it"
_EVENT_FIELDS = frozenset(
    {
        "id",
        "timestamp",
        "version",
        "features",
        "prediction",
        "proba",
        "latency_ms",
        "error",
        "segment",
    }
)
_LABEL_FIELDS = frozenset({"id", "label", "timestamp"})
_FEEDBACK_FIELDS = frozenset({"id", "user_id", "rating", "comment", "timestamp"})

FeatureValue = float | str | bool | None
Prediction = str | float | None
T = TypeVar("T")


class EventModel(Protocol):
    """What validation reads from a model's configuration (a ModelSpec satisfies it)."""

    @property
    def task(self) -> TaskType: ...

    @property
    def features(self) -> Mapping[str, ColumnKind]: ...

    @property
    def proba(self) -> Mapping[str, str] | None: ...

    @property
    def segments(self) -> Sequence[str]: ...

    @property
    def target_kind(self) -> ColumnKind | None: ...


@dataclass(frozen=True, slots=True)
class Rejection:
    """One problem of one item: its ``index`` in the batch, a dotted ``field`` and the reason."""

    index: int
    field: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        """The wire form ``{"index", "field", "reason"}``."""
        return {"index": self.index, "field": self.field, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ValidEvent:
    """An accepted prediction event with canonical values.

    ``ts`` is epoch seconds, ``segment`` the canonical ``"k=v,..."`` string (``""`` for none),
    ``features`` maps every declared feature to a float (numeric, datetime as epoch seconds),
    a string (categorical, text), a bool (boolean) or ``None`` (missing).
    """

    index: int
    id: str
    ts: float
    version: str
    features: dict[str, FeatureValue]
    prediction: Prediction = None
    proba: dict[str, float] | None = None
    latency_ms: float | None = None
    error: bool = False
    segment: str = ""

    @property
    def event_id(self) -> str:
        """``id`` under the store's name for it: a validated event is stored as it is."""
        return self.id


@dataclass(frozen=True, slots=True)
class ValidColumns:
    """Accepted prediction events as columns, in batch order: what :class:`ValidEvent` holds
    per event, one list per field (``index`` is each event's position in the batch).

    ``features`` has one column of canonical values per declared feature. ``rows`` holds the
    events' feature objects when the validator already has them (a JSON batch whose objects
    hold exactly the canonical values); :meth:`feature_rows` builds them otherwise. The
    monitor folds and stores these columns without building an object per event.
    """

    index: list[int]
    ids: list[str]
    ts: list[float]
    versions: list[str]
    features: dict[str, list[FeatureValue]]
    predictions: list[Prediction]
    probas: list[dict[str, float] | None]
    latency_ms: list[float | None]
    errors: list[bool]
    segments: list[str]
    rows: list[dict[str, FeatureValue]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def feature_rows(self) -> list[dict[str, FeatureValue]]:
        """One ``{feature: value}`` object per event."""
        if self.rows is not None:
            return self.rows
        names = list(self.features)
        if not names:
            return [{} for _ in self.ids]
        return [
            dict(zip(names, row, strict=True)) for row in zip(*self.features.values(), strict=True)
        ]

    def events(self) -> list[ValidEvent]:
        """The same events as :class:`ValidEvent` objects."""
        return [
            ValidEvent(
                index=index,
                id=event_id,
                ts=ts,
                version=version,
                features=features,
                prediction=prediction,
                proba=proba,
                latency_ms=latency,
                error=error,
                segment=segment,
            )
            for index, event_id, ts, version, features, prediction, proba, latency, error, segment
            in zip(
                self.index,
                self.ids,
                self.ts,
                self.versions,
                self.feature_rows(),
                self.predictions,
                self.probas,
                self.latency_ms,
                self.errors,
                self.segments,
                strict=True,
            )
        ]  # fmt: skip

    @classmethod
    def of(cls, events: Sequence[ValidEvent], names: Sequence[str]) -> ValidColumns:
        """Columns of ``events`` (``names``: the declared features, in order)."""
        rows = [event.features for event in events]
        return cls(
            index=[event.index for event in events],
            ids=[event.id for event in events],
            ts=[event.ts for event in events],
            versions=[event.version for event in events],
            features={name: [row.get(name) for row in rows] for name in names},
            predictions=[event.prediction for event in events],
            probas=[event.proba for event in events],
            latency_ms=[event.latency_ms for event in events],
            errors=[event.error for event in events],
            segments=[event.segment for event in events],
            rows=rows,
        )

    def take(self, positions: Sequence[int]) -> ValidColumns:
        """The events at ``positions`` (ascending positions in these columns)."""

        def pick(column: Sequence[Any]) -> list[Any]:
            return [column[position] for position in positions]

        return ValidColumns(
            index=pick(self.index),
            ids=pick(self.ids),
            ts=pick(self.ts),
            versions=pick(self.versions),
            features={name: pick(column) for name, column in self.features.items()},
            predictions=pick(self.predictions),
            probas=pick(self.probas),
            latency_ms=pick(self.latency_ms),
            errors=pick(self.errors),
            segments=pick(self.segments),
            rows=None if self.rows is None else pick(self.rows),
        )


@dataclass(frozen=True, slots=True)
class ValidBatch:
    """The outcome of validating a batch of events: accepted ones as columns, and every
    problem of the rejected ones."""

    accepted: ValidColumns
    rejected: list[Rejection]

    def result(self) -> ValidationResult[ValidEvent]:
        """The same outcome with one :class:`ValidEvent` per accepted event."""
        return ValidationResult(accepted=self.accepted.events(), rejected=self.rejected)


@dataclass(frozen=True, slots=True)
class ValidLabel:
    """An accepted delayed label for the event ``id`` (canonical like a prediction)."""

    index: int
    id: str
    label: str | float | bool
    ts: float


@dataclass(frozen=True, slots=True)
class ValidFeedback:
    """An accepted user rating (1-5) of the event ``id``."""

    index: int
    id: str
    user_id: str
    rating: int
    comment: str | None
    ts: float


@dataclass(frozen=True, slots=True)
class ValidationResult(Generic[T]):
    """Accepted items in batch order, and every problem of the rejected ones."""

    accepted: list[T] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def rejected_indices(self) -> list[int]:
        """Indices of the rejected items, ascending and distinct."""
        return sorted({rejection.index for rejection in self.rejected})


class _Bad:
    """A failed check: the reason travels back instead of a value."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


Checker = Callable[[Any], Any]


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


_NOT_FINITE = "NaN and infinity are not allowed; send null for a missing value"
_CATEGORY_TYPES = "a string, an integer or a boolean"


def _number(value: object) -> float | _Bad | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _Bad(f"expected a number, got {_json_type(value)}")
    try:
        number = float(value)
    except OverflowError:
        return _Bad("number is out of the float64 range")
    if not math.isfinite(number):
        return _Bad(_NOT_FINITE)
    return number


def _category(value: object) -> str | _Bad | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < _MAX_EXACT_INTEGER:
            return str(int(value))
        return _Bad(f"expected {_CATEGORY_TYPES}, got the non-integral number {value!r}")
    return _Bad(f"expected {_CATEGORY_TYPES}, got {_json_type(value)}")


def _boolean(value: object) -> bool | _Bad | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    return _Bad(f"expected true/false or 0/1, got {_json_type(value)} {value!r}"[:200])


def _text(value: object) -> str | _Bad | None:
    if value is None or isinstance(value, str):
        return value
    return _Bad(f"expected a string, got {_json_type(value)}")


def _parse_iso(text: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _instant(value: object) -> float | _Bad | None:
    if value is None:
        return None
    if isinstance(value, str):
        parsed = _parse_iso(value)
        if parsed is None:
            return _Bad(f"cannot parse {value[:60]!r} as an ISO-8601 date-time")
        return parsed
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _Bad(f"expected an ISO-8601 string or epoch seconds, got {_json_type(value)}")
    return _number(value)


_FEATURE_CHECKERS: dict[ColumnKind, Checker] = {
    ColumnKind.NUMERIC: _number,
    ColumnKind.CATEGORICAL: _category,
    ColumnKind.BOOLEAN: _boolean,
    ColumnKind.DATETIME: _instant,
    ColumnKind.TEXT: _text,
}
_CHECKER_KINDS: dict[Checker, ColumnKind] = {
    checker: kind for kind, checker in _FEATURE_CHECKERS.items()
}


def _prediction_kind(model: EventModel) -> ColumnKind:
    if model.task is TaskType.CLASSIFICATION:
        return ColumnKind.CATEGORICAL
    return ColumnKind.NUMERIC


@dataclass(frozen=True, slots=True)
class _Window:
    """The accepted time range of timestamps, and the server time for absent ones."""

    now: float
    earliest: float
    latest: float

    @classmethod
    def build(cls, now: float, max_age_seconds: float, max_future_seconds: float) -> _Window:
        if not (math.isfinite(now) and max_age_seconds > 0 and max_future_seconds >= 0):
            raise IngestError(
                f"bad validation window: now={now}, max_age_seconds={max_age_seconds}, "
                f"max_future_seconds={max_future_seconds}; ages must be positive"
            )
        return cls(now=now, earliest=now - max_age_seconds, latest=now + max_future_seconds)

    def too_old(self) -> str:
        return f"older than the accepted age of {self.now - self.earliest:g} s"

    def too_late(self, *, looks_like_milliseconds: bool) -> str:
        hint = " (epoch milliseconds? send seconds)" if looks_like_milliseconds else ""
        return f"more than {self.latest - self.now:g} s in the future{hint}"

    def out_of_range(self, ts: float) -> str | None:
        if ts < self.earliest:
            return self.too_old()
        if ts > self.latest:
            return self.too_late(looks_like_milliseconds=ts > _MILLISECONDS_THRESHOLD)
        return None

    def timestamp(self, value: object) -> float | _Bad:
        if value is None:
            return self.now
        ts = _instant(value)
        if isinstance(ts, _Bad) or ts is None:
            return ts if isinstance(ts, _Bad) else self.now
        problem = self.out_of_range(ts)
        return _Bad(problem) if problem else ts


def _check_batch(payload: object, max_batch: int, what: str) -> list[Any]:
    if not isinstance(payload, list):
        raise IngestError(f"{what} must be a JSON list, got {_json_type(payload)}", field=what)
    if len(payload) > max_batch:
        raise IngestError(
            f"batch has {len(payload)} {what}; the limit is {max_batch}: split it into smaller "
            "batches",
            field=what,
        )
    return payload


def unwrap_batch(body: object, key: str) -> list[Any]:
    """Return ``body[key]`` of a JSON body such as ``{"events": [...]}``; IngestError if absent."""
    if not isinstance(body, Mapping) or not isinstance(body.get(key), list):
        raise IngestError(f'the body must be a JSON object {{"{key}": [...]}}', field=key)
    items: list[Any] = body[key]
    return items


def _check_id(value: object, *, required: bool) -> str | _Bad | None:
    if value is None:
        return _Bad("missing") if required else None
    if not isinstance(value, str):
        return _Bad(f"expected a string, got {_json_type(value)}")
    if not 0 < len(value) <= MAX_ID_LENGTH:
        return _Bad(f"must have 1 to {MAX_ID_LENGTH} characters, got {len(value)}")
    return value


def _check_version(value: object) -> str | _Bad:
    if value is None:
        return _Bad(_MISSING_VERSION)
    if not isinstance(value, str):
        return _Bad(f"expected a string, got {_json_type(value)}")
    if not 0 < len(value) <= MAX_ID_LENGTH:
        return _Bad(f"must have 1 to {MAX_ID_LENGTH} characters, got {len(value)}")
    return value


def _check_tag(value: object) -> str | _Bad:
    if not isinstance(value, str):
        return _Bad(f"expected a string, got {_json_type(value)}")
    if not 0 < len(value) <= _MAX_TAG_LENGTH or "," in value or "=" in value:
        return _Bad(_TAG_RULE)
    return value


def _probability(value: object) -> float | _Bad:
    number = _number(value)
    if number is None or isinstance(number, _Bad):
        return number if isinstance(number, _Bad) else _Bad("expected a number, got null")
    if not 0.0 <= number <= 1.0:
        return _Bad(f"probability {number:g} is outside [0, 1]")
    return number


@dataclass(slots=True)
class _EventRules:
    feature_checkers: dict[str, Checker]
    prediction: Checker
    classes: frozenset[str]
    segments: frozenset[str]
    window: _Window

    @classmethod
    def build(cls, model: EventModel, window: _Window) -> _EventRules:
        return cls(
            feature_checkers={
                name: _FEATURE_CHECKERS[ColumnKind(kind)] for name, kind in model.features.items()
            },
            prediction=_FEATURE_CHECKERS[_prediction_kind(model)],
            classes=frozenset(model.proba or ()),
            segments=frozenset(model.segments),
            window=window,
        )

    def check(self, index: int, raw: object, problems: list[Rejection]) -> ValidEvent | None:
        if not isinstance(raw, Mapping):
            problems.append(Rejection(index, "event", f"expected an object, got {_json_type(raw)}"))
            return None
        before = len(problems)

        def bad(field_name: str, reason: str) -> None:
            problems.append(Rejection(index, field_name, reason))

        for key in raw:
            if key not in _EVENT_FIELDS:
                bad(str(key), "unknown field")
        event_id = _check_id(raw.get("id"), required=False)
        if isinstance(event_id, _Bad):
            bad("id", event_id.reason)
        ts = self.window.timestamp(raw.get("timestamp"))
        if isinstance(ts, _Bad):
            bad("timestamp", ts.reason)
        version = _check_version(raw.get("version"))
        if isinstance(version, _Bad):
            bad("version", version.reason)
        features = self._features(raw.get("features"), bad)
        prediction = self.prediction(raw.get("prediction"))
        if isinstance(prediction, _Bad):
            bad("prediction", prediction.reason)
        proba = self._proba(raw.get("proba"), bad)
        latency = _number(raw.get("latency_ms"))
        if isinstance(latency, _Bad) or (latency is not None and latency < 0):
            bad("latency_ms", latency.reason if isinstance(latency, _Bad) else "must be >= 0")
        error = raw.get("error")
        if error is not None and not isinstance(error, bool):
            bad("error", f"expected true or false, got {_json_type(error)}")
        segment = self._segment(raw.get("segment"), bad)
        if len(problems) > before:
            return None
        return ValidEvent(
            index=index,
            id=event_id if isinstance(event_id, str) else uuid4().hex,
            ts=cast(float, ts),
            version=cast(str, version),
            features=features,
            prediction=prediction,
            proba=proba,
            latency_ms=cast("float | None", latency),
            error=bool(error),
            segment=segment,
        )

    def _features(self, raw: object, bad: Callable[[str, str], None]) -> dict[str, FeatureValue]:
        if not isinstance(raw, Mapping):
            bad("features", f"expected an object of feature values, got {_json_type(raw)}")
            return {}
        features: dict[str, FeatureValue] = {}
        for name, checker in self.feature_checkers.items():
            if name not in raw:
                bad(f"features.{name}", "missing: send null for a missing value")
                continue
            value = checker(raw[name])
            if isinstance(value, _Bad):
                bad(f"features.{name}", value.reason)
            else:
                features[name] = value
        for name in raw:
            if name not in self.feature_checkers:
                bad(f"features.{name}", "unknown feature")
        return features

    def _proba(self, raw: object, bad: Callable[[str, str], None]) -> dict[str, float] | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            bad("proba", f"expected an object of class probabilities, got {_json_type(raw)}")
            return None
        proba: dict[str, float] = {}
        for label, value in raw.items():
            if label not in self.classes:
                declared = ", ".join(sorted(self.classes)) or "none"
                bad(f"proba.{label}", f"unknown class (declared: {declared})")
                continue
            probability = _probability(value)
            if isinstance(probability, _Bad):
                bad(f"proba.{label}", probability.reason)
            else:
                proba[label] = probability
        return proba or None

    def _segment(self, raw: object, bad: Callable[[str, str], None]) -> str:
        if raw is None:
            return ""
        if not isinstance(raw, Mapping):
            bad("segment", f"expected an object of tag values, got {_json_type(raw)}")
            return ""
        valid = True
        for key, value in raw.items():
            if key not in self.segments:
                declared = ", ".join(sorted(self.segments)) or "none"
                bad(f"segment.{key}", f"segment key is not declared (declared: {declared})")
                valid = False
                continue
            tag = _check_tag(value)
            if isinstance(tag, _Bad):
                bad(f"segment.{key}", tag.reason)
                valid = False
        return ",".join(f"{key}={raw[key]}" for key in sorted(raw)) if valid else ""


def validate_events(
    payload: list[Any],
    model: EventModel,
    *,
    now: float,
    max_age_seconds: float,
    max_future_seconds: float = 300.0,
    max_batch: int,
) -> ValidationResult[ValidEvent]:
    """Validate a decoded JSON batch of prediction events against ``model``.

    Each event is checked on its own; see the module docstring for the rules. Raises
    :class:`IngestError` only when ``payload`` is not a list or has more than ``max_batch``
    events.

    Example
    -------
    >>> from watchkeeper.modelspec import ModelSpec
    >>> spec = ModelSpec(name="m", task="regression", features={"x": "numeric"})
    >>> result = validate_events(
    ...     [{"version": "1", "features": {"x": 1}}, {"version": "1", "features": {"x": "a"}}],
    ...     spec, now=1e9, max_age_seconds=3600, max_batch=10)
    >>> len(result.accepted), result.rejected[0]
    (1, Rejection(index=1, field='features.x', reason='expected a number, got a string'))
    """
    return validate_event_batch(
        payload,
        model,
        now=now,
        max_age_seconds=max_age_seconds,
        max_future_seconds=max_future_seconds,
        max_batch=max_batch,
    ).result()


def validate_event_batch(
    payload: list[Any],
    model: EventModel,
    *,
    now: float,
    max_age_seconds: float,
    max_future_seconds: float = 300.0,
    max_batch: int,
) -> ValidBatch:
    """:func:`validate_events` with the accepted events as columns (no object per event)."""
    events = _check_batch(payload, max_batch, "events")
    rules = _EventRules.build(model, _Window.build(now, max_age_seconds, max_future_seconds))
    return _FastEvents(rules, events).validate()


def _validate_each(events: list[Any], rules: _EventRules) -> ValidationResult[ValidEvent]:
    """The reference path: every event through :meth:`_EventRules.check` on its own."""
    accepted: list[ValidEvent] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(events):
        event = rules.check(index, raw, rejected)
        if event is not None:
            accepted.append(event)
    return ValidationResult(accepted=accepted, rejected=rejected)


# Exact types (``type(v) in ...``): ``bool`` is a subclass of ``int`` and must not pass as one.
_NUMBER_OR_NULL: frozenset[type] = frozenset({float, int, type(None)})
_STRING_OR_NULL: frozenset[type] = frozenset({str, type(None)})
_BOOL_OR_NULL: frozenset[type] = frozenset({bool, type(None)})
_FLOAT_OR_NULL: frozenset[type] = frozenset({float, type(None)})
_HASHABLE_INSTANTS: frozenset[type] = frozenset({str, float, int, type(None)})
_OBJECT: frozenset[type] = frozenset({dict})
_EMPTY: dict[str, Any] = {}


def _other_types(column: Sequence[Any], allowed: frozenset[type]) -> np.ndarray | None:
    """Rows whose value is of a type outside ``allowed``; None when there are none."""
    if set(map(type, column)) <= allowed:
        return None
    return np.fromiter((type(value) not in allowed for value in column), bool, len(column))


def _failed(values: list[Any]) -> np.ndarray | None:
    """Rows where a per-value checker returned a failure; None when there are none."""
    if _Bad not in set(map(type, values)):
        return None
    return np.fromiter((type(value) is _Bad for value in values), bool, len(values))


class _FastEvents:
    """The vectorised pass over a JSON batch, with results identical to :func:`_validate_each`.

    Each field is read as one column and checked with cheap whole-column tests (the set of
    value types, NumPy range checks). A row that any test cannot vouch for is "suspect" and
    goes through the per-event checks, which produce every rejection and its message; so the
    accept/reject decisions and messages are those of the reference path by construction, and
    the fast path only builds the accepted events of rows that pass every test.
    """

    def __init__(self, rules: _EventRules, events: list[Any]) -> None:
        self.rules = rules
        self.events = events
        self.size = len(events)
        self.suspect = np.zeros(self.size, dtype=bool)
        odd = _other_types(events, _OBJECT)
        if odd is not None:
            self.mark(odd)
            events = [_EMPTY if bad else raw for raw, bad in zip(events, odd.tolist(), strict=True)]
        self.view: list[dict[str, Any]] = events
        fields = _EVENT_FIELDS
        self.mark(np.fromiter((not raw.keys() <= fields for raw in events), bool, self.size))

    def mark(self, rows: np.ndarray | None) -> None:
        if rows is not None:
            self.suspect |= rows

    def column(self, name: str) -> list[Any]:
        return [raw.get(name) for raw in self.view]

    def numbers(self, column: Sequence[Any], kinds: set[type] | None = None) -> np.ndarray:
        """float64 values (NaN where null); any value but a finite number or null is suspect."""
        kinds = set(map(type, column)) if kinds is None else kinds
        if not kinds <= _NUMBER_OR_NULL:
            odd = np.fromiter((type(value) not in _NUMBER_OR_NULL for value in column), bool)
            self.mark(odd)
            column = [
                None if bad else value for value, bad in zip(column, odd.tolist(), strict=True)
            ]
        try:
            values = np.array(column, dtype=np.float64)
        except OverflowError:
            self.suspect[:] = True
            return np.full(self.size, np.nan)
        not_finite = np.flatnonzero(~np.isfinite(values)).tolist()
        # A null reads as NaN and is fine; a real NaN or infinity (orjson's fallback parser
        # reads the bare tokens) is rejected by the per-event checks.
        self.suspect[[row for row in not_finite if column[row] is not None]] = True
        return values

    def checked(self, column: Sequence[Any], checker: Checker) -> list[Any]:
        """Values through a per-value checker; rows where it fails are suspect."""
        values = list(map(checker, column))
        self.mark(_failed(values))
        return values

    def strings(self, column: Sequence[Any], *, nullable: bool, limit: int) -> None:
        """Mark rows that are not strings of 1 to ``limit`` characters (or null if allowed)."""
        allowed = _STRING_OR_NULL if nullable else frozenset({str})
        self.mark(_other_types(column, allowed))
        lengths = np.fromiter(
            (len(value) if type(value) is str else 1 for value in column), np.int64, self.size
        )
        self.mark((lengths < 1) | (lengths > limit))

    def feature_values(self, kind: ColumnKind, column: Sequence[Any]) -> tuple[list[Any], bool]:
        """Canonical values of one feature column (only the non-suspect rows are used), and
        whether they are the sent values themselves."""
        kinds = set(map(type, column))
        if kind is ColumnKind.NUMERIC:
            values = self.numbers(column, kinds)
            if kinds <= _FLOAT_OR_NULL:
                return list(column), True
            missing = np.isnan(values)
            return (_as_objects(values, missing) if missing.any() else values.tolist()), False
        if kind in (ColumnKind.CATEGORICAL, ColumnKind.TEXT) and kinds <= _STRING_OR_NULL:
            return list(column), True
        if kind is ColumnKind.BOOLEAN and kinds <= _BOOL_OR_NULL:
            return list(column), True
        return self.checked(column, _FEATURE_CHECKERS[kind]), False

    def features(self) -> tuple[list[str], list[list[Any]], list[dict[str, Any]] | None]:
        """Feature names, one column of canonical values per feature, and the sent feature
        objects when they already hold exactly the canonical values (None otherwise)."""
        checkers = self.rules.feature_checkers
        names = list(checkers)
        maps = self.column("features")
        if not names:
            self.mark(np.fromiter((type(raw) is not dict or bool(raw) for raw in maps), bool))
            return names, [], maps
        getter = itemgetter(*names)
        rows: list[Any] | None = None
        lengths = np.fromiter(map(len, maps), np.int64) if set(map(type, maps)) == _OBJECT else None
        if lengths is not None and (lengths == len(names)).all():
            # As many keys as declared and every declared key present: exactly the declared set.
            with contextlib.suppress(KeyError):
                rows = list(map(getter, maps))
        if rows is None:
            declared = set(names)
            good = np.fromiter(
                (type(raw) is dict and raw.keys() == declared for raw in maps), bool, self.size
            )
            self.mark(~good)
            filler = dict.fromkeys(names)
            maps = [raw if ok else filler for raw, ok in zip(maps, good.tolist(), strict=True)]
            rows = list(map(getter, maps))
        if len(names) == 1:
            rows = [(value,) for value in rows]
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        kinds = [_CHECKER_KINDS[checkers[name]] for name in names]
        results = [
            self.feature_values(kind, column) for kind, column in zip(kinds, columns, strict=True)
        ]
        same = all(identical for _, identical in results)
        return names, [values for values, _ in results], maps if same else None

    def timestamps(self) -> list[float]:
        window = self.rules.window
        column = self.column("timestamp")
        kinds = set(map(type, column))
        if kinds <= _NUMBER_OR_NULL:
            values = self.numbers(column)
            values[np.isnan(values)] = window.now
            self.mark((values < window.earliest) | (values > window.latest))
            result: list[float] = values.tolist()
            return result
        if kinds <= _HASHABLE_INSTANTS and str in kinds:
            # Clients send a few distinct date-time strings per batch: parse each once.
            parsed = {value: window.timestamp(value) for value in dict.fromkeys(column)}
            instants = [parsed[value] for value in column]
        else:
            instants = list(map(window.timestamp, column))
        bad = _failed(instants)
        self.mark(bad)
        if bad is not None:
            instants = [window.now if type(value) is _Bad else value for value in instants]
        return cast("list[float]", instants)

    def mappings(
        self, name: str, check: Callable[[object, Callable[[str, str], None]], Any]
    ) -> list[Any]:
        """``proba`` / ``segment`` values through their per-event check (nulls skip it)."""
        column = self.column(name)
        failures: list[str] = []

        def note(_field: str, reason: str) -> None:
            failures.append(reason)

        if set(map(type, column)) == {type(None)}:
            return [check(None, note)] * self.size

        failed = np.zeros(self.size, dtype=bool)
        values = []
        for row, raw in enumerate(column):
            before = len(failures)
            values.append(check(raw, note))
            failed[row] = len(failures) > before
        self.mark(failed)
        return values

    def validate(self) -> ValidBatch:
        rules = self.rules
        ids = self.column("id")
        self.strings(ids, nullable=True, limit=MAX_ID_LENGTH)
        versions = self.column("version")
        self.strings(versions, nullable=False, limit=MAX_ID_LENGTH)
        timestamps = self.timestamps()
        names, features, sent = self.features()
        if rules.prediction is _number:
            predictions, _ = self.feature_values(ColumnKind.NUMERIC, self.column("prediction"))
        else:
            predictions, _ = self.feature_values(ColumnKind.CATEGORICAL, self.column("prediction"))
        probas = self.mappings("proba", rules._proba)
        latency = self.numbers(self.column("latency_ms"))
        with np.errstate(invalid="ignore"):
            self.mark(latency < 0)
        latencies = _as_objects(latency, np.isnan(latency))
        errors = self.column("error")
        self.mark(_other_types(errors, _BOOL_OR_NULL))
        segments = self.mappings("segment", rules._segment)

        everything = ValidColumns(
            index=list(range(self.size)),
            ids=ids,
            ts=timestamps,
            versions=versions,
            features=dict(zip(names, features, strict=True)),
            predictions=predictions,
            probas=probas,
            latency_ms=latencies,
            errors=[error is True for error in errors],
            segments=segments,
            rows=sent,
        )
        accepted = _accepted(everything, np.flatnonzero(~self.suspect).tolist())
        rejected: list[Rejection] = []
        checked = [
            (row, rules.check(row, self.events[row], rejected))
            for row in np.flatnonzero(self.suspect).tolist()
        ]
        if any(event is not None for _, event in checked):
            # A row the column tests could not vouch for passed the per-event checks: merge.
            slots: list[ValidEvent | None] = [None] * self.size
            for row, event in checked:
                slots[row] = event
            for event in accepted.events():
                slots[event.index] = event
            merged = [event for event in slots if event is not None]
            accepted = ValidColumns.of(merged, names)
        return ValidBatch(accepted=accepted, rejected=rejected)


def _accepted(columns: ValidColumns, rows: list[int]) -> ValidColumns:
    """The events at ``rows`` (ascending), with a new id for each one sent without an id."""
    if len(rows) < len(columns):
        columns = columns.take(rows)
    sent = cast("list[str | None]", columns.ids)  # None where the event had no id
    if None in sent:
        missing = iter(_new_ids(sent.count(None)))
        ids = [event_id if event_id is not None else next(missing) for event_id in sent]
        columns = replace(columns, ids=ids)
    return columns


def validate_labels(
    payload: list[Any],
    model: EventModel,
    *,
    now: float,
    max_age_seconds: float,
    max_future_seconds: float = 300.0,
    max_batch: int,
) -> ValidationResult[ValidLabel]:
    """Validate delayed labels ``[{"id", "label", "timestamp"?}]`` against ``model``.

    The label kind is ``model.target_kind``, or categorical / numeric by the task; a label may
    not be null (send nothing instead). Class labels are kept as strings like predictions.
    """
    items = _check_batch(payload, max_batch, "labels")
    window = _Window.build(now, max_age_seconds, max_future_seconds)
    kind = model.target_kind if model.target_kind is not None else _prediction_kind(model)
    checker = _FEATURE_CHECKERS[ColumnKind(kind)]
    accepted: list[ValidLabel] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(items):
        problems = _common_checks(index, raw, _LABEL_FIELDS, window, rejected)
        if problems is None:
            continue
        label = checker(raw.get("label"))
        if label is None:
            problems.append(Rejection(index, "label", "missing: a label may not be null"))
        elif isinstance(label, _Bad):
            problems.append(Rejection(index, "label", label.reason))
        if problems:
            rejected.extend(problems)
            continue
        ts = cast(float, window.timestamp(raw.get("timestamp")))
        accepted.append(ValidLabel(index=index, id=raw["id"], label=label, ts=ts))
    return ValidationResult(accepted=accepted, rejected=rejected)


def validate_feedback(
    payload: list[Any],
    model: EventModel,
    *,
    now: float,
    max_age_seconds: float,
    max_future_seconds: float = 300.0,
    max_batch: int,
) -> ValidationResult[ValidFeedback]:
    """Validate user feedback ``[{"id", "user_id", "rating" 1..5, "comment"?, "timestamp"?}]``.

    ``model`` is accepted for symmetry with the other validators (feedback has no model-specific
    fields).
    """
    del model
    items = _check_batch(payload, max_batch, "feedback")
    window = _Window.build(now, max_age_seconds, max_future_seconds)
    accepted: list[ValidFeedback] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(items):
        problems = _common_checks(index, raw, _FEEDBACK_FIELDS, window, rejected)
        if problems is None:
            continue
        user_id = _check_id(raw.get("user_id"), required=True)
        if isinstance(user_id, _Bad):
            problems.append(Rejection(index, "user_id", user_id.reason))
        rating = raw.get("rating")
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            problems.append(
                Rejection(index, "rating", f"expected an integer from 1 to 5, got {rating!r}"[:80])
            )
        comment = raw.get("comment")
        if comment is not None and (
            not isinstance(comment, str) or len(comment) > MAX_COMMENT_LENGTH
        ):
            problems.append(
                Rejection(
                    index,
                    "comment",
                    f"expected a string of at most {MAX_COMMENT_LENGTH} characters or null",
                )
            )
        if problems:
            rejected.extend(problems)
            continue
        accepted.append(
            ValidFeedback(
                index=index,
                id=raw["id"],
                user_id=cast(str, user_id),
                rating=cast(int, rating),
                comment=comment,
                ts=cast(float, window.timestamp(raw.get("timestamp"))),
            )
        )
    return ValidationResult(accepted=accepted, rejected=rejected)


def _common_checks(
    index: int,
    raw: object,
    fields: frozenset[str],
    window: _Window,
    rejected: list[Rejection],
) -> list[Rejection] | None:
    """Shape, unknown fields, ``id`` and ``timestamp`` of a label or feedback item."""
    if not isinstance(raw, Mapping):
        rejected.append(Rejection(index, "item", f"expected an object, got {_json_type(raw)}"))
        return None
    problems = [Rejection(index, str(key), "unknown field") for key in raw if key not in fields]
    item_id = _check_id(raw.get("id"), required=True)
    if isinstance(item_id, _Bad):
        problems.append(Rejection(index, "id", item_id.reason))
    ts = window.timestamp(raw.get("timestamp"))
    if isinstance(ts, _Bad):
        problems.append(Rejection(index, "timestamp", ts.reason))
    return problems


# ---------------------------------------------------------------------------------------------
# Columnar bodies (Arrow IPC stream, Parquet)


def decode_arrow_stream(body: bytes) -> pa.Table:
    """Decode an Arrow IPC stream body into a table; IngestError when it is corrupt."""
    import pyarrow as pa

    try:
        with pa.ipc.open_stream(pa.BufferReader(body)) as reader:
            return reader.read_all()
    except (pa.ArrowException, OSError, ValueError) as error:
        raise IngestError(
            f"the body is not a valid Arrow IPC stream ({error}); send the bytes written by "
            "pyarrow.ipc.new_stream",
            field="body",
        ) from error


def decode_parquet(body: bytes) -> pa.Table:
    """Decode a Parquet file body into a table; IngestError when it is corrupt."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(pa.BufferReader(body))
    except (pa.ArrowException, OSError, ValueError) as error:
        raise IngestError(
            f"the body is not a valid Parquet file ({error}); send the bytes written by "
            "pyarrow.parquet.write_table",
            field="body",
        ) from error


@dataclass(slots=True)
class _Problems:
    """Row masks of failed checks, turned into Rejections once at the end."""

    size: int
    masks: list[tuple[np.ndarray, str, str]] = field(default_factory=list)

    def add(self, mask: np.ndarray, field_name: str, reason: str) -> None:
        if mask.any():
            self.masks.append((mask, field_name, reason))

    def everywhere(self, field_name: str, reason: str) -> None:
        self.add(np.ones(self.size, dtype=bool), field_name, reason)

    def bad_rows(self) -> np.ndarray:
        bad = np.zeros(self.size, dtype=bool)
        for mask, _, _ in self.masks:
            bad |= mask
        return bad

    def rejections(self) -> list[Rejection]:
        rejections = [
            Rejection(int(index), field_name, reason)
            for mask, field_name, reason in self.masks
            for index in np.flatnonzero(mask)
        ]
        rejections.sort(key=lambda rejection: rejection.index)
        return rejections


def _plain(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous array with dictionaries and string views decoded."""
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
        array = array.cast(pa.string())
    return array


def _nulls(array: pa.Array) -> np.ndarray:
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _is_number_type(data_type: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    )


def _arrow_type_name(data_type: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_string(data_type):
        return "a string"
    if pa.types.is_boolean(data_type):
        return "a boolean"
    return f"Arrow type {data_type}"


def _pylist(array: pa.Array) -> list[Any]:
    values: list[Any] = array.to_pylist()
    return values


def _as_objects(values: np.ndarray, nulls: np.ndarray) -> list[Any]:
    objects = values.astype(object)
    objects[nulls] = None
    result: list[Any] = objects.tolist()
    return result


@dataclass(slots=True)
class _ColumnReader:
    """Vectorised conversions of one column into canonical Python values plus failure masks."""

    problems: _Problems

    def floats(self, array: pa.Array, field_name: str) -> tuple[np.ndarray, np.ndarray]:
        """Finite float64 values (NaN where null or rejected) and the null mask."""
        import pyarrow as pa

        nulls = _nulls(array)
        if pa.types.is_null(array.type):
            return np.full(len(array), np.nan), nulls
        if not _is_number_type(array.type):
            self.problems.add(
                ~nulls, field_name, f"expected a number, got {_arrow_type_name(array.type)}"
            )
            return np.full(len(array), np.nan), nulls
        values = np.asarray(
            array.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False),
            dtype=np.float64,
        )
        self.problems.add(~np.isfinite(values) & ~nulls, field_name, _NOT_FINITE)
        return values, nulls

    def numbers(self, array: pa.Array, field_name: str) -> list[Any]:
        values, nulls = self.floats(array, field_name)
        return _as_objects(values, nulls | ~np.isfinite(values))

    def categories(self, array: pa.Array, field_name: str) -> list[Any]:
        import pyarrow as pa
        import pyarrow.compute as pc

        data_type = array.type
        if pa.types.is_string(data_type) or pa.types.is_null(data_type):
            return _pylist(array)
        if pa.types.is_integer(data_type):
            return _pylist(array.cast(pa.string()))
        if pa.types.is_boolean(data_type):
            return _pylist(pc.if_else(array, "true", "false"))
        nulls = _nulls(array)
        if not pa.types.is_floating(data_type):
            self.problems.add(
                ~nulls,
                field_name,
                f"expected {_CATEGORY_TYPES}, got {_arrow_type_name(data_type)}",
            )
            return [None] * len(array)
        values = np.asarray(array.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False))
        with np.errstate(invalid="ignore"):
            integral = (
                np.isfinite(values)
                & (np.floor(values) == values)
                & (np.abs(values) < _MAX_EXACT_INTEGER)
            )
        self.problems.add(
            ~integral & ~nulls, field_name, f"expected {_CATEGORY_TYPES}, got a non-integral number"
        )
        labels = np.where(integral, values, 0.0).astype(np.int64).astype(str)
        return _as_objects(labels, nulls | ~integral)

    def booleans(self, array: pa.Array, field_name: str) -> list[Any]:
        import pyarrow as pa

        data_type = array.type
        if pa.types.is_boolean(data_type) or pa.types.is_null(data_type):
            return _pylist(array)
        nulls = _nulls(array)
        if not _is_number_type(data_type):
            self.problems.add(
                ~nulls, field_name, f"expected true/false or 0/1, got {_arrow_type_name(data_type)}"
            )
            return [None] * len(array)
        values = np.asarray(array.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False))
        self.problems.add(
            ~np.isin(values, (0.0, 1.0)) & ~nulls, field_name, "expected true/false or 0/1"
        )
        return _as_objects(values == 1.0, nulls)

    def texts(self, array: pa.Array, field_name: str) -> list[Any]:
        import pyarrow as pa

        if pa.types.is_string(array.type) or pa.types.is_null(array.type):
            return _pylist(array)
        self.problems.add(
            ~_nulls(array), field_name, f"expected a string, got {_arrow_type_name(array.type)}"
        )
        return [None] * len(array)

    def instants(self, array: pa.Array, field_name: str) -> tuple[np.ndarray, np.ndarray]:
        """Epoch seconds (NaN where null or rejected) and the null mask."""
        import pyarrow as pa
        import pyarrow.compute as pc

        data_type = array.type
        nulls = _nulls(array)
        if pa.types.is_timestamp(data_type):
            per_second = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[data_type.unit]
            # Stored values are UTC for zoned timestamps and wall time for naive ones, which
            # watchkeeper reads as UTC, so the raw integers are epoch units in both cases.
            raw = array.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
            values = np.where(nulls, np.nan, raw / per_second)
            return values, nulls
        if pa.types.is_string(data_type):
            # Parse each distinct string once with the JSON path's parser, so both paths accept
            # exactly the same spellings.
            distinct = pc.unique(array.drop_null())
            parsed = np.array(
                [_parse_iso(text) for text in distinct.to_pylist()] + [None], dtype=np.float64
            )
            positions = pc.index_in(array, value_set=distinct).fill_null(len(distinct))
            values = parsed[positions.to_numpy(zero_copy_only=False)]
            self.problems.add(
                np.isnan(values) & ~nulls, field_name, "cannot parse as an ISO-8601 date-time"
            )
            return values, nulls
        if _is_number_type(data_type) or pa.types.is_null(data_type):
            return self.floats(array, field_name)
        self.problems.add(
            ~nulls,
            field_name,
            f"expected an ISO-8601 string or epoch seconds, got {_arrow_type_name(data_type)}",
        )
        return np.full(len(array), np.nan), nulls

    def identifiers(
        self, array: pa.Array, field_name: str, *, missing: str | None = None
    ) -> tuple[list[Any], np.ndarray]:
        """Strings of 1-128 characters, and the null mask; nulls fail with ``missing`` if set."""
        import pyarrow as pa
        import pyarrow.compute as pc

        nulls = _nulls(array)
        if missing is not None:
            self.problems.add(nulls, field_name, missing)
        if pa.types.is_null(array.type):
            return [None] * len(array), nulls
        if not pa.types.is_string(array.type):
            self.problems.add(
                ~nulls, field_name, f"expected a string, got {_arrow_type_name(array.type)}"
            )
            return [None] * len(array), nulls
        lengths = pc.utf8_length(array).fill_null(1).to_numpy(zero_copy_only=False)
        self.problems.add(
            (lengths < 1) | (lengths > MAX_ID_LENGTH),
            field_name,
            f"must have 1 to {MAX_ID_LENGTH} characters",
        )
        result: list[Any] = array.to_pylist()
        return result, nulls

    def tags(self, array: pa.Array, field_name: str) -> pa.Array:
        """Segment values: strings of 1-128 characters without ``,`` or ``=``."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if pa.types.is_null(array.type):
            return pa.nulls(len(array), pa.string())
        if not pa.types.is_string(array.type):
            self.problems.add(
                ~_nulls(array), field_name, f"expected a string, got {_arrow_type_name(array.type)}"
            )
            return pa.nulls(len(array), pa.string())
        lengths = pc.utf8_length(array)
        bad = pc.or_(
            pc.or_(pc.less(lengths, 1), pc.greater(lengths, _MAX_TAG_LENGTH)),
            pc.match_substring_regex(array, "[,=]"),
        )
        self.problems.add(
            np.asarray(bad.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool),
            field_name,
            _TAG_RULE,
        )
        return array


def _new_ids(count: int) -> list[str]:
    """``count`` random UUID4 hex strings (RFC 4122 §4.4) without a Python call per id."""
    raw = np.frombuffer(os.urandom(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = raw.tobytes().hex()
    return [hexed[start : start + 32] for start in range(0, 32 * count, 32)]


def validate_columns(
    table: pa.Table,
    model: EventModel,
    *,
    now: float,
    max_age_seconds: float,
    max_future_seconds: float = 300.0,
    max_batch: int,
) -> ValidationResult[ValidEvent]:
    """Validate a columnar batch (one row per event) with the rules of :func:`validate_events`.

    See :func:`validate_table` for the columns and their rules.
    """
    return validate_table(
        table,
        model,
        now=now,
        max_age_seconds=max_age_seconds,
        max_future_seconds=max_future_seconds,
        max_batch=max_batch,
    ).result()


def validate_table(
    table: pa.Table,
    model: EventModel,
    *,
    now: float,
    max_age_seconds: float,
    max_future_seconds: float = 300.0,
    max_batch: int,
) -> ValidBatch:
    """Validate a columnar batch (one row per event); accepted events come back as columns.

    Columns: ``id``, ``timestamp``, ``version``, one per feature (named as the feature),
    ``prediction``, ``proba.<class>``, ``latency_ms``, ``error``, ``segment.<key>``. A null cell
    is the JSON ``null``: a missing feature value, an absent optional field. An absent feature
    column is a missing feature in every row; an unknown column rejects every row. Checks run
    per column on whole arrays; Python touches single rows only to build the results.
    """
    import pyarrow as pa

    if table.num_rows > max_batch:
        raise IngestError(
            f"batch has {table.num_rows} events; the limit is {max_batch}: split it into smaller "
            "batches",
            field="events",
        )
    names = table.column_names
    if len(set(names)) != len(names):
        duplicated = sorted({name for name in names if names.count(name) > 1})
        raise IngestError(f"duplicate columns: {', '.join(duplicated)}", field=duplicated[0])
    window = _Window.build(now, max_age_seconds, max_future_seconds)
    size = table.num_rows
    problems = _Problems(size)
    reader = _ColumnReader(problems)
    columns = {name: _plain(table.column(name)) for name in names}
    absent = pa.nulls(size)

    def column(name: str) -> pa.Array:
        return columns.get(name, absent)

    classes = list(model.proba or ())
    segments = list(model.segments)
    known = (
        {"id", "timestamp", "version", "prediction", "latency_ms", "error"}
        | set(model.features)
        | {f"proba.{label}" for label in classes}
        | {f"segment.{key}" for key in segments}
    )
    for name in names:
        if name in known:
            continue
        if name.startswith("proba."):
            problems.everywhere(name, f"unknown class (declared: {', '.join(classes) or 'none'})")
        elif name.startswith("segment."):
            problems.everywhere(
                name, f"segment key is not declared (declared: {', '.join(segments) or 'none'})"
            )
        else:
            problems.everywhere(f"features.{name}", "unknown feature")

    ids, _ = reader.identifiers(column("id"), "id")
    version, _ = reader.identifiers(column("version"), "version", missing=_MISSING_VERSION)
    timestamps, ts_nulls = reader.instants(column("timestamp"), "timestamp")
    timestamps = np.where(ts_nulls, now, timestamps)
    with np.errstate(invalid="ignore"):
        problems.add(timestamps < window.earliest, "timestamp", window.too_old())
        too_late = timestamps > window.latest
        milliseconds = timestamps > _MILLISECONDS_THRESHOLD
    problems.add(
        too_late & ~milliseconds, "timestamp", window.too_late(looks_like_milliseconds=False)
    )
    problems.add(
        too_late & milliseconds, "timestamp", window.too_late(looks_like_milliseconds=True)
    )

    features: dict[str, list[Any]] = {}
    convert = {
        ColumnKind.NUMERIC: reader.numbers,
        ColumnKind.CATEGORICAL: reader.categories,
        ColumnKind.BOOLEAN: reader.booleans,
        ColumnKind.TEXT: reader.texts,
    }
    for name, kind in model.features.items():
        field_name = f"features.{name}"
        if name not in columns:
            problems.everywhere(field_name, "missing: send null for a missing value")
            continue
        if ColumnKind(kind) is ColumnKind.DATETIME:
            instants, nulls = reader.instants(columns[name], field_name)
            features[name] = _as_objects(instants, nulls | np.isnan(instants))
        else:
            features[name] = convert[ColumnKind(kind)](columns[name], field_name)

    if _prediction_kind(model) is ColumnKind.CATEGORICAL:
        predictions = reader.categories(column("prediction"), "prediction")
    else:
        predictions = reader.numbers(column("prediction"), "prediction")

    probabilities: dict[str, list[Any]] = {}
    for label in classes:
        values, nulls = reader.floats(column(f"proba.{label}"), f"proba.{label}")
        with np.errstate(invalid="ignore"):
            problems.add(
                ((values < 0.0) | (values > 1.0)) & ~nulls,
                f"proba.{label}",
                "probability is outside [0, 1]",
            )
        probabilities[label] = _as_objects(values, nulls | ~np.isfinite(values))

    latency, latency_nulls = reader.floats(column("latency_ms"), "latency_ms")
    with np.errstate(invalid="ignore"):
        problems.add((latency < 0) & ~latency_nulls, "latency_ms", "must be >= 0")
    latencies = _as_objects(latency, latency_nulls | ~np.isfinite(latency))

    error_column = column("error")
    if pa.types.is_boolean(error_column.type) or pa.types.is_null(error_column.type):
        errors = [value is True for value in error_column.to_pylist()]
    else:
        problems.add(
            ~_nulls(error_column),
            "error",
            f"expected true or false, got {_arrow_type_name(error_column.type)}",
        )
        errors = [False] * size

    tags: dict[str, pa.Array] = {}
    for key in segments:
        name = f"segment.{key}"
        if name not in columns:
            continue
        tags[key] = reader.tags(columns[name], name)

    rejections = problems.rejections()
    good = np.flatnonzero(~problems.bad_rows())
    segments = _canonical_segments(tags, size)
    proba_columns = [probabilities[label] for label in classes]
    if classes:
        probas: list[dict[str, float] | None] = [
            {label: value for label, value in zip(classes, row, strict=True) if value is not None}
            or None
            for row in zip(*proba_columns, strict=True)
        ]
    else:
        probas = [None] * size
    everything = ValidColumns(
        index=list(range(size)),
        ids=ids,
        ts=timestamps.tolist(),
        versions=version,
        features=features,
        predictions=predictions,
        probas=probas,
        latency_ms=latencies,
        errors=errors,
        segments=segments,
    )
    accepted = _accepted(everything, good.tolist())
    return ValidBatch(accepted=accepted, rejected=rejections)


def _canonical_segments(tags: Mapping[str, pa.Array], size: int) -> list[str]:
    """``"k1=v1,k2=v2"`` per row (sorted keys, null tags left out), built in Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not tags:
        return [""] * size
    parts = [
        pc.binary_join_element_wise(pa.scalar(f"{key}="), tags[key], "").fill_null("")
        for key in sorted(tags)
    ]
    # Absent tags leave empty parts; valid tag values hold no commas, so squeezing and trimming
    # commas removes exactly the gaps.
    joined = pc.binary_join_element_wise(*parts, ",")
    squeezed = pc.replace_substring_regex(joined, ",,+", ",")
    return _pylist(pc.utf8_trim(squeezed, ","))
