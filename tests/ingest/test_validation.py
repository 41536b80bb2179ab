"""Ingest validation: model configs, JSON events, columnar bodies, labels and feedback."""

from __future__ import annotations

import io
import math
import re
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.models import NOW, REGRESSION, SPEC
from watchkeeper.errors import ConfigError, IngestError
from watchkeeper.ingest import Rejection
from watchkeeper.ingest.arrow import decode_arrow_stream, decode_parquet, validate_columns
from watchkeeper.ingest.columns import ValidEvent
from watchkeeper.ingest.feedback import validate_feedback, validate_labels
from watchkeeper.ingest.json import unwrap_batch, validate_events
from watchkeeper.ingest.rules import OutOfRange
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.schema import ColumnKind

DAY = 86_400.0
LIMITS: dict[str, Any] = {"now": NOW, "max_age_seconds": 7 * DAY, "max_batch": 1000}


def good_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "e1",
        "timestamp": NOW - 60,
        "version": "v1",
        "features": {
            "age": 42,
            "plan": "gold",
            "vip": True,
            "signup": "2024-01-01T00:00:00Z",
            "note": "hello",
        },
        "prediction": 1,
        "proba": {"0": 0.25, "1": 0.75},
        "latency_ms": 3.5,
        "error": False,
        "segment": {"region": "eu", "device": "ios"},
    }
    event.update(overrides)
    return event


def with_features(**features: Any) -> dict[str, Any]:
    event = good_event()
    event["features"] = {**event["features"], **features}
    return event


def fields_of(result: Any) -> list[tuple[int, str]]:
    return sorted((rejection.index, rejection.field) for rejection in result.rejected)


# -- ModelSpec --------------------------------------------------------------------------------


