"""The default verdict policy is calibrated: false-alarm rate, power and huge-n behaviour.

Every simulation uses a fixed seed, so the rates are deterministic. The nominal level is
alpha = 0.05 and a rate may exceed it by at most one point.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from watchkeeper.stats.drift import categorical_drift, numeric_drift

ALPHA = 0.05
MAX_FALSE_ALARM_RATE = ALPHA + 0.01
FIVE_LEVELS = list("abcde")
SKEWED = np.array([0.40, 0.25, 0.20, 0.10, 0.05])


def _numeric_rates(
    seed: int, reps: int, size: int, shift: float = 0.0, *, population: str = "normal"
) -> tuple[float, float]:
    """Share of repetitions called drift, and share with KS p < alpha alone."""
    rng = np.random.default_rng(seed)
    drifted = significant = 0
    for _ in range(reps):
        if population == "poisson":
            reference = rng.poisson(4.0, size).astype(np.float64)
            current = rng.poisson(4.0, size).astype(np.float64)
        elif population == "uniform":
            # KS is distribution-free under no change; uniforms are the cheapest to draw.
            reference, current = rng.random(size), rng.random(size)
        else:
            reference = rng.normal(size=size)
            current = rng.normal(shift, 1.0, size=size)
        result = numeric_drift(reference, current)
        drifted += result.drift
        significant += result.p_value is not None and result.p_value < ALPHA
    return drifted / reps, significant / reps


def _categorical_rates(
    seed: int, reps: int, size: int, shares: np.ndarray, *, kind: str = "categorical"
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    labels = FIVE_LEVELS[: shares.size] if kind == "categorical" else ["0", "1"]
    drifted = significant = 0
    for _ in range(reps):
        reference = rng.multinomial(size, shares)
        current = rng.multinomial(size, shares)
        result = categorical_drift(labels, reference, current, kind=kind)
        drifted += result.drift
        significant += result.p_value is not None and result.p_value < ALPHA
    return drifted / reps, significant / reps


def test_numeric_false_alarm_rate_at_1000_rows() -> None:
    drift_rate, significance_rate = _numeric_rates(seed=101, reps=2000, size=1000)
    assert drift_rate <= MAX_FALSE_ALARM_RATE
    # The simulation does produce significant KS results at about the nominal rate.
    assert 0.03 <= significance_rate <= MAX_FALSE_ALARM_RATE


def test_numeric_false_alarm_rate_with_ties_at_1000_rows() -> None:
    drift_rate, significance_rate = _numeric_rates(
        seed=102, reps=1000, size=1000, population="poisson"
    )
    assert drift_rate <= MAX_FALSE_ALARM_RATE
    assert significance_rate <= MAX_FALSE_ALARM_RATE


@pytest.mark.slow
def test_numeric_false_alarm_rate_at_1m_rows() -> None:
    drift_rate, significance_rate = _numeric_rates(
        seed=103, reps=100, size=1_000_000, population="uniform"
    )
    assert drift_rate <= MAX_FALSE_ALARM_RATE
    assert significance_rate <= 0.12


def test_numeric_power_for_half_sd_shift_at_1000_rows() -> None:
    drift_rate, _ = _numeric_rates(seed=104, reps=1000, size=1000, shift=0.5)
    assert drift_rate >= 0.99


def test_negligible_shift_at_1m_rows_is_not_drift() -> None:
    rng = np.random.default_rng(105)
    for _ in range(3):
        result = numeric_drift(rng.normal(size=1_000_000), rng.normal(0.02, 1.0, size=1_000_000))
        assert result.p_value is not None
        assert result.p_value < ALPHA
        assert not result.drift


def test_categorical_false_alarm_rate_at_1000_rows_five_levels() -> None:
    uniform = np.full(5, 0.2)
    drift_rate, significance_rate = _categorical_rates(
        seed=106, reps=3000, size=1000, shares=uniform
    )
    assert drift_rate <= MAX_FALSE_ALARM_RATE
    assert 0.03 <= significance_rate <= MAX_FALSE_ALARM_RATE
    skewed_rate, _ = _categorical_rates(seed=107, reps=2000, size=1000, shares=SKEWED)
    assert skewed_rate <= MAX_FALSE_ALARM_RATE


@pytest.mark.parametrize(("size", "seed"), [(100, 111), (300, 112), (1000, 113)])
def test_categorical_false_alarm_rate_with_rare_categories(size: int, seed: int) -> None:
    """40 levels with geometric shares: many levels are absent from one sample or the other,
    so unseen categories and tiny expected counts are the rule, not the exception."""
    shares = 0.8 ** np.arange(40)
    shares /= shares.sum()
    labels = [f"c{i}" for i in range(shares.size)]
    rng = np.random.default_rng(seed)
    reps, drifted, significant, with_unseen = 2000, 0, 0, 0
    for _ in range(reps):
        reference, current = rng.multinomial(size, shares), rng.multinomial(size, shares)
        with_unseen += bool(np.any((reference == 0) & (current > 0)))
        result = categorical_drift(labels, reference, current)
        drifted += result.drift
        significant += result.p_value is not None and result.p_value < ALPHA
    assert with_unseen / reps > 0.5  # the case under test really happens
    assert drifted / reps <= MAX_FALSE_ALARM_RATE
    assert significant / reps <= MAX_FALSE_ALARM_RATE


def test_a_new_category_is_drift() -> None:
    """A category the reference never had, covering a fifth of the current rows."""
    rng = np.random.default_rng(114)
    reference = rng.multinomial(1000, np.full(5, 0.2))
    current = np.append(rng.multinomial(790, np.full(5, 0.2)), 210)
    result = categorical_drift([*FIVE_LEVELS, "new"], np.append(reference, 0), current)
    assert result.drift
    assert result.p_value is not None
    assert result.p_value < 1e-20
    assert result.metrics["unseen_share"] == pytest.approx(0.21)


def test_goodness_of_fit_against_scaled_reference_would_cry_wolf() -> None:
    """The flaw the contingency test avoids: reference counts taken as known frequencies."""
    rng = np.random.default_rng(106)
    reps, alarms = 2000, 0
    for _ in range(reps):
        reference = rng.multinomial(1000, np.full(5, 0.2))
        current = rng.multinomial(1000, np.full(5, 0.2))
        alarms += (
            stats.chisquare(current, reference * current.sum() / reference.sum()).pvalue < ALPHA
        )
    assert alarms / reps > 0.1


def test_categorical_false_alarm_rate_at_1m_rows() -> None:
    drift_rate, significance_rate = _categorical_rates(
        seed=108, reps=2000, size=1_000_000, shares=SKEWED
    )
    assert drift_rate <= MAX_FALSE_ALARM_RATE
    assert 0.03 <= significance_rate <= MAX_FALSE_ALARM_RATE


@pytest.mark.parametrize("size", [1000, 1_000_000])
def test_boolean_false_alarm_rate(size: int) -> None:
    drift_rate, significance_rate = _categorical_rates(
        seed=109, reps=3000, size=size, shares=np.array([0.7, 0.3]), kind="boolean"
    )
    assert drift_rate <= MAX_FALSE_ALARM_RATE
    assert significance_rate <= MAX_FALSE_ALARM_RATE


def test_categorical_power_for_a_clear_shift_at_1000_rows() -> None:
    rng = np.random.default_rng(110)
    shifted = np.array([0.30, 0.25, 0.20, 0.15, 0.10])
    reps = 500
    detected = sum(
        categorical_drift(
            FIVE_LEVELS, rng.multinomial(1000, np.full(5, 0.2)), rng.multinomial(1000, shifted)
        ).drift
        for _ in range(reps)
    )
    assert detected / reps >= 0.99
