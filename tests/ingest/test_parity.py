"""JSON, Arrow IPC and Parquet bodies give the same events and the same rejections.

Batches are drawn as columns (one Arrow type per column, as a columnar body has), with valid and
invalid values alike; the JSON events are the same rows. Every path must accept the same events
with the same canonical values and reject the same (index, field, reason) triples.
"""

from __future__ import annotations

import io
import math
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.models import NOW, SPEC
from watchkeeper.ingest import (
    ValidBatch,
    decode_arrow_stream,
    decode_parquet,
    rules,
    validate_event_batch,
    validate_labels,
    validate_table,
)
from watchkeeper.labels import canonical_label

LIMITS: dict[str, Any] = {"now": NOW, "max_age_seconds": 7 * 86_400.0, "max_batch": 100}
BOUNDS = {"max_rows": 100, "max_bytes": 10**7}

# Strings Arrow can hold (UTF-8: no lone surrogates), with the troublesome ones often.
TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
    st.sampled_from(["", "a,b", "k=v", "nul\x00", "x" * 257, "y" * 1025, "2025-06-15T15:00:00"]),
    st.sampled_from(["1", "0", "eu", "gold", "v1", "champion", "canary-2", "2x", "a b", "a" * 65]),
)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, 0.5, 2.0, -1.0, 1.5, 2.0**60, NOW - 60, NOW + 3600, NOW * 1e3]),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
INTEGERS = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, 1, 2, -3, int(NOW) - 100])
)
VALUES: dict[pa.DataType, st.SearchStrategy[Any]] = {
    pa.float64(): FLOATS,
    pa.int64(): INTEGERS,
    pa.string(): TEXT,
    pa.bool_(): st.booleans(),
}
TYPES = st.sampled_from(list(VALUES))
FIELDS = ["id", "timestamp", "version", "prediction", "latency_ms", "error", "unit", "arm"]
FEATURES = list(SPEC.features)
COLUMNS = [
    *FIELDS,
    *FEATURES,
    "proba.0",
    "proba.1",
    "segment.region",
    "segment.device",
    "height",
    "proba.7",
    "segment.team",
]
# Usually present with the right type, so that many events are valid.
USUAL: dict[str, pa.DataType] = {
    "id": pa.string(),
    "timestamp": pa.float64(),
    "version": pa.string(),
    "prediction": pa.string(),
    "latency_ms": pa.float64(),
    "error": pa.bool_(),
    "unit": pa.string(),
    "arm": pa.string(),
    "age": pa.float64(),
    "plan": pa.string(),
    "vip": pa.bool_(),
    "signup": pa.string(),
    "note": pa.string(),
    "proba.0": pa.float64(),
    "proba.1": pa.float64(),
    "segment.region": pa.string(),
    "segment.device": pa.string(),
}


GOOD: dict[str, st.SearchStrategy[Any]] = {
    "id": st.text(
        st.characters(codec="ascii", blacklist_characters="\x00"), min_size=1, max_size=4
    ),
    "timestamp": st.floats(NOW - 86_400.0, NOW),
    "version": st.sampled_from(["v1", "v2"]),
    "prediction": st.sampled_from(["0", "1"]),
    "latency_ms": st.floats(0.0, 1e3),
    "error": st.booleans(),
    "unit": st.text(
        st.characters(codec="ascii", blacklist_characters="\x00"), min_size=1, max_size=4
    ),
    "arm": st.sampled_from(["champion", "challenger", "canary-2", "B_1"]),
    "age": st.floats(-1e6, 1e6),
    "plan": st.sampled_from(["gold", "basic", "7"]),
    "vip": st.booleans(),
    "signup": st.sampled_from(["2024-01-01T00:00:00Z", "2025-06-15"]),
    "note": st.text(st.characters(codec="ascii", blacklist_characters="\x00"), max_size=4),
    "proba.0": st.floats(0.0, 1.0),
    "proba.1": st.floats(0.0, 1.0),
    "segment.region": st.sampled_from(["eu", "us"]),
    "segment.device": st.sampled_from(["ios", "web"]),
}


