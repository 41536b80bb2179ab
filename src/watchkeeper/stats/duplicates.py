"""Duplicate rows tested against the reference, in bounded memory (``docs/quality.md``).

The duplicate share of a sample grows with its size (the birthday problem), so a window's
share cannot be compared with the reference's own. :func:`duplicate_rows_test` asks instead
whether the current rows hold more duplicates than a random sample of the same size from
the pooled rows would: a permutation test. It reads rows as 64-bit hashes of their values
(:func:`row_hashes`, the same in the batch report and the live service) kept in a
:class:`RowHashSample` of at most ``limit`` distinct rows: Gibbons' (2001) *distinct
sampling*, which keeps every row whose hash lies below a threshold and halves the threshold
when too many distinct rows are kept. The choice depends only on a row's values, so all
copies of a row are kept or dropped together (their count stays exact) and reference and
current rows are chosen by one rule: the test on the kept rows is as valid as on all rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from watchkeeper.errors import InputError
from watchkeeper.labels import label_codes
from watchkeeper.schema import ColumnKind

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "REFERENCE_ROW_LIMIT",
    "WINDOW_ROW_LIMIT",
    "DuplicateTest",
    "RowHashSample",
    "coded_keys",
    "column_keys",
    "duplicate_p_value",
    "duplicate_rows_test",
    "fold_keys",
    "frame_row_hashes",
    "numeric_keys",
    "row_hashes",
]

HashArray = npt.NDArray[np.uint64]
CountArray = npt.NDArray[np.int64]

#: Distinct rows a window (or a batch report's current data) keeps: 16 KiB.
WINDOW_ROW_LIMIT = 1024
#: Distinct rows a reference keeps: 128 KiB, once per model.
REFERENCE_ROW_LIMIT = 8192

# Odd 64-bit multipliers: the golden-ratio constant for combining columns and the two of
# MurmurHash3's fmix64 finaliser, which spreads the combined hash over all 64 bits.
_ROW_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT = np.uint64(33)
# The key of a missing label: a 64-bit value no digest of a label is likely to take.
_MISSING_KEY = np.uint64(0x6D697373696E6721)
# Permutations of the Monte Carlo test: at most this many, fewer once enough exceed the
# observed count (Besag & Clifford 1991), and fewer with many repeated rows (time bound).
_PERMUTATIONS = 999
_EXCEEDANCES = 10
_DRAW_BUDGET = 2_000_000
_SEED = 20011


def fold_keys(keys: Sequence[HashArray]) -> HashArray:
    """One 64-bit hash per row from per-column keys (multiply-add, then fmix64; Appleby 2011).

    Equal rows get equal hashes; different rows collide with probability about 2**-64.
    """
    if not keys:
        raise InputError("a row hash needs at least one column")
    row_hash = keys[0].copy()
    for key in keys[1:]:
        row_hash *= _ROW_MULTIPLIER
        row_hash += key
    row_hash ^= row_hash >> _SHIFT
    row_hash *= _FMIX_1
    row_hash ^= row_hash >> _SHIFT
    row_hash *= _FMIX_2
    row_hash ^= row_hash >> _SHIFT
    return row_hash


def numeric_keys(values: npt.ArrayLike) -> HashArray:
    """:func:`column_keys` of numeric values, of any shape (one row per column of a block)."""
    numbers: npt.NDArray[np.float64] = np.add(
        np.asarray(values, dtype=np.float64), 0.0, dtype=np.float64
    )
    numbers[np.isnan(numbers)] = np.nan
    return numbers.view(np.uint64)


def column_keys(values: npt.ArrayLike, kind: ColumnKind) -> HashArray:
    """64-bit keys of one column's values that depend only on the values, in any data set.

    Numeric columns (float64, NaN where missing) key on their bits, with ``-0.0`` folded into
    ``0.0`` and every NaN made one; other columns on a BLAKE2b digest of their canonical
    label (:mod:`watchkeeper.labels`), so ``True``, ``1`` and ``"1"`` are one value, as in
    the label counts.
    """
    import pandas as pd

    if ColumnKind(kind) is ColumnKind.NUMERIC:
        return numeric_keys(values)
    codes, labels = label_codes(values if isinstance(values, pd.Series) else np.asarray(values))
    return coded_keys(codes, labels)


def coded_keys(codes: npt.NDArray[np.intp], labels: Sequence[str]) -> HashArray:
    """:func:`column_keys` of a label column given as :func:`watchkeeper.labels.label_codes`
    (for callers that have the codes already)."""
    # Each distinct label is hashed once; code -1 (missing) picks the trailing key.
    label_keys = np.fromiter(
        (_label_key(label) for label in labels), dtype=np.uint64, count=len(labels)
    )
    keys: HashArray = np.append(label_keys, _MISSING_KEY)[codes]
    return keys


def _label_key(label: str) -> int:
    """A 64-bit BLAKE2b digest of a label: the same in every process and data set."""
    digest = hashlib.blake2b(label.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def row_hashes(
    columns: Mapping[str, npt.ArrayLike],
    kinds: Mapping[str, ColumnKind],
    *,
    keys: Mapping[str, HashArray] | None = None,
) -> HashArray:
    """Row hashes over the columns of ``kinds`` (taken in name order) of ``columns``; a
    column's :func:`column_keys` may be given in ``keys`` instead."""
    known = keys or {}
    return fold_keys(
        [
            known[name] if name in known else column_keys(columns[name], kinds[name])
            for name in sorted(kinds)
        ]
    )