def test_model_spec_round_trips_through_its_json_form() -> None:
    assert ModelSpec.from_dict(SPEC.to_dict()) == SPEC
    assert SPEC.features["age"] is ColumnKind.NUMERIC
    assert SPEC.classes == ("0", "1")
    assert SPEC.to_dict()["windows"] == [3600, 86400]
    assert SPEC.label_kind is ColumnKind.CATEGORICAL
    assert REGRESSION.label_kind is ColumnKind.NUMERIC
    assert REGRESSION.to_dict()["retention_days"] == 30


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"name": "has space"}, "name"),
        ({"name": ""}, "name"),
        ({"task": "ranking"}, "task"),
        ({"features": {"age": "numbers"}}, "features.age"),
        ({"features": {"version": "numeric"}}, "features.version"),
        ({"features": {"proba.x": "numeric"}}, "features.proba.x"),
        ({"features": ["age"]}, "features"),
        ({"task": "regression"}, "proba"),
        ({"proba": {}}, "proba"),
        ({"proba": {"1": 5}}, "proba.1"),
        ({"target_kind": "number"}, "target_kind"),
        ({"windows": [86400, 3600]}, "windows"),
        ({"windows": []}, "windows"),
        ({"windows": [3600, -5]}, "windows[1]"),
        ({"segments": ["a,b"]}, "segments"),
        ({"segments": ["a", "a"]}, "segments"),
        ({"segments": "region"}, "segments"),
        ({"retention_days": 0}, "retention_days"),
        ({"profile_retention_days": 1.5}, "profile_retention_days"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_model_spec_errors_name_the_bad_key(change: dict[str, Any], key: str) -> None:
    config = {**SPEC.to_dict(), **change}
    with pytest.raises(ConfigError) as caught:
        ModelSpec.from_dict(config)
    assert caught.value.key == key
    assert key.split("[")[0].split(".")[0] in str(caught.value)


def test_model_spec_requires_name_task_and_features() -> None:
    with pytest.raises(ConfigError, match="features: missing") as caught:
        ModelSpec.from_dict({"name": "m", "task": "regression"})
    assert caught.value.key == "features"


# -- JSON events: accepted values -------------------------------------------------------------


def test_valid_event_is_accepted_with_canonical_values() -> None:
    result = validate_events([good_event()], SPEC, **LIMITS)
    assert result.rejected == []
    assert result.accepted == [
        ValidEvent(
            index=0,
            id="e1",
            ts=NOW - 60,
            version="v1",
            features={
                "age": 42.0,
                "plan": "gold",
                "vip": True,
                "signup": 1704067200.0,
                "note": "hello",
            },
            prediction="1",
            proba={"0": 0.25, "1": 0.75},
            latency_ms=3.5,
            error=False,
            segment="device=ios,region=eu",
        )
    ]


def test_optional_fields_take_defaults_and_null_features_are_missing_values() -> None:
    event = {
        "version": "v1",
        "features": {"age": None, "plan": None, "vip": None, "signup": None, "note": None},
    }
    first, second = validate_events([event, event], SPEC, **LIMITS).accepted
    assert first.features == dict.fromkeys(SPEC.features)
    assert re.fullmatch(r"[0-9a-f]{32}", first.id)
    assert first.id != second.id
    assert first.ts == NOW
    assert (first.prediction, first.proba, first.latency_ms, first.error, first.segment) == (
        None,
        None,
        None,
        False,
        "",
    )


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        ({"plan": 3}, {"plan": "3"}),
        ({"plan": 2.0}, {"plan": "2"}),
        ({"plan": True}, {"plan": "1"}),
        ({"vip": 0}, {"vip": False}),
        ({"vip": 1}, {"vip": True}),
        ({"vip": 1.0}, {"vip": True}),
        ({"signup": 1700000000}, {"signup": 1700000000.0}),
        ({"signup": "2024-01-01T01:00:00+01:00"}, {"signup": 1704067200.0}),
        ({"signup": "2024-01-01T00:00:00"}, {"signup": 1704067200.0}),
        ({"age": 10**400}, None),
    ],
)
def test_feature_values_are_canonicalised(
    features: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    result = validate_events([with_features(**features)], SPEC, **LIMITS)
    if expected is None:
        assert fields_of(result) == [(0, "features.age")]
        return
    (event,) = result.accepted
    for name, value in expected.items():
        assert event.features[name] == value


def test_timestamps_accept_iso_strings_and_error_null_means_false() -> None:
    event = good_event(timestamp="2025-06-15T15:06:40Z", error=None)
    (accepted,) = validate_events([event], SPEC, **LIMITS).accepted
    assert accepted.ts == 1_750_000_000.0
    assert accepted.error is False


def test_regression_prediction_is_a_float() -> None:
    event = {"version": "1", "features": {"size": 3}, "prediction": 12}
    (accepted,) = validate_events([event], REGRESSION, **LIMITS).accepted
    assert accepted.prediction == 12.0
    assert isinstance(accepted.prediction, float)


# -- JSON events: every bad input --------------------------------------------------------------

BAD_EVENTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("numeric as string", with_features(age="42"), "features.age", "got a string"),
    ("numeric as NaN string", with_features(age="NaN"), "features.age", "got a string"),
    ("numeric as list", with_features(age=[1]), "features.age", "got a list"),
    ("numeric as object", with_features(age={"v": 1}), "features.age", "got an object"),
    ("numeric as bool", with_features(age=True), "features.age", "got a boolean"),
    ("numeric NaN", with_features(age=math.nan), "features.age", "NaN and infinity"),
    ("numeric inf", with_features(age=-math.inf), "features.age", "NaN and infinity"),
    ("boolean 2", with_features(vip=2), "features.vip", "true/false or 0/1"),
    ("boolean string", with_features(vip="yes"), "features.vip", "true/false or 0/1"),
    ("category float", with_features(plan=2.5), "features.plan", "non-integral"),
    ("category list", with_features(plan=["a"]), "features.plan", "got a list"),
    ("text number", with_features(note=5), "features.note", "expected a string"),
    ("datetime junk", with_features(signup="soon"), "features.signup", "ISO-8601"),
    ("datetime bool", with_features(signup=False), "features.signup", "ISO-8601"),
    ("unknown feature", with_features(height=180), "features.height", "unknown feature"),
    ("features not object", good_event(features=[1, 2]), "features", "expected an object"),
    ("id int", good_event(id=7), "id", "expected a string"),
    ("id empty", good_event(id=""), "id", "1 to 256"),
    ("id long", good_event(id="x" * 257), "id", "1 to 256"),
    ("timestamp junk", good_event(timestamp="yesterday"), "timestamp", "ISO-8601"),
    ("timestamp bool", good_event(timestamp=True), "timestamp", "ISO-8601"),
    ("timestamp NaN", good_event(timestamp=math.nan), "timestamp", "NaN"),
    ("timestamp old", good_event(timestamp=NOW - 8 * DAY), "timestamp", "older than"),
    ("timestamp future", good_event(timestamp=NOW + 301), "timestamp", "in the future"),
    ("timestamp ms", good_event(timestamp=NOW * 1000), "timestamp", "milliseconds"),
    ("version empty", good_event(version=""), "version", "1 to 256"),
    ("version number", good_event(version=3), "version", "expected a string"),
    ("version null", good_event(version=None), "version", "missing"),
    ("prediction list", good_event(prediction=[1]), "prediction", "got a list"),
    ("proba list", good_event(proba=[0.5]), "proba", "expected an object"),
    ("proba above 1", good_event(proba={"1": 1.5}), "proba.1", "outside [0, 1]"),
    ("proba below 0", good_event(proba={"0": -0.1}), "proba.0", "outside [0, 1]"),
    ("proba string", good_event(proba={"0": "0.5"}), "proba.0", "got a string"),
    ("proba unknown class", good_event(proba={"2": 0.1}), "proba.2", "unknown class"),
    ("latency negative", good_event(latency_ms=-1), "latency_ms", ">= 0"),
    ("latency string", good_event(latency_ms="fast"), "latency_ms", "got a string"),
    ("error int", good_event(error=1), "error", "true or false"),
    ("error string", good_event(error="false"), "error", "true or false"),
    ("segment list", good_event(segment=["eu"]), "segment", "expected an object"),
    ("segment value int", good_event(segment={"region": 3}), "segment.region", "string"),
    ("segment undeclared", good_event(segment={"team": "a"}), "segment.team", "not declared"),
    ("segment comma", good_event(segment={"region": "a,b"}), "segment.region", "no ','"),
    ("segment empty value", good_event(segment={"region": ""}), "segment.region", "1 to 256"),
    ("unknown top-level field", good_event(feature={}), "feature", "unknown field"),
    ("id NUL", good_event(id="a\x00b"), "id", "NUL character"),
    ("id surrogate", good_event(id="\ud800"), "id", "lone surrogate"),
    ("version NUL", good_event(version="v\x00"), "version", "NUL character"),
    ("version surrogate", good_event(version="v\udfff"), "version", "lone surrogate"),
    ("segment surrogate", good_event(segment={"region": "\ud800"}), "segment.region", "surrogate"),
    ("segment NUL", good_event(segment={"region": "\x00"}), "segment.region", "NUL"),
    ("category surrogate", with_features(plan="\ud800"), "features.plan", "lone surrogate"),
    ("category NUL", with_features(plan="a\x00"), "features.plan", "NUL character"),
    ("category long", with_features(plan="p" * 1025), "features.plan", "at most 1024"),
    ("category huge int", with_features(plan=10**1100), "features.plan", "at most 1024"),
    ("text surrogate", with_features(note="\udc80"), "features.note", "lone surrogate"),
    ("text NUL", with_features(note="\x00"), "features.note", "NUL character"),
    ("text long", with_features(note="n" * 65_537), "features.note", "at most 65536"),
    ("prediction surrogate", good_event(prediction="\ud800"), "prediction", "lone surrogate"),
    ("prediction long", good_event(prediction="1" * 1025), "prediction", "at most 1024"),
    ("numeric too long", with_features(age=OutOfRange(5001)), "features.age", "float64 range"),
]


