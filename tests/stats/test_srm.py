"""The sample-ratio-mismatch check: golden values against SciPy's chisquare, its false-alarm
rate on a true split and its power on a 52/48 split."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy import stats

from watchkeeper.errors import ConfigError, InputError
from watchkeeper.stats import srm
from watchkeeper.stats.srm import sample_ratio_mismatch


def test_docstring_examples() -> None:
    assert doctest.testmod(srm).failed == 0


@pytest.mark.parametrize(
    ("counts", "weights"),
    [
        ([10_400, 9_600], [0.5, 0.5]),
        ([960, 40], [95, 5]),
        ([300, 340, 360], [1, 1, 1]),
        ([5, 7], [0.3, 0.7]),
    ],
)
def test_srm_matches_scipy_chisquare(counts: list[int], weights: list[float]) -> None:
    check = sample_ratio_mismatch(counts, weights)
    expected = np.asarray(weights) / np.sum(weights) * np.sum(counts)
    golden = stats.chisquare(counts, expected)
    assert check.statistic == pytest.approx(golden.statistic, rel=1e-12)
    assert check.p_value == pytest.approx(golden.pvalue, rel=1e-9)
    assert check.df == len(counts) - 1
    assert check.mismatch == (golden.pvalue < 0.001)


def test_srm_flags_52_48_at_20000_and_not_a_true_50_50() -> None:
    assert sample_ratio_mismatch([10_400, 9_600], [50, 50]).mismatch
    rng = np.random.default_rng(23)
    served = rng.binomial(20_000, 0.52, 200)
    assert all(sample_ratio_mismatch([int(a), 20_000 - int(a)], [1, 1]).mismatch for a in served)
    healthy = rng.binomial(20_000, 0.5, 5000)
    flagged = sum(
        sample_ratio_mismatch([int(a), 20_000 - int(a)], [1, 1]).mismatch for a in healthy
    )
    # Nominal 0.001: 5 expected in 5,000; four standard errors above is 14.
    assert flagged <= 14


def test_srm_edge_cases() -> None:
    assert not sample_ratio_mismatch([0, 0], [1, 1]).mismatch
    zero_arm = sample_ratio_mismatch([100, 3], [1, 0])
    assert zero_arm.mismatch
    assert zero_arm.p_value == 0.0
    assert not sample_ratio_mismatch([100, 0], [1, 0]).mismatch
    assert sample_ratio_mismatch([10, 11], [1, 1]).to_dict()["counts"] == [10, 11]


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ConfigError, match="weights"):
        sample_ratio_mismatch([1, 2], [0, 0])
    with pytest.raises(InputError, match="same length"):
        sample_ratio_mismatch([1, 2, 3], [1, 1])
    with pytest.raises(ConfigError, match="alpha"):
        sample_ratio_mismatch([1, 2], [1, 1], alpha=0)
