"""Rate checks calibrated to sample size: golden p-values, false alarms on identical data, power."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from watchkeeper.frame import numeric_values
from watchkeeper.stats.quality import (
    QualityThresholds,
    Verdict,
    categorical_column_quality,
    largest_new_label_p_value,
    new_category_p_value,
    numeric_column_quality,
    rate_increase_p_value,
)

_ZIPF_LABELS = 1000
_ZIPF = 1.0 / np.arange(1, _ZIPF_LABELS + 1) ** 1.1
_ZIPF /= _ZIPF.sum()


def label_counts(codes: np.ndarray) -> pd.Series:
    """Counts of integer-coded labels as category_counts gives them (string index)."""
    values, counts = np.unique(codes, return_counts=True)
    return pd.Series(counts, index=pd.Index([f"c{v}" for v in values], dtype=object))


def new_category_verdict(
    reference: np.ndarray, current: np.ndarray, thresholds: QualityThresholds | None = None
) -> Verdict:
    return categorical_column_quality(
        label_counts(reference),
        label_counts(current),
        reference_rows=len(reference),
        current_rows=len(current),
        reference_missing=0,
        current_missing=0,
        thresholds=thresholds,
    )["new_categories"].verdict


@pytest.mark.parametrize(
    ("events", "rows"),
    [((300, 24), (1000, 60)), ((0, 2), (1000, 100)), ((5, 5), (50, 50)), ((40, 1), (90, 3))],
)
def test_rate_increase_p_value_is_fishers_exact_test(
    events: tuple[int, int], rows: tuple[int, int]
) -> None:
    (reference_events, current_events), (reference_rows, current_rows) = events, rows
    table = [
        [current_events, current_rows - current_events],
        [reference_events, reference_rows - reference_events],
    ]
    expected = stats.fisher_exact(table, alternative="greater").pvalue
    assert rate_increase_p_value(events, rows) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("events", "rows"),
    [
        ((0, 3), (10, 3)),  # every current row an event: the top of the support
        ((10, 3), (10, 3)),  # every row of both an event: certain
        ((95, 5), (100, 5)),  # the bottom of the support is above zero
        ((1, 1), (1, 1)),
        ((3, 2), (20, 2)),
        ((200, 60), (10_000, 400)),
    ],
)
def test_rate_increase_p_value_is_scipys_hypergeometric_tail_at_the_edges(
    events: tuple[int, int], rows: tuple[int, int]
) -> None:
    (reference_events, current_events), (reference_rows, current_rows) = events, rows
    expected = stats.hypergeom.sf(
        current_events - 1,
        reference_rows + current_rows,
        reference_events + current_events,
        current_rows,
    )
    assert rate_increase_p_value(events, rows) == pytest.approx(
        min(1.0, max(0.0, float(expected))), rel=1e-12, abs=1e-300
    )


def test_new_category_p_value_is_the_larger_of_fisher_and_good_turing() -> None:
    new_rows, current_rows, f1, f2, n = 30, 200, 12, 5, 300
    fisher = stats.fisher_exact(
        [[new_rows, current_rows - new_rows], [f1, n - f1]], alternative="greater"
    ).pvalue
    rate = new_rows / current_rows
    variance = (f1 + 2 * f2 - f1**2 / n) / n**2 + rate * (1 - rate) / current_rows
    z = (new_rows / current_rows - f1 / n) / math.sqrt(variance)
    rate_p_value = max(fisher, float(special.ndtr(-z)))
    got = new_category_p_value(
        new_rows=new_rows, current_rows=current_rows, singletons=f1, doubletons=f2, reference_rows=n
    )
    assert got == pytest.approx(min(1.0, 2 * rate_p_value), rel=1e-9)
    largest = largest_new_label_p_value(12, n, current_rows)
    assert new_category_p_value(
        new_rows=new_rows,
        current_rows=current_rows,
        singletons=f1,
        doubletons=f2,
        reference_rows=n,
        largest_new=12,
    ) == pytest.approx(min(1.0, 2 * min(rate_p_value, largest)), rel=1e-9)
    assert new_category_p_value(
        new_rows=0, current_rows=100, singletons=0, doubletons=0, reference_rows=100
    ) == pytest.approx(1.0)


def test_largest_new_label_bound_by_brute_force() -> None:
    """The bound is the supremum over label probabilities of (1-q)^n P(Bin(m, q) >= c) / q."""
    n, m, c = 100, 200, 9
    q = np.linspace(1e-6, 0.999, 200_000)
    brute = np.max((1 - q) ** n * stats.binom.sf(c - 1, m, q) / q)
    assert largest_new_label_p_value(c, n, m) == pytest.approx(min(1.0, brute), rel=1e-4)


@pytest.mark.parametrize("size", [100, 300, 1000])
def test_new_categories_false_alarm_rate_on_identical_zipf_data(size: int) -> None:
    """Rare labels (Zipf, 1,000 labels): identical data fails at about alpha, yet is reported."""
    rng = np.random.default_rng(size)
    reps, failures, reported = 600, 0, 0
    for _ in range(reps):
        reference, current = rng.choice(_ZIPF_LABELS, size=(2, size), p=_ZIPF)
        checks = categorical_column_quality(
            label_counts(reference),
            label_counts(current),
            reference_rows=size,
            current_rows=size,
            reference_missing=0,
            current_missing=0,
        )
        check = checks["new_categories"]
        failures += check.verdict is Verdict.FAIL
        new_counts = check.details["new_counts"]
        assert isinstance(new_counts, dict)
        assert len(new_counts) <= 20
        reported += bool(new_counts)
    # Nominal 0.05; three standard errors of 600 runs is 0.027.
    assert failures / reps <= 0.077
    # Unseen labels are the rule with rare categories, and they stay listed when not failing.
    assert reported / reps > 0.9


@pytest.mark.parametrize("size", [100, 300, 1000])
def test_a_new_category_on_21_percent_of_rows_fails(size: int) -> None:
    rng = np.random.default_rng(size + 1)
    for _ in range(50):
        reference = rng.choice(_ZIPF_LABELS, size=size, p=_ZIPF)
        current = rng.choice(_ZIPF_LABELS, size=size, p=_ZIPF)
        current[: round(0.21 * size)] = _ZIPF_LABELS  # a label the reference cannot have
        assert new_category_verdict(reference, current) is Verdict.FAIL


def test_closed_label_set_warns_on_one_new_label_and_floor_is_configurable() -> None:
    reference = np.repeat([0, 1, 2], 300)
    current = np.r_[np.repeat([0, 1, 2], 330), [7] * 10]
    assert new_category_verdict(reference, current[-100:]) is Verdict.FAIL
    assert new_category_verdict(reference, current[:-9]) is Verdict.WARNING
    lenient = QualityThresholds(max_new_category_share=0.2)
    assert new_category_verdict(reference, current[-100:], lenient) is Verdict.WARNING


@pytest.mark.parametrize("size", [100, 300, 1000])
def test_non_numeric_false_alarm_rate_on_identical_data(size: int) -> None:
    """A feed with 2 % "n/a" in a numeric column: identical windows fail at most at alpha."""
    rng = np.random.default_rng(size + 2)
    reps, failures = 1000, 0
    for _ in range(reps):
        counts = rng.binomial(size, 0.02, size=2)
        reference, current = (
            numeric_values(pd.Series(["1.5"] * (size - int(k)) + ["n/a"] * int(k), dtype=object))
            for k in counts
        )
        check = numeric_column_quality(reference, current)["non_numeric_share"]
        failures += check.verdict is Verdict.FAIL
    assert failures / reps <= 0.06


def test_non_numeric_values_in_a_clean_column_fail_when_significant_and_warn_otherwise() -> None:
    def column(bad: int, rows: int) -> pd.Series:
        return pd.Series(["1.5"] * (rows - bad) + ["n/a"] * bad, dtype=object)

    clean = numeric_values(column(0, 1000))
    one = numeric_column_quality(clean, numeric_values(column(1, 100)))["non_numeric_share"]
    assert one.verdict is Verdict.WARNING
    many = numeric_column_quality(clean, numeric_values(column(5, 100)))["non_numeric_share"]
    assert many.verdict is Verdict.FAIL
