"""Mergeable profile of a numeric column: counts, exact moments, KLL quantiles, fine bins,
the exact values of a small window and the outline of a reference's distribution."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import datasketches
import numpy as np
import numpy.typing as npt

from watchkeeper.errors import InputError
from watchkeeper.profiles._binning import (
    DEFAULT_FINE_BINS,
    CountArray,
    FineBins,
    FloatArray,
    fine_edges,
    validated_edges,
)
from watchkeeper.profiles._cdf import PiecewiseCDF, mixture, outline
from watchkeeper.schema import ColumnKind

__all__ = [
    "DEFAULT_EXACT_VALUES",
    "DEFAULT_FINE_BINS",
    "DEFAULT_KLL_K",
    "DEFAULT_OUTLINE_POINTS",
    "SUMMARY_QUANTILES",
    "NumericProfile",
    "fine_edges",
]

DEFAULT_KLL_K = 200
# A window keeps its raw finite values up to this many (16 KiB), so that the Wasserstein
# distance of a small window is exact; beyond it the bins and the sketch take over.
DEFAULT_EXACT_VALUES = 2048
# Order statistics (times two) a reference keeps for its outline (docs/profiles.md).
DEFAULT_OUTLINE_POINTS = 256
# A window keeps its values beyond the reference range exactly up to this many (2 KiB): in
# heavy tails the few largest values carry much of the Wasserstein distance.
OUTSIDE_VALUES = 256
# Quantiles reported by ``to_dict`` (named p01 … p99).
SUMMARY_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


_NO_VALUES: FloatArray = np.zeros(0, dtype=np.float64)
_NO_VALUES.setflags(write=False)


def _new_sketch(k: int) -> Any:
    return datasketches.kll_doubles_sketch(k)


def combine_moments(
    count_a: int, mean_a: float, m2_a: float, count_b: int, mean_b: float, m2_b: float
) -> tuple[float, float]:
    """Mean and sum of squared deviations of two combined samples.

    Chan, Golub & LeVeque (1979), "Updating formulae and a pairwise algorithm for computing
    sample variances". The operands are put in a canonical order first so that the result
    does not depend on the order of the arguments, bit for bit.
    """
    if count_b == 0:
        return mean_a, m2_a
    if count_a == 0:
        return mean_b, m2_b
    if (count_b, mean_b, m2_b) < (count_a, mean_a, m2_a):
        count_a, mean_a, m2_a, count_b, mean_b, m2_b = count_b, mean_b, m2_b, count_a, mean_a, m2_a
    total = count_a + count_b
    delta = mean_b - mean_a
    mean = mean_a + delta * (count_b / total)
    m2 = m2_a + m2_b + delta * delta * (count_a * count_b / total)
    return mean, m2


class NumericProfile:
    """Mergeable summary of one numeric column.

    Holds the number of values seen (``count``) split into ``missing``, ``non_numeric``,
    ``positive_infinite``, ``negative_infinite`` and finite values; over the finite values the
    mean and the sum of squared deviations ``m2`` (merged exactly with Chan et al.'s formula),
    minimum, maximum, a KLL quantile sketch (Karnin, Lang & Liberty 2016) with parameter ``k``
    and counts on fixed fine ``edges`` (see :func:`fine_edges`). A profile created without
    edges takes them from the first finite values it sees; a window profile inherits them from
    its reference so that the two can be compared bin by bin.

    Two more pieces make the Wasserstein distance exact where bins cannot be: the finite
    values themselves while there are at most ``exact_values`` of them (:attr:`exact`), and,
    for a profile that computed its own edges from one batch (a reference), an *outline* of
    that batch — its exact CDF at about ``outline_points`` order statistics chosen so that
    tails, outliers and gaps keep their own (:attr:`outline`; see
    :func:`watchkeeper.profiles._cdf.outline`).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> reference = NumericProfile.of(rng.normal(size=10_000))
    >>> window = NumericProfile.of(rng.normal(size=5_000), edges=reference.edges)
    >>> int(window.bin_counts.sum()), len(reference.edges)
    (5000, 105)
    """

    kind: ClassVar[ColumnKind] = ColumnKind.NUMERIC

    __slots__ = (
        "_bin_counts",
        "_bins",
        "_exact",
        "_outline",
        "_outside",
        "_sketch",
        "count",
        "exact_values",
        "fine_bins",
        "k",
        "m2",
        "maximum",
        "mean",
        "minimum",
        "missing",
        "negative_infinite",
        "non_numeric",
        "outline_points",
        "positive_infinite",
    )

    def __init__(
        self,
        *,
        edges: npt.ArrayLike | None = None,
        k: int = DEFAULT_KLL_K,
        fine_bins: int = DEFAULT_FINE_BINS,
        exact_values: int = DEFAULT_EXACT_VALUES,
        outline_points: int = DEFAULT_OUTLINE_POINTS,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or not 8 <= k <= 65_535:
            raise InputError(f"KLL parameter k must be an integer in [8, 65535], got {k!r}")
        if isinstance(fine_bins, bool) or not isinstance(fine_bins, int) or fine_bins < 1:
            raise InputError(f"fine_bins must be a positive integer, got {fine_bins!r}")
        for name, value in (("exact_values", exact_values), ("outline_points", outline_points)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65_536:
                raise InputError(f"{name} must be an integer in [0, 65536], got {value!r}")
        self.k = k
        self.fine_bins = fine_bins
        self.exact_values = exact_values
        self.outline_points = outline_points
        self.count = 0
        self.missing = 0
        self.non_numeric = 0
        self.positive_infinite = 0
        self.negative_infinite = 0
        self.mean = math.nan
        self.m2 = 0.0
        self.minimum = math.nan
        self.maximum = math.nan
        self._sketch: Any = _new_sketch(k)
        self._bins: FineBins | None = None
        self._bin_counts: CountArray | None = None
        self._exact: FloatArray | None = _NO_VALUES
        self._outside: FloatArray | None = _NO_VALUES
        self._outline: PiecewiseCDF | None = None
        if edges is not None:
            self._set_edges(validated_edges(edges))

    @classmethod
    def of(
        cls,
        values: npt.ArrayLike,
        *,
        edges: npt.ArrayLike | None = None,
        non_numeric: int = 0,
        k: int = DEFAULT_KLL_K,
        fine_bins: int = DEFAULT_FINE_BINS,
        exact_values: int = DEFAULT_EXACT_VALUES,
        outline_points: int = DEFAULT_OUTLINE_POINTS,
    ) -> NumericProfile:
        """Profile of ``values`` (float64, NaN where missing); see :meth:`update`."""
        profile = cls(
            edges=edges,
            k=k,
            fine_bins=fine_bins,
            exact_values=exact_values,
            outline_points=outline_points,
        )
        profile.update(values, non_numeric=non_numeric)
        return profile

    def _set_edges(self, edges: FloatArray) -> None:
        self._bins = FineBins(edges)
        self._bin_counts = np.zeros(self._bins.size, dtype=np.int64)

    def empty_like(self) -> NumericProfile:
        """An empty profile with the same edges and sizes (for windows and batches)."""
        twin = self._twin()
        if self._bins is not None:
            twin._bins = self._bins
            twin._bin_counts = np.zeros(self._bins.size, dtype=np.int64)
        return twin

    def _twin(self) -> NumericProfile:
        return NumericProfile(
            k=self.k,
            fine_bins=self.fine_bins,
            exact_values=self.exact_values,
            outline_points=self.outline_points,
        )

    @property
    def exact(self) -> FloatArray | None:
        """The finite values in arrival order (read-only) while there are at most
        ``exact_values`` of them and none came from a profile without them; else ``None``."""
        return self._exact

    @property
    def outside(self) -> FloatArray | None:
        """The finite values beyond the fine edges (in the two tail bins), read-only, while
        there are at most ``OUTSIDE_VALUES`` of them; else ``None``."""
        return self._outside

    @property
    def outline(self) -> PiecewiseCDF | None:
        """The reference outline: the exact CDF of the values at chosen order statistics,
        linear between them; ``None`` for window profiles and after a later fold."""
        return self._outline

    @property
    def edges(self) -> FloatArray | None:
        """Fine bin edges (read-only), ``None`` until the first finite value without edges."""
        return None if self._bins is None else self._bins.edges

    @property
    def bin_counts(self) -> CountArray:
        """Counts of finite values per bin: lower tail, fine bins, upper tail (a copy)."""
        if self._bin_counts is None:
            return np.zeros(0, dtype=np.int64)
        return self._bin_counts.copy()

    @property
    def finite_count(self) -> int:
        """Number of finite values (those in moments, sketch and bins)."""
        return (
            self.count
            - self.missing
            - self.non_numeric
            - self.positive_infinite
            - self.negative_infinite
        )

    @property
    def infinite(self) -> int:
        """Number of ±inf values."""
        return self.positive_infinite + self.negative_infinite

    def variance(self, *, ddof: int = 1) -> float:
        """Variance of the finite values with ``ddof`` delta degrees of freedom (NaN if too few)."""
        denominator = self.finite_count - ddof
        return self.m2 / denominator if denominator > 0 else math.nan

    def std(self, *, ddof: int = 1) -> float:
        """Standard deviation of the finite values (NaN if too few)."""
        return math.sqrt(self.variance(ddof=ddof))

    def quantiles(self, levels: npt.ArrayLike) -> FloatArray:
        """KLL estimates of the quantiles at ``levels`` in [0, 1] (NaN when there is no value).

        The rank of each estimate is within :meth:`rank_error` of the requested level with
        99 % confidence (Karnin, Lang & Liberty 2016; Apache DataSketches).
        """
        requested = np.asarray(levels, dtype=np.float64).ravel()
        if ((requested < 0.0) | (requested > 1.0) | np.isnan(requested)).any():
            raise InputError("quantile levels must be in [0, 1]")
        if self._sketch.is_empty():
            return np.full(requested.size, math.nan)
        return np.asarray(self._sketch.get_quantiles(requested.tolist()), dtype=np.float64)

    def rank(self, value: float, *, inclusive: bool = False) -> float:
        """KLL estimate of the share of finite values below ``value`` (``<=`` if inclusive)."""
        if self._sketch.is_empty():
            return math.nan
        return float(self._sketch.get_rank(float(value), inclusive))

    def ranks(self, values: npt.ArrayLike) -> FloatArray:
        """KLL estimates of the share of finite values ``<=`` each of ``values`` (vectorised)."""
        points = np.asarray(values, dtype=np.float64)
        if self._sketch.is_empty():
            return np.full(points.shape, math.nan)
        split, inverse = np.unique(points, return_inverse=True)
        # get_cdf wants strictly increasing split points and returns one more entry (the total).
        cdf = np.asarray(self._sketch.get_cdf(split.tolist(), True), dtype=np.float64)[:-1]
        result: FloatArray = cdf[inverse.reshape(points.shape)]
        return result

    def sketch_items(self) -> tuple[FloatArray, FloatArray]:
        """The values the KLL sketch retains and their weights (each stands for that many)."""
        retained = [(value, weight) for value, weight in self._sketch]
        if not retained:
            return np.zeros(0), np.zeros(0)
        values, weights = np.array(retained, dtype=np.float64).T
        return values, weights

    def rank_error(self) -> float:
        """Normalised rank error of the KLL sketch (99 % confidence, single quantile)."""
        return float(self._sketch.normalized_rank_error(False))

    def update(self, values: npt.ArrayLike, *, non_numeric: int = 0) -> None:
        """Fold in a batch: float64 values with NaN where missing or not a number.

        ``non_numeric`` says how many of the NaN values were not numbers rather than missing
        (as counted by :func:`watchkeeper.frame.numeric_values`).
        """
        self._sketch_update(self._fold(values, non_numeric=non_numeric))

    def _fold(self, values: npt.ArrayLike, *, non_numeric: int) -> FloatArray:
        """Update everything but the sketch; return the finite values for the sketch."""
        # The sketch reads only contiguous memory; a column of a 2-D block is strided.
        array = np.ascontiguousarray(values, dtype=np.float64)
        if array.ndim != 1:
            raise InputError(f"numeric values must be a 1-D array, got shape {array.shape}")
        finite_mask = np.isfinite(array)
        finite_count = int(np.count_nonzero(finite_mask))
        nan_count = positive = negative = 0
        finite = array
        if finite_count < array.size:
            nan_count = int(np.count_nonzero(np.isnan(array)))
            positive = int(np.count_nonzero(array == np.inf))
            negative = array.size - finite_count - nan_count - positive
            finite = array[finite_mask]
        if not 0 <= non_numeric <= nan_count:
            raise InputError(
                f"non_numeric = {non_numeric} but the batch has {nan_count} NaN values; "
                "non-numeric values must be passed as NaN and counted in non_numeric"
            )
        self.count += int(array.size)
        self.missing += nan_count - non_numeric
        self.non_numeric += non_numeric
        self.positive_infinite += positive
        self.negative_infinite += negative
        if finite_count == 0:
            return finite
        batch_mean = float(np.mean(finite))
        deviations = finite - batch_mean
        batch_m2 = float(np.dot(deviations, deviations))
        previous = self.finite_count - finite_count
        self.mean, self.m2 = combine_moments(
            previous, self.mean, self.m2, finite_count, batch_mean, batch_m2
        )
        batch_min, batch_max = float(np.min(finite)), float(np.max(finite))
        self.minimum = batch_min if previous == 0 else min(self.minimum, batch_min)
        self.maximum = batch_max if previous == 0 else max(self.maximum, batch_max)
        self._keep_exact(finite)
        if self._bins is None:
            edges = validated_edges(fine_edges(finite, bins=self.fine_bins))
            self._set_edges(edges)
            if self.outline_points:
                # The last edge is just above the maximum, not an observed value.
                self._outline = outline(finite, points=self.outline_points, anchors=edges[:-1])
        else:
            # An outline describes the one batch it was built from.
            self._outline = None
        bins, bin_counts = self._bins, self._bin_counts
        if bins is None or bin_counts is None:
            raise AssertionError("fine bins are set before the first finite value is counted")
        batch_counts = bins.counts(finite)
        bin_counts += batch_counts
        self._keep_outside(finite, batch_counts)
        return finite

    def _keep_outside(self, finite: FloatArray, batch_counts: CountArray) -> None:
        """Keep a batch's values beyond the edges (found only when the tail bins grew)."""
        beyond = int(batch_counts[0] + batch_counts[-1])
        if beyond == 0 or self._outside is None or self._bins is None:
            return
        if self._outside.size + beyond > OUTSIDE_VALUES:
            self._outside = None
            return
        edges = self._bins.edges
        kept = np.concatenate((self._outside, finite[(finite < edges[0]) | (finite >= edges[-1])]))
        kept.setflags(write=False)
        self._outside = kept

    def _keep_exact(self, finite: FloatArray) -> None:
        """Append a batch's finite values to the exact values, or drop them past the limit."""
        if self._exact is None or finite.size == 0:
            return
        if self._exact.size + finite.size > self.exact_values:
            self._exact = None
            return
        kept = np.concatenate((self._exact, finite))
        kept.setflags(write=False)
        self._exact = kept

    def _sketch_update(self, finite: FloatArray) -> None:
        if finite.size:
            # The sketch binding accepts only writeable arrays; pandas hands out read-only views.
            self._sketch.update(finite if finite.flags.writeable else finite.copy())

    def copy(self) -> NumericProfile:
        """An independent copy."""
        twin = self._twin()
        for name in (
            "count",
            "missing",
            "non_numeric",
            "positive_infinite",
            "negative_infinite",
            "mean",
            "m2",
            "minimum",
            "maximum",
        ):
            setattr(twin, name, getattr(self, name))
        twin._sketch = datasketches.kll_doubles_sketch.deserialize(self._sketch.serialize())
        twin._bins = self._bins
        twin._bin_counts = None if self._bin_counts is None else self._bin_counts.copy()
        # Both are read-only and replaced, never changed in place, so sharing them is safe.
        twin._exact = self._exact
        twin._outside = self._outside
        twin._outline = self._outline
        return twin

    def merge(self, other: NumericProfile) -> NumericProfile:
        """A new profile of both inputs' data; neither input changes.

        Counts, moments, minimum, maximum and bin counts are those of the concatenated data;
        the quantile sketch keeps its rank-error guarantee. The exact values are kept while
        both sides have them and together they stay within ``exact_values``; the outline is
        the exact mixture of both outlines, kept while every side with finite values has one.
        Both profiles must use the same ``k`` and, if both have finite values, the same fine
        edges.
        """
        if not isinstance(other, NumericProfile):
            raise InputError(f"cannot merge a numeric profile with {type(other).__name__}")
        if other.k != self.k:
            raise InputError(
                f"cannot merge numeric profiles with KLL k = {self.k} and k = {other.k}; "
                "build both with the same k"
            )
        if not _same_edges(self.edges, other.edges):
            raise InputError(
                "cannot merge numeric profiles with different fine bin edges; build the "
                "window profiles with reference=<the same reference profile>"
            )
        merged = self.copy()
        merged.mean, merged.m2 = combine_moments(
            self.finite_count, self.mean, self.m2, other.finite_count, other.mean, other.m2
        )
        merged.count += other.count
        merged.missing += other.missing
        merged.non_numeric += other.non_numeric
        merged.positive_infinite += other.positive_infinite
        merged.negative_infinite += other.negative_infinite
        merged.minimum = float(np.fmin(self.minimum, other.minimum))
        merged.maximum = float(np.fmax(self.maximum, other.maximum))
        merged._sketch.merge(other._sketch)
        if merged._bins is None and other._bins is not None:
            merged._bins = other._bins
            merged._bin_counts = np.zeros(other._bins.size, dtype=np.int64)
        if merged._bin_counts is not None and other._bin_counts is not None:
            merged._bin_counts += other._bin_counts
        merged._exact = _merged_exact(self._exact, other._exact, self.exact_values)
        merged._outside = _merged_exact(self._outside, other._outside, OUTSIDE_VALUES)
        merged._outline = _merged_outline(self, other)
        return merged

    def to_dict(self) -> dict[str, object]:
        """JSON-safe summary: counts, mean, std, min, max and quantiles p01 … p99."""
        quantiles = self.quantiles(SUMMARY_QUANTILES)
        return {
            "kind": self.kind.value,
            "count": self.count,
            "missing": self.missing,
            "non_numeric": self.non_numeric,
            "infinite": self.infinite,
            "finite": self.finite_count,
            "mean": _json_float(self.mean),
            "std": _json_float(self.std()),
            "min": _json_float(self.minimum),
            "max": _json_float(self.maximum),
            "quantiles": {
                f"p{round(level * 100):02d}": _json_float(float(value))
                for level, value in zip(SUMMARY_QUANTILES, quantiles, strict=True)
            },
        }

    def _state(self) -> dict[str, Any]:
        edges = self.edges
        return {
            "count": self.count,
            "missing": self.missing,
            "non_numeric": self.non_numeric,
            "positive_infinite": self.positive_infinite,
            "negative_infinite": self.negative_infinite,
            "mean": _json_float(self.mean),
            "m2": self.m2,
            "min": _json_float(self.minimum),
            "max": _json_float(self.maximum),
            "k": self.k,
            "fine_bins": self.fine_bins,
            "edges": None if edges is None else edges.astype("<f8").tobytes(),
            "bin_counts": None if self._bin_counts is None else self._bin_counts.tolist(),
            "kll": bytes(self._sketch.serialize()),
            "exact_values": self.exact_values,
            "outline_points": self.outline_points,
            "exact": None if self._exact is None else self._exact.astype("<f8").tobytes(),
            "outside": None if self._outside is None else self._outside.astype("<f8").tobytes(),
            "outline": None if self._outline is None else self._outline.to_bytes(),
        }

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> NumericProfile:
        edges = state["edges"]
        # Profiles stored before exact values and outlines existed have neither field: they
        # load without them, and drift falls back to the bins (docs/profiles.md).
        profile = cls(
            edges=None if edges is None else np.frombuffer(edges, dtype="<f8"),
            k=state["k"],
            fine_bins=state["fine_bins"],
            exact_values=state.get("exact_values", DEFAULT_EXACT_VALUES),
            outline_points=state.get("outline_points", DEFAULT_OUTLINE_POINTS),
        )
        for name in ("count", "missing", "non_numeric", "positive_infinite", "negative_infinite"):
            value = state[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"numeric profile field {name} must be a count, got {value!r}")
            setattr(profile, name, value)
        if profile.finite_count < 0:
            raise InputError("numeric profile counts do not add up")
        profile.mean = _float_or_nan(state["mean"])
        profile.m2 = float(state["m2"])
        profile.minimum = _float_or_nan(state["min"])
        profile.maximum = _float_or_nan(state["max"])
        profile._sketch = datasketches.kll_doubles_sketch.deserialize(state["kll"])
        if profile._sketch.n != profile.finite_count:
            raise InputError("numeric profile sketch does not match its finite count")
        counts = state["bin_counts"]
        if profile._bins is None:
            if counts is not None or profile.finite_count:
                raise InputError("numeric profile has finite values or bin counts but no edges")
        else:
            array = np.asarray(counts, dtype=np.int64)
            if array.shape != (profile._bins.size,) or (array < 0).any():
                raise InputError("numeric profile bin counts do not match its edges")
            if int(array.sum()) != profile.finite_count:
                raise InputError("numeric profile bin counts do not add up to its finite count")
            profile._bin_counts = array
        profile._exact = _values_from_bytes(state.get("exact"), profile.exact_values, "exact")
        if profile._exact is not None and profile._exact.size != profile.finite_count:
            raise InputError("numeric profile exact values do not match its finite count")
        profile._outside = _values_from_bytes(state.get("outside"), OUTSIDE_VALUES, "outside")
        if profile._outside is not None:
            counts = profile.bin_counts
            beyond = int(counts[0] + counts[-1]) if counts.size else 0
            if profile._outside.size != beyond:
                raise InputError("numeric profile outside values do not match its tail bins")
        outline_data = state.get("outline")
        profile._outline = None if outline_data is None else PiecewiseCDF.from_bytes(outline_data)
        return profile


def _merged_exact(
    first: FloatArray | None, second: FloatArray | None, limit: int
) -> FloatArray | None:
    if first is None or second is None or first.size + second.size > limit:
        return None
    if second.size == 0:
        return first
    if first.size == 0:
        return second
    merged = np.concatenate((first, second))
    merged.setflags(write=False)
    return merged


def _merged_outline(first: NumericProfile, second: NumericProfile) -> PiecewiseCDF | None:
    if second.finite_count == 0:
        return first._outline
    if first.finite_count == 0:
        return second._outline
    if first._outline is None or second._outline is None:
        return None
    weight = second.finite_count / (first.finite_count + second.finite_count)
    return mixture(first._outline, second._outline, weight)


def _values_from_bytes(data: object, limit: int, name: str) -> FloatArray | None:
    if data is None:
        return None
    if not isinstance(data, bytes) or len(data) % 8 or len(data) // 8 > limit:
        raise InputError(f"numeric profile {name} values must be at most {limit} float64s")
    values = np.frombuffer(data, dtype="<f8").astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise InputError(f"numeric profile {name} values must be finite")
    values.setflags(write=False)
    return values


def _same_edges(left: FloatArray | None, right: FloatArray | None) -> bool:
    if left is None or right is None or left is right:
        return True
    return left.shape == right.shape and bool(np.array_equal(left, right))


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _float_or_nan(value: object) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"expected a number or null, got {value!r}")
    return float(value)
