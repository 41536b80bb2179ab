"""Always-valid inference: the mixture boundary against the papers' formulas, and by simulation
its false-positive rate under continuous peeking, next to the fixed-horizon test's."""

from __future__ import annotations

import doctest
import itertools
import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import optimize, stats

from watchkeeper.errors import ConfigError
from watchkeeper.stats import sequential
from watchkeeper.stats.experiments import MeanSummary, ProportionSummary
from watchkeeper.stats.sequential import (
    confidence_half_width,
    mixture_log_likelihood_ratio,
    mixture_ratio,
    optimal_mixture_ratio,
    sequential_compare,
)

ALPHA = 0.05
LOOKS = 100
BATCH = 50  # samples per arm added between two looks: 50 to 5,000 per arm
TUNING = 5_000


def test_docstring_examples() -> None:
    assert doctest.testmod(sequential).failed == 0


def test_likelihood_ratio_is_johari_et_al() -> None:
    """Λ = √(V/(V+τ²)) exp(τ² θ̂² / (2 V (V+τ²))) with τ² = r V."""
    variance, estimate = 0.004, 0.11
    for ratio in (0.5, 7.9, 40.0):
        tau2 = ratio * variance
        direct = math.sqrt(variance / (variance + tau2)) * math.exp(
            tau2 * estimate**2 / (2 * variance * (variance + tau2))
        )
        z = estimate / math.sqrt(variance)
        assert float(mixture_log_likelihood_ratio(z, ratio)) == pytest.approx(math.log(direct))


def test_half_width_is_howards_normal_mixture_boundary() -> None:
    """For a mean of t values of variance σ²: S_t = t (θ̂ − θ), V_t = t σ², ρ = σ⁴/τ², and
    |S_t| < √((V_t + ρ) log((V_t + ρ)/(ρ α²))) (Howard et al. 2021, eq. (14))."""
    sigma2, tau2 = 2.5, 0.01
    for t in (10, 1000, 100_000):
        variance = sigma2 / t
        intrinsic, rho = t * sigma2, sigma2**2 / tau2
        boundary = math.sqrt((intrinsic + rho) * math.log((intrinsic + rho) / (rho * ALPHA**2)))
        width = float(confidence_half_width(variance, tau2 / variance, ALPHA))
        assert width == pytest.approx(boundary / t, rel=1e-12)
        # Duality: at the edge of the interval the likelihood ratio is exactly 1/alpha.
        edge = width / math.sqrt(variance)
        log_lr = float(mixture_log_likelihood_ratio(edge, tau2 / variance))
        assert log_lr == pytest.approx(math.log(1 / ALPHA))


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_optimal_ratio_is_nearly_tightest(alpha: float) -> None:
    def width(ratio: float) -> float:
        return float(confidence_half_width(1.0, ratio, alpha))

    best = optimize.minimize_scalar(width, bounds=(0.1, 100.0), method="bounded").fun
    assert best <= width(optimal_mixture_ratio(alpha)) <= 1.01 * best