@pytest.mark.parametrize(
    ("event", "field", "reason"),
    [case[1:] for case in BAD_EVENTS],
    ids=[case[0] for case in BAD_EVENTS],
)
def test_each_bad_input_is_rejected_with_field_and_reason(
    event: dict[str, Any], field: str, reason: str
) -> None:
    result = validate_events([event], SPEC, **LIMITS)
    assert result.accepted == []
    assert [(r.index, r.field) for r in result.rejected] == [(0, field)]
    assert reason in result.rejected[0].reason


def test_missing_feature_key_is_an_error_naming_each_feature() -> None:
    event = good_event(features={"age": 1, "plan": "a"})
    result = validate_events([event], SPEC, **LIMITS)
    assert fields_of(result) == [
        (0, "features.note"),
        (0, "features.signup"),
        (0, "features.vip"),
    ]
    assert all("missing" in rejection.reason for rejection in result.rejected)


def test_every_problem_of_an_event_is_reported() -> None:
    event = good_event(id=5, version="", latency_ms=-2)
    assert fields_of(validate_events([event], SPEC, **LIMITS)) == [
        (0, "id"),
        (0, "latency_ms"),
        (0, "version"),
    ]


def test_regression_rejects_a_label_as_prediction() -> None:
    event = {"version": "1", "features": {"size": 3}, "prediction": "big"}
    result = validate_events([event], REGRESSION, **LIMITS)
    assert fields_of(result) == [(0, "prediction")]


