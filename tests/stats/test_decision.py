"""The verdict of one rollout analysis metric: the minimum-sample rule, agreement with the
underlying tests, monotone looks, and wrong verdicts on low traffic by simulation."""

from __future__ import annotations

import doctest
import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.errors import ConfigError
from watchkeeper.stats import decision
from watchkeeper.stats.decision import (
    Condition,
    Direction,
    MarginKind,
    Method,
    MetricDecision,
    Outcome,
    decide,
)
from watchkeeper.stats.experiments import (
    MeanSummary,
    ProportionSummary,
    compare,
    margin_contrast,
    margin_test,
)
from watchkeeper.stats.sequential import contrast_p_value, sequential_compare

ERRORS = Condition(direction=Direction.LOWER_IS_BETTER, kind=MarginKind.RELATIVE, value=0.1)
LATENCY = Condition(direction=Direction.LOWER_IS_BETTER, kind=MarginKind.DIFFERENCE, value=5.0)
ACCURACY = Condition(direction=Direction.HIGHER_IS_BETTER, kind=MarginKind.THRESHOLD, value=0.9)


def test_docstring_examples() -> None:
    assert doctest.testmod(decision).failed == 0


@pytest.mark.parametrize("method", list(Method))
def test_below_the_minimum_is_inconclusive_whatever_the_numbers(method: Method) -> None:
    verdict = decide(
        ProportionSummary(99, 99),
        ProportionSummary(0, 99),
        condition=ERRORS,
        min_samples=100,
        method=method,
    )
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.reason == (
        "too few samples: candidate has 99, baseline has 99; at least 100 per arm are needed"
    )
    assert verdict.effect is None
    assert verdict.p_violated is None
    assert (verdict.candidate_count, verdict.baseline_count) == (99, 99)
    # One arm short is enough; a threshold ignores the baseline's count.
    one_short = decide(
        ProportionSummary(500, 1000), ProportionSummary(0, 10), condition=ERRORS, min_samples=100
    )
    assert one_short.outcome is Outcome.INCONCLUSIVE
    assert (
        decide(
            ProportionSummary(990, 1000),
            ProportionSummary(0, 10),
            condition=ACCURACY,
            min_samples=100,
        ).outcome
        is Outcome.SUCCESS
    )
    # A mean needs two values for its variance even when the minimum says one.
    tiny = decide(
        MeanSummary(1, 5.0, 0.0), MeanSummary(1, 1.0, 0.0), condition=LATENCY, min_samples=1
    )
    assert tiny.outcome is Outcome.INCONCLUSIVE


def test_fixed_method_reports_the_underlying_tests() -> None:
    candidate, baseline = MeanSummary(800, 212.0, 40.0**2), MeanSummary(900, 200.0, 35.0**2)
    verdict = decide(candidate, baseline, condition=LATENCY, min_samples=100, method=Method.FIXED)
    fixed = compare(candidate, baseline, confidence=0.95)
    test = margin_test(
        margin_contrast(
            candidate,
            baseline,
            direction=Direction.LOWER_IS_BETTER,
            kind=MarginKind.DIFFERENCE,
            margin=5.0,
        )
    )
    assert verdict.outcome is Outcome.FAILURE
    assert verdict.reason.startswith("violates candidate <= baseline + 5 (p = ")
    assert (verdict.effect, verdict.ci_low, verdict.ci_high, verdict.p_value) == (
        fixed.difference,
        fixed.ci_low,
        fixed.ci_high,
        fixed.p_value,
    )
    assert (verdict.p_holds, verdict.p_violated) == (test.p_holds, test.p_violated)
    assert verdict.lift == pytest.approx(0.06)
    assert verdict.to_dict()["condition"] == {
        "direction": "lower_is_better",
        "kind": "difference",
        "value": 5.0,
    }


def test_always_valid_method_reports_the_sequential_tests() -> None:
    candidate, baseline = ProportionSummary(300, 20_000), ProportionSummary(200, 20_000)
    verdict = decide(candidate, baseline, condition=ERRORS, min_samples=1000)
    look = sequential_compare(candidate, baseline, tuning_samples=1000)
    contrast = margin_contrast(
        candidate,
        baseline,
        direction=Direction.LOWER_IS_BETTER,
        kind=MarginKind.RELATIVE,
        margin=0.1,
    )
    assert verdict.method is Method.ALWAYS_VALID
    assert (verdict.ci_low, verdict.ci_high, verdict.p_value) == (
        look.ci_low,
        look.ci_high,
        look.p_value,
    )
    assert verdict.p_violated == contrast_p_value(contrast, alpha=0.05, tuning_samples=1000)
    tuned_later = decide(
        candidate, baseline, condition=ERRORS, min_samples=1000, tuning_samples=5000
    )
    assert tuned_later.p_violated == contrast_p_value(contrast, alpha=0.05)
    assert verdict.p_holds == 1.0
    assert verdict.outcome is Outcome.FAILURE


