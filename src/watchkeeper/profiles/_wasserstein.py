"""Wasserstein-1 between a reference profile and a window profile (docs/profiles.md).

Each side becomes a :class:`~watchkeeper.profiles._cdf.PiecewiseCDF`, and
:func:`~watchkeeper.profiles._cdf.wasserstein` integrates ``|F_r - F_c|`` exactly:

* reference: its exact values when it kept them, else its outline (exact at a few hundred
  order statistics, every fine edge among them, and within ``outline_error_bound`` of the
  sample);
* window: its exact values while it has at most ``exact_values`` of them — the distance is
  then that of the batch core up to the reference's outline error; past that, its exact bin
  counts with each bin filled in the reference's shape inside that bin, and the values below
  or above the reference range placed where the KLL sketch retained them (the window's exact
  minimum and maximum included), scaled to the exact tail counts.

Profiles stored before outlines existed have neither exact values nor an outline; for them
the CDFs are linear inside each fine bin and shaped by KLL ranks in bins stretched by an
outlier or a gap (:func:`binned_wasserstein`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from watchkeeper.profiles._binning import FloatArray
from watchkeeper.profiles._cdf import PiecewiseCDF, sample_cdf, wasserstein
from watchkeeper.profiles.numeric import NumericProfile

__all__ = ["exact_sides", "profile_wasserstein"]

_GRID_QUANTILES = np.linspace(0.0, 1.0, 257)
_WIDE_BIN = 4.0


def profile_wasserstein(
    reference: NumericProfile,
    current: NumericProfile,
    ref_counts: FloatArray,
    cur_counts: FloatArray,
    boundaries: FloatArray,
) -> float:
    """``∫|F_r - F_c| dx`` of two profiles sharing fine edges (see the module docstring)."""
    reference_cdf = _exact_cdf(reference)
    if reference_cdf is None:
        reference_cdf = reference.outline
    if reference_cdf is None:
        return binned_wasserstein(boundaries, reference, current, ref_counts, cur_counts)
    current_cdf = _exact_cdf(current)
    if current_cdf is None:
        current_cdf = _shaped_cdf(reference_cdf, current, cur_counts)
    return wasserstein(reference_cdf, current_cdf)


def exact_sides(
    reference: NumericProfile, current: NumericProfile
) -> tuple[PiecewiseCDF, PiecewiseCDF] | None:
    """The reference's CDF (exact values or outline) and the window's exact CDF, when the
    window kept its values; else ``None``."""
    current_cdf = _exact_cdf(current)
    if current_cdf is None:
        return None
    reference_cdf = _exact_cdf(reference)
    if reference_cdf is None:
        reference_cdf = reference.outline
    return None if reference_cdf is None else (reference_cdf, current_cdf)


def _exact_cdf(profile: NumericProfile) -> PiecewiseCDF | None:
    exact = profile.exact
    return None if exact is None or exact.size == 0 else sample_cdf(exact)


def _shaped_cdf(
    reference: PiecewiseCDF, current: NumericProfile, counts: FloatArray
) -> PiecewiseCDF:
    """The window's CDF from its exact bin counts, in the reference's shape inside each bin.

    Bin ``b`` (``1 <= b < len(edges)``) is ``[e_{b-1}, e_b)``; the window's share of it is
    spread as the reference spreads its own share (evenly where the reference has none).
    Bins ``0`` and ``len(edges)`` hold the values below and above the edges, placed by
    :func:`_tail`.
    """
    edges = current.edges
    if edges is None:
        raise AssertionError("a window with bin counts has edges")
    shares = counts / counts.sum()
    before = np.concatenate(([0.0], np.cumsum(shares)))
    edge_left, _ = reference.limits(edges)
    # Reference share below the start of every bin (bin 0, the lower tail, starts at 0).
    bin_start = np.concatenate(([0.0], edge_left))
    bin_mass = np.diff(np.concatenate((bin_start, [1.0])))
    low_points, low_left, low_right = _tail(current, edges, counts, upper=False)
    high_points, high_left, high_right = _tail(current, edges, counts, upper=True)
    points = np.union1d(reference.points, edges)
    inside = (points >= edges[0]) & (points <= edges[-1])
    if high_points.size and high_points[0] == edges[-1]:
        inside &= points < edges[-1]
    points = points[inside]
    index = np.searchsorted(edges, points, side="right")
    sketched = _sketched_bins(current, edges, shares)
    keep = ~np.isin(index, list(sketched))
    points, index = points[keep], index[keep]
    ref_left, ref_right = reference.limits(points)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(bin_mass[index] > 0.0, shares[index] / bin_mass[index], 0.0)
    pieces = [
        (low_points, low_left, low_right),
        (
            points,
            before[index] + (ref_left - bin_start[index]) * scale,
            before[index] + (ref_right - bin_start[index]) * scale,
        ),
        (high_points, high_left + before[-2], high_right + before[-2]),
    ]
    for bin_index, (bin_points, rise) in sketched.items():
        level = before[bin_index] + rise * shares[bin_index]
        pieces.append((bin_points, level, level))
    all_points = np.concatenate([piece[0] for piece in pieces])
    order = np.argsort(all_points, kind="stable")
    return PiecewiseCDF(
        all_points[order],
        np.concatenate([piece[1] for piece in pieces])[order],
        np.concatenate([piece[2] for piece in pieces])[order],
    )


def _sketched_bins(
    current: NumericProfile, edges: FloatArray, shares: FloatArray
) -> dict[int, tuple[FloatArray, FloatArray]]:
    """Inner bins whose window share the KLL sketch resolves: points and CDF rise in each.

    The sketch's in-bin CDF is off by at most its rank error over the bin's share, so where
    a bin holds at least four rank errors' worth of the window (about 5 %, five times a fine
    bin's share of the reference) the retained values say better than the reference's shape
    where the window's mass lies — this is where drift piles mass into a bin. The CDF rises
    linearly from the bin's lower edge through the retained values (each retained value
    stands for values around it), reaching the bin's exact share at the last one.
    """
    resolved = np.flatnonzero(shares[1:-1] >= 4.0 * current.rank_error()) + 1
    if resolved.size == 0:
        return {}
    values, weights = current.sketch_items()
    index = np.searchsorted(edges, values, side="right")
    sketched: dict[int, tuple[FloatArray, FloatArray]] = {}
    for bin_index in resolved.tolist():
        inside = index == bin_index
        if np.count_nonzero(inside) < 2:
            continue
        cdf = sample_cdf(values[inside], weights[inside])
        start = edges[bin_index - 1]
        if cdf.points[0] > start:
            sketched[bin_index] = (
                np.concatenate(([start], cdf.points)),
                np.concatenate(([0.0], cdf.right)),
            )
        else:
            sketched[bin_index] = (cdf.points, np.concatenate(([0.0], cdf.right[1:])))
    return sketched


def _tail(
    current: NumericProfile, edges: FloatArray, counts: FloatArray, *, upper: bool
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Points, left and right shares of the window's values beyond one end of the edges.

    Exact while the window kept its values beyond the edges (``outside``). Past that, the KLL
    sketch's retained values beyond the edge, plus the exact extreme, are the points, their
    weights scaled so that they add up to the exact tail count. Shares are relative to the
    start of the tail.
    """
    total = counts.sum()
    tail_count = counts[-1] if upper else counts[0]
    if tail_count == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    share = tail_count / total
    outside = current.outside
    if outside is not None:
        exact = outside[outside >= edges[-1]] if upper else outside[outside < edges[0]]
        cdf = sample_cdf(exact)
        return cdf.points, cdf.left * share, cdf.right * share
    extreme = current.maximum if upper else current.minimum
    values, weights = current.sketch_items()
    beyond = values >= edges[-1] if upper else values < edges[0]
    values, weights = values[beyond], weights[beyond]
    if tail_count == 1 or values.size == 0:
        # One value is the extreme; without retained values the tail rises evenly from the
        # edge to the extreme (the CDF is linear up to the next point).
        level = np.array([share if upper else 0.0])
        if tail_count == 1:
            return np.array([extreme]), np.array([0.0]), np.array([share])
        return np.array([extreme]), level, level
    others = weights[values != extreme]
    values = np.append(values[values != extreme], extreme)
    weights = np.append(others * (tail_count - 1) / others.sum() if others.size else others, 1.0)
    cdf = sample_cdf(values, weights)
    return cdf.points, cdf.left * share, cdf.right * share