def test_mixed_batch_accepts_the_valid_events_with_exact_indices() -> None:
    batch = [
        good_event(id="a"),
        good_event(id="b", version=""),
        "not an event",
        good_event(id="d"),
        with_features(age="x"),
        good_event(id="f", proba={"1": 2}),
        good_event(id="g"),
    ]
    result = validate_events(batch, SPEC, **LIMITS)
    assert [event.index for event in result.accepted] == [0, 3, 6]
    assert [event.id for event in result.accepted] == ["a", "d", "g"]
    assert result.rejected_indices == [1, 2, 4, 5]
    assert Rejection(2, "event", "expected an object, got a string") in result.rejected
    assert result.rejected[0].to_dict() == {
        "index": 1,
        "field": "version",
        "reason": "must have 1 to 256 characters, got 0",
    }


def test_whole_batch_errors_raise() -> None:
    with pytest.raises(IngestError, match="limit is 2"):
        validate_events([good_event()] * 3, SPEC, now=NOW, max_age_seconds=DAY, max_batch=2)
    with pytest.raises(IngestError, match="must be a JSON list"):
        validate_events({"events": []}, SPEC, **LIMITS)  # type: ignore[arg-type]
    with pytest.raises(IngestError, match="ages must be positive"):
        validate_events([], SPEC, now=NOW, max_age_seconds=0, max_batch=5)


def test_unwrap_batch() -> None:
    assert unwrap_batch({"events": [1]}, "events") == [1]
    with pytest.raises(IngestError, match='"events"') as caught:
        unwrap_batch({"event": []}, "events")
    assert caught.value.field == "events"


# -- labels and feedback -------------------------------------------------------------------------


def test_labels_are_validated_and_canonicalised() -> None:
    batch = [
        {"id": "a", "label": 1},
        {"id": "b", "label": None},
        {"label": "x"},
        {"id": "d", "label": [1]},
        {"id": "e", "label": "yes", "timestamp": NOW - 30 * DAY},
        {"id": "f", "label": "no", "colour": 1},
        {"id": "g", "label": True, "timestamp": "2025-06-15T15:06:40Z"},
    ]
    result = validate_labels(batch, SPEC, **LIMITS)
    assert [(label.index, label.id, label.label) for label in result.accepted] == [
        (0, "a", "1"),
        (6, "g", "1"),
    ]
    assert result.accepted[0].ts == NOW
    assert result.accepted[1].ts == 1_750_000_000.0
    assert fields_of(result) == [
        (1, "label"),
        (2, "id"),
        (3, "label"),
        (4, "timestamp"),
        (5, "colour"),
    ]