def test_thresholds() -> None:
    # 0 errors in 20 requests proves nothing; in 5,000 it meets a 1 % limit.
    limit = Condition(direction=Direction.LOWER_IS_BETTER, kind=MarginKind.THRESHOLD, value=0.01)
    few = decide(ProportionSummary(0, 20), None, condition=limit, min_samples=10)
    many = decide(ProportionSummary(0, 5000), None, condition=limit, min_samples=10)
    assert few.outcome is Outcome.INCONCLUSIVE
    assert many.outcome is Outcome.SUCCESS
    assert many.reason.startswith("meets candidate <= 0.01 (p = ")
    assert many.effect == pytest.approx(-0.01)
    assert many.baseline_value is None
    low_accuracy = decide(ProportionSummary(850, 1000), None, condition=ACCURACY, min_samples=100)
    assert low_accuracy.outcome is Outcome.FAILURE
    fixed = decide(
        MeanSummary(50, 0.95, 0.01), None, condition=ACCURACY, min_samples=10, method=Method.FIXED
    )
    assert fixed.ci_low is not None
    assert fixed.ci_high is not None
    assert fixed.ci_low < fixed.effect < fixed.ci_high
    assert fixed.p_value == pytest.approx(min(1.0, 2 * min(fixed.p_holds, fixed.p_violated)))


def test_a_good_candidate_is_promoted_and_a_bad_one_fails_at_volume() -> None:
    """Power sanity: 20,000 requests per arm."""
    rng = np.random.default_rng(9)
    baseline = ProportionSummary(int(rng.binomial(20_000, 0.02)), 20_000)
    same = ProportionSummary(int(rng.binomial(20_000, 0.02)), 20_000)
    doubled = ProportionSummary(int(rng.binomial(20_000, 0.04)), 20_000)
    generous = Condition(direction=Direction.LOWER_IS_BETTER, kind=MarginKind.RELATIVE, value=0.3)
    assert decide(same, baseline, condition=generous, min_samples=1000).outcome is Outcome.SUCCESS
    assert (
        decide(doubled, baseline, condition=generous, min_samples=1000).outcome is Outcome.FAILURE
    )
    # A broken canary fails at the first look that may decide: the boundary is tuned there.
    broken = decide(
        ProportionSummary(30, 100), ProportionSummary(1, 100), condition=ERRORS, min_samples=100
    )
    assert broken.outcome is Outcome.FAILURE
    accuracy = Condition(
        direction=Direction.HIGHER_IS_BETTER, kind=MarginKind.DIFFERENCE, value=0.0
    )
    worse = decide(
        ProportionSummary(17_600, 20_000),
        ProportionSummary(18_000, 20_000),
        condition=accuracy,
        min_samples=1000,
    )
    assert worse.outcome is Outcome.FAILURE


def test_looks_keep_the_running_minimum() -> None:
    rng = np.random.default_rng(12)
    candidate_values = rng.normal(230.0, 40.0, 4000)
    baseline_values = rng.normal(200.0, 40.0, 4000)
    verdict: MetricDecision | None = None
    history = []
    for n in range(200, 4001, 200):
        verdict = decide(
            MeanSummary.from_values(candidate_values[:n]),
            MeanSummary.from_values(baseline_values[:n]),
            condition=LATENCY,
            min_samples=100,
            previous=verdict,
        )
        history.append(verdict)
    assert history[-1].outcome is Outcome.FAILURE
    first_failure = next(i for i, v in enumerate(history) if v.outcome is Outcome.FAILURE)
    assert all(v.outcome is Outcome.FAILURE for v in history[first_failure:])
    for before, after in itertools.pairwise(history):
        assert after.p_violated <= before.p_violated
        assert after.p_value <= before.p_value
        assert after.ci_low >= before.ci_low
        assert after.ci_high <= before.ci_high
    with pytest.raises(ConfigError, match="previous"):
        decide(
            MeanSummary(10, 1.0, 1.0),
            MeanSummary(10, 1.0, 1.0),
            condition=ERRORS,
            min_samples=5,
            previous=verdict,
        )


