"""Survival function of the two-sided Kolmogorov–Smirnov statistic ``D_n`` without ``scipy.stats``.

``kstwo_sf(n, x)`` is ``scipy.stats.kstwo.sf(x, n)``, computed the way SciPy computes it
(Simard & L'Ecuyer 2011, "Computing the two-sided Kolmogorov–Smirnov distribution", J. Stat.
Softw. 39(11)): the closed forms of Ruben & Gambino (1982) at the ends, twice Smirnov's one-sided
law where the two sides cannot both be crossed or the product is negligible, and ``1 - P(D_n <=
x)`` elsewhere, by the Durbin (1968) matrix in Marsaglia, Tsang & Wang's (2003) form or the
Pelz & Good (1976) expansion. The batch report and the live windows need only the
``n > 140`` branches (an effective size ``n_r n_c / (n_r + n_c)`` above 140 whenever both sides
exceed 10,000 values, where the exact two-sample law is not used); importing ``scipy.stats``
costs half a second of a ``watchkeeper report`` run and ``scipy.special`` a sixth of one, so
those branches are written here with NumPy. ``scipy.special.smirnov`` is imported only for the
one-sided law when no faster equal sum is passed in, or for a statistic of at least 0.5 whose
p-value does not underflow; the rare ``n <= 140`` case (a tiny sample against a huge one) still
calls SciPy. The tests hold every branch to ``scipy.stats.kstwo.sf``.

The branches follow ``scipy/stats/_ksstats.py`` (SciPy 1.17, BSD-3-Clause, Copyright (c)
2001-2002 Enthought, Inc. 2003, SciPy Developers).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["kstwo_sf"]

_SCALE_EXPONENT = 128
_SCALE_UP = float(np.ldexp(1.0, _SCALE_EXPONENT))
_SCALE_DOWN = float(np.ldexp(1.0, -_SCALE_EXPONENT))
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_LOG_2PI = math.log(2.0 * math.pi)
_MIN_LOG = -708.0
# n x² from which exp(-2 n x²) < 2.47e-324, half the smallest subnormal double.
_SMIRNOV_UNDERFLOW = 373.0
_PI_2, _PI_4, _PI_6 = math.pi**2, math.pi**4, math.pi**6
# Stirling coefficients B_2j / (2j (2j - 1)) for j = 8, …, 1 (SciPy's _loggamma.pxd).
_STIRLING = [
    -2.955065359477124183e-2,
    6.4102564102564102564e-3,
    -1.9175269175269175269e-3,
    8.4175084175084175084e-4,
    -5.952380952380952381e-4,
    7.9365079365079365079e-4,
    -2.7777777777777777778e-3,
    8.3333333333333333333e-2,
]


def kstwo_sf(n: int, x: float, smirnov: Callable[[int, float], float] | None = None) -> float:
    """``P(D_n >= x)`` for the two-sided one-sample KS statistic of ``n`` values.

    ``smirnov(n, x)`` is the one-sided ``P(D+_n >= x)`` used where ``n x² >= 2.2``
    (``scipy.special.smirnov`` by default; the caller may pass a faster equal sum).

    >>> round(kstwo_sf(1000, 0.05), 6)
    0.013582
    """
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    if n <= 140:
        from scipy import stats  # the tiny-sample branches stay SciPy's

        return _clip(float(stats.kstwo.sf(x, n)))
    t = n * x
    if t <= 1.0:
        if t <= 0.5:
            return 1.0
        cdf = math.exp(_log_factorial_over_power(n) + n * math.log(2.0 * t - 1.0))
        return _clip(1.0 - cdf)
    if t >= n - 1:
        return _clip(2.0 * (1.0 - x) ** n)
    if x >= 0.5:
        if t * x >= _SMIRNOV_UNDERFLOW:
            # P(D+_n >= x) <= exp(-2 n x²) (Massart 1990) is then below half the smallest
            # double, so SciPy's value is 0 too; this spares the import of scipy.special.
            return 0.0
        return _clip(2.0 * _scipy_smirnov(n, x))
    n_x_squared = t * x
    if n_x_squared >= 370.0:
        return 0.0
    if n_x_squared >= 2.2:
        return _clip(2.0 * (smirnov or _scipy_smirnov)(n, x))
    durbin = n <= 100_000 and n * x**1.5 <= 1.4
    return _clip(1.0 - (_durbin_cdf(n, x) if durbin else _pelz_good_cdf(n, x)))


def _scipy_smirnov(n: int, x: float) -> float:
    """``scipy.special.smirnov(n, x)``, imported only when it is needed."""
    from scipy import special

    return float(special.smirnov(n, x))


def _clip(probability: float) -> float:
    return min(max(probability, 0.0), 1.0)


def _log_factorial_over_power(n: int) -> float:
    """``log(n! / n^n)`` by Stirling's series with ``n log n`` removed up front."""
    reciprocal = 1.0 / n
    return float(
        np.log(n) / 2 - n + _LOG_2PI / 2 + reciprocal * np.polyval(_STIRLING, reciprocal / n)
    )


