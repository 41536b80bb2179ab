"""Fixed-horizon two-arm statistics: golden values against SciPy, coverage and error rates by
simulation, and clear errors on bad input."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import optimize, stats

from watchkeeper.errors import ConfigError, InputError
from watchkeeper.stats import experiments
from watchkeeper.stats.experiments import (
    Direction,
    MarginKind,
    MeanSummary,
    ProportionSummary,
    compare,
    margin_contrast,
    margin_test,
)


def summary(values: np.ndarray) -> MeanSummary:
    return MeanSummary.from_values(values)


def test_docstring_examples() -> None:
    assert doctest.testmod(experiments).failed == 0


@pytest.mark.parametrize(
    ("sizes", "means", "scales"),
    [
        ((40, 60), (0.0, 0.3), (1.0, 2.0)),
        ((12, 500), (5.0, 5.0), (3.0, 0.5)),
        ((3, 4), (1, 2), (1, 1)),
    ],
)
def test_welch_matches_scipy(
    sizes: tuple[int, int], means: tuple[float, float], scales: tuple[float, float]
) -> None:
    rng = np.random.default_rng(sum(sizes))
    candidate_values = rng.normal(means[0], scales[0], sizes[0])
    baseline_values = rng.normal(means[1], scales[1], sizes[1])
    candidate, baseline = summary(candidate_values), summary(baseline_values)
    result = compare(candidate, baseline, confidence=0.9)
    golden = stats.ttest_ind_from_stats(
        candidate.mean,
        math.sqrt(candidate.variance),
        candidate.count,
        baseline.mean,
        math.sqrt(baseline.variance),
        baseline.count,
        equal_var=False,
    )
    raw = stats.ttest_ind(candidate_values, baseline_values, equal_var=False)
    interval = raw.confidence_interval(confidence_level=0.9)
    assert result.test == "welch"
    assert result.statistic == pytest.approx(golden.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(golden.pvalue, rel=1e-10)
    assert result.df == pytest.approx(raw.df, rel=1e-10)
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert result.difference == pytest.approx(candidate_values.mean() - baseline_values.mean())


@pytest.mark.parametrize(
    ("candidate", "baseline"),
    [((130, 1000), (100, 1000)), ((3, 50), (9, 60)), ((0, 200), (4, 300)), ((20, 20), (20, 20))],
)
def test_two_proportion_z_test_is_pearsons_chi_square(
    candidate: tuple[int, int], baseline: tuple[int, int]
) -> None:
    result = compare(ProportionSummary(*candidate), ProportionSummary(*baseline))
    table = [
        [candidate[0], candidate[1] - candidate[0]],
        [baseline[0], baseline[1] - baseline[0]],
    ]
    assert result.test == "two_proportion_z"
    if candidate[0] + baseline[0] in (0, candidate[1] + baseline[1]):
        assert result.p_value == 1.0
        return
    chi2 = stats.chi2_contingency(table, correction=False)
    assert result.statistic**2 == pytest.approx(chi2.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    p1, p0 = candidate[0] / candidate[1], baseline[0] / baseline[1]
    half = stats.norm.ppf(0.975) * math.sqrt(
        p1 * (1 - p1) / candidate[1] + p0 * (1 - p0) / baseline[1]
    )
    assert (result.ci_low, result.ci_high) == pytest.approx((p1 - p0 - half, p1 - p0 + half))
    assert math.isinf(result.df)
    assert result.to_dict()["df"] is None


def test_lift_delta_method_matches_the_formula_and_covers() -> None:
    candidate, baseline = MeanSummary(400, 10.4, 4.0), MeanSummary(500, 10.0, 9.0)
    result = compare(candidate, baseline)
    se = math.sqrt(4.0 / 400 / 10.0**2 + 10.4**2 * (9.0 / 500) / 10.0**4)
    z = stats.norm.ppf(0.975)
    assert result.lift == pytest.approx(0.04)
    assert (result.lift_ci_low, result.lift_ci_high) == pytest.approx(
        (0.04 - z * se, 0.04 + z * se)
    )
    # Coverage of the true lift (0.1) over 2,000 simulated experiments: nominal 95 %.
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(2000):
        candidate_values = rng.exponential(1.1, 300)
        baseline_values = rng.exponential(1.0, 300)
        one = compare(summary(candidate_values), summary(baseline_values))
        assert one.lift_ci_low is not None
        assert one.lift_ci_high is not None
        covered += one.lift_ci_low <= 0.1 <= one.lift_ci_high
    assert 0.93 <= covered / 2000 <= 0.97


def test_lift_is_none_on_a_zero_baseline() -> None:
    result = compare(ProportionSummary(3, 100), ProportionSummary(0, 100))
    assert result.lift is None
    assert result.lift_ci_low is None


def test_fixed_horizon_error_rate_and_power() -> None:
    """Looked at once, the Welch and z tests reject a true null at alpha, and detect effects."""
    rng = np.random.default_rng(11)
    reps = 2000
    null_welch = sum(
        compare(summary(rng.normal(0, 1, 50)), summary(rng.normal(0, 3, 80))).p_value < 0.05
        for _ in range(reps)
    )
    rates = rng.binomial(2000, 0.1, size=(reps, 2))
    null_z = sum(
        compare(ProportionSummary(int(a), 2000), ProportionSummary(int(b), 2000)).p_value < 0.05
        for a, b in rates
    )
    # Nominal 0.05; three standard errors of 2,000 runs is 0.015.
    assert abs(null_welch / reps - 0.05) < 0.015
    assert abs(null_z / reps - 0.05) < 0.015
    # Power (normal approximation): 0.3 sd at 300 per arm is 0.85; a 10 % → 12 % rate at 4,000
    # per arm is 0.82.
    power_welch = sum(
        compare(summary(rng.normal(0.3, 1, 300)), summary(rng.normal(0, 1, 300))).p_value < 0.05
        for _ in range(300)
    )
    power_z = sum(
        compare(
            ProportionSummary(int(rng.binomial(4000, 0.12)), 4000),
            ProportionSummary(int(rng.binomial(4000, 0.10)), 4000),
        ).p_value
        < 0.05
        for _ in range(300)
    )
    assert power_welch / 300 > 0.78
    assert power_z / 300 > 0.75


@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize("threshold", [9.5, 10.0, 10.6])
def test_threshold_on_a_mean_is_the_one_sample_t_test(
    direction: Direction, threshold: float
) -> None:
    values = np.random.default_rng(3).normal(10.0, 2.0, 80)
    test = margin_test(
        margin_contrast(
            summary(values), None, direction=direction, kind=MarginKind.THRESHOLD, margin=threshold
        )
    )
    better = "greater" if direction is Direction.HIGHER_IS_BETTER else "less"
    worse = "less" if better == "greater" else "greater"
    assert test.p_holds == pytest.approx(
        stats.ttest_1samp(values, threshold, alternative=better).pvalue
    )
    assert test.p_violated == pytest.approx(
        stats.ttest_1samp(values, threshold, alternative=worse).pvalue
    )


@pytest.mark.parametrize(("successes", "trials"), [(0, 20), (0, 2000), (7, 300), (290, 300)])
def test_threshold_on_a_rate_is_the_score_test(successes: int, trials: int) -> None:
    """A rate's threshold test is the score test: it rejects exactly beyond Wilson's bounds."""
    interval = stats.binomtest(successes, trials).proportion_ci(0.9, method="wilson")
    arm = ProportionSummary(successes, trials)
    for direction, bound in (
        (Direction.LOWER_IS_BETTER, interval.high),
        (Direction.HIGHER_IS_BETTER, interval.low),
    ):
        if not 0.0 < bound < 1.0:
            continue
        contrast = margin_contrast(
            arm, None, direction=direction, kind=MarginKind.THRESHOLD, margin=bound
        )
        assert contrast.variance == pytest.approx(bound * (1 - bound) / trials)
        assert margin_test(contrast).p_holds == pytest.approx(0.05, rel=1e-9)


def test_no_errors_in_few_trials_proves_nothing() -> None:
    """0 errors out of 20 is no evidence of an error rate under 1 %; out of 2,000 it is."""
    few, many = (
        margin_test(
            margin_contrast(
                ProportionSummary(0, trials),
                None,
                direction=Direction.LOWER_IS_BETTER,
                kind=MarginKind.THRESHOLD,
                margin=0.01,
            )
        )
        for trials in (20, 2000)
    )
    assert few.p_holds > 0.3
    assert many.p_holds < 1e-5


@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize(
    ("kind", "margin"),
    [(MarginKind.DIFFERENCE, 0.4), (MarginKind.RELATIVE, 0.05), (MarginKind.RELATIVE, 0.0)],
)
def test_margins_on_means_are_shifted_welch_tests(
    direction: Direction, kind: MarginKind, margin: float
) -> None:
    """Scaling (relative) or shifting (difference) the baseline turns the margin into Welch."""
    rng = np.random.default_rng(5)
    candidate, baseline = summary(rng.normal(10.0, 2.0, 70)), summary(rng.normal(10.3, 3.0, 90))
    sign = direction.sign
    if kind is MarginKind.DIFFERENCE:
        weight, shift = 1.0, -sign * margin
    else:
        weight, shift = 1.0 - sign * margin, 0.0
    alternative = "greater" if sign > 0 else "less"
    golden = stats.ttest_ind_from_stats(
        candidate.mean,
        math.sqrt(candidate.variance),
        candidate.count,
        weight * baseline.mean + shift,
        weight * math.sqrt(baseline.variance),
        baseline.count,
        equal_var=False,
        alternative=alternative,
    )
    test = margin_test(
        margin_contrast(candidate, baseline, direction=direction, kind=kind, margin=margin)
    )
    assert test.p_holds == pytest.approx(golden.pvalue, rel=1e-9)
    assert test.p_holds + test.p_violated == pytest.approx(1.0)


def test_zero_margin_on_rates_is_the_pooled_z_test() -> None:
    candidate, baseline = ProportionSummary(130, 1000), ProportionSummary(100, 1000)
    test = margin_test(
        margin_contrast(
            candidate,
            baseline,
            direction=Direction.LOWER_IS_BETTER,
            kind=MarginKind.RELATIVE,
            margin=0.0,
        )
    )
    two_sided = compare(candidate, baseline).p_value
    assert test.p_violated == pytest.approx(two_sided / 2, rel=1e-6)


@pytest.mark.parametrize(
    ("kind", "margin", "direction"),
    [
        (MarginKind.DIFFERENCE, 0.02, Direction.LOWER_IS_BETTER),
        (MarginKind.DIFFERENCE, 0.03, Direction.HIGHER_IS_BETTER),
        (MarginKind.RELATIVE, 0.2, Direction.LOWER_IS_BETTER),
        (MarginKind.RELATIVE, 0.1, Direction.HIGHER_IS_BETTER),
    ],
)
def test_margins_on_rates_use_the_restricted_maximum_likelihood(
    kind: MarginKind, margin: float, direction: Direction
) -> None:
    """Farrington–Manning: the variance at the rates that maximise the likelihood on the
    boundary, found here by SciPy's bounded optimiser instead of the golden-section search."""
    x1, n1, x0, n0 = 61, 500, 48, 450
    sign = direction.sign
    weight, shift = (
        (1.0, -sign * margin) if kind is MarginKind.DIFFERENCE else (1.0 - sign * margin, 0.0)
    )

    def negative_log_likelihood(rate_0: float) -> float:
        rate_1 = weight * rate_0 + shift
        return -float(stats.binom.logpmf(x1, n1, rate_1) + stats.binom.logpmf(x0, n0, rate_0))

    low, high = max(0.0, -shift / weight) + 1e-9, min(1.0, (1.0 - shift) / weight) - 1e-9
    rate_0 = optimize.minimize_scalar(
        negative_log_likelihood, bounds=(low, high), method="bounded", options={"xatol": 1e-12}
    ).x
    rate_1 = weight * rate_0 + shift
    variance = rate_1 * (1 - rate_1) / n1 + weight**2 * rate_0 * (1 - rate_0) / n0
    contrast = margin_contrast(
        ProportionSummary(x1, n1),
        ProportionSummary(x0, n0),
        direction=direction,
        kind=kind,
        margin=margin,
    )
    assert contrast.variance == pytest.approx(variance, rel=1e-6)
    assert contrast.estimate == pytest.approx(sign * (x1 / n1 - weight * x0 / n0 - shift))


