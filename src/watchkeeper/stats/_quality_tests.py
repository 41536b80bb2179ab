"""The significance tests behind the data-quality rate checks (``docs/quality.md``).

Each returns a one-sided p-value that the current data's rate is above what the reference
data leads one to expect; :mod:`watchkeeper.stats.quality` fails a check only when its rate
passes a floor *and* its p-value is below ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from watchkeeper.stats._special import hypergeom_sf, normal_cdf

Label = TypeVar("Label", bound=Hashable)

__all__ = [
    "ValueMasses",
    "constant_p_value",
    "largest_new_label_p_value",
    "new_category_p_value",
    "out_of_range_p_value",
    "rate_increase_p_value",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ValueMasses:
    """The repeated values of a numeric reference column, as the ``constant`` check needs them.

    ``counts`` lists values with their counts, ``total`` is the number of finite reference
    values and every value not listed occurs at most ``unlisted_max`` times (1 when every
    repeated value is listed). See :func:`constant_p_value`.
    """

    counts: Mapping[float, int] = field(default_factory=dict)
    total: int = 0
    unlisted_max: int = 1

    @classmethod
    def of(cls, finite: npt.NDArray[np.float64]) -> ValueMasses:
        """Exact masses of finite values: every value seen twice or more is listed."""
        values, counts = np.unique(finite, return_counts=True)
        repeated = counts >= 2
        return cls(
            counts=dict(zip(values[repeated].tolist(), counts[repeated].tolist(), strict=True)),
            total=int(finite.size),
            unlisted_max=1,
        )

    def p_value(self, value: float, count: int) -> float:
        """:func:`constant_p_value` of ``count`` current values, all ``value``."""
        return constant_p_value(
            self.counts,
            value,
            count,
            reference_total=self.total,
            unlisted_max=self.unlisted_max,
        )


def rate_increase_p_value(events: tuple[int, int], rows: tuple[int, int]) -> float:
    """One-sided p-value that the current rate of an event is above the reference rate.

    Fisher's exact test (Agresti 2013, §3.5) on the 2×2 table of ``events`` out of ``rows``,
    (reference, current): given the total number of events, the current sample's share of them
    is hypergeometric when both rates are equal (its tail:
    :func:`~watchkeeper.stats._special.hypergeom_sf`). Exact for rare events (a few non-numbers
    in a window), where the normal approximation cries wolf. 1.0 when either side has no rows.

    >>> round(rate_increase_p_value((300, 24), (1000, 60)), 3)
    0.07
    >>> round(rate_increase_p_value((0, 2), (1000, 100)), 4)
    0.0082
    """
    (reference_events, current_events), (reference_rows, current_rows) = events, rows
    if reference_rows <= 0 or current_rows <= 0 or current_events <= 0:
        return 1.0
    total_rows = reference_rows + current_rows
    total_events = reference_events + current_events
    # P(X >= current_events) on the support [max(0, n + K - N), min(n, K)] of X.
    if current_events <= max(0, current_rows + total_events - total_rows):
        return 1.0
    if current_events > min(current_rows, total_events):
        return 0.0
    p_value = hypergeom_sf(current_events, total_rows, total_events, current_rows)
    return min(1.0, max(0.0, p_value))


def out_of_range_p_value(outside: int, reference_count: int, current_count: int) -> float:
    """P-value of at least ``outside`` current values beyond the reference's extremes by chance.

    When reference and current values are exchangeable (one continuous distribution), the
    labels of the pooled sorted sample are a uniformly random arrangement, and the number K of
    current values below the reference minimum or above its maximum has the exact survival
    function (N = n + m values, n of them reference)::

        P(K >= k) = [C(N - k, n) + k C(N - k - 1, n - 1)] / C(N, n)

    (count the arrangements whose first a and last b labels are current, a + b = j, and sum
    over j >= k). Ties only make values equal to an extreme, which are not outside, so with
    discrete data the test is conservative. Each current value is outside with probability
    2 / (n + 1): 2 % with 100 reference values, which a fixed share threshold alone calls a
    failure.

    >>> round(out_of_range_p_value(2, 100, 100), 3), round(out_of_range_p_value(10, 100, 100), 6)
    (0.5, 0.004829)
    """
    n, m, k = reference_count, current_count, outside
    if k <= 0 or m <= 0:
        return 1.0
    if n <= 0 or k > m:
        return 1.0 if n <= 0 else 0.0
    total = n + m
    # C(N - k, n) / C(N, n) = prod over i < k of (m - i) / (N - i): a product of k ratios keeps
    # its relative precision where differences of log-gammas of N would lose it.
    steps = np.arange(k, dtype=np.float64)
    first = float(np.prod((m - steps) / (total - steps)))
    # C(N - k - 1, n - 1) = C(N - k, n) n / (N - k).
    second = k * n / (total - k) * first
    return min(1.0, first + second)


def new_category_p_value(
    *,
    new_rows: int,
    current_rows: int,
    singletons: int,
    doubletons: int,
    reference_rows: int,
    largest_new: int = 0,
) -> float:
    """One-sided p-value that more current rows carry unseen labels than the reference predicts.

    Given the reference, each current row (drawn from the same distribution) carries a label
    the reference never had with probability U, the reference's *unseen mass*, so the number of
    such rows is Binomial(m, U). Good (1953) and Turing estimate U by f1 / n, the share of the
    n reference rows whose label occurs once (the reference's own leave-one-out rate of new
    labels), with the variance (f1 + 2 f2 - f1² / n) / n² of Esty (1983), f2 the labels seen
    twice. Two tests of "current rate above f1 / n":

    - Fisher's exact test (:func:`rate_increase_p_value`) of ``new_rows`` of ``current_rows``
      against f1 of n, exact when the singletons behave like a binomial count;
    - a z-test of ``new_rows / current_rows - f1 / n`` with the Good–Turing variance of Esty
      plus the binomial variance of the current share (at the larger of the two rates), which
      also counts the uncertainty of the estimate of U that Fisher's test ignores.

    Their larger p-value is an intersection–union test (Berger 1982) that rejects only when
    both do. With many rare labels (a third of a 100-row reference seen once) the unseen rows
    are many and noisy, and a single new label on a fifth of the rows hides among them; so the
    result is combined (Bonferroni: twice the smaller p-value) with
    :func:`largest_new_label_p_value` of the most frequent new label (``largest_new`` rows),
    which no rare label reaches. Simulated on Zipf-distributed labels the check fails
    identical data at or below ``alpha`` (tests/stats/test_quality_calibration.py). Counts are
    of rows that hold a label (missing rows are neither seen nor new).

    >>> round(new_category_p_value(new_rows=21, current_rows=100, singletons=3,
    ...                            doubletons=1, reference_rows=100), 6)
    0.000115
    >>> round(new_category_p_value(new_rows=5, current_rows=100, singletons=4,
    ...                            doubletons=2, reference_rows=100), 3)
    1.0
    """
    if new_rows <= 0 or current_rows <= 0 or reference_rows <= 0:
        return 1.0
    fisher = rate_increase_p_value((singletons, new_rows), (reference_rows, current_rows))
    expected = singletons / reference_rows
    observed = new_rows / current_rows
    rate = max(expected, observed)
    good_turing = max(singletons + 2 * doubletons - singletons**2 / reference_rows, 0.0)
    variance = good_turing / reference_rows**2 + rate * (1.0 - rate) / current_rows
    if variance <= 0.0:
        # Every current row is new and the reference had no rare label: nothing is uncertain.
        z_p_value = 0.0 if observed > expected else 1.0
    else:
        z_p_value = normal_cdf(-(observed - expected) / math.sqrt(variance))
    rate_p_value = max(fisher, z_p_value)
    largest = largest_new_label_p_value(largest_new, reference_rows, current_rows)
    return min(1.0, 2.0 * min(rate_p_value, largest))


def largest_new_label_p_value(rows: int, reference_rows: int, current_rows: int) -> float:
    """Bound on the chance that some label unseen in n reference rows covers ``rows`` of m.

    For a label of probability p, being absent from the reference and on at least c current
    rows has probability h(p) = (1 - p)^n P(Binomial(m, p) >= c) <= p sup_q h(q) / q. Summing
    over all labels (their probabilities add up to at most 1; Boole's inequality) bounds the
    chance that *any* unseen label reaches c rows by sup_q h(q) / q, whatever the label
    distribution. A label unseen in n rows is rare, so it seldom reaches many current rows.

    >>> largest_new_label_p_value(2, 100, 100), largest_new_label_p_value(21, 100, 100) < 1e-6
    (1.0, True)
    """
    if rows <= 1 or current_rows <= 0:
        return 1.0  # a label on one row: h(q) / q tends to m as q -> 0, no bound below 1
    from scipy import special

    n, m, c = reference_rows, current_rows, rows

    def log_ratio(q: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            tail = np.log(special.bdtrc(c - 1, m, q))  # P(Binomial(m, q) >= c)
        return np.asarray(n * np.log1p(-q) + tail - np.log(q))

    # A coarse log-spaced grid over (0, 1), then a fine one around its best point.
    coarse = np.logspace(-9.0, -1e-9, 300)
    best = int(np.argmax(log_ratio(coarse)))
    fine = np.linspace(coarse[max(best - 1, 0)], coarse[min(best + 1, len(coarse) - 1)], 300)
    peak = float(max(log_ratio(coarse).max(), log_ratio(fine).max()))
    return 1.0 if peak >= 0.0 else math.exp(peak)


def constant_p_value(
    reference_counts: Mapping[Label, int],
    label: Label,
    count: int,
    *,
    reference_total: int | None = None,
    unlisted_max: int = 0,
) -> float:
    """P-value that a current sample of ``count`` values, all ``label``, is single-valued by
    chance.

    When reference and current values are exchangeable, the current sample is a uniformly
    random subset of size m = ``count`` of the N pooled values, and it is single-valued with
    probability C(c_u, m) / C(N, m) on value u, c_u its pooled count. The p-value is the
    chance of a single-valued sample on a value no more frequent than ``label``::

        P = sum over values u with c_u <= c_label of C(c_u, m) / C(N, m)

    so that a window stuck on a rare value fails even when the column has a point mass
    elsewhere (a window of all zeros of a mostly-zero column is no evidence). A boolean that
    is 95 % true in the reference makes a 30-row window all true with probability about
    0.95**30: constant, but no evidence that the column stopped varying. 1.0 when the current
    sample has fewer than two values.

    ``reference_counts`` may list only some of the reference's values (a numeric column's
    repeated values, or the atoms a profile kept): ``reference_total`` is then the number of
    reference values, and every value not listed occurs at most ``unlisted_max`` times. The
    unlisted ones add at most (U / b) C(b, m) / C(N, m) to P (U values in all, b =
    ``unlisted_max``; C(c, m) / c grows with c, so equal counts of b are the worst case), and
    ``label``, if unlisted, is taken to occur b times: an upper bound, so the test stays valid.

    >>> round(constant_p_value({"1": 95, "0": 5}, "1", 30), 3)
    0.263
    >>> constant_p_value({"a": 50, "b": 50}, "a", 40) < 1e-9
    True
    >>> constant_p_value({0.0: 300}, 0.0, 5, reference_total=1000, unlisted_max=1) > 0.002
    True
    """
    if count < 2:
        return 1.0
    listed = sum(reference_counts.values())
    total = listed if reference_total is None else reference_total
    if total < listed:
        raise ValueError(f"reference_total {total} is below the listed counts {listed}")
    pooled = dict(reference_counts)
    unlisted = total - listed
    if label not in pooled and unlisted_max > 0 and unlisted > 0:
        pooled[label] = min(unlisted_max, unlisted)
        unlisted -= pooled[label]
    pooled[label] = observed = pooled.get(label, 0) + count
    log_all = _log_falling(total + count, count)
    probability = sum(
        math.exp(_log_falling(pooled_count, count) - log_all)
        for pooled_count in pooled.values()
        if count <= pooled_count <= observed
    )
    if unlisted > 0 and unlisted_max >= count:
        probability += (
            unlisted / unlisted_max * math.exp(_log_falling(unlisted_max, count) - log_all)
        )
    return float(min(1.0, probability))


def _log_falling(top: int, length: int) -> float:
    """log(top! / (top - length)!), the log of C(top, length) * length!."""
    from scipy import special

    return float(special.gammaln(top + 1) - special.gammaln(top - length + 1))
