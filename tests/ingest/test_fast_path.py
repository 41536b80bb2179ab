"""Each rule's whole-column path agrees with its per-value check, value for value."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchkeeper.ingest import rules
from watchkeeper.ingest.json import validate_events
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.schema import ColumnKind, TaskType

NOW = 1_750_000_000.0
WINDOW = rules.Window.build(NOW, 7 * 86_400.0, 300.0)
NUMERIC = ModelSpec.from_dict(
    {"name": "price", "task": "regression", "features": {"x": "numeric", "y": "numeric"}}
)

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [0, 1, 0.0, 1.0, 2.5, -3, "", "a", "a,b", "k=v", "3.5", "NaN", "2024-01-01T00:00:00Z"]
    ),
    st.sampled_from(["\ud800", "nul\x00", "x" * 257, "y" * 1025, NOW, NOW * 1e3, 2.0**60]),
    st.just(rules.MISSING),
    st.just(rules.OutOfRange(5001)),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["0", "1", "x"]), st.floats(0, 1), max_size=2),
)
RULES: dict[str, rules.Rule] = {
    **{f"feature {kind.value}": rules.feature_rule(kind) for kind in ColumnKind},
    "id": rules.ID,
    "version": rules.VERSION,
    "probability": rules.PROBABILITY,
    "latency": rules.LATENCY,
    "error": rules.FLAG,
    "segment": rules.TAG,
    "timestamp": WINDOW.rule(),
    **{f"prediction {task.value}": rules.PREDICTION[task] for task in TaskType},
}


def _same(value: Any) -> Any:
    """NaN compares equal to itself here; a type is part of the value (1 is not 1.0)."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return (type(value).__name__, value)


def _by_value(rule: rules.Rule, column: list[Any]) -> tuple[list[Any], list[tuple[int, str]]]:
    values: list[Any] = []
    failures: list[tuple[int, str]] = []
    for row, raw in enumerate(column):
        result = rule.check(raw)
        if isinstance(result, rules.Bad):
            failures.append((row, result.reason))
            values.append(None)
        else:
            values.append(result)
    return values, failures


@pytest.mark.parametrize("name", list(RULES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    column=st.one_of(
        st.lists(st.one_of(ANYTHING, st.sampled_from(["eu", 0.5, 3, None])), max_size=8),
        st.lists(st.none() | st.floats() | st.sampled_from([NOW, 0.5, -1.0]), max_size=8),
    )
)
def test_column_path_matches_the_per_value_check(name: str, column: list[Any]) -> None:
    rule = RULES[name]
    fast_values, fast_failures = rules.apply(rule, list(column))
    slow_values, slow_failures = _by_value(rule, column)
    assert fast_failures == slow_failures
    assert list(map(_same, fast_values)) == list(map(_same, slow_values))
    if all(type(value) in (float, type(None)) for value in column):
        # The same floats as Arrow hands them over: with their float64 array and null mask.
        nulls = np.array([value is None for value in column], dtype=bool)
        floats = np.array(column, dtype=np.float64)
        typed_values, typed_failures = rules.apply(rule, rules.FloatColumn(floats, nulls))
        assert typed_failures == slow_failures
        assert list(map(_same, typed_values)) == list(map(_same, slow_values))


def test_a_clean_batch_with_one_bad_event_keeps_canonical_types() -> None:
    batch: list[Any] = [
        {"id": f"e{i}", "version": "v1", "features": {"x": float(i), "y": i}, "prediction": 1}
        for i in range(50)
    ]
    batch[17]["features"]["y"] = float("nan")
    batch[30] = "not an event"
    result = validate_events(batch, NUMERIC, now=NOW, max_age_seconds=7 * 86_400.0, max_batch=100)
    assert [r.index for r in result.rejected] == [17, 30]
    assert result.accepted[0].features == {"x": 0.0, "y": 0.0}
    assert type(result.accepted[1].features["y"]) is float
    assert type(result.accepted[1].prediction) is float
