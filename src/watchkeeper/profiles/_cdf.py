"""Piecewise-linear CDFs with atoms, and the Wasserstein-1 distance between two of them.

Every one-dimensional distribution a profile can describe is a :class:`PiecewiseCDF`: sorted
distinct ``points`` with the share of values below each (``left``, the left limit) and at or
below it (``right``), the CDF being linear from ``(points[j], right[j])`` to
``(points[j + 1], left[j + 1])``. An exact sample is the special case with no rise between
points; a reference *outline* (:func:`outline`) keeps the exact CDF at a few hundred chosen
order statistics and is linear between them. :func:`wasserstein` integrates ``|F - G|``
exactly for any two such CDFs (Vallender 1974: W1 is the L1 distance between the CDFs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from watchkeeper.errors import InputError
from watchkeeper.profiles._binning import FloatArray


@dataclass(frozen=True, slots=True)
class PiecewiseCDF:
    """A CDF given by its left and right limits at sorted distinct ``points`` (see module)."""

    points: FloatArray
    left: FloatArray
    right: FloatArray

    def to_bytes(self) -> bytes:
        """Points, left and right shares as three little-endian float64 arrays."""
        return np.concatenate((self.points, self.left, self.right)).astype("<f8").tobytes()

    @classmethod
    def from_bytes(cls, data: object) -> PiecewiseCDF:
        """Read :meth:`to_bytes`; InputError unless the result is a CDF."""
        if not isinstance(data, bytes) or len(data) % 24 or not data:
            raise InputError("numeric profile outline must be three equal float64 arrays")
        points, left, right = np.frombuffer(data, dtype="<f8").reshape(3, -1).astype(np.float64)
        ordered = bool(np.all(np.diff(points) > 0.0)) and bool(np.all(np.isfinite(points)))
        shares = np.concatenate((left, right))
        monotone = bool(np.all(left <= right)) and bool(np.all(right[:-1] <= left[1:]))
        if not (ordered and monotone and shares.min() >= 0.0 and shares.max() <= 1.0):
            raise InputError("numeric profile outline is not a CDF")
        return cls(points, left, right)

    def limits(self, grid: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Left and right limits of the CDF at every point of the sorted ``grid``."""
        points = self.points
        last = points.size - 1
        index = np.searchsorted(points, grid, side="right") - 1
        below = np.clip(index, 0, last)
        above = np.clip(index + 1, 0, last)
        start, end = points[below], points[above]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(end > start, (grid - start) / (end - start), 0.0)
        inside = self.right[below] + (self.left[above] - self.right[below]) * np.clip(share, 0, 1)
        right = np.where(index < 0, 0.0, np.where(index >= last, 1.0, inside))
        left = right.copy()
        on_point = (index >= 0) & (points[below] == grid)
        left[on_point] = self.left[below[on_point]]
        right[on_point] = self.right[below[on_point]]
        return left, right


def sample_cdf(values: FloatArray, weights: FloatArray | None = None) -> PiecewiseCDF:
    """The empirical CDF of finite ``values`` (optionally weighted): a step function."""
    points, inverse = np.unique(values, return_inverse=True)
    mass = (
        np.bincount(inverse.ravel(), minlength=points.size).astype(np.float64)
        if weights is None
        else np.bincount(inverse.ravel(), weights=weights, minlength=points.size)
    )
    right = np.cumsum(mass) / mass.sum()
    left = np.concatenate(([0.0], right[:-1]))
    right[-1] = 1.0
    return PiecewiseCDF(points, left, right)


