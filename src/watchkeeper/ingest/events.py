"""The one validator of prediction events: raw columns in, :class:`ValidBatch` out.

Every body format is first turned into :class:`RawEvents` (``json.py`` from a list of event
objects, ``arrow.py`` from a table): one column of raw values per field, feature, declared class
and declared segment key, plus the rejections that only the body's shape can cause (an event
that is not an object, an unknown field or column). :func:`validate_raw` then checks every column
with its rule from :mod:`watchkeeper.ingest.rules`, so the same values give the same accepted
events and the same rejections (index, field, reason) whatever the format.

Raw values are what JSON decodes to; an absent feature is :data:`~watchkeeper.ingest.rules.
MISSING`, and a null probability or segment value means that the event sends none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np

from watchkeeper.ingest import rules
from watchkeeper.ingest.columns import Rejection, ValidBatch, ValidColumns
from watchkeeper.ingest.spec import EventModel

__all__ = ["RawEvents", "validate_raw"]


@dataclass(slots=True)
class RawEvents:
    """A batch of events as raw columns, with the rejections its shape already caused.

    ``fields`` holds ``id``, ``timestamp``, ``version``, ``prediction``, ``latency_ms``,
    ``error``, ``unit`` and ``arm`` (all nulls when absent); ``features``, ``proba`` and
    ``segment`` one column per declared feature, class and segment key. ``dead`` marks events
    that are not events at all (not an object): their shape rejection is their only one.
    ``feature_rows`` are the sent feature objects when each holds exactly the declared
    features, so accepted events can keep them when their values are already canonical.
    """

    size: int
    fields: dict[str, list[Any]]
    features: dict[str, list[Any]]
    proba: dict[str, list[Any]]
    segment: dict[str, list[Any]]
    shape: list[Rejection] = field(default_factory=list)
    dead: np.ndarray | None = None
    feature_rows: list[dict[str, Any]] | None = None


def _new_ids(count: int) -> list[str]:
    """``count`` random UUID4 hex strings (RFC 4122 §4.4) without a Python call per id."""
    raw = np.frombuffer(os.urandom(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = raw.tobytes().hex()
    return [hexed[start : start + 32] for start in range(0, 32 * count, 32)]


def validate_raw(raw: RawEvents, model: EventModel, window: rules.Window) -> ValidBatch:
    """Check every column of ``raw`` with its rule; accepted events as columns, rejections
    ordered by index (shape problems first, then fields in a fixed order)."""
    size = raw.size
    found: list[Rejection] = []

    def run(name: str, rule: rules.Rule, column: list[Any]) -> list[Any]:
        values, failures = rules.apply(rule, column)
        found.extend(Rejection(row, name, reason) for row, reason in failures)
        return values

    ids = run("id", rules.ID, raw.fields["id"])
    ts = run("timestamp", window.rule(), raw.fields["timestamp"])
    versions = run("version", rules.VERSION, raw.fields["version"])
    features = {
        name: run(f"features.{name}", rules.feature_rule(kind), raw.features[name])
        for name, kind in model.features.items()
    }
    predictions = run("prediction", rules.PREDICTION[model.task], raw.fields["prediction"])
    proba = {
        label: run(f"proba.{label}", rules.PROBABILITY, column)
        for label, column in raw.proba.items()
    }
    latency = run("latency_ms", rules.LATENCY, raw.fields["latency_ms"])
    errors = run("error", rules.FLAG, raw.fields["error"])
    units = run("unit", rules.UNIT, raw.fields["unit"])
    arms = run("arm", rules.ARM, raw.fields["arm"])
    tags = {key: run(f"segment.{key}", rules.TAG, column) for key, column in raw.segment.items()}

    if raw.dead is not None:
        dead = raw.dead
        found = [rejection for rejection in found if not dead[rejection.index]]
    rejected = sorted([*raw.shape, *found], key=lambda rejection: rejection.index)
    bad = np.zeros(size, dtype=bool)
    bad[[rejection.index for rejection in rejected]] = True
    unchanged = raw.feature_rows is not None and all(
        values is raw.features[name] for name, values in features.items()
    )
    everything = ValidColumns(
        index=list(range(size)),
        ids=ids,
        ts=ts,
        versions=versions,
        features=features,
        predictions=predictions,
        probas=_probas(proba, size),
        latency_ms=latency,
        errors=errors,
        segments=_segments(tags, size),
        units=units,
        arms=arms,
        rows=raw.feature_rows if unchanged else None,
    )
    return ValidBatch(accepted=_accepted(everything, bad), rejected=rejected)


def _probas(proba: dict[str, list[Any]], size: int) -> list[dict[str, float] | None]:
    if not proba:
        return [None] * size
    labels = list(proba)
    rows = zip(*proba.values(), strict=True)
    if not any(None in column for column in proba.values()):
        return [dict(zip(labels, row, strict=True)) for row in rows]
    return [
        {label: value for label, value in zip(labels, row, strict=True) if value is not None}
        or None
        for row in rows
    ]


def _segments(tags: dict[str, list[Any]], size: int) -> list[str]:
    """``"k1=v1,k2=v2"`` per event, sorted keys, null tags left out (``""`` for none)."""
    if not tags:
        return [""] * size
    keys = sorted(tags)
    combinations = list(zip(*(tags[key] for key in keys), strict=True))
    # A batch holds few distinct segments: build each string once.
    names = {
        combination: ",".join(
            f"{key}={value}"
            for key, value in zip(keys, combination, strict=True)
            if value is not None
        )
        for combination in set(combinations)
    }
    return [names[combination] for combination in combinations]


def _accepted(columns: ValidColumns, bad: np.ndarray) -> ValidColumns:
    """The events without a rejection, with a new id for each one sent without an id."""
    if bad.any():
        columns = columns.take(np.flatnonzero(~bad).tolist())
    sent = cast("list[str | None]", columns.ids)  # None where the event had no id
    if None in sent:
        missing = iter(_new_ids(sent.count(None)))
        ids = [event_id if event_id is not None else next(missing) for event_id in sent]
        columns = replace(columns, ids=ids)
    return columns
