"""Holm's adjusted p-values (golden values computed by hand, as R's ``p.adjust`` gives them)
and the family verdict built on them: calibrated across the columns of a window."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.stats.drift import (
    DriftConfig,
    DriftTest,
    categorical_drift,
    family_verdicts,
    numeric_drift,
)
from watchkeeper.stats.multiple import holm_adjusted

ALPHA = 0.05


@pytest.mark.parametrize(
    ("p_values", "expected"),
    [
        # R: p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "holm")
        ([0.01, 0.02, 0.03, 0.04, 0.05], [0.05, 0.08, 0.09, 0.09, 0.09]),
        # Unsorted input keeps its order; the step-down maximum makes 0.04's value 0.06.
        ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
        # Capped at 1, ties share a value.
        ([0.5, 0.2, 0.2, 0.9], [1.0, 0.8, 0.8, 1.0]),
        ([0.003], [0.003]),
        ([], []),
    ],
)
def test_holm_golden_values(p_values: list[float], expected: list[float]) -> None:
    assert holm_adjusted(p_values) == pytest.approx(expected, abs=1e-12)


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30))
def test_holm_rejects_exactly_what_the_sequential_procedure_rejects(p_values: list[float]) -> None:
    """Holm (1979): walk the p-values upwards, reject while p_(k) < alpha / (m - k + 1)."""
    size = len(p_values)
    order = sorted(range(size), key=lambda i: p_values[i])
    rejected: set[int] = set()
    for k, index in enumerate(order):
        if p_values[index] * (size - k) >= ALPHA:
            break
        rejected.add(index)
    adjusted = holm_adjusted(p_values)
    assert {i for i, value in enumerate(adjusted) if value < ALPHA} == rejected
    assert all(value >= p for value, p in zip(adjusted, p_values, strict=True))
    assert all(value <= 1.0 for value in adjusted)


def test_holm_refuses_nan() -> None:
    with pytest.raises(ValueError, match="without NaN"):
        holm_adjusted([0.1, math.nan])


def test_family_verdict_keeps_distance_columns_and_raw_p_values() -> None:
    rng = np.random.default_rng(16)
    reference = rng.normal(size=2000)
    ks = numeric_drift(reference, rng.normal(0.12, 1.0, size=2000))
    psi = numeric_drift(reference, rng.normal(1.0, 1.0, size=500), DriftConfig(test=DriftTest.PSI))
    calm = [numeric_drift(reference, rng.normal(size=2000)) for _ in range(9)]
    family = {"ks": ks, "psi": psi, **{f"calm{i}": result for i, result in enumerate(calm)}}
    decided = family_verdicts(family)
    assert decided["psi"] is psi
    assert decided["ks"].p_value == ks.p_value
    holm = decided["ks"].metrics["holm_p_value"]
    assert holm == pytest.approx(min(1.0, 10 * ks.p_value), rel=1e-12)
    assert ks.drift
    assert not decided["ks"].drift
    assert decided["ks"] == dataclasses.replace(
        ks, drift=False, metrics={**ks.metrics, "holm_p_value": holm}
    )


def test_family_verdict_of_one_column_is_its_own_verdict() -> None:
    result = categorical_drift(["0", "1"], [500, 500], [450, 550], kind="boolean")
    assert family_verdicts({"a": result})["a"].drift is result.drift is True


def _window_family(
    rng: np.random.Generator, references: np.ndarray, rows: int, shift: float
) -> tuple[dict[str, bool], dict[str, bool]]:
    """One window of every column against its reference: per-column and family verdicts."""
    results = {}
    for index, reference in enumerate(references):
        current = rng.normal(shift if index == 0 else 0.0, 1.0, size=rows)
        results[f"f{index}"] = numeric_drift(reference, current)
    family = family_verdicts(results)
    return (
        {name: result.drift for name, result in results.items()},
        {name: result.drift for name, result in family.items()},
    )


def test_any_of_twenty_features_flagged_at_the_nominal_level() -> None:
    """Twenty identical features, 200-row windows against 1,000-row references: without the
    correction 1 - 0.95^20 = 64 % of windows flag something; with it at most alpha."""
    rng = np.random.default_rng(20)
    references = rng.normal(size=(20, 1000))
    windows = 200
    any_raw = any_family = 0
    for _ in range(windows):
        raw, family = _window_family(rng, references, 200, 0.0)
        any_raw += any(raw.values())
        any_family += any(family.values())
    assert any_raw / windows > 0.5
    # Nominal 5 %; three standard errors (4.6 points at 200 windows) of slack.
    assert any_family / windows <= ALPHA + 0.046


def test_a_half_sd_shift_among_twenty_features_keeps_its_power() -> None:
    """One of twenty features shifts by 0.5 sd at 300 rows: still flagged in every window after
    the correction, and the other nineteen stay near the nominal level."""
    rng = np.random.default_rng(21)
    references = rng.normal(size=(20, 5000))
    windows = 40
    flagged = others = 0
    for _ in range(windows):
        _, family = _window_family(rng, references, 300, 0.5)
        flagged += family["f0"]
        others += any(family[name] for name in family if name != "f0")
    assert flagged == windows
    # Nominal 5 % of windows; three standard errors (10 points at 40 windows) of slack.
    assert others / windows <= ALPHA + 0.10
