"""Distances between binned distributions and the categorical two-sample tests."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from watchkeeper.stats._special import chi2_sf, normal_cdf, rel_entr

FloatArray = npt.NDArray[np.float64]

# Share given to an empty bin or category before taking PSI's logarithm (Siddiqi 2006 practice).
PSI_FLOOR = 1e-4
# Cochran's rule of thumb for the chi-square approximation: expected counts of at least 5.
MIN_EXPECTED = 5.0


@dataclass(frozen=True, slots=True)
class TestResult:
    """A test statistic, its p-value and degrees of freedom (0 when not applicable)."""

    statistic: float
    p_value: float
    dof: int


def to_shares(counts: FloatArray) -> FloatArray:
    """Counts divided by their total (the caller guarantees a positive total)."""
    shares: FloatArray = counts / counts.sum()
    return shares


def population_stability_index(reference: FloatArray, current: FloatArray) -> float:
    """PSI ``Σ (c_i - r_i) ln(c_i / r_i)`` on shares floored at :data:`PSI_FLOOR`.

    Both arguments are counts or shares per bin; they are normalised first. Reference:
    Siddiqi, *Credit Risk Scorecards* (2006), ch. 8; Yurdakul (2018), "Statistical properties
    of population stability index".
    """
    ref = np.maximum(to_shares(reference), PSI_FLOOR)
    cur = np.maximum(to_shares(current), PSI_FLOOR)
    return max(float(np.sum((cur - ref) * np.log(cur / ref))), 0.0)


def jensen_shannon_distance(reference: FloatArray, current: FloatArray) -> float:
    """Jensen–Shannon distance in base 2, in [0, 1] (Lin 1991; Endres & Schindelin 2003).

    The square root of ``(KL(r‖m) + KL(c‖m)) / 2`` with ``m = (r + c) / 2``; empty bins
    contribute nothing (``0 log 0 = 0``). Equals ``scipy.spatial.distance.jensenshannon``
    with ``base=2``.
    """
    ref = to_shares(reference)
    cur = to_shares(current)
    middle = (ref + cur) / 2.0
    divergence = (_relative_entropy(ref, middle) + _relative_entropy(cur, middle)) / (
        2.0 * math.log(2.0)
    )
    return min(math.sqrt(max(float(divergence), 0.0)), 1.0)


def _relative_entropy(shares: FloatArray, middle: FloatArray) -> float:
    """``Σ s log(s / m)`` with ``0 log 0 = 0``: ``scipy.special.rel_entr(s, m).sum()``."""
    # Term by term as SciPy computes them (a few dozen bins or categories), summed by NumPy.
    pairs = zip(shares.tolist(), middle.tolist(), strict=True)
    terms = [rel_entr(share, mid) for share, mid in pairs]
    return float(np.sum(np.array(terms, dtype=np.float64)))


def hellinger_distance(reference: FloatArray, current: FloatArray) -> float:
    """Hellinger distance ``‖√r - √c‖₂ / √2`` in [0, 1] (Hellinger 1909; Le Cam 1986).

    Equal to ``sqrt(1 - Σ sqrt(r_i c_i))``; the difference form stays exact for equal inputs.
    """
    gap = np.sqrt(to_shares(reference)) - np.sqrt(to_shares(current))
    return min(math.sqrt(float(np.dot(gap, gap)) / 2.0), 1.0)


def chi2_two_sample(
    reference: FloatArray, current: FloatArray, *, min_expected: float = MIN_EXPECTED
) -> TestResult:
    """Pearson chi-square test of homogeneity on the 2 × k table of counts (Pearson 1900).

    The table covers every category of either sample: a category the reference never saw is
    evidence of drift, not something to leave out. Categories empty in both samples are dropped
    (they carry no information), and categories whose expected count is below ``min_expected``
    in either sample are pooled into one cell (Cochran 1954, "Some methods for strengthening
    the common χ² tests"). The pooling looks only at the pooled margins, never at which sample
    a count came from, so rare categories — present in one sample by chance — keep the
    false-alarm rate at the nominal level (simulated in the tests), while a new category with
    many rows stays a cell of its own. Fewer than two cells leave nothing to test (statistic
    0, p-value 1). On the table it tests (:func:`contingency_table`), this is
    ``scipy.stats.chi2_contingency``, including Yates' correction when the table is 2 × 2,
    computed in the same order, with the chi-square tail of :mod:`watchkeeper.stats._special`
    (``scipy.stats`` takes half a second to import, ``scipy.special`` a sixth of one).
    """
    table = contingency_table(reference, current, min_expected=min_expected)
    if table.shape[1] < 2 or not table.sum(axis=1).all():
        return TestResult(0.0, 1.0, 0)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    dof = table.shape[1] - 1
    observed = table
    if dof == 1:
        # Yates' continuity correction, never larger than the difference itself.
        difference = expected - observed
        observed = observed + np.minimum(0.5, np.abs(difference)) * np.sign(difference)
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return TestResult(statistic, chi2_sf(dof, statistic), dof)


def contingency_table(
    reference: FloatArray, current: FloatArray, *, min_expected: float = MIN_EXPECTED
) -> FloatArray:
    """The 2 × k table :func:`chi2_two_sample` tests: empty categories dropped, sparse ones
    pooled into one cell (last)."""
    table = np.vstack((reference, current)).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    total = table.sum()
    if total <= 0:
        return table
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    sparse = expected.min(axis=0) < min_expected
    if sparse.sum() > 1:
        table = np.column_stack((table[:, ~sparse], table[:, sparse].sum(axis=1)))
    return table


def two_proportion_z(
    reference_positive: float, reference_total: float, current_positive: float, current_total: float
) -> TestResult:
    """Pooled two-proportion z-test, two-sided (Fleiss, Levin & Paik 2003, §2.5.2).

    ``z = (p_c - p_r) / sqrt(p (1 - p) (1/n_r + 1/n_c))`` with the pooled share ``p``; as in
    ``statsmodels.stats.proportion.proportions_ztest``. Identical all-0 or all-1 samples give
    ``z = 0`` and ``p = 1``.
    """
    pooled = (reference_positive + current_positive) / (reference_total + current_total)
    variance = pooled * (1.0 - pooled) * (1.0 / reference_total + 1.0 / current_total)
    if variance <= 0.0:
        return TestResult(0.0, 1.0, 0)
    difference = current_positive / current_total - reference_positive / reference_total
    z = difference / math.sqrt(variance)
    return TestResult(z, 2.0 * normal_cdf(-abs(z)), 0)


def cohen_h(reference_share: float, current_share: float) -> float:
    """Absolute Cohen's h ``|2 asin sqrt(p_c) - 2 asin sqrt(p_r)|`` (Cohen 1988, §6.2)."""
    return abs(
        2.0 * math.asin(math.sqrt(current_share)) - 2.0 * math.asin(math.sqrt(reference_share))
    )
