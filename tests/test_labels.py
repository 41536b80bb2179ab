"""The canonical label form: scalar and vectorised agree, and follow Python's equality."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from watchkeeper.frame import category_counts
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.labels import (
    BOOLEAN_LABELS,
    MAX_EXACT_INTEGER,
    canonical_label,
    canonical_labels,
    label_codes,
    label_counts,
)
from watchkeeper.monitor.models import reference_profile
from watchkeeper.monitor.performance import ClassificationAccumulator
from watchkeeper.profiles import CategoricalProfile
from watchkeeper.stats.performance import classification_metrics

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (True, "1"),
        (False, "0"),
        (np.bool_(True), "1"),
        (1, "1"),
        (np.int32(-7), "-7"),
        (2.0, "2"),
        (-0.0, "0"),
        (2.5, "2.5"),
        (1e300, "1e+300"),
        (float("inf"), "inf"),
        (MAX_EXACT_INTEGER, "9007199254740992"),
        ("true", "true"),
        ("", ""),
        (None, None),
        (float("nan"), None),
        (pd.NA, None),
    ],
)
def test_canonical_label(value: object, label: str | None) -> None:
    assert canonical_label(value) == label


def test_equal_python_values_share_a_label() -> None:
    assert canonical_label(True) == canonical_label(1) == canonical_label(1.0)
    assert canonical_label("1") == canonical_label(1)
    assert canonical_label("true") != canonical_label(True)


@given(st.lists(scalars, max_size=30))
def test_vectorised_agrees_with_scalar_on_mixed_lists(values: list[object]) -> None:
    expected = [canonical_label(value) for value in values]
    assert canonical_labels(values).tolist() == expected
    assert canonical_labels(pd.Series(values, dtype=object)).tolist() == expected


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=30))
def test_vectorised_floats_agree_with_scalar(values: list[float]) -> None:
    expected = [canonical_label(value) for value in values]
    assert canonical_labels(np.array(values, dtype=np.float64)).tolist() == expected
    assert canonical_labels(pd.Series(values, dtype=np.float64)).tolist() == expected


@given(st.lists(st.one_of(st.none(), st.booleans()), max_size=30))
def test_vectorised_nullable_booleans_agree(values: list[bool | None]) -> None:
    expected = [canonical_label(value) for value in values]
    assert canonical_labels(pd.Series(values, dtype="boolean")).tolist() == expected


@given(st.lists(st.one_of(st.none(), st.integers(-(2**62), 2**62)), max_size=30))
def test_vectorised_nullable_integers_agree(values: list[int | None]) -> None:
    expected = [canonical_label(value) for value in values]
    assert canonical_labels(pd.Series(values, dtype="Int64")).tolist() == expected


def test_categorical_dtype_and_two_dimensional_input() -> None:
    assert canonical_labels(pd.Series([1.0, 2.5], dtype="category")).tolist() == ["1", "2.5"]
    with pytest.raises(ValueError, match="one-dimensional"):
        canonical_labels(np.zeros((2, 2)))


big_numbers = st.integers(min_value=2**53, max_value=2**70).flatmap(
    lambda number: st.sampled_from([number, -number, float(number), -float(number)])
)


@given(st.lists(st.one_of(scalars, big_numbers), max_size=30))
def test_equal_values_with_different_labels_keep_their_own(values: list[object]) -> None:
    # 2**60 == 2.0**60 in Python, yet one is an integer and the other a float too large to be
    # exact: each keeps its own label whichever comes first in the column.
    expected = [canonical_label(value) for value in values]
    assert canonical_labels(values).tolist() == expected
    assert canonical_labels(pd.Series(values, dtype=object)).tolist() == expected


def test_values_of_other_types_are_labelled_one_by_one() -> None:
    values = [1.0, Decimal("1.0"), Decimal("1"), 2**60, 2.0**60, np.str_("a")]
    assert canonical_labels(values).tolist() == [
        "1",
        "1.0",
        "1",
        "1152921504606846976",
        "1.152921504606847e+18",
        "a",
    ]
    assert type(canonical_label(np.str_("a"))) is str


@given(st.lists(st.one_of(scalars, big_numbers), max_size=30))
def test_label_codes_index_distinct_labels(values: list[object]) -> None:
    codes, labels = label_codes(values)
    assert len(set(labels)) == len(labels)
    names = [None if code < 0 else labels[code] for code in codes.tolist()]
    assert names == [canonical_label(value) for value in values]
    assert set(labels) == {name for name in names if name is not None}


@given(st.lists(st.one_of(scalars, big_numbers), max_size=30))
def test_label_counts_count_the_canonical_labels(values: list[object]) -> None:
    expected = Counter(label for label in map(canonical_label, values) if label is not None)
    for column in (values, pd.Series(values, dtype=object), np.array(values, dtype=object)):
        labels, counts = label_counts(column)
        assert dict(zip(labels, counts.tolist(), strict=True)) == expected
        assert len(set(labels)) == len(labels)
        assert counts.min(initial=1) > 0


def test_label_counts_leave_out_unused_categories() -> None:
    column = pd.Series(["b", None, "b"], dtype=pd.CategoricalDtype(["a", "b"]))
    labels, counts = label_counts(column)
    assert (labels, counts.tolist()) == (["b"], [2])


def test_label_codes_of_a_float_column_merge_equal_labels() -> None:
    codes, labels = label_codes(np.array([0.0, -0.0, 2.0, np.nan, 2.5, 2.0]))
    assert labels == ["0", "2", "2.5"]
    assert codes.tolist() == [0, 0, 1, -1, 2, 1]


def test_boolean_labels_are_those_of_false_and_true() -> None:
    assert (canonical_label(False), canonical_label(True)) == BOOLEAN_LABELS


# --- every path names labels the same way ---------------------------------------------------

label_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([0.0, 1.0, 2.0, -1.0, 2.5, 1e20, float("nan")]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["true", "false", "1", "0", "1.0", "gold", ""]),
)
columns = st.one_of(
    st.lists(label_values, min_size=1, max_size=40).map(lambda v: pd.Series(v, dtype=object)),
    st.lists(st.booleans(), min_size=1, max_size=40).map(pd.Series),
    st.lists(st.integers(-3, 3), min_size=1, max_size=40).map(pd.Series),
    st.lists(st.sampled_from([0.0, 1.0, 2.5, np.nan]), min_size=1, max_size=40).map(pd.Series),
    st.lists(st.one_of(st.none(), st.booleans()), min_size=1, max_size=40).map(
        lambda v: pd.Series(v, dtype="boolean")
    ),
)


def _label_counter(column: pd.Series) -> Counter[str]:
    return Counter(label for label in canonical_labels(column).tolist() if label is not None)


@given(columns)
def test_batch_category_counts_and_the_monitor_reference_profile_use_canonical_labels(
    column: pd.Series,
) -> None:
    expected = _label_counter(column)
    assert category_counts(column).to_dict() == expected
    assert CategoricalProfile.of(column).counts == expected
    assert CategoricalProfile.of(column.tolist()).counts == expected
    spec = ModelSpec.from_dict(
        {"name": "m", "task": "classification", "features": {"c": "categorical"}}
    )
    reference = reference_profile(spec, pd.DataFrame({"c": column}))
    profile = reference.columns["c"]
    assert isinstance(profile, CategoricalProfile)
    assert profile.counts == expected
    assert profile.missing == len(column) - sum(expected.values())


@given(columns)
def test_batch_and_live_performance_name_classes_by_canonical_labels(column: pd.Series) -> None:
    expected = set(_label_counter(column))
    assume(expected)
    batch = classification_metrics(column, column)
    assert set(batch["classes"]) == expected  # type: ignore[arg-type]
    assert batch["accuracy"] == 1.0
    live = ClassificationAccumulator()
    live.update(column.tolist(), column.tolist(), [None] * len(column))
    assert set(live.metrics()["classes"]) == expected
    assert live.metrics()["accuracy"] == 1.0


def test_a_reference_mixing_booleans_and_strings_keeps_booleans_as_one_and_zero() -> None:
    column = pd.Series([True, "gold", False, True, None], dtype=object)
    assert category_counts(column).to_dict() == {"1": 2, "gold": 1, "0": 1}
    assert list(CategoricalProfile.of([True, "gold", False]).counts) == ["1", "gold", "0"]
    spec = ModelSpec.from_dict(
        {"name": "m", "task": "classification", "features": {"tier": "categorical"}}
    )
    reference = reference_profile(spec, pd.DataFrame({"tier": column}))
    profile = reference.columns["tier"]
    assert isinstance(profile, CategoricalProfile)
    assert list(profile.counts) == ["1", "gold", "0"]


def test_a_live_label_true_matches_a_prediction_one() -> None:
    live = ClassificationAccumulator(classes=("0", "1"))
    live.update([True, False, True], [1, 0.0, "1"], [{"1": 0.9}, {"1": 0.2}, {"1": 0.7}])
    metrics = live.metrics()
    assert metrics["accuracy"] == 1.0
    assert metrics["classes"] == ["0", "1"]
    assert metrics["roc_auc"] == 1.0
    batch = classification_metrics([True, False, True], [1, 0.0, "1"], [0.9, 0.2, 0.7])
    assert (batch["accuracy"], batch["classes"], batch["roc_auc"]) == (1.0, ["0", "1"], 1.0)
