"""The report's special functions written without SciPy, held to SciPy's own."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import special
from scipy.spatial import distance

from watchkeeper.stats._drift_discrete import jensen_shannon_distance
from watchkeeper.stats._kolmogorov import kstwo_sf
from watchkeeper.stats._quality_tests import out_of_range_p_value
from watchkeeper.stats._special import chi2_sf, normal_cdf, rel_entr

DOFS = [*range(1, 31), 49, 50, 99, 100, 255, 256, 1_000, 1_001, 4_999]


@pytest.mark.parametrize("dof", DOFS)
def test_chi2_sf_is_scipys_chdtrc(dof: int) -> None:
    statistics = np.concatenate(
        (
            np.geomspace(1e-10, 6_000.0, 300),
            dof + np.array([-3.0, -1.0, 0.0, 1.0, 3.0, 10.0]) * math.sqrt(2.0 * dof),
        )
    )
    for statistic in statistics[statistics > 0]:
        expected = float(special.chdtrc(dof, statistic))
        assert chi2_sf(dof, float(statistic)) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_chi2_sf_at_the_edges() -> None:
    assert chi2_sf(3, 0.0) == 1.0
    assert chi2_sf(3, -1.0) == 1.0
    assert chi2_sf(3, math.inf) == 0.0
    assert math.isnan(chi2_sf(3, math.nan))
    assert chi2_sf(2, 1e6) == float(special.chdtrc(2, 1e6)) == 0.0
    with pytest.raises(ValueError, match="dof"):
        chi2_sf(0, 1.0)


def test_normal_cdf_is_scipys_ndtr() -> None:
    for x in np.linspace(-40.0, 40.0, 40_001):
        expected = float(special.ndtr(x))
        assert normal_cdf(float(x)) == pytest.approx(expected, rel=1e-13, abs=0.0)


def test_rel_entr_is_scipys_to_the_last_bit() -> None:
    rng = np.random.default_rng(11)
    x = np.r_[rng.random(2_000), rng.random(2_000), [0.0, 0.0, 1e-300, 1.0, np.nan, 0.5, -0.1]]
    y = np.r_[
        x[:2_000] * (1.0 + rng.normal(0.0, 1e-3, 2_000)),  # near 1: the log1p branch
        rng.random(2_000) * 10.0,
        [0.0, 0.3, 1e10, 1e-310, 0.5, np.nan, 0.2],
    ]
    expected = special.rel_entr(x, y)
    ours = np.array([rel_entr(float(a), float(b)) for a, b in zip(x, y, strict=True)])
    np.testing.assert_array_equal(ours, expected)


def test_jensen_shannon_is_scipys() -> None:
    rng = np.random.default_rng(7)
    for size in (2, 5, 40):
        reference = rng.integers(0, 50, size).astype(np.float64)
        current = rng.integers(0, 50, size).astype(np.float64)
        reference[0], current[-1] = 0.0, 0.0  # empty cells on either side
        reference[1] += 1.0
        current[0] += 1.0
        expected = float(distance.jensenshannon(reference, current, base=2))
        assert jensen_shannon_distance(reference, current) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize(("n", "m"), [(100_000, 100_000), (5_000, 300), (40, 2_000)])
def test_out_of_range_p_value_equals_exact_arithmetic(n: int, m: int) -> None:
    """[C(N - k, n) + k C(N - k - 1, n - 1)] / C(N, n) in exact rationals."""
    total = n + m
    for k in sorted({1, 2, 5, 30, m // 2, m - 1, m} & set(range(1, min(m, 400) + 1))):
        exact = Fraction(
            math.comb(total - k, n) + k * math.comb(total - k - 1, n - 1), math.comb(total, n)
        )
        expected = float(min(exact, Fraction(1)))
        assert out_of_range_p_value(k, n, m) == pytest.approx(expected, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("n", [1_493, 5_000, 50_000, 1_000_000])
@pytest.mark.parametrize("x", [0.5, 0.6, 0.9])
def test_kstwo_underflow_above_one_half_is_scipys_zero(n: int, x: float) -> None:
    from scipy import stats

    assert kstwo_sf(n, x) == float(stats.kstwo.sf(x, n)) == 0.0