def simulate_rollouts(
    rng: np.random.Generator, candidate_rate: float, method: Method, reps: int
) -> tuple[float, float]:
    """Share of low-traffic rollouts (2 % baseline errors, 25 looks of 40 requests per arm,
    minimum 100) that ever end in failure, and that ever end in success."""
    looks, batch = 25, 40
    sizes = batch * np.arange(1, looks + 1)
    candidate = np.cumsum(rng.binomial(batch, candidate_rate, (reps, looks)), axis=1)
    baseline = np.cumsum(rng.binomial(batch, 0.02, (reps, looks)), axis=1)
    failures = successes = 0
    for rep in range(reps):
        verdict: MetricDecision | None = None
        outcomes = set()
        for k in range(looks):
            verdict = decide(
                ProportionSummary(int(candidate[rep, k]), int(sizes[k])),
                ProportionSummary(int(baseline[rep, k]), int(sizes[k])),
                condition=ERRORS,
                min_samples=100,
                method=method,
                previous=verdict if method is Method.ALWAYS_VALID else None,
            )
            outcomes.add(verdict.outcome)
        failures += Outcome.FAILURE in outcomes
        successes += Outcome.SUCCESS in outcomes
    return failures / reps, successes / reps


def test_low_traffic_never_decides_wrongly_more_than_alpha() -> None:
    """On the boundary of "not worse than +10 %" (2.2 % against 2 %) both verdicts are wrong
    claims; over 25 looks the always-valid verdict makes either at most alpha of the time,
    while the fixed-horizon verdict looked at every interval fails the candidate more often."""
    rng = np.random.default_rng(2022)
    failed, succeeded = simulate_rollouts(rng, 0.022, Method.ALWAYS_VALID, reps=200)
    assert failed <= 0.05
    assert succeeded <= 0.05
    fixed_failed, _ = simulate_rollouts(rng, 0.022, Method.FIXED, reps=100)
    assert fixed_failed > 0.05
    assert fixed_failed > 2 * failed


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="relative margin must be >= 0"):
        Condition(direction=Direction.LOWER_IS_BETTER, kind=MarginKind.RELATIVE, value=-0.1)
    with pytest.raises(ConfigError, match="must be < 1 when higher is better"):
        Condition(direction=Direction.HIGHER_IS_BETTER, kind=MarginKind.RELATIVE, value=1.0)
    with pytest.raises(ConfigError, match="finite"):
        Condition(direction=Direction.HIGHER_IS_BETTER, kind=MarginKind.THRESHOLD, value=math.nan)
    with pytest.raises(ConfigError, match="needs the baseline"):
        decide(MeanSummary(10, 1.0, 1.0), None, condition=ERRORS, min_samples=5)
    with pytest.raises(ConfigError, match="alpha"):
        decide(MeanSummary(10, 1.0, 1.0), None, condition=ACCURACY, min_samples=5, alpha=0.7)
    with pytest.raises(ConfigError, match="min_samples"):
        decide(MeanSummary(10, 1.0, 1.0), None, condition=ACCURACY, min_samples=0)


@pytest.mark.parametrize(
    ("condition", "text"),
    [
        (ERRORS, "candidate <= baseline × 1.1"),
        (LATENCY, "candidate <= baseline + 5"),
        (ACCURACY, "candidate >= 0.9"),
        (
            Condition(direction=Direction.HIGHER_IS_BETTER, kind=MarginKind.RELATIVE, value=0.05),
            "candidate >= baseline × 0.95",
        ),
        (
            Condition(direction=Direction.HIGHER_IS_BETTER, kind=MarginKind.DIFFERENCE, value=0.0),
            "candidate >= baseline",
        ),
    ],
)
def test_conditions_describe_themselves(condition: Condition, text: str) -> None:
    assert condition.describe() == text


@given(
    st.integers(0, 99),
    st.integers(0, 500),
    st.sampled_from(list(Method)),
    st.sampled_from([ERRORS, ACCURACY]),
    st.booleans(),
)
def test_any_arm_below_the_minimum_is_inconclusive(
    short: int, other: int, method: Method, condition: Condition, candidate_short: bool
) -> None:
    """Whatever the counts, an arm the condition uses below the minimum gives no verdict."""
    if condition.kind is MarginKind.THRESHOLD and not candidate_short:
        return  # a threshold does not use the baseline
    small = ProportionSummary(short // 2, short)
    large = ProportionSummary(other // 3, max(other, 100))
    candidate, baseline = (small, large) if candidate_short else (large, small)
    verdict = decide(candidate, baseline, condition=condition, min_samples=100, method=method)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.p_holds is None