def frame_row_hashes(frame: pd.DataFrame, kinds: Mapping[str, ColumnKind]) -> HashArray:
    """:func:`row_hashes` of a data frame, numeric columns read as the profiles read them."""
    from watchkeeper.frame import numeric_values

    columns: dict[str, npt.ArrayLike] = {}
    for name, kind in kinds.items():
        series = frame[name]
        is_numeric = ColumnKind(kind) is ColumnKind.NUMERIC
        columns[name] = numeric_values(series).values if is_numeric else series
    return row_hashes(columns, kinds)


@dataclass(frozen=True, slots=True, eq=False)
class RowHashSample:
    """The distinct rows whose hash is below ``2**(64 - level)``, with their counts.

    ``hashes`` are sorted and distinct, ``counts`` how often each occurred; ``rows`` counts
    every row seen, kept or not. At most ``limit`` distinct rows are kept: past it the level
    goes up by one (half the hash range) until they fit (Gibbons 2001). Mergeable: the merge
    of two samples is the sample of both data sets.

    >>> sample = RowHashSample.of(np.array([5, 9, 5, 7], dtype=np.uint64), limit=8)
    >>> sample.hashes.tolist(), sample.counts.tolist(), sample.duplicates, sample.level
    ([5, 7, 9], [2, 1, 1], 1, 0)
    """

    hashes: HashArray
    counts: CountArray
    rows: int
    level: int = 0
    limit: int = WINDOW_ROW_LIMIT

    def __post_init__(self) -> None:
        if self.limit < 1 or not 0 <= self.level <= 64 or self.rows < 0:
            raise InputError("row hash sample: limit >= 1, level in [0, 64] and rows >= 0")
        if self.hashes.shape != self.counts.shape or self.hashes.ndim != 1:
            raise InputError("row hash sample: hashes and counts must be 1-D of one length")
        if self.hashes.size and (
            not bool((self.hashes[1:] > self.hashes[:-1]).all())
            or int(self.counts.min()) < 1
            or int(self.counts.sum()) > self.rows
        ):
            raise InputError(
                "row hash sample: hashes sorted and distinct, counts >= 1, within rows"
            )

    @classmethod
    def of(cls, hashes: HashArray, *, limit: int = WINDOW_ROW_LIMIT) -> RowHashSample:
        """The sample of a batch of row hashes."""
        distinct, counts = np.unique(hashes, return_counts=True)
        return cls._fitted(distinct, counts.astype(np.int64), int(hashes.size), 0, limit)

    def add(self, hashes: HashArray) -> RowHashSample:
        """This sample with a batch of row hashes folded in: ``self.merge(RowHashSample.of(
        hashes))``, with the rows this sample's level drops only counted, never sorted."""
        kept = hashes[_below(hashes, self.level)] if self.level else hashes
        distinct, counts = np.unique(kept, return_counts=True)
        batch = RowHashSample(
            distinct, counts.astype(np.int64), int(hashes.size), self.level, self.limit
        )
        return self.merge(batch)

    @classmethod
    def empty(cls, *, limit: int = WINDOW_ROW_LIMIT) -> RowHashSample:
        """The sample of no rows."""
        return cls(np.zeros(0, np.uint64), np.zeros(0, np.int64), 0, 0, limit)

    @classmethod
    def _fitted(
        cls, hashes: HashArray, counts: CountArray, rows: int, level: int, limit: int
    ) -> RowHashSample:
        while hashes.size > limit:
            level += 1
            kept = _below(hashes, level)
            hashes, counts = hashes[kept], counts[kept]
        return cls(hashes, counts, rows, level, limit)

    def at_level(self, level: int) -> RowHashSample:
        """The rows this sample keeps at ``level`` (>= its own): a subsample by the same rule."""
        if level < self.level:
            raise InputError(f"row hash sample at level {self.level} cannot go down to {level}")
        kept = _below(self.hashes, level)
        return RowHashSample(self.hashes[kept], self.counts[kept], self.rows, level, self.limit)

    def merge(self, other: RowHashSample) -> RowHashSample:
        """The sample of both data sets (the smaller ``limit`` and the higher level)."""
        level = max(self.level, other.level)
        first, second = self.at_level(level), other.at_level(level)
        hashes, inverse = np.unique(
            np.concatenate((first.hashes, second.hashes)), return_inverse=True
        )
        counts = np.bincount(
            inverse, weights=np.concatenate((first.counts, second.counts)), minlength=hashes.size
        ).astype(np.int64)
        limit = min(self.limit, other.limit)
        return RowHashSample._fitted(hashes, counts, self.rows + other.rows, level, limit)

    @property
    def kept_rows(self) -> int:
        """Rows kept (with their copies)."""
        return int(self.counts.sum())

    @property
    def duplicates(self) -> int:
        """Kept rows equal to an earlier kept row."""
        return self.kept_rows - int(self.hashes.size)

    @property
    def share(self) -> float:
        """Duplicate share of the kept rows (0.0 with none): exact at level 0, else an
        unbiased estimate of the share among all rows' copies."""
        kept = self.kept_rows
        return self.duplicates / kept if kept else 0.0

    def to_state(self) -> dict[str, object]:
        """JSON-ready form (hashes and counts as little-endian bytes)."""
        return {
            "rows": self.rows,
            "level": self.level,
            "limit": self.limit,
            "hashes": self.hashes.astype("<u8").tobytes(),
            "counts": self.counts.astype("<i8").tobytes(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> RowHashSample:
        """Read :meth:`to_state`; InputError for anything else."""
        hashes, counts = state.get("hashes"), state.get("counts")
        numbers = [state.get(name) for name in ("rows", "level", "limit")]
        if (
            not isinstance(hashes, bytes)
            or not isinstance(counts, bytes)
            or not all(
                isinstance(number, int) and not isinstance(number, bool) for number in numbers
            )
        ):
            raise InputError("row hash sample: rows, level, limit, hashes and counts expected")
        if len(hashes) % 8 or len(hashes) != len(counts):
            raise InputError("row hash sample: hashes and counts must be equal uint64 arrays")
        rows, level, limit = (int(str(number)) for number in numbers)
        return cls(
            np.frombuffer(hashes, dtype="<u8").astype(np.uint64),
            np.frombuffer(counts, dtype="<i8").astype(np.int64),
            rows,
            level,
            limit,
        )


def _below(hashes: HashArray, level: int) -> npt.NDArray[np.bool_]:
    if level == 0:
        return np.ones(hashes.shape, dtype=bool)
    shifted = hashes if level >= 64 else hashes >> np.uint64(64 - level)
    kept: npt.NDArray[np.bool_] = np.equal(shifted, 0)
    return kept


def duplicate_p_value(pooled: CountArray, current: CountArray) -> tuple[float, float]:
    """Permutation p-value of the current rows' duplicates, and their expected number.

    ``pooled[u]`` is how often distinct row u occurs in reference and current data together,
    ``current[u]`` how often in the current data (m rows of N). Under exchangeability the
    current rows are a uniformly random m-subset of the N pooled rows; the statistic is the
    number of current rows equal to an earlier current row, D = sum over u of (s_u - 1)+ for
    the subset's counts s_u, whose expectation is sum over u of E s_u - P(s_u > 0) =
    t_u m / N - (1 - C(N - t_u, m) / C(N, m)). Rows seen once in the pool never count, so the
    subsets are drawn over the repeated rows only (multivariate hypergeometric, one colour
    for all single rows). The p-value is a Monte Carlo one with a fixed seed, (b + 1) / (B +
    1) over B <= 999 draws, or h / l when the h = 10th draw at least as large as D came at
    draw l (Besag & Clifford 1991): valid for any number of draws and the same for the same
    counts. Exact when one distinct row repeats (then D + 1 is hypergeometric).

    A row repeated 12 times in 212 pooled rows, 10 of them among the 30 current rows:

    >>> pooled = np.r_[12, np.ones(200, int)]
    >>> current = np.r_[10, np.ones(20, int), np.zeros(180, int)]
    >>> p_value, expected = duplicate_p_value(pooled, current)
    >>> round(expected, 2), p_value < 1e-7
    (0.85, True)
    """
    pooled = np.asarray(pooled, dtype=np.int64)
    current = np.asarray(current, dtype=np.int64)
    if pooled.shape != current.shape or bool((current > pooled).any()) or bool((current < 0).any()):
        raise InputError("duplicate test: current counts must lie within the pooled counts")
    size, total = int(current.sum()), int(pooled.sum())
    observed = int(np.maximum(current - 1, 0).sum())
    repeated = pooled >= 2
    colours = np.sort(pooled[repeated])
    if size == 0 or colours.size == 0:
        return 1.0, 0.0
    from scipy import special  # only with repeated rows: its import is a sixth of a report

    # P(s_u = 0) = C(N - t, m) / C(N, m), in logs (SciPy's pmf is 50 times slower here).
    rest = total - colours
    with np.errstate(invalid="ignore"):
        log_empty = (
            special.gammaln(rest + 1)
            - special.gammaln(np.maximum(rest - size, 0) + 1)
            - special.gammaln(total + 1)
            + special.gammaln(total - size + 1)
        )
    empty = np.where(rest >= size, np.exp(log_empty), 0.0)
    expected = float(np.sum(colours * (size / total) - (1.0 - empty)))
    if observed == 0:
        return 1.0, expected
    if colours.size == 1:
        from scipy import stats  # only here: scipy.stats is slow to import

        return float(stats.hypergeom.sf(observed, total, int(colours[0]), size)), expected
    colours = np.append(colours, total - int(colours.sum()))
    generator = np.random.default_rng(_SEED)
    permutations = int(np.clip(_DRAW_BUDGET // colours.size, 99, _PERMUTATIONS))
    exceeded = drawn = 0
    batch = 2 * _EXCEEDANCES  # doubled each round: a large p-value stops after a few draws
    while drawn < permutations:
        batch = min(batch, permutations - drawn)
        draws = generator.multivariate_hypergeometric(colours, size, size=batch, method="marginals")
        at_least = np.maximum(draws[:, :-1] - 1, 0).sum(axis=1) >= observed
        found = np.flatnonzero(at_least)
        if exceeded + found.size >= _EXCEEDANCES:
            last = drawn + int(found[_EXCEEDANCES - exceeded - 1]) + 1
            return _EXCEEDANCES / last, expected
        exceeded += found.size
        drawn += batch
        batch *= 2
    return (exceeded + 1) / (drawn + 1), expected


@dataclass(frozen=True, slots=True, kw_only=True)
class DuplicateTest:
    """What :func:`duplicate_rows_test` found (shares of the kept rows)."""

    p_value: float
    current_share: float
    expected_share: float
    reference_share: float
    current_duplicates: int
    reference_duplicates: int
    current_rows: int
    level: int

    @property
    def exact(self) -> bool:
        """Whether every row was kept (no sampling)."""
        return self.level == 0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready details."""
        return {
            "p_value": self.p_value,
            "expected_share": self.expected_share,
            "tested_rows": self.current_rows,
            "sample_level": self.level,
            "exact": self.exact,
        }


def duplicate_rows_test(reference: RowHashSample, current: RowHashSample) -> DuplicateTest:
    """Test the current rows' duplicates against a same-size sample of the pooled rows.

    Both samples are brought to the higher of their levels, so both keep rows by the same
    rule, and :func:`duplicate_p_value` runs on their pooled counts. Shares are of the kept
    rows: exact while nothing was dropped (level 0).
    """
    level = max(reference.level, current.level)
    kept_reference, kept_current = reference.at_level(level), current.at_level(level)
    hashes = np.union1d(kept_reference.hashes, kept_current.hashes)
    pooled = np.zeros(hashes.size, dtype=np.int64)
    in_current = np.zeros(hashes.size, dtype=np.int64)
    pooled[np.searchsorted(hashes, kept_reference.hashes)] += kept_reference.counts
    positions = np.searchsorted(hashes, kept_current.hashes)
    pooled[positions] += kept_current.counts
    in_current[positions] = kept_current.counts
    p_value, expected = duplicate_p_value(pooled, in_current)
    rows = kept_current.kept_rows
    return DuplicateTest(
        p_value=p_value,
        current_share=kept_current.share,
        expected_share=expected / rows if rows else 0.0,
        reference_share=reference.share,
        current_duplicates=kept_current.duplicates,
        reference_duplicates=reference.duplicates,
        current_rows=rows,
        level=level,
    )