def _durbin_cdf(n: int, d: float) -> float:
    """``P(D_n <= d)`` by Durbin's matrix, the MTW algorithm (scaled powers of an m × m matrix)."""
    nd = n * d
    if nd <= 0.5:
        return 0.0
    k = math.ceil(nd)
    h = k - nd
    m = 2 * k - 1
    matrix = np.zeros([m, m])
    orders = np.arange(1, m + 1)
    first_column = 1.0 - h**orders
    factorials = np.empty(m)
    fac = 1.0
    for j in orders:
        factorials[j - 1] = fac
        fac /= j  # may underflow harmlessly
        first_column[j - 1] *= fac
    tail = max(2 * h - 1.0, 0) ** m - 2 * h**m
    first_column[-1] = (1.0 + tail) * fac
    for i in range(1, m):
        matrix[i - 1 :, i] = factorials[: m - i + 1]
    matrix[:, 0] = first_column
    matrix[-1, :] = np.flip(first_column, axis=0)

    power = np.eye(m)
    remaining = n
    exponent = 0
    matrix_exponent = 0
    while remaining > 0:
        if remaining % 2:
            power = np.matmul(power, matrix)
            exponent += matrix_exponent
        matrix = np.matmul(matrix, matrix)
        matrix_exponent *= 2
        if np.abs(matrix[k - 1, k - 1]) > _SCALE_UP:
            matrix /= _SCALE_UP
            matrix_exponent += _SCALE_EXPONENT
        remaining //= 2
    p = power[k - 1, k - 1]
    for i in range(1, n + 1):  # times n! / n^n
        p = i * p / n
        if np.abs(p) < _SCALE_DOWN:
            p *= _SCALE_UP
            exponent -= _SCALE_EXPONENT
    if exponent != 0:
        p = np.ldexp(p, exponent)
    return _clip(float(p))


def _pelz_good_cdf(n: int, x: float) -> float:
    """``P(D_n <= x)`` by the Pelz–Good expansion (Li-Chien/Korolyuk terms, theta transforms)."""
    z = math.sqrt(n) * x
    z2, z3, z4, z6 = z**2, z**3, z**4, z**6
    q_log = -_PI_2 / 8 / z2
    if q_log < _MIN_LOG:
        return 0.0
    q = np.exp(q_log)
    k1a, k1b = -z2, _PI_2 / 4
    k2a = 6 * z6 + 2 * z4
    k2b = (2 * z4 - 5 * z2) * _PI_2 / 4
    k2c = _PI_4 * (1 - 2 * z2) / 16
    k3d = _PI_6 * (5 - 30 * z2) / 64
    k3c = _PI_4 * (-60 * z2 + 212 * z4) / 16
    k3b = _PI_2 * (135 * z4 - 96 * z6) / 4
    k3a = -30 * z6 - 90 * z**8
    terms = np.zeros(4)
    top = math.ceil(16 * z / math.pi)
    for k in range(top, 0, -1):  # Horner scheme over odd m = 2k - 1
        m = 2 * k - 1
        m2, m4, m6 = m**2, m**4, m**6
        terms *= np.power(q, 8 * k)
        terms += np.array(
            [
                1.0,
                k1a + k1b * m2,
                k2a + k2b * m2 + k2c * m4,
                k3a + k3b * m2 + k3c * m4 + k3d * m6,
            ]
        )
    terms *= q
    terms *= _SQRT_2PI
    terms /= np.array([z, 6 * z4, 72 * z**7, 6480 * z**10])
    q = np.exp(-_PI_2 / 2 / z2)
    ks = np.arange(top, 0, -1)
    k_squared = ks**2
    sqrt3z = math.sqrt(3) * z
    k_pi = np.pi * ks
    q_powers = q**k_squared
    terms[2] += np.sum(k_squared * q_powers) * (_PI_2 * _SQRT_2PI / (-36 * z3))
    terms[3] += np.sum((sqrt3z + k_pi) * (sqrt3z - k_pi) * k_squared * q_powers) * (
        _PI_2 * _SQRT_2PI / (216 * z6)
    )
    terms /= np.power(n * 1.0, np.arange(4) / 2.0)
    return _clip(float(sum(terms)))
