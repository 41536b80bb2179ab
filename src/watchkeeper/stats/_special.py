"""The few special functions a batch report needs, without importing SciPy.

``import scipy.special`` costs about 0.15 s (most of it SciPy's array-API layer importing
``numpy.f2py``), a sixth of a whole ``watchkeeper report`` process. The report's common path
needs only the normal and chi-square tail probabilities and the relative entropy, written here
with :mod:`math`; the tests hold each to its ``scipy.special`` counterpart (``rel_entr`` bit for
bit, the tails to a relative difference of at most 1e-12).
Rarer tests (Fisher's exact test, exact KS laws, the duplicate-row test) still import SciPy
when they run.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["chi2_sf", "hypergeom_sf", "normal_cdf", "rel_entr"]

_SQRT_HALF = math.sqrt(0.5)
_CEPHES_MAXLOG = 7.09782712893383996843e2
# Partial sums are rescaled past this size so that large statistics never overflow.
_RESCALE_ABOVE = 1e280
_LOG_RESCALE = math.log(_RESCALE_ABOVE)
# Below e^-746 a probability is under half the smallest subnormal double, so it is 0.
_LOG_UNDERFLOW = -746.0
_DOUBLE_MIN = 2.2250738585072014e-308  # the smallest normal double (C's DBL_MIN)
_LOG_2PI = math.log(2.0 * math.pi)
_NEGLIGIBLE = 1e-25


def normal_cdf(x: float) -> float:
    """``P(Z <= x)`` for a standard normal ``Z``: ``scipy.special.ndtr``.

    The same split as Cephes' ``ndtr``, which SciPy uses: ``erf`` near zero, ``erfc`` in the
    tails so that small probabilities keep their relative precision, and the same underflow.

    >>> normal_cdf(0.0), round(normal_cdf(-1.959963984540054), 6)
    (0.5, 0.025)
    """
    scaled = x * _SQRT_HALF
    if abs(scaled) < _SQRT_HALF:
        return 0.5 + 0.5 * math.erf(scaled)
    # Cephes' erfc is 0 once z² passes its MAXLOG (the tail is then below 6e-311).
    tail = 0.0 if scaled * scaled > _CEPHES_MAXLOG else 0.5 * math.erfc(abs(scaled))
    return 1.0 - tail if scaled > 0 else tail


def chi2_sf(dof: int, x: float) -> float:
    """``P(X >= x)`` for ``X`` chi-square with a whole number ``dof`` of degrees of freedom.

    ``scipy.special.chdtrc(dof, x)``, by the closed forms of the regularised upper incomplete
    gamma function at integer and half-integer order (Abramowitz & Stegun 1964, 26.4.4–26.4.5):
    with ``y = x / 2``, an even ``dof = 2k`` gives the Poisson tail ``e^-y Σ_{j<k} y^j / j!``
    and an odd ``dof = 2k + 1`` gives ``erfc(√y) + e^-y Σ_{j<k} y^(j+1/2) / Γ(j + 3/2)``. Every
    term is positive, so the sum keeps its relative precision in both tails; the terms are
    built by their ratio and rescaled so that large statistics neither overflow nor underflow
    before the end.

    >>> round(chi2_sf(1, 3.841458820694124), 6), round(chi2_sf(4, 9.487729036781154), 6)
    (0.05, 0.05)
    """
    if dof < 1:
        raise ValueError(f"dof must be a positive whole number, got {dof}")
    if math.isnan(x):
        return math.nan
    if x <= 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    if x > dof and dof / 2.0 * math.log(x / dof) + (dof - x) / 2.0 < _LOG_UNDERFLOW:
        # Chernoff's bound puts the tail below half the smallest double: it rounds to 0.
        return 0.0
    half = x / 2.0
    odd = dof % 2 == 1
    terms = (dof - 1) // 2
    if odd:
        # First term y^(1/2) / Γ(3/2); the next ones by the ratio y / (j + 1/2).
        log_first = 0.5 * math.log(half) - math.lgamma(1.5)
        offset = 0.5
    else:
        log_first, offset, terms = 0.0, 0.0, dof // 2
    total = 0.0
    term = 1.0
    log_scale = log_first - half  # log of the factor that multiplies ``term`` and ``total``
    for j in range(terms):
        if j:
            term *= half / (j + offset)
        total += term
        if total > _RESCALE_ABOVE:
            term /= _RESCALE_ABOVE
            total /= _RESCALE_ABOVE
            log_scale += _LOG_RESCALE
    tail = math.exp(log_scale + math.log(total)) if total > 0.0 else 0.0
    if odd:
        tail += math.erfc(math.sqrt(half))
    return min(tail, 1.0)


def rel_entr(x: float, y: float) -> float:
    """``x log(x / y)``, ``0`` for ``x = 0 <= y`` and ``inf`` otherwise: ``scipy.special.rel_entr``.

    Computed in SciPy's order, so the result is the same to the last bit: ``log1p`` of the
    relative difference when ``x / y`` is near 1 (where a divergence's small terms cancel),
    ``log`` of the ratio elsewhere, and a difference of logarithms when the ratio would
    underflow or overflow.

    >>> rel_entr(0.5, 0.25) == 0.5 * math.log(2.0), rel_entr(0.0, 0.3), rel_entr(0.2, 0.0)
    (True, 0.0, inf)
    """
    if math.isnan(x) or math.isnan(y):
        return math.nan
    if x <= 0.0 or y <= 0.0:
        return 0.0 if x == 0.0 and y >= 0.0 else math.inf
    ratio = x / y
    if 0.5 < ratio < 2.0:
        return x * math.log1p((x - y) / y)
    if _DOUBLE_MIN < ratio < math.inf:
        return x * math.log(ratio)
    return x * (math.log(x) - math.log(y))


def hypergeom_sf(observed: int, total: int, successes: int, draws: int) -> float:
    """``P(X >= observed)`` for ``X`` hypergeometric: ``draws`` from ``total`` of which
    ``successes`` are marked (``scipy.stats.hypergeom.sf(observed - 1, total, successes,
    draws)``).

    The probabilities are Loader's (2000, "Fast and accurate computation of binomial
    probabilities") saddle-point form, the one R's ``dhyper`` uses: a ratio of three binomial
    probabilities, each from Stirling-series remainders and the deviance ``bd0``, so no
    difference of large log-factorials loses precision. The tail is summed outwards from its
    largest term by the ratio of successive probabilities, every term positive.

    >>> round(hypergeom_sf(24, 1060, 324, 60), 3), round(hypergeom_sf(2, 1100, 2, 100), 4)
    (0.07, 0.0082)
    """
    low, high = max(0, draws + successes - total), min(draws, successes)
    if observed <= low:
        return 1.0
    if observed > high:
        return 0.0
    mode = (draws + 1) * (successes + 1) // (total + 2)
    start = max(observed, mode)
    failures = total - successes
    first = _hypergeom_pmf(start, successes, failures, draws)
    # P(X = x + 1) / P(X = x) = (K - x)(n - x) / ((x + 1)(N - K - n + x + 1)), below 1 past the
    # mode, so the products fall away from ``start`` on both sides.
    upward = np.arange(start, high, dtype=np.float64)
    ratios = (
        (successes - upward) * (draws - upward) / ((upward + 1) * (failures - draws + upward + 1))
    )
    relative = [1.0, *_falling_products(ratios)]  # each term over ``first``
    if observed < start:
        downward = np.arange(start - 1, observed - 1, -1, dtype=np.float64)
        inverse = (
            (downward + 1)
            * (failures - draws + downward + 1)
            / ((successes - downward) * (draws - downward))
        )
        relative.extend(_falling_products(inverse))
    return min(first * math.fsum(relative), 1.0)


def _falling_products(ratios: np.ndarray) -> list[float]:
    """Running products of ``ratios`` (each below 1), up to where they no longer count."""
    products = np.cumprod(ratios)
    # Decreasing: past 1e-25 of the first term, even 10^5 more terms add under 1e-20.
    end = int(np.searchsorted(-products, -_NEGLIGIBLE))
    kept: list[float] = products[:end].tolist()
    return kept


def _hypergeom_pmf(x: int, successes: int, failures: int, draws: int) -> float:
    """``P(X = x)`` as the ratio of three binomial probabilities at ``p = draws / total``."""
    total = successes + failures
    p = draws / total
    q = (total - draws) / total
    return (
        _binomial_pmf(x, successes, p, q)
        * _binomial_pmf(draws - x, failures, p, q)
        / _binomial_pmf(draws, total, p, q)
    )


def _binomial_pmf(x: int, n: int, p: float, q: float) -> float:
    """Loader's ``dbinom_raw``: ``P(Binomial(n, p) = x)`` with ``q = 1 - p`` given exactly."""
    if p == 0.0:
        return 1.0 if x == 0 else 0.0
    if q == 0.0:
        return 1.0 if x == n else 0.0
    if x == 0:
        if n == 0:
            return 1.0
        return math.exp(-_bd0(n, n * q) - n * p if p < 0.1 else n * math.log(q))
    if x == n:
        return math.exp(-_bd0(n, n * p) - n * q if q < 0.1 else n * math.log(p))
    if x < 0 or x > n:
        return 0.0
    log_core = (
        _stirling_remainder(n)
        - _stirling_remainder(x)
        - _stirling_remainder(n - x)
        - _bd0(x, n * p)
        - _bd0(n - x, n * q)
    )
    log_factor = _LOG_2PI + math.log(x) + math.log1p(-x / n)
    return math.exp(log_core - 0.5 * log_factor)


def _stirling_remainder(n: int) -> float:
    """``log n! - (n + 1/2) log n + n - log √(2π)``, the error of Stirling's formula."""
    if n <= 15:
        return math.lgamma(n + 1.0) - (n + 0.5) * math.log(n) + n - _LOG_2PI / 2
    squared = float(n) * n
    s0, s1, s2, s3, s4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188
    if n > 500:
        return (s0 - s1 / squared) / n
    if n > 80:
        return (s0 - (s1 - s2 / squared) / squared) / n
    if n > 35:
        return (s0 - (s1 - (s2 - s3 / squared) / squared) / squared) / n
    return (s0 - (s1 - (s2 - (s3 - s4 / squared) / squared) / squared) / squared) / n


def _bd0(x: float, mean: float) -> float:
    """The deviance ``x log(x / mean) + mean - x``, by a series where the two are close."""
    if abs(x - mean) < 0.1 * (x + mean):
        v = (x - mean) / (x + mean)
        total = (x - mean) * v
        if abs(total) < _DOUBLE_MIN:
            return total
        term = 2.0 * x * v
        v *= v
        for j in range(1, 1000):
            term *= v
            updated = total + term / (2 * j + 1)
            if updated == total:
                return updated
            total = updated
    return x * math.log(x / mean) + mean - x
