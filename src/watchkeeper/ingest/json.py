"""JSON bodies: parsing, the batch envelope, and JSON events turned into raw columns.

:func:`loads` reads a body the way every ingest path does (orjson, then Python's parser for what
orjson refuses but an event can still be rejected for alone: ``NaN``, lone surrogates, integers
too long to convert). :func:`validate_event_batch` turns a list of event objects into
:class:`~watchkeeper.ingest.events.RawEvents` and validates them with the one validator.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from watchkeeper.errors import IngestError
from watchkeeper.ingest import rules
from watchkeeper.ingest.columns import Rejection, ValidationResult, ValidBatch, ValidEvent
from watchkeeper.ingest.events import RawEvents, validate_raw
from watchkeeper.ingest.spec import EVENT_FIELDS, EventModel

__all__ = [
    "check_batch",
    "loads",
    "unwrap_batch",
    "validate_event_batch",
    "validate_events",
]

_OBJECT: frozenset[type] = frozenset({dict})
_TOP_LEVEL = ("id", "timestamp", "version", "prediction", "latency_ms", "error", "unit", "arm")


def _integer(digits: str) -> int | rules.OutOfRange:
    # Python refuses to convert more digits than its limit (a ValueError that would fail the
    # whole body); such a number is out of every field's range, so the event alone is rejected.
    limit = sys.get_int_max_str_digits()
    if limit and len(digits.lstrip("-")) > limit:
        return rules.OutOfRange(len(digits.lstrip("-")))
    return int(digits)


def loads(body: bytes | str) -> Any:
    """Decode a JSON body; raises :class:`json.JSONDecodeError` (or UnicodeDecodeError,
    RecursionError) when it is not JSON.

    orjson is tried first. Python's parser then reads what orjson refuses but is one event's
    problem, not the body's: the bare tokens ``NaN`` and ``Infinity``, lone surrogate escapes
    (``"\\ud800"``) and integers of any length, so validation rejects that event alone.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    return json.loads(body, parse_int=_integer)


def unwrap_batch(body: object, key: str) -> list[Any]:
    """Return ``body[key]`` of a JSON body such as ``{"events": [...]}``; IngestError if absent."""
    if not isinstance(body, Mapping) or not isinstance(body.get(key), list):
        raise IngestError(f'the body must be a JSON object {{"{key}": [...]}}', field=key)
    items: list[Any] = body[key]
    return items


def check_batch(payload: object, max_batch: int, what: str) -> list[Any]:
    """``payload`` as a list of at most ``max_batch`` items; IngestError for the whole batch."""
    if not isinstance(payload, list):
        raise IngestError(f"{what} must be a JSON list, got {rules.json_type(payload)}", field=what)
    if len(payload) > max_batch:
        raise IngestError(
            f"batch has {len(payload)} {what}; the limit is {max_batch}: split it into smaller "
            "batches",
            field=what,
        )
    return payload


def validate_event_batch(
    payload: list[Any],
    model: EventModel,
    *,
    now: float,
    max_age_seconds: float,
    max_future_seconds: float = 300.0,
    max_batch: int,
    retention_seconds: float | None = None,
) -> ValidBatch:
    """Validate a decoded JSON batch of prediction events against ``model``.

    Each event is checked on its own (docs/service.md lists the rules); raises
    :class:`IngestError` only when ``payload`` is not a list or has more than ``max_batch``
    events.

    Example
    -------
    >>> from watchkeeper.ingest.spec import ModelSpec
    >>> spec = ModelSpec(name="m", task="regression", features={"x": "numeric"})
    >>> result = validate_event_batch(
    ...     [{"version": "1", "features": {"x": 1}}, {"version": "1", "features": {"x": "a"}}],
    ...     spec, now=1e9, max_age_seconds=3600, max_batch=10)
    >>> len(result.accepted), result.rejected[0]
    (1, Rejection(index=1, field='features.x', reason='expected a number, got a string'))
    """
    events = check_batch(payload, max_batch, "events")
    window = rules.Window.build(now, max_age_seconds, max_future_seconds, retention_seconds)
    return validate_raw(raw_events(events, model), model, window)


def validate_events(
    payload: list[Any],
    model: EventModel,
    *,
    now: float,
    max_age_seconds: float,
    max_future_seconds: float = 300.0,
    max_batch: int,
) -> ValidationResult[ValidEvent]:
    """:func:`validate_event_batch` with one :class:`ValidEvent` per accepted event."""
    return validate_event_batch(
        payload,
        model,
        now=now,
        max_age_seconds=max_age_seconds,
        max_future_seconds=max_future_seconds,
        max_batch=max_batch,
    ).result()


