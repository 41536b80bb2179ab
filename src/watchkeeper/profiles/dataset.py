"""Profiles of whole data sets: building them from frames or batches, merging, bytes."""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson

from watchkeeper.errors import InputError, SchemaError
from watchkeeper.frame import numeric_values
from watchkeeper.labels import label_codes
from watchkeeper.profiles._binning import FineBinsBlock, FloatArray
from watchkeeper.profiles.categorical import (
    DEFAULT_HLL_LG_K,
    DEFAULT_MAX_LABELS,
    BooleanProfile,
    CategoricalProfile,
)
from watchkeeper.profiles.numeric import (
    DEFAULT_EXACT_VALUES,
    DEFAULT_FINE_BINS,
    DEFAULT_KLL_K,
    DEFAULT_OUTLINE_POINTS,
    NumericProfile,
    combine_moments,
)
from watchkeeper.schema import ColumnKind, ResolvedSchema
from watchkeeper.stats.duplicates import (
    REFERENCE_ROW_LIMIT,
    WINDOW_ROW_LIMIT,
    RowHashSample,
    coded_keys,
    numeric_keys,
    row_hashes,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PROFILE_FORMAT_VERSION",
    "ColumnProfile",
    "DatasetProfile",
    "ProfileAccumulator",
    "ProfileOptions",
    "profile_frame",
]

ColumnProfile = NumericProfile | CategoricalProfile | BooleanProfile

PROFILE_FORMAT_VERSION = 1
# Envelope: 8 magic bytes, a little-endian uint16 format version, then one orjson document.
_MAGIC = b"WKPROF\r\n"
_HEADER = struct.Struct("<8sH")
_PROFILE_TYPES: dict[ColumnKind, type[ColumnProfile]] = {
    ColumnKind.NUMERIC: NumericProfile,
    ColumnKind.CATEGORICAL: CategoricalProfile,
    ColumnKind.BOOLEAN: BooleanProfile,
}
_BYTE_FIELDS = frozenset({"edges", "kll", "hll", "exact", "outline", "outside", "hashes", "counts"})
# Below this many finite values per fold the sketch thread costs more than it saves.
_THREADED_MIN_VALUES = 262_144
# KLL updates hold the GIL; chunks of this size hand it back to the binning thread often.
_SKETCH_CHUNK = 65_536


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileOptions:
    """Sketch sizes used when building profiles.

    ``k`` is the KLL quantile sketch parameter (rank error about 1.3 % at 200), ``fine_bins``
    the number of reference-quantile bins of a numeric reference profile, ``max_labels`` the
    number of categorical labels counted exactly, ``lg_k`` the HyperLogLog size (2**lg_k
    registers), ``exact_values`` how many finite values a numeric column keeps exactly and
    ``outline_points`` how many order statistics a numeric reference keeps for its outline.
    """

    k: int = DEFAULT_KLL_K
    fine_bins: int = DEFAULT_FINE_BINS
    max_labels: int = DEFAULT_MAX_LABELS
    lg_k: int = DEFAULT_HLL_LG_K
    exact_values: int = DEFAULT_EXACT_VALUES
    outline_points: int = DEFAULT_OUTLINE_POINTS

    def __post_init__(self) -> None:
        # Constructing a profile validates every option with a clear message.
        self.numeric()
        CategoricalProfile(max_labels=self.max_labels, lg_k=self.lg_k)

    def numeric(self) -> NumericProfile:
        """An empty numeric profile with these options."""
        return NumericProfile(
            k=self.k,
            fine_bins=self.fine_bins,
            exact_values=self.exact_values,
            outline_points=self.outline_points,
        )