def simulate_means(
    rng: np.random.Generator, reps: int, effect: float = 0.0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Cumulative differences of means, their unpooled variances and the per-arm sizes at
    each of LOOKS looks. Candidate values N(effect, 1), baseline N(0, 2²): exact cumulative
    sums and sums of squares from each batch's mean and within-batch sum of squares."""
    sizes = BATCH * np.arange(1, LOOKS + 1, dtype=np.float64)
    moments = []
    for mean, scale in ((effect, 1.0), (0.0, 2.0)):
        batch_means = rng.normal(mean, scale / math.sqrt(BATCH), (reps, LOOKS))
        within = scale**2 * rng.chisquare(BATCH - 1, (reps, LOOKS))
        total = np.cumsum(batch_means * BATCH, axis=1)
        squares = np.cumsum(within + BATCH * batch_means**2, axis=1)
        cumulative_mean = total / sizes
        variance = (squares - sizes * cumulative_mean**2) / (sizes - 1)
        moments.append((cumulative_mean, variance))
    (candidate_mean, candidate_var), (baseline_mean, baseline_var) = moments
    return candidate_mean - baseline_mean, (candidate_var + baseline_var) / sizes, sizes


def test_peeking_under_the_null_means() -> None:
    """100 looks at 50..5,000 per arm with no effect (4,000 experiments): the always-valid test
    rejects at most alpha of them; the fixed-horizon test looked at once rejects about alpha;
    the fixed-horizon test stopped at its first significant look rejects far more."""
    rng = np.random.default_rng(2017)
    reps = 4000
    difference, variance, sizes = simulate_means(rng, reps)
    z = difference / np.sqrt(variance)
    ratio = optimal_mixture_ratio(ALPHA) * sizes / TUNING
    log_lr = mixture_log_likelihood_ratio(z, ratio)
    always_valid = np.mean((log_lr >= math.log(1 / ALPHA)).any(axis=1))
    critical = stats.norm.ppf(1 - ALPHA / 2)
    once = np.mean(np.abs(z[:, -1]) > critical)
    peeking = np.mean((np.abs(z) > critical).any(axis=1))
    assert always_valid <= ALPHA
    assert abs(once - ALPHA) < 0.011  # three standard errors of 4,000 runs
    assert peeking > 3 * ALPHA
    # The confidence sequence, as its dual, covers the true difference at every look at once.
    half = confidence_half_width(variance, ratio, ALPHA)
    assert np.mean((np.abs(difference) > half).any(axis=1)) == pytest.approx(always_valid)


def test_peeking_under_the_null_rates() -> None:
    """The same for a 10 % conversion rate in both arms, through sequential_compare itself on
    a subset, and vectorised on all."""
    rng = np.random.default_rng(1512)
    reps = 4000
    sizes = BATCH * np.arange(1, LOOKS + 1)
    candidate = np.cumsum(rng.binomial(BATCH, 0.1, (reps, LOOKS)), axis=1)
    baseline = np.cumsum(rng.binomial(BATCH, 0.1, (reps, LOOKS)), axis=1)
    p1, p0 = candidate / sizes, baseline / sizes
    variance = (p1 * (1 - p1) + p0 * (1 - p0)) / sizes
    z = (p1 - p0) / np.sqrt(variance)
    log_lr = mixture_log_likelihood_ratio(z, optimal_mixture_ratio(ALPHA) * sizes / TUNING)
    rejected = (log_lr >= math.log(1 / ALPHA)).any(axis=1)
    assert rejected.mean() <= ALPHA
    assert np.mean((np.abs(z) > stats.norm.ppf(1 - ALPHA / 2)).any(axis=1)) > 3 * ALPHA
    for rep in range(40):
        look = None
        for k in range(LOOKS):
            look = sequential_compare(
                ProportionSummary(int(candidate[rep, k]), int(sizes[k])),
                ProportionSummary(int(baseline[rep, k]), int(sizes[k])),
                previous=look,
            )
        assert look is not None
        assert look.reject == bool(rejected[rep])
        assert look.p_value == pytest.approx(min(1.0, float(np.exp(-log_lr[rep].max()))))


def test_power_and_coverage_under_an_effect() -> None:
    """A 0.2 sd difference: the always-valid test finds it in almost every experiment (later
    than a test that peeks without correction would), and its interval covers it."""
    rng = np.random.default_rng(31)
    reps = 1000
    difference, variance, sizes = simulate_means(rng, reps, effect=0.2)
    ratio = optimal_mixture_ratio(ALPHA) * sizes / TUNING
    rejects = mixture_log_likelihood_ratio(difference / np.sqrt(variance), ratio) >= math.log(
        1 / ALPHA
    )
    assert rejects[:, -1].mean() > 0.95
    first = np.argmax(rejects, axis=1)[rejects.any(axis=1)]
    assert 10 <= np.median(first) <= 60  # 500 to 3,000 per arm
    half = confidence_half_width(variance, ratio, ALPHA)
    misses = (np.abs(difference - 0.2) > half).any(axis=1)
    assert misses.mean() <= ALPHA


def test_looks_are_monotone_and_nested() -> None:
    rng = np.random.default_rng(4)
    candidate_values, baseline_values = rng.normal(0.1, 1, 3000), rng.normal(0, 1, 3000)
    look = None
    p_values, intervals = [], []
    for n in range(100, 3001, 100):
        look = sequential_compare(
            MeanSummary.from_values(candidate_values[:n]),
            MeanSummary.from_values(baseline_values[:n]),
            previous=look,
        )
        p_values.append(look.p_value)
        intervals.append((look.ci_low, look.ci_high))
    assert look is not None
    assert look.looks == 30
    assert all(b <= a for a, b in itertools.pairwise(p_values))
    assert all(
        lo0 <= lo1 and hi1 <= hi0 for (lo0, hi0), (lo1, hi1) in itertools.pairwise(intervals)
    )
    assert look.to_dict()["looks"] == 30


def test_single_look_interval_and_p_value_agree() -> None:
    """Without a previous look, the interval excludes 0 exactly when p < alpha."""
    rng = np.random.default_rng(8)
    for _ in range(200):
        n = int(rng.integers(50, 5000))
        look = sequential_compare(
            ProportionSummary(int(rng.binomial(n, 0.12)), n),
            ProportionSummary(int(rng.binomial(n, 0.1)), n),
        )
        assert look.reject == (not look.ci_low <= 0.0 <= look.ci_high)


def test_zero_variance_and_bad_options() -> None:
    same = sequential_compare(ProportionSummary(0, 500), ProportionSummary(0, 500))
    assert same.p_value == 1.0
    assert math.isinf(same.ci_high)
    assert same.to_dict()["ci_high"] is None
    assert sequential_compare(MeanSummary(5, 2.0, 0.0), MeanSummary(5, 1.0, 0.0)).p_value == 0.0
    first = sequential_compare(ProportionSummary(5, 50), ProportionSummary(6, 50))
    with pytest.raises(ConfigError, match="previous"):
        sequential_compare(
            ProportionSummary(5, 60), ProportionSummary(6, 60), alpha=0.1, previous=first
        )
    with pytest.raises(ConfigError, match="alpha"):
        sequential_compare(ProportionSummary(5, 60), ProportionSummary(6, 60), alpha=5)
    with pytest.raises(ConfigError, match="tuning_samples"):
        mixture_ratio(100, alpha=0.05, tuning_samples=0)
