"""The vectorised JSON validation path agrees with the per-event reference path."""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchkeeper.ingest import (
    ValidationResult,
    ValidEvent,
    _EventRules,
    _validate_each,
    _Window,
    validate_events,
)
from watchkeeper.modelspec import ModelSpec

NOW = 1_750_000_000.0
WINDOW = _Window.build(NOW, 7 * 86_400.0, 300.0)
MIXED = ModelSpec.from_dict(
    {
        "name": "churn",
        "task": "classification",
        "features": {
            "age": "numeric",
            "plan": "categorical",
            "vip": "boolean",
            "signup": "datetime",
            "note": "text",
        },
        "proba": {"0": "proba_0", "1": "proba_1"},
        "segments": ["region"],
    }
)
NUMERIC = ModelSpec.from_dict(
    {"name": "price", "task": "regression", "features": {"x": "numeric", "y": "numeric"}}
)

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 0.0, 1.0, 2.5, -3, "", "a", "3.5", "NaN", "2024-01-01T00:00:00Z"]),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["0", "1", "x"]), st.floats(0, 1), max_size=2),
)
GOOD_NUMBER = st.one_of(st.none(), st.floats(-1e6, 1e6), st.integers(-(10**6), 10**6))
TIMESTAMPS = st.one_of(
    st.none(),
    st.floats(NOW - 8 * 86_400, NOW + 600),
    st.sampled_from(["2025-06-15T15:00:00", "2025-06-15T15:06:40+00:00", "yesterday", NOW * 1e3]),
)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes anything at all (so most events are clean)."""
    return st.integers(0, 24).flatmap(lambda dice: ANYTHING if dice == 0 else value)


@st.composite
def events(draw: st.DrawFn, spec: ModelSpec) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(ANYTHING)
    features: dict[str, Any] = {}
    for name, kind in spec.features.items():
        if draw(st.integers(0, 20)) == 0:
            continue
        good = {
            "numeric": GOOD_NUMBER,
            "categorical": st.one_of(st.none(), st.sampled_from(["a", "b", 3, 2.0, True])),
            "boolean": st.one_of(st.none(), st.booleans(), st.sampled_from([0, 1])),
            "datetime": TIMESTAMPS,
            "text": st.one_of(st.none(), st.text(max_size=3)),
        }[kind.value]
        features[name] = draw(_maybe(good))
    if draw(st.integers(0, 20)) == 0:
        features["extra"] = 1.0
    event: dict[str, Any] = {
        "version": draw(_maybe(st.sampled_from(["v1", "v2", "x" * 128]))),
        "features": features if draw(st.integers(0, 30)) else draw(ANYTHING),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "id": _maybe(st.sampled_from(["e1", "e2", "z" * 128, "z" * 129])),
        "timestamp": _maybe(TIMESTAMPS),
        "prediction": _maybe(GOOD_NUMBER if spec.task.value == "regression" else st.just("1")),
        "proba": _maybe(st.one_of(st.none(), st.just({"0": 0.25, "1": 0.75}))),
        "latency_ms": _maybe(st.one_of(st.none(), st.floats(0, 1e4))),
        "error": _maybe(st.one_of(st.none(), st.booleans())),
        "segment": _maybe(st.one_of(st.none(), st.just({"region": "eu"}))),
        "unknown": ANYTHING,
    }
    for name, strategy in optional.items():
        if draw(st.integers(0, 3 if name != "unknown" else 40)) == 0:
            continue
        if name != "unknown":
            event[name] = draw(strategy)
    if draw(st.integers(0, 40)) == 0:
        event["feature"] = draw(ANYTHING)
    return event


def _comparable(result: ValidationResult[ValidEvent], given_ids: list[bool]) -> list[Any]:
    """Accepted events with generated ids blanked (they are random), and the rejections."""
    events = []
    for event in result.accepted:
        assert re.fullmatch(r"[0-9a-f]{32}|.+", event.id, flags=re.DOTALL)
        event_id = event.id if given_ids[event.index] else "generated"
        features = {
            name: ("nan" if isinstance(value, float) and math.isnan(value) else value)
            for name, value in event.features.items()
        }
        fields = (event.index, event_id, event.ts, event.version, features, event.prediction)
        types = tuple(type(value).__name__ for value in event.features.values())
        events.append((*fields, types, event.proba, event.latency_ms, event.error, event.segment))
    return [events, result.rejected]


def _agree(batch: list[Any], spec: ModelSpec) -> None:
    given_ids = [isinstance(raw, dict) and raw.get("id") is not None for raw in batch]
    fast = validate_events(
        batch, spec, now=NOW, max_age_seconds=7 * 86_400.0, max_batch=len(batch) + 1
    )
    slow = _validate_each(batch, _EventRules.build(spec, WINDOW))
    assert _comparable(fast, given_ids) == _comparable(slow, given_ids)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(MIXED), max_size=12))
def test_fast_path_matches_reference_path_for_every_field_kind(batch: list[Any]) -> None:
    _agree(batch, MIXED)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(NUMERIC), max_size=12))
def test_fast_path_matches_reference_path_for_numeric_models(batch: list[Any]) -> None:
    _agree(batch, NUMERIC)


def test_fast_path_matches_on_a_clean_batch_with_one_bad_event() -> None:
    batch: list[Any] = [
        {"id": f"e{i}", "version": "v1", "features": {"x": float(i), "y": i}, "prediction": 1}
        for i in range(50)
    ]
    batch[17]["features"]["y"] = float("nan")
    batch[30] = "not an event"
    fast = validate_events(batch, NUMERIC, now=NOW, max_age_seconds=7 * 86_400.0, max_batch=100)
    slow = _validate_each(batch, _EventRules.build(NUMERIC, WINDOW))
    assert [r.index for r in fast.rejected] == [17, 30]
    assert _comparable(fast, [True] * 50) == _comparable(slow, [True] * 50)
    assert fast.accepted[0].features == {"x": 0.0, "y": 0.0}
    assert type(fast.accepted[1].features["y"]) is float