@dataclass(frozen=True, slots=True, eq=False)
class DatasetProfile:
    """Profile of a data set: number of rows and one mergeable profile per column.

    Numeric column profiles carry the fine bin edges they were built with (``edges``); window
    profiles built with ``reference=`` share them with the reference, which is what makes
    drift between any two such profiles computable. Column profiles inside a
    ``DatasetProfile`` are treated as immutable: :meth:`merge` returns new ones.
    ``row_hashes`` is the bounded sample of the rows' value hashes that the
    ``duplicate_rows`` check reads (:mod:`watchkeeper.stats.duplicates`); ``None`` for
    profiles written before it existed.
    """

    rows: int
    columns: Mapping[str, ColumnProfile] = field(default_factory=dict)
    row_hashes: RowHashSample | None = None

    @property
    def kinds(self) -> dict[str, ColumnKind]:
        """Kind of every profiled column."""
        return {name: profile.kind for name, profile in self.columns.items()}

    @property
    def edges(self) -> dict[str, FloatArray]:
        """Fine bin edges of every numeric column that has them."""
        return {
            name: profile.edges
            for name, profile in self.columns.items()
            if isinstance(profile, NumericProfile) and profile.edges is not None
        }

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        """Profile of both data sets together (associative and commutative; see docs)."""
        if not isinstance(other, DatasetProfile):
            raise InputError(f"cannot merge a dataset profile with {type(other).__name__}")
        if self.kinds != other.kinds:
            raise SchemaError(
                "cannot merge profiles of different columns: "
                f"{_describe_kinds(self.kinds)} vs {_describe_kinds(other.kinds)}"
            )
        merged: dict[str, ColumnProfile] = {}
        for name, profile in self.columns.items():
            try:
                merged[name] = profile.merge(other.columns[name])  # type: ignore[arg-type]
            except InputError as error:
                raise InputError(f"column {name!r}: {error}", column=name) from None
        hashes = None
        if self.row_hashes is not None and other.row_hashes is not None:
            hashes = self.row_hashes.merge(other.row_hashes)
        return DatasetProfile(rows=self.rows + other.rows, columns=merged, row_hashes=hashes)

    def to_dict(self) -> dict[str, object]:
        """JSON-safe summary of every column."""
        return {
            "rows": self.rows,
            "columns": {name: profile.to_dict() for name, profile in self.columns.items()},
        }

    def to_bytes(self) -> bytes:
        """Compact, versioned bytes that :meth:`from_bytes` reads back."""
        document = {
            "rows": self.rows,
            "columns": [
                {"name": name, "kind": profile.kind.value, **_encode(profile._state())}
                for name, profile in self.columns.items()
            ],
        }
        if self.row_hashes is not None:
            document["row_hashes"] = _encode(self.row_hashes.to_state())
        return _HEADER.pack(_MAGIC, PROFILE_FORMAT_VERSION) + orjson.dumps(document)

    @classmethod
    def from_bytes(cls, data: bytes) -> DatasetProfile:
        """Read bytes written by :meth:`to_bytes`; raise InputError for anything else."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InputError(f"a profile is read from bytes, got {type(data).__name__}")
        raw = bytes(data)
        if len(raw) < _HEADER.size or raw[: len(_MAGIC)] != _MAGIC:
            raise InputError("not a watchkeeper profile (bad magic bytes)")
        _, version = _HEADER.unpack_from(raw)
        if version != PROFILE_FORMAT_VERSION:
            raise InputError(
                f"profile format version {version} is not supported (this watchkeeper reads "
                f"version {PROFILE_FORMAT_VERSION}); rebuild the profile"
            )
        try:
            document = orjson.loads(raw[_HEADER.size :])
            rows = document["rows"]
            if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
                raise InputError(f"profile rows must be a count, got {rows!r}")
            columns: dict[str, ColumnProfile] = {}
            for entry in document["columns"]:
                name = entry["name"]
                if not isinstance(name, str) or name in columns:
                    raise InputError(f"bad or repeated column name {name!r}")
                profile_type = _PROFILE_TYPES[ColumnKind(entry["kind"])]
                profile = profile_type._from_state(_decode(entry))
                if profile.count != rows:
                    raise InputError(f"column {name!r} counts {profile.count} values, not {rows}")
                columns[name] = profile
            hashes = None
            if document.get("row_hashes") is not None:
                hashes = RowHashSample.from_state(_decode(document["row_hashes"]))
                if hashes.rows != rows:
                    raise InputError(f"row hashes count {hashes.rows} rows, not {rows}")
        except InputError as error:
            raise InputError(f"corrupt watchkeeper profile: {error}") from None
        except (
            orjson.JSONDecodeError,
            KeyError,
            IndexError,
            OverflowError,
            TypeError,
            ValueError,
            RuntimeError,
            binascii.Error,
        ) as error:
            reason = f"{type(error).__name__}: {error}"
            raise InputError(f"corrupt watchkeeper profile ({reason})") from None
        return cls(rows=rows, columns=columns, row_hashes=hashes)


def _describe_kinds(kinds: Mapping[str, ColumnKind]) -> str:
    return "{" + ", ".join(f"{name}: {kind.value}" for name, kind in kinds.items()) + "}"


def _encode(state: dict[str, Any]) -> dict[str, Any]:
    return {
        key: base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
        for key, value in state.items()
    }


def _decode(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        key: base64.b64decode(value, validate=True)
        if key in _BYTE_FIELDS and isinstance(value, str)
        else value
        for key, value in entry.items()
    }


def fold_finite_block(
    profiles: list[NumericProfile], block: FineBinsBlock, values: FloatArray
) -> None:
    """Fold row ``i`` of ``values`` into ``profiles[i]``, for rows of finite values only.

    The same as ``profiles[i].update(values[i])`` for every ``i`` (bit for bit), with the
    moments, extremes and bins of all rows computed in a few NumPy calls. ``block`` holds the
    profiles' bins in order; ``values`` must be C-contiguous and writeable (the sketches read
    its rows in place).
    """
    size = values.shape[1]
    if size == 0:
        return
    means = values.mean(axis=1)
    deviations = values - means[:, None]
    minima = values.min(axis=1)
    maxima = values.max(axis=1)
    bin_counts = block.counts(values)
    for index, profile in enumerate(profiles):
        if profile._bin_counts is None:
            raise AssertionError("fold_finite_block needs profiles with bins")
        previous = profile.finite_count
        profile.count += size
        row_deviations = deviations[index]
        profile.mean, profile.m2 = combine_moments(
            previous,
            profile.mean,
            profile.m2,
            size,
            float(means[index]),
            float(np.dot(row_deviations, row_deviations)),
        )
        low, high = float(minima[index]), float(maxima[index])
        profile.minimum = low if previous == 0 else min(profile.minimum, low)
        profile.maximum = high if previous == 0 else max(profile.maximum, high)
        profile._bin_counts += bin_counts[index]
        profile._keep_outside(values[index], bin_counts[index])
        profile._keep_exact(values[index])
        profile._outline = None
        profile._sketch_update(values[index])


def _empty_profiles(
    kinds: Mapping[str, ColumnKind],
    reference: DatasetProfile | None,
    options: ProfileOptions,
) -> dict[str, ColumnProfile]:
    profiles: dict[str, ColumnProfile] = {}
    for name, kind in kinds.items():
        kind = ColumnKind(kind)
        template = None if reference is None else reference.columns.get(name)
        if reference is not None and template is None:
            raise SchemaError(
                f"column {name!r} is not in the reference profile; profile windows with the "
                "same columns as the reference",
                column=name,
            )
        if template is not None and template.kind is not kind:
            raise SchemaError(
                f"column {name!r} is {kind.value} here but {template.kind.value} in the "
                "reference profile",
                column=name,
            )
        if isinstance(template, NumericProfile):
            profiles[name] = template.empty_like()
        elif isinstance(template, CategoricalProfile):
            profiles[name] = CategoricalProfile(max_labels=template.max_labels, lg_k=template.lg_k)
        elif kind is ColumnKind.NUMERIC:
            profiles[name] = options.numeric()
        elif kind is ColumnKind.CATEGORICAL:
            profiles[name] = CategoricalProfile(max_labels=options.max_labels, lg_k=options.lg_k)
        elif kind is ColumnKind.BOOLEAN:
            profiles[name] = BooleanProfile()
    return profiles


def _profiled_kinds(kinds: Mapping[str, ColumnKind]) -> dict[str, ColumnKind]:
    # Datetime and text columns are not drift-tested, so they get no profile.
    return {
        name: ColumnKind(kind) for name, kind in kinds.items() if ColumnKind(kind) in _PROFILE_TYPES
    }


def _update_sketch(profile: NumericProfile, finite: FloatArray) -> None:
    for start in range(0, finite.size, _SKETCH_CHUNK):
        profile._sketch_update(finite[start : start + _SKETCH_CHUNK])


def _fold_numeric(batch: list[tuple[NumericProfile, npt.ArrayLike, int]]) -> None:
    """Fold numeric columns, running the KLL updates beside the NumPy work.

    KLL updates hold the GIL while binning and moments mostly release it, so on two or more
    cores one worker thread for the sketches hides most of their cost.
    """
    total = sum(np.size(values) for _, values, _ in batch)
    if total < _THREADED_MIN_VALUES:
        for profile, values, non_numeric in batch:
            profile.update(values, non_numeric=non_numeric)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="watchkeeper-kll") as pool:
        pending = [
            pool.submit(_update_sketch, profile, profile._fold(values, non_numeric=non_numeric))
            for profile, values, non_numeric in batch
        ]
        for future in pending:
            future.result()


def profile_frame(
    frame: pd.DataFrame,
    schema: ResolvedSchema,
    *,
    reference: DatasetProfile | None = None,
    options: ProfileOptions | None = None,
) -> DatasetProfile:
    """Profile every numeric, categorical and boolean column of ``schema`` in ``frame``.

    Without ``reference`` this is a reference profile: each numeric column gets fine bin
    edges at its own exact percentiles (see :func:`watchkeeper.profiles.fine_edges`). With
    ``reference`` every column reuses the reference's edges and sketch sizes, so the result
    can be merged with other windows and compared with the reference.

    >>> import numpy as np, pandas as pd
    >>> from watchkeeper.schema import infer_schema
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"x": rng.normal(size=1000), "c": rng.choice(["a", "b"], 1000)})
    >>> profile = profile_frame(frame, infer_schema(frame))
    >>> profile.rows, profile.kinds["x"].value, profile.columns["c"].count
    (1000, 'numeric', 1000)
    """
    options = options or ProfileOptions()
    kinds = _profiled_kinds(schema.kinds)
    absent = [name for name in kinds if name not in frame.columns]
    if absent:
        raise SchemaError(
            f"column(s) of the schema are not in the data: {', '.join(absent)}", column=absent[0]
        )
    profiles = _empty_profiles(kinds, reference, options)
    numeric_batch: list[tuple[NumericProfile, npt.ArrayLike, int]] = []
    values: dict[str, npt.ArrayLike] = {}
    for name, profile in profiles.items():
        series = values[name] = frame[name]
        if isinstance(profile, NumericProfile):
            column = numeric_values(series)
            numeric_batch.append((profile, column.values, column.non_numeric))
            values[name] = column.values
        else:
            profile.update(series)
    _fold_numeric(numeric_batch)
    hashes = None
    if kinds:
        hashes = _empty_hashes(reference).merge(
            RowHashSample.of(row_hashes(values, kinds), limit=_hash_limit(reference))
        )
    return DatasetProfile(rows=len(frame), columns=profiles, row_hashes=hashes)


def _hash_limit(reference: DatasetProfile | None) -> int:
    """Distinct rows a profile keeps: more for a reference than for a window."""
    return REFERENCE_ROW_LIMIT if reference is None else WINDOW_ROW_LIMIT


def _empty_hashes(reference: DatasetProfile | None) -> RowHashSample:
    return RowHashSample.empty(limit=_hash_limit(reference))


class ProfileAccumulator:
    """An open profile that folds in batches of validated events given as columns.

    ``update`` takes a mapping of column name to a 1-D array: float64 with NaN where missing
    for numeric columns, labels (``None`` where missing) for categorical ones, booleans or 0/1
    for boolean ones. Columns not in ``kinds`` are ignored. :meth:`profile` returns a snapshot
    that later updates do not change. Without ``reference``, numeric edges come from the first
    batch holding finite values of each column.

    >>> import numpy as np
    >>> accumulator = ProfileAccumulator(kinds={"x": ColumnKind.NUMERIC})
    >>> accumulator.update({"x": np.array([1.0, 2.0, np.nan])})
    >>> accumulator.update({"x": np.array([3.0])})
    >>> profile = accumulator.profile()
    >>> profile.rows, profile.columns["x"].missing, profile.columns["x"].mean
    (4, 1, 2.0)
    """

    __slots__ = ("_block", "_hashes", "_numeric", "_profiles", "_rows")

    def __init__(
        self,
        *,
        kinds: Mapping[str, ColumnKind] | ResolvedSchema | None = None,
        reference: DatasetProfile | None = None,
        options: ProfileOptions | None = None,
    ) -> None:
        if kinds is None:
            if reference is None:
                raise InputError("ProfileAccumulator needs kinds=, reference=, or both")
            kinds = reference.kinds
        elif isinstance(kinds, ResolvedSchema):
            kinds = kinds.kinds
        self._profiles = _empty_profiles(
            _profiled_kinds(kinds), reference, options or ProfileOptions()
        )
        self._rows = 0
        self._hashes: RowHashSample | None = _empty_hashes(reference) if self._profiles else None
        # The numeric columns and their bins as one block, once every one has bins.
        self._numeric: list[tuple[str, NumericProfile]] = []
        self._block: FineBinsBlock | None = None

    @classmethod
    def resume(cls, profile: DatasetProfile) -> ProfileAccumulator:
        """An accumulator that goes on from ``profile`` (a snapshot of an earlier one), as if
        it had folded the same rows itself; ``profile`` does not change."""
        accumulator = cls(kinds=profile.kinds)
        accumulator._profiles = {name: column.copy() for name, column in profile.columns.items()}
        accumulator._rows = profile.rows
        # A checkpoint written before row hashes existed resumes without them.
        accumulator._hashes = profile.row_hashes
        return accumulator

    @property
    def rows(self) -> int:
        """Rows folded in so far."""
        return self._rows

    def update(self, columns: Mapping[str, npt.ArrayLike]) -> None:
        """Fold in one batch; every profiled column must be present with the same length."""
        absent = [name for name in self._profiles if name not in columns]
        if absent:
            raise SchemaError(
                f"batch lacks column(s) {', '.join(absent)}; pass every monitored column",
                column=absent[0],
            )
        arrays = {name: np.asarray(columns[name]) for name in self._profiles}
        lengths = {name: array.shape for name, array in arrays.items()}
        if len(set(lengths.values())) > 1 or any(len(shape) != 1 for shape in lengths.values()):
            raise InputError(f"batch columns must be 1-D arrays of one length, got {lengths}")
        keys: dict[str, npt.NDArray[np.uint64]] = {}
        for name, profile in self._profiles.items():
            if isinstance(profile, CategoricalProfile):
                # One pass over the labels for both the counts and the row hashes (pandas'
                # factorize is also faster here than value_counts on an object array).
                codes, labels = label_codes(arrays[name])
                counts = np.bincount(codes[codes >= 0], minlength=len(labels))
                present = int(counts.sum())
                profile.update_counts(
                    dict(zip(labels, counts.tolist(), strict=True)),
                    missing=len(codes) - present,
                )
                keys[name] = coded_keys(codes, labels)
            elif not isinstance(profile, NumericProfile):
                profile.update(arrays[name])
        if not self._fold_block(arrays, keys):
            _fold_numeric(
                [
                    (profile, arrays[name].astype(np.float64, copy=False), 0)
                    for name, profile in self._profiles.items()
                    if isinstance(profile, NumericProfile)
                ]
            )
        if lengths:
            self._rows += next(iter(lengths.values()))[0]
        if self._hashes is not None and lengths:
            kinds = {name: profile.kind for name, profile in self._profiles.items()}
            self._hashes = self._hashes.add(row_hashes(arrays, kinds, keys=keys))

    def _fold_block(
        self, arrays: Mapping[str, np.ndarray], keys: dict[str, npt.NDArray[np.uint64]]
    ) -> bool:
        """Fold the numeric columns as one block when every one has bins and only finite
        values (the common case of a monitored batch), and put their row-hash keys in
        ``keys``; False when they must go one by one."""
        if self._block is None:
            numeric = [
                (name, profile)
                for name, profile in self._profiles.items()
                if isinstance(profile, NumericProfile)
            ]
            bins = [profile._bins for _, profile in numeric if profile._bins is not None]
            if len(numeric) < 2 or len(bins) < len(numeric) or not FineBinsBlock.usable(bins):
                return False
            self._numeric = numeric
            self._block = FineBinsBlock(bins)
        # update() has checked that the columns are 1-D and of one length.
        values = np.array([arrays[name] for name, _ in self._numeric], dtype=np.float64)
        if not np.isfinite(values).all():
            return False
        if self._hashes is not None:
            # One pass over the block instead of one per column.
            block_keys = numeric_keys(values)
            keys.update((name, block_keys[i]) for i, (name, _) in enumerate(self._numeric))
        fold_finite_block([profile for _, profile in self._numeric], self._block, values)
        return True

    def profile(self) -> DatasetProfile:
        """A snapshot of everything folded in so far."""
        return DatasetProfile(
            rows=self._rows,
            columns={name: p.copy() for name, p in self._profiles.items()},
            row_hashes=self._hashes,
        )
