"""NumericProfile: counts, exact moments, bins, KLL accuracy and merge algebra."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from watchkeeper.errors import InputError
from watchkeeper.profiles import NumericProfile
from watchkeeper.profiles._binning import fine_edges

values_strategy = arrays(
    np.float64,
    st.integers(0, 200),
    elements=st.one_of(
        st.floats(-1e6, 1e6, allow_nan=False),
        st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0]),
    ),
)
EDGES = fine_edges(np.random.default_rng(0).normal(size=1000) * 1e3)


def assert_same_exact_state(left: NumericProfile, right: NumericProfile) -> None:
    for name in ("count", "missing", "non_numeric", "positive_infinite", "negative_infinite"):
        assert getattr(left, name) == getattr(right, name), name
    np.testing.assert_array_equal(left.bin_counts, right.bin_counts)
    assert left.minimum == right.minimum or (math.isnan(left.minimum) and math.isnan(right.minimum))
    assert left.maximum == right.maximum or (math.isnan(left.maximum) and math.isnan(right.maximum))


def assert_close_moments(left: NumericProfile, right: NumericProfile) -> None:
    if left.finite_count == 0:
        assert right.finite_count == 0
        return
    scale = max(1.0, abs(left.mean), abs(right.mean))
    assert left.mean == pytest.approx(right.mean, rel=1e-9, abs=1e-9 * scale)
    assert left.m2 == pytest.approx(right.m2, rel=1e-7, abs=1e-6 * scale**2)


def test_counts_moments_and_extremes_match_numpy() -> None:
    values = np.array([1.0, np.nan, 2.0, np.inf, -np.inf, 4.0, np.nan, -np.inf])
    profile = NumericProfile.of(values, non_numeric=1)
    assert (profile.count, profile.missing, profile.non_numeric) == (8, 1, 1)
    assert (profile.positive_infinite, profile.negative_infinite, profile.finite_count) == (1, 2, 3)
    assert profile.mean == pytest.approx(7 / 3)
    assert profile.std() == pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1))
    assert (profile.minimum, profile.maximum) == (1.0, 4.0)
    assert int(profile.bin_counts.sum()) == 3


def test_non_numeric_cannot_exceed_nan_count() -> None:
    with pytest.raises(InputError, match="non_numeric"):
        NumericProfile.of(np.array([1.0, np.nan]), non_numeric=2)


def test_fine_edges_are_exact_percentiles_and_close_the_maximum() -> None:
    values = np.arange(1, 1001, dtype=np.float64)
    edges = fine_edges(values)
    # Inverted-CDF percentile i/100 of 1..1000 is 10 i (and the minimum for i = 0); the
    # 0.1 % and 99.9 % tail quantiles add 1 (already there) and 999.
    expected = np.unique(np.r_[1.0, np.arange(10.0, 1001.0, 10.0), 999.0])
    np.testing.assert_array_equal(edges[:-1], expected)
    assert edges[-1] == np.nextafter(1000.0, np.inf)
    profile = NumericProfile.of(values)
    counts = profile.bin_counts
    assert counts[0] == 0
    assert counts[-1] == 0
    assert counts.sum() == 1000


def test_discrete_values_get_one_bin_each() -> None:
    values = np.repeat([1.0, 2.0, 5.0], [10, 500, 3])
    profile = NumericProfile.of(values)
    assert profile.edges is not None
    assert profile.edges[:-1].tolist() == [1.0, 2.0, 5.0]
    assert profile.bin_counts.tolist() == [0, 10, 500, 3, 0]


@settings(max_examples=150, deadline=None)
@given(left=values_strategy, right=values_strategy)
def test_merge_equals_profile_of_concatenation(left: np.ndarray, right: np.ndarray) -> None:
    a = NumericProfile.of(left, edges=EDGES)
    b = NumericProfile.of(right, edges=EDGES)
    whole = NumericProfile.of(np.concatenate((left, right)), edges=EDGES)
    merged = a.merge(b)
    assert_same_exact_state(merged, whole)
    assert_close_moments(merged, whole)


@settings(max_examples=150, deadline=None)
@given(left=values_strategy, right=values_strategy)
def test_merge_is_commutative_bit_for_bit(left: np.ndarray, right: np.ndarray) -> None:
    a = NumericProfile.of(left, edges=EDGES)
    b = NumericProfile.of(right, edges=EDGES)
    ab, ba = a.merge(b), b.merge(a)
    assert_same_exact_state(ab, ba)
    assert ab.mean == ba.mean or math.isnan(ab.mean)
    assert ab.m2 == ba.m2


@settings(max_examples=100, deadline=None)
@given(first=values_strategy, second=values_strategy, third=values_strategy)
def test_merge_is_associative(first: np.ndarray, second: np.ndarray, third: np.ndarray) -> None:
    a, b, c = (NumericProfile.of(v, edges=EDGES) for v in (first, second, third))
    left, right = a.merge(b).merge(c), a.merge(b.merge(c))
    assert_same_exact_state(left, right)
    assert_close_moments(left, right)


def test_merge_does_not_change_inputs_and_empty_is_identity() -> None:
    rng = np.random.default_rng(1)
    a = NumericProfile.of(rng.normal(size=100))
    before = a.bin_counts
    merged = a.merge(NumericProfile())
    np.testing.assert_array_equal(a.bin_counts, before)
    assert merged.count == a.count
    assert merged.mean == a.mean
    assert NumericProfile().merge(a).edges is a.edges


def test_merge_rejects_different_edges_and_k() -> None:
    rng = np.random.default_rng(2)
    with pytest.raises(InputError, match="edges"):
        NumericProfile.of(rng.normal(size=10)).merge(NumericProfile.of(rng.normal(size=10)))
    with pytest.raises(InputError, match="k = 200"):
        NumericProfile(k=200).merge(NumericProfile(k=100))


def test_kll_quantiles_within_rank_error_after_merges() -> None:
    rng = np.random.default_rng(4)
    values = rng.lognormal(size=200_000)
    parts = [NumericProfile.of(chunk, edges=EDGES) for chunk in np.array_split(values, 7)]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    levels = np.array([0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    estimates = merged.quantiles(levels)
    ranks = np.searchsorted(np.sort(values), estimates, side="right") / values.size
    assert np.all(np.abs(ranks - levels) <= merged.rank_error())
    assert merged.rank_error() == pytest.approx(0.0133, abs=5e-4)


def test_to_dict_is_json_safe_and_named() -> None:
    summary = NumericProfile.of(np.array([np.nan])).to_dict()
    assert summary["mean"] is None
    assert summary["std"] is None
    quantiles = NumericProfile.of(np.arange(100.0)).to_dict()["quantiles"]
    assert isinstance(quantiles, dict)
    assert list(quantiles) == ["p01", "p05", "p25", "p50", "p75", "p95", "p99"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 4}, "k must be"),
        ({"fine_bins": 0}, "fine_bins"),
        ({"edges": [2.0, 1.0]}, "increasing"),
    ],
)
def test_constructor_validates(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        NumericProfile(**kwargs)  # type: ignore[arg-type]