def test_margin_checks_power_and_error_rate_on_rates() -> None:
    """Non-inferiority by 20 % on an error rate of 5 %: an equal candidate is shown fine (power
    0.91 by the normal approximation at 10,000 per arm), a candidate exactly at the margin is
    called fine at most alpha of the time."""
    rng = np.random.default_rng(19)
    n = 10_000

    def holds(rate: float) -> float:
        hits = 0
        for a, b in zip(rng.binomial(n, rate, 1000), rng.binomial(n, 0.05, 1000), strict=True):
            contrast = margin_contrast(
                ProportionSummary(int(a), n),
                ProportionSummary(int(b), n),
                direction=Direction.LOWER_IS_BETTER,
                kind=MarginKind.RELATIVE,
                margin=0.2,
            )
            hits += margin_test(contrast).p_holds < 0.05
        return hits / 1000

    assert holds(0.06) <= 0.05 + 0.02  # on the boundary: the type I error of non-inferiority
    assert holds(0.05) > 0.85


def test_bad_input_names_the_field() -> None:
    with pytest.raises(InputError, match="successes") as error:
        ProportionSummary(5, 3)
    assert error.value.column == "successes"
    with pytest.raises(InputError, match="variance"):
        MeanSummary(10, 1.0, -1.0)
    with pytest.raises(InputError, match="candidate arm has 1 samples"):
        compare(MeanSummary(1, 1.0, 0.0), MeanSummary(5, 1.0, 1.0))
    with pytest.raises(InputError, match="one kind"):
        compare(MeanSummary(5, 1.0, 1.0), ProportionSummary(2, 5))
    with pytest.raises(ConfigError, match="confidence"):
        compare(MeanSummary(5, 1.0, 1.0), MeanSummary(5, 1.0, 1.0), confidence=95)
    with pytest.raises(InputError, match="needs the baseline"):
        margin_contrast(
            MeanSummary(5, 1.0, 1.0),
            None,
            direction=Direction.HIGHER_IS_BETTER,
            kind=MarginKind.RELATIVE,
            margin=0.1,
        )
    with pytest.raises(ConfigError, match="margin"):
        margin_contrast(
            MeanSummary(5, 1.0, 1.0),
            MeanSummary(5, 1.0, 1.0),
            direction=Direction.HIGHER_IS_BETTER,
            kind=MarginKind.RELATIVE,
            margin=-0.1,
        )
    with pytest.raises(ConfigError, match="threshold on a rate"):
        margin_contrast(
            ProportionSummary(1, 5),
            None,
            direction=Direction.LOWER_IS_BETTER,
            kind=MarginKind.THRESHOLD,
            margin=2.0,
        )