def test_labels_follow_the_target_kind() -> None:
    numeric = validate_labels(
        [{"id": "a", "label": 2.5}, {"id": "b", "label": "2.5"}], REGRESSION, **LIMITS
    )
    assert [label.label for label in numeric.accepted] == [2.5]
    assert fields_of(numeric) == [(1, "label")]
    boolean = ModelSpec.from_dict(
        {
            "name": "fraud",
            "task": "classification",
            "features": {"x": "numeric"},
            "target_kind": "boolean",
        }
    )
    result = validate_labels([{"id": "a", "label": 1}, {"id": "b", "label": 3}], boolean, **LIMITS)
    assert [label.label for label in result.accepted] == [True]
    assert fields_of(result) == [(1, "label")]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"id": "a", "user_id": "u", "rating": 0}, "rating"),
        ({"id": "a", "user_id": "u", "rating": 6}, "rating"),
        ({"id": "a", "user_id": "u", "rating": 3.0}, "rating"),
        ({"id": "a", "user_id": "u", "rating": True}, "rating"),
        ({"id": "a", "user_id": "u", "rating": "5"}, "rating"),
        ({"id": "a", "user_id": "u"}, "rating"),
        ({"id": "a", "rating": 3}, "user_id"),
        ({"id": "a", "user_id": 12, "rating": 3}, "user_id"),
        ({"user_id": "u", "rating": 3}, "id"),
        ({"id": "a", "user_id": "u", "rating": 3, "comment": "x" * 65_537}, "comment"),
        ({"id": "a", "user_id": "u", "rating": 3, "comment": "\x00"}, "comment"),
        ({"id": "a", "user_id": "u\ud800", "rating": 3}, "user_id"),
        ({"id": "a\x00", "user_id": "u", "rating": 3}, "id"),
        ({"id": "a", "user_id": "u", "rating": 3, "comment": 5}, "comment"),
        ({"id": "a", "user_id": "u", "rating": 3, "timestamp": "later"}, "timestamp"),
    ],
)
def test_bad_feedback_is_rejected(item: dict[str, Any], field: str) -> None:
    result = validate_feedback([item], SPEC, **LIMITS)
    assert result.accepted == []
    assert fields_of(result) == [(0, field)]


def test_valid_feedback_is_accepted() -> None:
    batch = [
        {"id": "a", "user_id": "u1", "rating": 5, "comment": "x" * 2000},
        {"id": "b", "user_id": "u2", "rating": 1, "comment": None, "timestamp": NOW - 5},
    ]
    result = validate_feedback(batch, SPEC, **LIMITS)
    assert result.rejected == []
    assert [(f.id, f.user_id, f.rating, f.ts) for f in result.accepted] == [
        ("a", "u1", 5, NOW),
        ("b", "u2", 1, NOW - 5),
    ]
    assert result.accepted[1].comment is None


# -- columnar bodies ---------------------------------------------------------------------------


def flatten(event: dict[str, Any]) -> dict[str, Any]:
    """The columnar row of a JSON event."""
    row = {key: event.get(key) for key in ("id", "timestamp", "version", "prediction")}
    row |= {key: event.get(key) for key in ("latency_ms", "error")}
    row |= dict(event.get("features") or {})
    for label, value in (event.get("proba") or {}).items():
        row[f"proba.{label}"] = value
    for key, value in (event.get("segment") or {}).items():
        row[f"segment.{key}"] = value
    return row


