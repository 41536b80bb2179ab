"""The canonical label form: scalar and vectorised agree, and follow Python's equality."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.labels import (
    BOOLEAN_LABELS,
    MAX_EXACT_INTEGER,
    canonical_label,
    canonical_labels,
    label_codes,
)

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


def test_label_codes_of_a_float_column_merge_equal_labels() -> None:
    codes, labels = label_codes(np.array([0.0, -0.0, 2.0, np.nan, 2.5, 2.0]))
    assert labels == ["0", "2", "2.5"]
    assert codes.tolist() == [0, 0, 1, -1, 2, 1]


def test_boolean_labels_are_those_of_false_and_true() -> None:
    assert (canonical_label(False), canonical_label(True)) == BOOLEAN_LABELS
