"""Validated columns feed the fold and the store exactly as per-event objects would."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from watchkeeper.ingest.arrow import validate_table
from watchkeeper.ingest.decode import encode_valid
from watchkeeper.ingest.json import validate_event_batch
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.models import reference_profile
from watchkeeper.monitor.windows import ColumnPlan, EventBatch
from watchkeeper.store import encode_columns, encode_events
from watchkeeper.store.records import ENCODED_EVENT_VALUES, NAMELESS_EVENT_VALUES

NOW = 1_750_000_000.0
LIMITS = {"now": NOW, "max_age_seconds": 86_400.0, "max_batch": 100}
SPEC = ModelSpec.from_dict(
    {
        "name": "churn",
        "task": "classification",
        "features": {"age": "numeric", "plan": "categorical", "vip": "boolean", "note": "text"},
        "proba": {"0": "proba_0", "1": "proba_1"},
        "segments": ["region"],
    }
)


def plan() -> ColumnPlan:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 9, 300),
            "plan": rng.choice(["basic", "pro"], 300),
            "vip": rng.choice([True, False], 300),
            "prediction": rng.choice(["0", "1"], 300),
            "proba_1": rng.uniform(size=300),
        }
    )
    return ColumnPlan.build(
        task=SPEC.task,
        features=SPEC.features,
        prediction=SPEC.prediction,
        proba=SPEC.proba,
        reference=reference_profile(SPEC, frame),
    )


def events() -> list[dict[str, object]]:
    return [
        {"id": "a", "version": "1", "features": {"age": 31, "plan": "pro", "vip": True,
         "note": "hi"}, "prediction": "1", "proba": {"1": 0.8, "0": 0.2}, "latency_ms": 3.5,
         "segment": {"region": "eu"}},
        {"version": "1", "features": {"age": None, "plan": 2, "vip": 0, "note": None},
         "prediction": None, "error": True},
        {"id": "bad", "version": "1", "features": {"age": "x", "plan": "a", "vip": True,
         "note": None}},
        {"id": "c", "version": "2", "timestamp": NOW - 60, "features": {"age": 2.5,
         "plan": None, "vip": None, "note": "z"}, "prediction": "0", "proba": {"0": 1.0}},
    ]  # fmt: skip


def same_batch(left: EventBatch, right: EventBatch) -> None:
    assert left.ids == right.ids
    assert left.versions == right.versions
    assert left.segments == right.segments
    assert left.predictions == right.predictions
    assert left.probas == right.probas
    np.testing.assert_array_equal(left.ts, right.ts)
    np.testing.assert_array_equal(left.latency, right.latency)
    np.testing.assert_array_equal(left.errors, right.errors)
    assert left.columns.keys() == right.columns.keys()
    for name, column in left.columns.items():
        assert column.dtype == right.columns[name].dtype
        np.testing.assert_array_equal(column, right.columns[name])


def test_columns_of_a_json_batch_match_the_per_event_path() -> None:
    checked = validate_event_batch(events(), SPEC, **LIMITS)
    accepted = checked.accepted
    assert accepted.index == [0, 1, 3]
    assert [rejection.index for rejection in checked.rejected] == [2]
    assert accepted.features["plan"] == ["pro", "2", None]
    assert accepted.features["vip"] == [True, False, None]
    assert accepted.ts == [NOW, NOW, NOW - 60]
    assert accepted.ids[0] == "a"
    assert len(accepted.ids[1]) == 32
    assert accepted.segments == ["region=eu", "", ""]
    assert accepted.errors == [False, True, False]

    every = plan()
    same_batch(EventBatch.of_columns(accepted, every), EventBatch.build(accepted.events(), every))


def test_columns_of_a_table_match_the_json_columns() -> None:
    table = pa.table(
        {
            "id": ["a", "c"],
            "version": ["1", "2"],
            "timestamp": [NOW, NOW - 60],
            "age": [31.0, 2.5],
            "plan": ["pro", None],
            "vip": [True, None],
            "note": ["hi", "z"],
            "prediction": ["1", "0"],
            "proba.0": [0.2, 1.0],
            "proba.1": [0.8, None],
            "latency_ms": [3.5, None],
            "segment.region": ["eu", None],
        }
    )
    from_table = validate_table(table, SPEC, **LIMITS).accepted
    json_events = events()
    json_events[0]["timestamp"] = NOW
    from_json = validate_event_batch([json_events[0], json_events[3]], SPEC, **LIMITS).accepted
    assert from_table.events() == from_json.events()
    every = plan()
    same_batch(EventBatch.of_columns(from_table, every), EventBatch.of_columns(from_json, every))


def test_columns_encode_as_the_events_do() -> None:
    accepted = validate_event_batch(events(), SPEC, **LIMITS).accepted
    encoded = encode_valid(accepted)
    assert encoded == encode_events(accepted.events())
    # No event has a unit or an arm: the batch leaves both out (stored as NULL).
    width = encoded.width
    assert width == NAMELESS_EVENT_VALUES
    assert encoded.values[:width] == [
        "a", "1", NOW, "region=eu", b'{"age":31.0,"plan":"pro","vip":true,"note":"hi"}', b'"1"',
        b'{"0":0.2,"1":0.8}', 3.5, 0,
    ]  # fmt: skip
    # A null prediction and proba are empty texts, stored as SQL NULL.
    assert encoded.values[width + 5 : width + 7] == [b"", b""]
    # Only the types Python's sqlite3 binds without its adapter lookup: no bytes, bool or None
    # (but for a missing latency, a plain SQL NULL).
    latency = 7  # position of latency_ms among an event's values
    others = [value for index, value in enumerate(encoded.values) if index % width != latency]
    assert {type(value) for value in others} == {str, int, float, bytearray}


def test_values_the_fast_encoder_does_not_take_are_encoded_by_the_store_rules() -> None:
    encoded = encode_columns(
        ids=["n"],
        versions=["1"],
        ts=[NOW],
        segments=[""],
        features=[{"x": np.float32(0.5), 3: np.int64(7)}],
        predictions=[np.float64(1.25)],
        probas=[None],
        latency_ms=[None],
        errors=[False],
    )
    assert encoded.values[4] == b'{"x":0.5,"3":7}'
    assert encoded.values[5] == b"1.25"


def test_events_the_column_tests_flag_but_the_per_value_checks_accept_keep_their_order() -> None:
    # A number beyond float range makes the whole numeric column unusable for the column tests,
    # so every event goes through the per-event checks, which accept the good ones.
    batch = events()
    batch.insert(1, {"id": "huge", "version": "1", "features": {"age": 2**1100, "plan": "a",
                     "vip": True, "note": None}})  # fmt: skip
    checked = validate_event_batch(batch, SPEC, **LIMITS)
    accepted = checked.accepted
    assert accepted.index == [0, 2, 4]
    assert [rejection.index for rejection in checked.rejected] == [1, 3]
    assert accepted.ids[0] == "a"
    assert accepted.features["age"] == [31.0, None, 2.5]
    assert accepted.feature_rows() == [event.features for event in accepted.events()]
    reference = validate_event_batch(events(), SPEC, **LIMITS).accepted
    assert accepted.features == reference.features
    assert accepted.predictions == reference.predictions
    assert accepted.segments == reference.segments


def test_a_batch_with_a_unit_or_an_arm_carries_both_for_every_event() -> None:
    sent = events()
    sent[1]["unit"] = "user-7"
    accepted = validate_event_batch(sent, SPEC, **LIMITS).accepted
    encoded = encode_valid(accepted)
    assert encoded == encode_events(accepted.events())
    width = encoded.width
    assert width == ENCODED_EVENT_VALUES
    # A missing unit or arm is the empty string (never valid), which the writer stores as NULL.
    assert encoded.values[9:11] == ["", ""]
    assert encoded.values[width + 9 : width + 11] == ["user-7", ""]