def test_from_values_drops_nan() -> None:
    values = np.array([1.0, np.nan, 3.0])
    assert MeanSummary.from_values(values) == MeanSummary(2, 2.0, 2.0)
    assert MeanSummary.from_values([]) == MeanSummary(0, 0.0, 0.0)


@given(
    st.integers(0, 400),
    st.integers(1, 400),
    st.integers(0, 400),
    st.integers(1, 400),
    st.sampled_from(list(Direction)),
    st.sampled_from([MarginKind.DIFFERENCE, MarginKind.RELATIVE]),
    st.floats(0.0, 0.5),
)
def test_restricted_rates_maximise_the_likelihood_on_the_boundary(
    x1: int,
    n1: int,
    x0: int,
    n0: int,
    direction: Direction,
    kind: MarginKind,
    margin: float,
) -> None:
    """The rates behind a rate margin's variance lie on the boundary line, inside [0, 1], and
    no feasible point of a fine grid on that line has a higher likelihood."""
    candidate = ProportionSummary(min(x1, n1), n1)
    baseline = ProportionSummary(min(x0, n0), n0)
    sign = direction.sign
    weight, shift = (
        (1.0, -sign * margin) if kind is MarginKind.DIFFERENCE else (1.0 - sign * margin, 0.0)
    )
    rate_1, rate_0 = experiments._restricted_rates(candidate, baseline, weight, shift)
    assert 0.0 <= rate_0 <= 1.0
    assert 0.0 <= rate_1 <= 1.0
    assert rate_1 == pytest.approx(weight * rate_0 + shift, abs=1e-9)

    def log_likelihood(p0: np.ndarray) -> np.ndarray:
        p1 = weight * p0 + shift
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(
                stats.binom.logpmf(candidate.successes, n1, p1)
                + stats.binom.logpmf(baseline.successes, n0, p0)
            )

    grid = np.linspace(0.0, 1.0, 2001)
    grid = grid[(weight * grid + shift >= 0.0) & (weight * grid + shift <= 1.0)]
    best = float(np.nanmax(log_likelihood(grid)))
    assert float(log_likelihood(np.array([rate_0]))[0]) >= best - 1e-6


@given(
    st.integers(2, 500),
    st.floats(-100, 100),
    st.floats(0.0, 1e4),
    st.integers(2, 500),
    st.floats(-100, 100),
    st.floats(0.0, 1e4),
)
def test_comparison_is_coherent(
    n1: int, m1: float, v1: float, n0: int, m0: float, v0: float
) -> None:
    result = compare(MeanSummary(n1, m1, v1), MeanSummary(n0, m0, v0))
    assert 0.0 <= result.p_value <= 1.0
    assert result.ci_low <= result.difference <= result.ci_high
    if result.p_value < 0.05:
        assert not result.ci_low <= 0.0 <= result.ci_high