COLUMN_TYPES = {
    "id": pa.string(),
    "timestamp": pa.float64(),
    "version": pa.string(),
    "prediction": pa.int64(),
    "latency_ms": pa.float64(),
    "error": pa.bool_(),
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


def to_table(events: list[dict[str, Any]]) -> pa.Table:
    rows = [flatten(event) for event in events]
    schema = pa.schema(list(COLUMN_TYPES.items()))
    return pa.Table.from_pylist(rows, schema=schema)


def comparable(result: Any) -> tuple[list[Any], list[tuple[int, str]]]:
    """Accepted events (ids kept only when given) and rejected (index, field) pairs."""
    events = []
    for event in result.accepted:
        fields = {name: getattr(event, name) for name in ValidEvent.__slots__}
        if not event.id.startswith("given-"):
            fields["id"] = "generated"
        events.append(fields)
    return events, fields_of(result)


COLUMNAR_CASES = [
    good_event(id="given-0"),
    with_features(age=math.nan),
    good_event(id="given-2", latency_ms=-1.0),
    good_event(proba={"0": 1.5, "1": 0.2}),
    good_event(version=""),
    good_event(segment={"region": "a=b"}),
    good_event(timestamp=NOW - 30 * DAY),
    good_event(timestamp=NOW + 3600),
    good_event(id="x" * 300),
    with_features(signup="not a date"),
    good_event(id=None, timestamp=None, prediction=None, proba=None, segment=None, error=None),
    with_features(age=None, plan=None, vip=None, signup=None, note=None),
    good_event(id="given-12", proba={"1": 0.9}, segment={"device": "web"}),
    good_event(version=None),
]


def test_columnar_path_agrees_with_the_json_path() -> None:
    from_json = validate_events(COLUMNAR_CASES, SPEC, **LIMITS)
    from_columns = validate_columns(to_table(COLUMNAR_CASES), SPEC, **LIMITS)
    assert comparable(from_columns) == comparable(from_json)
    assert [event.index for event in from_columns.accepted] == [0, 10, 11, 12]
    assert from_columns.accepted[1].ts == NOW


def test_columnar_generated_ids_are_uuid4_hex() -> None:
    table = to_table([good_event(id=None)] * 3)
    ids = [event.id for event in validate_columns(table, SPEC, **LIMITS).accepted]
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", i) for i in ids)


def test_arrow_stream_and_parquet_bodies_decode_to_the_same_result() -> None:
    table = to_table(COLUMNAR_CASES)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=4)
    parquet = io.BytesIO()
    pq.write_table(table, parquet)
    expected = comparable(validate_columns(table, SPEC, **LIMITS))
    bounds = {"max_rows": 100, "max_bytes": 10**6}
    decoded_bodies = (
        decode_arrow_stream(sink.getvalue(), **bounds),
        decode_parquet(parquet.getvalue(), **bounds),
    )
    for decoded in decoded_bodies:
        assert comparable(validate_columns(decoded, SPEC, **LIMITS)) == expected


@pytest.mark.parametrize("decode", [decode_arrow_stream, decode_parquet])
def test_corrupt_bodies_raise_ingest_error(decode: Any) -> None:
    with pytest.raises(IngestError, match="not a valid") as caught:
        decode(b"\x00garbage" * 10, max_rows=10, max_bytes=10**6)
    assert caught.value.field == "body"


def test_columnar_type_conversions() -> None:
    table = pa.table(
        {
            "version": ["1", "1", "1"],
            "timestamp": pa.array(
                [int((NOW - 10) * 1000), None, int(NOW * 1000)], pa.timestamp("ms", tz="UTC")
            ),
            "age": pa.array([1, 2, None], pa.int32()),
            "plan": pa.array(["a", "b", "a"]).dictionary_encode(),
            "vip": pa.array([0, 1, None], pa.int8()),
            "signup": pa.array([1.7e9, None, 1.7e9]),
            "note": pa.array(["x", None, "z"], pa.large_string()),
            "prediction": pa.array([1.0, 0.0, None]),
        }
    )
    result = validate_columns(table, SPEC, **LIMITS)
    assert result.rejected == []
    first, second, third = result.accepted
    assert (first.ts, second.ts, third.ts) == (NOW - 10, NOW, NOW)
    assert first.features == {
        "age": 1.0,
        "plan": "a",
        "vip": False,
        "signup": 1.7e9,
        "note": "x",
    }
    assert second.features["vip"] is True
    assert third.features["age"] is None
    assert [event.prediction for event in result.accepted] == ["1", "0", None]