@st.composite
def batches(draw: st.DrawFn) -> dict[str, tuple[pa.DataType, list[Any]]]:
    """Columns by name: their Arrow type and values (None is null).

    A known column is usually present with its usual type and mostly valid cells; sometimes it
    is absent, of another type, or holds any value of its type; unknown columns are rare.
    """
    rows = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 3, 4, 5]))
    columns: dict[str, tuple[pa.DataType, list[Any]]] = {}
    for name in COLUMNS:
        usual = USUAL.get(name)
        dice = draw(st.integers(0, 29))
        if usual is None:
            if dice > 0:
                continue
            data_type = draw(TYPES)
        elif dice == 0 and name != "version":
            continue
        else:
            data_type = usual if dice > 1 else draw(TYPES)
        any_value = VALUES[data_type]
        if data_type != usual:
            cell = st.one_of(st.none(), any_value)
        elif draw(st.integers(0, 2)) == 0:
            cell = st.one_of(st.none(), GOOD[name], any_value)
        else:
            cell = GOOD[name] if name == "version" else st.one_of(st.none(), GOOD[name])
        columns[name] = (data_type, draw(st.lists(cell, min_size=rows, max_size=rows)))
    return columns


def json_events(columns: dict[str, tuple[pa.DataType, list[Any]]], rows: int) -> list[Any]:
    """The same rows as JSON events (a null cell is a null value, an absent column no key)."""
    events: list[dict[str, Any]] = []
    for row in range(rows):
        event: dict[str, Any] = {"features": {}}
        for name, (_, values) in columns.items():
            value = values[row]
            if name in FIELDS:
                event[name] = value
            elif name.startswith(("proba.", "segment.")):
                group, key = name.split(".", 1)
                event.setdefault(group, {})[key] = value
            else:
                event["features"][name] = value
        events.append(event)
    return list(events)


def comparable(result: ValidBatch, given_ids: list[bool]) -> tuple[Any, ...]:
    """Everything a result holds, generated ids blanked, every value with its type."""
    accepted = result.accepted

    def typed(values: list[Any]) -> list[Any]:
        return [(type(value).__name__, value) for value in values]

    ids = [
        event_id if given_ids[index] else "generated"
        for index, event_id in zip(accepted.index, accepted.ids, strict=True)
    ]
    return (
        accepted.index,
        ids,
        typed(accepted.ts),
        accepted.versions,
        {name: typed(values) for name, values in accepted.features.items()},
        typed(accepted.predictions),
        accepted.probas,
        typed(accepted.latency_ms),
        accepted.errors,
        accepted.segments,
        accepted.units,
        accepted.arms,
        [(r.index, r.field, r.reason) for r in result.rejected],
    )


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=4)
    return sink.getvalue()


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_json_arrow_and_parquet_agree_on_valid_and_invalid_events(
    columns: dict[str, tuple[pa.DataType, list[Any]]],
) -> None:
    rows = len(next(iter(columns.values()))[1]) if columns else 0
    table = pa.table(
        {name: pa.array(values, type=data_type) for name, (data_type, values) in columns.items()}
    )
    if not columns:
        table = pa.table({"version": pa.array([], pa.string())})
    given_ids = [value is not None for value in columns.get("id", (None, [None] * rows))[1]]
    expected = comparable(
        validate_event_batch(json_events(columns, rows), SPEC, **LIMITS), given_ids
    )
    tables = {
        "arrow": table,
        "arrow stream": decode_arrow_stream(_ipc(table), **BOUNDS),
        "parquet": decode_parquet(_parquet(table), **BOUNDS),
    }
    for name, decoded in tables.items():
        assert comparable(validate_table(decoded, SPEC, **LIMITS), given_ids) == expected, name