def raw_events(events: list[Any], model: EventModel) -> RawEvents:
    """The raw columns of a list of JSON events, and the rejections of their shape."""
    size = len(events)
    shape: list[Rejection] = []
    dead: np.ndarray | None = None
    view: list[Any] = events
    if not set(map(type, events)) <= _OBJECT:
        dead = np.fromiter((not isinstance(raw, dict) for raw in events), bool, size)
        for row in np.flatnonzero(dead).tolist():
            shape.append(
                Rejection(row, "event", f"expected an object, got {rules.json_type(events[row])}")
            )
        view = [{} if bad else raw for raw, bad in zip(events, dead.tolist(), strict=True)]
    odd = np.fromiter((not raw.keys() <= EVENT_FIELDS for raw in view), bool, size)
    for row in np.flatnonzero(odd).tolist():
        shape.extend(
            Rejection(row, str(key), "unknown field")
            for key in view[row]
            if key not in EVENT_FIELDS
        )
    fields = {name: [raw.get(name) for raw in view] for name in _TOP_LEVEL}
    features, feature_rows = _features(view, model, shape, dead)
    proba = _mapping(
        view, "proba", list(model.proba or ()), shape, "class probabilities", "unknown class"
    )
    segment = _mapping(
        view, "segment", list(model.segments), shape, "tag values", "segment key is not declared"
    )
    return RawEvents(
        size=size,
        fields=fields,
        features=features,
        proba=proba,
        segment=segment,
        shape=shape,
        dead=dead,
        feature_rows=feature_rows,
    )


def _features(
    view: list[dict[str, Any]],
    model: EventModel,
    shape: list[Rejection],
    dead: np.ndarray | None,
) -> tuple[dict[str, list[Any]], list[dict[str, Any]] | None]:
    """One raw column per declared feature, and the sent objects when each holds exactly the
    declared features."""
    names = list(model.features)
    maps: list[Any] = [raw.get("features") for raw in view]
    exact: list[Any] | None = None
    if set(map(type, maps)) <= _OBJECT and set(map(len, maps)) <= {len(names)}:
        if not names:
            return {}, maps
        getter = itemgetter(*names)
        try:
            # As many keys as declared and every declared key present: exactly the declared set.
            exact = list(map(getter, maps))
        except KeyError:
            exact = None
    if exact is not None:
        rows = [(value,) for value in exact] if len(names) == 1 else exact
        columns = [list(column) for column in zip(*rows, strict=True)] if rows else []
        if not rows:
            columns = [[] for _ in names]
        return dict(zip(names, columns, strict=True)), maps
    declared = set(names)
    columns = [[] for _ in names]
    for row, raw in enumerate(maps):
        if not isinstance(raw, dict):
            if dead is None or not dead[row]:
                shape.append(
                    Rejection(
                        row,
                        "features",
                        f"expected an object of feature values, got {rules.json_type(raw)}",
                    )
                )
            raw = dict.fromkeys(names)
        for name, column in zip(names, columns, strict=True):
            column.append(raw.get(name, rules.MISSING))
        if not raw.keys() <= declared:
            shape.extend(
                Rejection(row, f"features.{name}", "unknown feature")
                for name in raw
                if name not in declared
            )
    return dict(zip(names, columns, strict=True)), None


def _mapping(
    view: list[dict[str, Any]],
    name: str,
    keys: list[str],
    shape: list[Rejection],
    what: str,
    unknown: str,
) -> dict[str, list[Any]]:
    """One raw column per declared key of ``proba`` or ``segment`` (null where not sent)."""
    maps = [raw.get(name) for raw in view]
    if set(map(type, maps)) == {type(None)}:
        return {key: [None] * len(view) for key in keys}
    declared = set(keys)
    listing = ", ".join(sorted(declared)) or "none"
    columns: dict[str, list[Any]] = {key: [] for key in keys}
    for row, raw in enumerate(maps):
        if raw is None:
            raw = {}
        elif not isinstance(raw, dict):
            shape.append(
                Rejection(row, name, f"expected an object of {what}, got {rules.json_type(raw)}")
            )
            raw = {}
        for key, column in columns.items():
            column.append(raw.get(key))
        if not raw.keys() <= declared:
            shape.extend(
                Rejection(row, f"{name}.{key}", f"{unknown} (declared: {listing})")
                for key in raw
                if key not in declared
            )
    return columns