def test_columnar_column_level_problems_reject_every_row() -> None:
    table = pa.table(
        {
            "version": ["1", "1"],
            "age": ["young", None],
            "plan": [1.5, 2.0],
            "vip": [2, 1],
            "note": [1, None],
            "height": [1.0, 2.0],
            "proba.7": [0.1, 0.2],
            "segment.team": ["a", "b"],
            "error": [1, 0],
        }
    )
    result = validate_columns(table, SPEC, **LIMITS)
    assert result.accepted == []
    assert fields_of(result) == sorted(
        [
            (0, "features.age"),
            (0, "features.plan"),
            (0, "features.vip"),
            (0, "features.note"),
            (0, "features.height"),
            (1, "features.height"),
            (0, "features.signup"),
            (1, "features.signup"),
            (0, "proba.7"),
            (1, "proba.7"),
            (0, "segment.team"),
            (1, "segment.team"),
            (0, "error"),
            (1, "error"),
        ]
    )


def test_columnar_whole_batch_errors_raise() -> None:
    table = to_table([good_event()] * 3)
    with pytest.raises(IngestError, match="limit is 2"):
        validate_columns(table, SPEC, now=NOW, max_age_seconds=DAY, max_batch=2)
    duplicated = pa.Table.from_arrays([pa.array(["1"]), pa.array(["2"])], ["version", "version"])
    with pytest.raises(IngestError, match="duplicate columns: version"):
        validate_columns(duplicated, SPEC, **LIMITS)


def test_empty_columnar_batch() -> None:
    result = validate_columns(to_table([]), SPEC, **LIMITS)
    assert (result.accepted, result.rejected) == ([], [])


# -- properties --------------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
# Storable text: no NUL, no lone surrogates (both stores refuse them).
storable = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
FEATURE_VALUES = {
    "age": st.none() | finite | st.integers(-(2**53), 2**53),
    "plan": st.none() | st.text(storable, max_size=8) | st.integers(-1000, 1000) | st.booleans(),
    "vip": st.none() | st.booleans() | st.sampled_from([0, 1]),
    "signup": st.none()
    | st.integers(0, 4_000_000_000)
    | st.datetimes().map(lambda moment: moment.isoformat()),
    "note": st.none() | st.text(storable, max_size=20),
}
tag = st.text(storable, min_size=1, max_size=10).filter(
    lambda text: "," not in text and "=" not in text
)


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": draw(st.text(storable, min_size=1, max_size=10)),
        "features": {name: draw(values) for name, values in FEATURE_VALUES.items()},
    }
    optional = {
        "id": st.text(storable, min_size=1, max_size=128),
        "timestamp": st.floats(NOW - 7 * DAY, NOW + 300),
        "prediction": st.none() | st.text(storable, max_size=5) | st.integers(0, 9),
        "proba": st.none()
        | st.dictionaries(st.sampled_from(["0", "1"]), st.floats(0.0, 1.0), max_size=2),
        "latency_ms": st.none() | st.floats(0.0, 1e6),
        "error": st.none() | st.booleans(),
        "segment": st.none()
        | st.dictionaries(st.sampled_from(["region", "device"]), tag, max_size=2),
    }
    for key, values in optional.items():
        if draw(st.booleans()):
            event[key] = draw(values)
    return event


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_events(), max_size=5))
def test_random_valid_events_are_always_accepted(events: list[dict[str, Any]]) -> None:
    result = validate_events(events, SPEC, **LIMITS)
    assert result.rejected == []
    assert [event.index for event in result.accepted] == list(range(len(events)))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["NaN", "inf", "2024-01-01", "age", "proba", "1"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from([*sorted(SPEC.features), "id", "version", "proba", "segment", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
junk_events = (
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "timestamp",
                "version",
                "features",
                "prediction",
                "proba",
                "latency_ms",
                "error",
                "segment",
                "other",
            ]
        ),
        json_values,
    )
    | json_values
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(junk_events, max_size=6))
def test_random_junk_never_crashes_and_every_item_is_accounted_for(payload: list[Any]) -> None:
    for validate in (validate_events, validate_labels, validate_feedback):
        result = validate(payload, SPEC, **LIMITS)
        accepted = [item.index for item in result.accepted]
        assert sorted(accepted + result.rejected_indices) == list(range(len(payload)))
        assert all(isinstance(r, Rejection) and r.reason for r in result.rejected)