def outline(values: FloatArray, *, points: int, anchors: FloatArray) -> PiecewiseCDF:
    """The exact CDF of finite ``values`` at chosen order statistics, linear between them.

    Replacing the values between two kept order statistics ``a < b`` by any spread over
    ``[a, b]`` moves them by at most ``b - a``, so the outline is within
    :func:`outline_error_bound` of the sample in Wasserstein-1. The kept order statistics
    are chosen to keep that bound small: equally spaced in a coordinate that mixes rank with
    the cumulative sum of ``sqrt(gap / n)`` over the sorted values, the spacing that equalises
    ``share × width`` per interval — so heavy tails, outliers and gaps get order statistics
    of their own; each comes with its predecessor, so that no interval spans a gap: at most
    ``2 × points`` order statistics. Every value of ``anchors`` (the fine bin edges, observed
    values) is kept too, so the outline is exact at the bin edges. All values are kept when
    there are at most ``points``.
    """
    ordered = np.sort(values)
    size = ordered.size
    if size <= points:
        kept = ordered
    else:
        with np.errstate(over="ignore"):
            gaps = np.sqrt(np.diff(ordered) / size)
        spread = np.concatenate(([0.0], np.cumsum(gaps)))
        coordinate = np.arange(size, dtype=np.float64) / (size - 1)
        # A span beyond the float range (values near ±1.8e308) leaves the rank alone.
        if 0.0 < spread[-1] < np.inf:
            coordinate = 0.5 * coordinate + 0.5 * spread / spread[-1]
        positions = np.searchsorted(coordinate, np.linspace(0.0, 1.0, points))
        # With each chosen order statistic its predecessor, so both sides of a gap are kept.
        positions = np.concatenate((positions, positions - 1))
        kept = ordered[np.clip(positions, 0, size - 1)]
    inside = anchors[(anchors >= ordered[0]) & (anchors <= ordered[-1])]
    knots = np.unique(np.concatenate((kept, inside, ordered[[0, -1]])))
    left = np.searchsorted(ordered, knots, side="left") / size
    right = np.searchsorted(ordered, knots, side="right") / size
    return PiecewiseCDF(knots, left, right)


def outline_error_bound(cdf: PiecewiseCDF) -> float:
    """Upper bound on the Wasserstein-1 distance between an outline and its sample."""
    between = cdf.left[1:] - cdf.right[:-1]
    return float((between * np.diff(cdf.points)).sum())


def mixture(first: PiecewiseCDF, second: PiecewiseCDF, weight: float) -> PiecewiseCDF:
    """The CDF ``(1 - weight) F + weight G`` on the union of both sets of points (exact)."""
    points = np.union1d(first.points, second.points)
    first_left, first_right = first.limits(points)
    second_left, second_right = second.limits(points)
    return PiecewiseCDF(
        points,
        (1.0 - weight) * first_left + weight * second_left,
        (1.0 - weight) * first_right + weight * second_right,
    )


def wasserstein(first: PiecewiseCDF, second: PiecewiseCDF) -> float:
    """``∫|F - G| dx`` for two piecewise-linear CDFs, exact up to float rounding.

    Between consecutive points of the union grid both CDFs are linear, so the gap is linear
    and integrates to a trapezoid, or to two triangles of area ``(a² + b²) / 2(a + b)`` per
    unit width where it changes sign.
    """
    grid = np.union1d(first.points, second.points)
    if grid.size < 2:
        return 0.0
    first_left, first_right = first.limits(grid)
    second_left, second_right = second.limits(grid)
    start_gap = (first_right - second_right)[:-1]
    end_gap = (first_left - second_left)[1:]
    start, end = np.abs(start_gap), np.abs(end_gap)
    total = start + end
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = np.where(total > 0.0, (start**2 + end**2) / (2.0 * total), 0.0)
    area = np.where(start_gap * end_gap >= 0.0, total / 2.0, crossing)
    return float((area * np.diff(grid)).sum())


def _brackets(cdf: PiecewiseCDF, grid: FloatArray) -> tuple[FloatArray, ...]:
    """Lowest and highest values the CDF's left and right limits can take at ``grid``.

    At its own points a CDF is known exactly; between two of them it is only known to lie
    between the right limit at the one below and the left limit at the one above (a
    linear piece is one guess among all monotone ones).
    """
    left, right = cdf.limits(grid)
    index = np.searchsorted(cdf.points, grid, side="right") - 1
    last = cdf.points.size - 1
    below = np.clip(index, 0, last)
    on_point = (index >= 0) & (cdf.points[below] == grid)
    inside = ~on_point & (index >= 0) & (index < last)
    low = np.where(inside, cdf.right[below], right)
    high = np.where(inside, cdf.left[np.clip(index + 1, 0, last)], right)
    return np.where(on_point, left, low), np.where(on_point, left, high), low, high


def ks_lower_bound(first: PiecewiseCDF, second: PiecewiseCDF) -> float:
    """The largest CDF gap certain from the two CDFs: never above the exact KS statistic.

    Exact when both CDFs are exact samples (:func:`sample_cdf`); with an outline the gap
    counts only what remains whichever way the outline's values lie between its points.
    """
    grid = np.union1d(first.points, second.points)
    first_low_left, first_high_left, first_low, first_high = _brackets(first, grid)
    second_low_left, second_high_left, second_low, second_high = _brackets(second, grid)
    gaps = np.concatenate(
        (
            first_low_left - second_high_left,
            second_low_left - first_high_left,
            first_low - second_high,
            second_low - first_high,
        )
    )
    return float(max(gaps.max(), 0.0))