def _anchored_cdf(
    profile: NumericProfile,
    counts: FloatArray,
    boundaries: FloatArray,
    wide: npt.NDArray[np.bool_],
    grid: FloatArray,
) -> FloatArray:
    """The CDF at ``grid``: exact at bin boundaries, linear inside ordinary bins.

    A bin's exact count fixes how much the CDF rises across it. Inside a bin of a quantile
    grid the rise is close to even, except in a ``wide`` bin — one stretched by an outlier, a
    gap in the data or values beyond the reference range — where the KLL ranks say where the
    rise happens (an even spread would move mass far from any data). Ordinary bins stay linear
    because the sketch's rank error is as large as such a bin's share.
    """
    cumulative = np.concatenate(([0.0], np.cumsum(counts))) / counts.sum()
    last = boundaries.size - 2
    index = np.clip(np.searchsorted(boundaries, grid, side="right") - 1, 0, last)
    low, high = boundaries[index], boundaries[index + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(high > low, (grid - low) / (high - low), 1.0)
    resolvable = counts / counts.sum() >= 4.0 * profile.rank_error()
    shaped = (wide & resolvable)[index]
    if shaped.any():
        at = grid[shaped]
        rank_low, rank_high, rank = (
            profile.ranks(points) for points in (low[shaped], high[shaped], at)
        )
        span = rank_high - rank_low
        with np.errstate(invalid="ignore", divide="ignore"):
            share[shaped] = np.where(span > 0.0, (rank - rank_low) / span, share[shaped])
    rise = cumulative[index + 1] - cumulative[index]
    cdf: FloatArray = cumulative[index] + rise * np.clip(share, 0.0, 1.0)
    return cdf


def binned_wasserstein(
    boundaries: FloatArray,
    reference: NumericProfile,
    current: NumericProfile,
    ref_counts: FloatArray,
    cur_counts: FloatArray,
) -> float:
    """``∫|F_r - F_c|`` on bin boundaries refined by both sides' KLL quantiles.

    For profiles without exact values or an outline (stored by earlier versions): the two
    CDFs are evaluated at every boundary and at 257 quantiles of each side, so the
    integration grid is fine where either sample has mass; see :func:`_anchored_cdf`.
    """
    inner = np.concatenate(
        (reference.quantiles(_GRID_QUANTILES), current.quantiles(_GRID_QUANTILES))
    )
    grid = np.unique(np.concatenate((boundaries, np.clip(inner, boundaries[0], boundaries[-1]))))
    widths = np.diff(boundaries)
    typical = np.median(widths[widths > 0.0]) if np.any(widths > 0.0) else 0.0
    wide = widths > _WIDE_BIN * typical
    cdf = _anchored_cdf(reference, ref_counts, boundaries, wide, grid)
    continuous = PiecewiseCDF(grid, cdf, cdf)
    cdf = _anchored_cdf(current, cur_counts, boundaries, wide, grid)
    return wasserstein(continuous, PiecewiseCDF(grid, cdf, cdf))
