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
from watchkeeper.stats._special import chi2_sf, hypergeom_sf, normal_cdf, rel_entr

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


def _hypergeom_cases() -> list[tuple[int, int, int, int]]:
    """(observed, total, successes, draws): ends of the support, the mode and the tails."""
    rng = np.random.default_rng(5)
    cases = []
    for total in (1, 10, 60, 400, 20_000, 200_000):
        for _ in range(25):
            successes, draws = (int(v) for v in rng.integers(0, total + 1, 2))
            draws = max(draws, 1)
            low, high = max(0, draws + successes - total), min(draws, successes)
            mean = draws * successes / total
            spread = int(4 * math.sqrt(max(mean, 1.0)))
            for observed in {low, low + 1, high, high + 1, int(mean), int(mean) + spread}:
                cases.append((observed, total, successes, draws))
    return cases


def test_hypergeom_sf_equals_exact_arithmetic() -> None:
    for observed, total, successes, draws in _hypergeom_cases():
        if total > 400:
            continue
        low, high = max(0, draws + successes - total), min(draws, successes)
        exact = Fraction(
            sum(
                math.comb(successes, x) * math.comb(total - successes, draws - x)
                for x in range(max(observed, low), high + 1)
            ),
            math.comb(total, draws),
        )
        ours = hypergeom_sf(observed, total, successes, draws)
        assert ours == pytest.approx(float(exact), rel=1e-12, abs=1e-300)


def test_hypergeom_sf_agrees_with_scipy() -> None:
    """SciPy's (Boost's) tail is itself off by up to 6e-11 at 200,000 rows, where ours is
    within 1e-13 of exact arithmetic; the two agree to 1e-10."""
    from scipy import stats

    for observed, total, successes, draws in _hypergeom_cases():
        expected = float(stats.hypergeom.sf(observed - 1, total, successes, draws))
        ours = hypergeom_sf(observed, total, successes, draws)
        assert ours == pytest.approx(expected, rel=1e-10, abs=1e-300)


def test_hypergeom_sf_of_a_large_table_equals_exact_arithmetic() -> None:
    observed, total, successes, draws = 530, 200_000, 1_000, 100_000
    term = math.comb(successes, observed) * math.comb(total - successes, draws - observed)
    tail = term
    for x in range(observed, min(draws, successes)):
        term = (
            term * (successes - x) * (draws - x) // ((x + 1) * (total - successes - draws + x + 1))
        )
        tail += term
    exact = float(Fraction(tail, math.comb(total, draws)))
    assert hypergeom_sf(observed, total, successes, draws) == pytest.approx(exact, rel=1e-13)
