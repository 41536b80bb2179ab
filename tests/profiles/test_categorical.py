"""CategoricalProfile and BooleanProfile: counts, cap, HLL, merge algebra."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper.errors import InputError
from watchkeeper.frame import category_counts
from watchkeeper.profiles import BooleanProfile, CategoricalProfile

labels_strategy = st.lists(st.one_of(st.none(), st.sampled_from(list("abcdefgh"))), max_size=60)


def test_counts_match_category_counts() -> None:
    rng = np.random.default_rng(0)
    values = pd.Series(rng.choice(np.array(["x", "y", "z", None], dtype=object), size=1000))
    profile = CategoricalProfile.of(values)
    expected = category_counts(values)
    assert profile.counts == {str(k): int(v) for k, v in expected.items()}
    assert profile.missing == int(values.isna().sum())
    assert profile.count == 1000
    assert profile.distinct_estimate() == pytest.approx(3.0, abs=0.01)


def test_update_counts_names_keys_by_canonical_label() -> None:
    profile = CategoricalProfile()
    profile.update_counts({True: 2, "1": 3, 2.0: 1, None: 4}, missing=1)
    assert profile.counts == {"1": 5, "2": 1}
    assert (profile.missing, profile.count) == (5, 11)


def test_mixed_lists_keep_booleans_as_booleans() -> None:
    # np.asarray([True, "gold"]) would turn True into the string "True".
    profile = CategoricalProfile.of([True, "gold", False, None, 1])
    assert profile.counts == {"1": 2, "gold": 1, "0": 1}
    assert profile.missing == 1
    assert BooleanProfile.of([True, False, True]).counts == {"0": 1, "1": 2}


def test_numbers_and_strings_share_labels() -> None:
    profile = CategoricalProfile.of(np.array([1.0, 2.0, 1.0]))
    profile.update(np.array(["1", "2"], dtype=object))
    assert profile.counts == {"1": 3, "2": 2}


@settings(max_examples=150, deadline=None)
@given(left=labels_strategy, right=labels_strategy)
def test_merge_equals_concatenation_and_commutes(
    left: list[str | None], right: list[str | None]
) -> None:
    a = CategoricalProfile.of(np.array(left, dtype=object))
    b = CategoricalProfile.of(np.array(right, dtype=object))
    whole = CategoricalProfile.of(np.array(left + right, dtype=object))
    for merged in (a.merge(b), b.merge(a)):
        assert merged.counts == whole.counts
        assert (merged.count, merged.missing, merged.other) == (whole.count, whole.missing, 0)
        assert merged.distinct_estimate() == pytest.approx(whole.distinct_estimate())


def test_cap_keeps_most_frequent_and_totals() -> None:
    values = np.array(["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 3 + ["e"], dtype=object)
    profile = CategoricalProfile.of(values, max_labels=3)
    assert profile.counts == {"a": 5, "b": 4, "c": 3}
    assert profile.other == 4
    assert profile.truncated
    assert sum(profile.counts.values()) + profile.other == profile.count
    assert profile.distinct_estimate() == pytest.approx(5.0, abs=0.01)


def test_cap_merge_commutes() -> None:
    rng = np.random.default_rng(1)
    a = CategoricalProfile.of(rng.integers(0, 50, 500).astype(str), max_labels=10)
    b = CategoricalProfile.of(rng.integers(0, 50, 500).astype(str), max_labels=10)
    ab, ba = a.merge(b), b.merge(a)
    assert ab.counts == ba.counts
    assert ab.other == ba.other
    assert ab.count == 1000


def test_hll_counts_many_distinct_labels() -> None:
    profile = CategoricalProfile.of(np.arange(20_000).astype(str), max_labels=100)
    assert profile.distinct_estimate() == pytest.approx(20_000, rel=0.05)
    assert len(profile.counts) == 100


def test_merge_rejects_other_settings_and_kinds() -> None:
    with pytest.raises(InputError, match="max_labels"):
        CategoricalProfile(max_labels=5).merge(CategoricalProfile(max_labels=6))
    with pytest.raises(InputError, match="BooleanProfile"):
        CategoricalProfile().merge(BooleanProfile())  # type: ignore[arg-type]


def test_to_dict_lists_top_labels() -> None:
    summary = CategoricalProfile.of(np.array(["b", "a", "b"], dtype=object)).to_dict()
    assert summary["top"] == [{"label": "b", "count": 2}, {"label": "a", "count": 1}]


def test_boolean_profile_reads_bools_numbers_and_missing() -> None:
    profile = BooleanProfile.of(np.array([True, False, True]))
    profile.update(np.array([1.0, 0.0, np.nan, 3.0]))
    profile.update(pd.Series([True, None], dtype="boolean"))
    assert (profile.count, profile.true_count, profile.false_count) == (9, 4, 2)
    assert (profile.missing, profile.invalid) == (2, 1)
    merged = profile.merge(BooleanProfile.of([False]))
    assert merged.false_count == 3
    assert profile.false_count == 2