RAW_LABELS = st.one_of(
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.integers(-(2**20), 2**20).map(float),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=5),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(RAW_LABELS, min_size=1, max_size=6), st.sampled_from(["json", "arrow", "parquet"]))
def test_categories_predictions_and_labels_take_the_canonical_label_form(
    raw: list[Any], path: str
) -> None:
    expected = [canonical_label(value) for value in raw]
    events = [
        {
            "version": "1",
            "features": {"age": 1.0, "plan": value, "vip": None, "signup": None, "note": None},
            "prediction": value,
        }
        for value in raw
    ]
    if path == "json":
        result = validate_event_batch(events, SPEC, **LIMITS)
    else:
        # One Arrow type per column: the drawn values of one Python type, as one column.
        kinds = {type(value) for value in raw}
        if len(kinds) > 1:
            raw = [value for value in raw if type(value) is type(raw[0])]
            expected = [canonical_label(value) for value in raw]
        columns = {
            "version": ["1"] * len(raw),
            "age": [1.0] * len(raw),
            "plan": raw,
            "vip": pa.nulls(len(raw), pa.bool_()),
            "signup": pa.nulls(len(raw), pa.string()),
            "note": pa.nulls(len(raw), pa.string()),
            "prediction": raw,
        }
        table = pa.table(columns)
        if path == "parquet":
            table = decode_parquet(_parquet(table), **BOUNDS)
        result = validate_table(table, SPEC, **LIMITS)
    assert result.rejected == []
    assert result.accepted.features["plan"] == expected
    assert result.accepted.predictions == expected
    labels = validate_labels([{"id": "e", "label": value} for value in raw], SPEC, **LIMITS)
    assert [label.label for label in labels.accepted] == expected


UNITS_AND_ARMS = st.one_of(
    st.none(),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
    st.sampled_from(["", "u-1", "champion", "canary-2", "B_1", "2x", "a b", "é", "x" * 257]),
    st.sampled_from(["a" * 64, "a" * 65, "nul\x00", "-a", "a-", "user:42", "s" * 256]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(UNITS_AND_ARMS, UNITS_AND_ARMS), min_size=1, max_size=6))
def test_unit_and_arm_get_the_same_verdict_in_json_arrow_and_parquet(
    pairs: list[tuple[str | None, str | None]],
) -> None:
    units = [unit for unit, _ in pairs]
    arms = [arm for _, arm in pairs]
    features = {"age": 1.0, "plan": "gold", "vip": None, "signup": None, "note": None}
    events = [
        {"version": "1", "features": features, "unit": unit, "arm": arm} for unit, arm in pairs
    ]
    from_json = validate_event_batch(events, SPEC, **LIMITS)
    size = len(pairs)
    table = pa.table(
        {
            "version": ["1"] * size,
            "age": [1.0] * size,
            "plan": ["gold"] * size,
            "vip": pa.nulls(size, pa.bool_()),
            "signup": pa.nulls(size, pa.string()),
            "note": pa.nulls(size, pa.string()),
            "unit": pa.array(units, pa.string()),
            "arm": pa.array(arms, pa.string()),
        }
    )

    def verdicts(result: ValidBatch) -> tuple[Any, ...]:
        return (
            result.accepted.index,
            result.accepted.units,
            result.accepted.arms,
            [(r.index, r.field, r.reason) for r in result.rejected],
        )

    expected = verdicts(from_json)
    for decoded in (table, decode_parquet(_parquet(table), **BOUNDS)):
        assert verdicts(validate_table(decoded, SPEC, **LIMITS)) == expected
    # The whole-column fast paths give the per-value checks' verdicts.
    for name, rule, column in (("unit", rules.UNIT, units), ("arm", rules.ARM, arms)):
        wanted = {
            row: verdict.reason
            for row, value in enumerate(column)
            if isinstance(verdict := rule.check(value), rules.Bad)
        }
        found = {r.index: r.reason for r in from_json.rejected if r.field == name}
        assert found == wanted
    for row in from_json.accepted.index:
        assert arms[row] is None or rules.ARM_PATTERN.fullmatch(arms[row])
