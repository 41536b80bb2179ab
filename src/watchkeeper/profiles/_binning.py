"""Fast, exact assignment of values to fine bins with fixed, sorted edges.

``np.searchsorted`` costs a branchy binary search per value (about 50 ns on this class of
machine). :class:`FineBins` first maps each value to a cell of a uniform grid with two
arithmetic passes and one table look-up, then settles the few edges that share a cell with one
comparison each. The cell map ``clip((x - lo) * scale)`` is monotone in ``x``, and the edges are
mapped with the very same floating-point operations, so an edge in an earlier cell is below the
value and an edge in a later cell is above it: only edges in the value's own cell need a
comparison, and the result equals ``np.searchsorted(edges, x, side="right")`` bit for bit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from watchkeeper.errors import InputError

FloatArray = npt.NDArray[np.float64]
CountArray = npt.NDArray[np.int64]

DEFAULT_FINE_BINS = 100

_TAIL_LEVELS = np.array([1e-4, 1e-3, 1.0 - 1e-3, 1.0 - 1e-4])


def fine_edges(values: npt.ArrayLike, *, bins: int = DEFAULT_FINE_BINS) -> FloatArray:
    """Fine bin edges: the distinct exact ``i / bins`` quantiles of the finite ``values``.

    The 0.01 %, 0.1 %, 99.9 % and 99.99 % quantiles are edges too, so that a few outliers
    sit in tiny tail bins of their own instead of stretching a whole 1 % bin across the gap.
    Quantiles follow the inverted empirical CDF (Hyndman & Fan 1996, definition 1), so every
    edge is an observed value and discrete data get one bin per distinct value. A last edge
    just above the maximum closes the top bin, so bins are ``[e_i, e_{i+1})`` and a value is
    out of the reference range exactly when it falls in a tail bin.

    >>> fine_edges([3.0, 1.0, 2.0, 2.0], bins=4).tolist()
    [1.0, 2.0, 3.0, 3.0000000000000004]
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        raise InputError("fine bin edges need at least one finite value")
    if bins < 1:
        raise InputError(f"fine bins must be >= 1, got {bins}")
    size = finite.size
    levels = np.arange(bins + 1, dtype=np.int64)
    # ceil(i * n / bins) - 1 in integers: the inverted-CDF position of level i / bins.
    grid = np.maximum((levels * size + bins - 1) // bins - 1, 0)
    tails = np.maximum(np.ceil(_TAIL_LEVELS * size).astype(np.int64) - 1, 0)
    positions = np.concatenate((grid, tails))
    partitioned = np.partition(finite, np.unique(positions))
    distinct = np.unique(partitioned[positions])
    edges: FloatArray = np.append(distinct, np.nextafter(distinct[-1], np.inf))
    return edges


def validated_edges(edges: npt.ArrayLike) -> FloatArray:
    """``edges`` as a read-only float64 array; InputError unless usable as fine bin edges."""
    array = np.array(edges, dtype=np.float64).ravel()
    if array.size == 0:
        raise InputError("fine bin edges must not be empty")
    if np.isnan(array).any() or np.isneginf(array).any() or np.isposinf(array[:-1]).any():
        raise InputError("fine bin edges must be finite (only the last may be +inf)")
    if array.size > 1 and not bool(np.all(array[1:] > array[:-1])):
        raise InputError("fine bin edges must be strictly increasing")
    array.setflags(write=False)
    return array


# 2**14 cells (128 KiB of start indices) stay in L2 cache; finer grids serve uneven edges.
_GRID_CELLS = (1 << 14, 1 << 16)
# Beyond this many edges in one cell the comparisons cost more than a binary search.
_MAX_EDGES_PER_CELL = 3


class FineBins:
    """Counts of finite values in ``(-inf, e0), [e0, e1), …, [e_last, inf)``.

    ``edges`` must be finite, strictly increasing and non-empty. Bin ``0`` is the lower tail
    and bin ``len(edges)`` the upper tail.
    """

    __slots__ = ("_cell_start", "_cells", "_comparisons", "_low", "_padded", "_scale", "edges")

    def __init__(self, edges: FloatArray) -> None:
        self.edges = edges
        self._padded: FloatArray = np.append(edges, np.inf)
        self._low = float(edges[0])
        self._cells = 0
        self._scale = 0.0
        self._comparisons = 0
        self._cell_start: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        span = float(edges[-1]) - self._low
        for cells in _GRID_CELLS:
            scale = cells / span if 0.0 < span < np.inf else 0.0
            if not 0.0 < scale < np.inf:
                return
            self._cells, self._scale = cells, scale
            edge_cells = self._cell_of(edges)
            comparisons = int(np.bincount(edge_cells).max())
            if comparisons <= _MAX_EDGES_PER_CELL:
                self._comparisons = comparisons
                # Number of edges in cells before each cell: where a value's search starts.
                self._cell_start = np.searchsorted(edge_cells, np.arange(cells), side="left")
                return
        self._cells = 0

    @property
    def size(self) -> int:
        """Number of bins, tails included."""
        return int(self.edges.size) + 1

    def _cell_of(self, values: FloatArray) -> npt.NDArray[np.intp]:
        # Overflow to ±inf keeps the map monotone; clipping then puts it in the end cells.
        with np.errstate(over="ignore"):
            position = values - self._low
            position *= self._scale
        # Clipping in floating point first keeps the integer cast defined for huge values.
        np.clip(position, 0.0, float(self._cells - 1), out=position)
        return position.astype(np.intp)

    def index(self, values: FloatArray) -> npt.NDArray[np.intp]:
        """Bin index of every finite value (same as ``searchsorted(edges, v, "right")``)."""
        if self._cells == 0:
            return np.searchsorted(self.edges, values, side="right")
        bin_index = self._cell_start[self._cell_of(values)]
        for _ in range(self._comparisons):
            bin_index += values >= self._padded[bin_index]
        return bin_index

    def counts(self, values: FloatArray) -> CountArray:
        """Bin counts of finite ``values``."""
        counts: CountArray = np.bincount(self.index(values), minlength=self.size).astype(np.int64)
        return counts


class FineBinsBlock:
    """Bin counts of several columns in one pass, each column with its own :class:`FineBins`.

    The columns' grids and edges are laid end to end, so a batch of ``c`` columns costs a
    handful of NumPy calls instead of ``c`` times as many; the arithmetic per value is that of
    :meth:`FineBins.index`, so the counts are the same. Every :class:`FineBins` must use a grid
    (:meth:`usable`).
    """

    __slots__ = (
        "_bin_offsets",
        "_cell_offsets",
        "_cell_start",
        "_comparisons",
        "_highs",
        "_lows",
        "_pad_offsets",
        "_padded",
        "_scales",
        "_splits",
        "_total",
    )

    def __init__(self, bins: list[FineBins]) -> None:
        if not self.usable(bins):
            raise ValueError("every column needs grid bins (FineBinsBlock.usable)")

        def offsets(sizes: list[int]) -> npt.NDArray[np.intp]:
            return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)[:, None]

        self._lows = np.array([column._low for column in bins])[:, None]
        self._scales = np.array([column._scale for column in bins])[:, None]
        self._highs = np.array([float(column._cells - 1) for column in bins])[:, None]
        self._cell_offsets = offsets([column._cells for column in bins])
        self._cell_start = np.concatenate([column._cell_start for column in bins])
        self._padded = np.concatenate([column._padded for column in bins])
        self._pad_offsets = offsets([column._padded.size for column in bins])
        # Comparisons past a column's own count are no-ops: the edge after its bin is above it.
        self._comparisons = max(column._comparisons for column in bins)
        sizes = [column.size for column in bins]
        self._bin_offsets = offsets(sizes)
        self._splits = np.cumsum(sizes)[:-1]
        self._total = int(sum(sizes))

    @staticmethod
    def usable(bins: list[FineBins]) -> bool:
        """Whether every column's bins use a grid (uneven edges fall back to a search)."""
        return bool(bins) and all(column._cells > 0 for column in bins)

    def counts(self, values: FloatArray) -> list[CountArray]:
        """Bin counts of each row of ``values`` (one row per column, finite values only)."""
        with np.errstate(over="ignore"):
            position = values - self._lows
            position *= self._scales
        np.clip(position, 0.0, self._highs, out=position)
        cell = position.astype(np.intp)
        cell += self._cell_offsets
        bin_index = self._cell_start[cell]
        if self._comparisons:
            pad_index = bin_index + self._pad_offsets
            for _ in range(self._comparisons):
                above = values >= self._padded[pad_index]
                bin_index += above
                pad_index += above
        bin_index += self._bin_offsets
        counts = np.bincount(bin_index.ravel(), minlength=self._total).astype(np.int64)
        return np.split(counts, self._splits)
