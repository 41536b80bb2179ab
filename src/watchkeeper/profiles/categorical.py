"""Mergeable profiles of categorical and boolean columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import datasketches
import numpy as np
import numpy.typing as npt
import pandas as pd

from watchkeeper.errors import InputError
from watchkeeper.frame import category_counts
from watchkeeper.labels import BOOLEAN_LABELS, canonical_label
from watchkeeper.schema import ColumnKind

__all__ = [
    "DEFAULT_HLL_LG_K",
    "DEFAULT_MAX_LABELS",
    "OTHER_LABEL",
    "BooleanProfile",
    "CategoricalProfile",
]

DEFAULT_MAX_LABELS = 1_000
DEFAULT_HLL_LG_K = 12
# Label under which the counts of labels beyond the cap are reported in drift and summaries.
OTHER_LABEL = "__other__"
_TOP_LABELS = 10


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InputError(f"{name} must be a non-negative integer count, got {value!r}")
    return int(value)


class CategoricalProfile:
    """Mergeable summary of one categorical column.

    Exact counts of up to ``max_labels`` labels plus an ``other`` count for the rest, the
    number of missing values and a HyperLogLog distinct-count sketch (Flajolet et al. 2007;
    Apache DataSketches ``hll_sketch``, relative error about ``1.04 / sqrt(2**lg_k)``) over
    every label seen. When more than ``max_labels`` distinct labels are seen, the most frequent
    are kept (ties broken by label) and the counts of the others move to ``other``: below the
    cap, merging is exact, associative and commutative; above it the kept counts are exact for
    labels that stayed in the top list throughout, like a heavy-hitters summary.

    >>> profile = CategoricalProfile.of(["a", "b", "a", None])
    >>> profile.counts, profile.missing
    ({'a': 2, 'b': 1}, 1)
    """

    kind: ClassVar[ColumnKind] = ColumnKind.CATEGORICAL

    __slots__ = ("_hll", "count", "counts", "lg_k", "max_labels", "missing", "other")

    def __init__(
        self, *, max_labels: int = DEFAULT_MAX_LABELS, lg_k: int = DEFAULT_HLL_LG_K
    ) -> None:
        if isinstance(max_labels, bool) or not isinstance(max_labels, int) or max_labels < 1:
            raise InputError(f"max_labels must be a positive integer, got {max_labels!r}")
        if isinstance(lg_k, bool) or not isinstance(lg_k, int) or not 4 <= lg_k <= 21:
            raise InputError(f"HLL lg_k must be an integer in [4, 21], got {lg_k!r}")
        self.max_labels = max_labels
        self.lg_k = lg_k
        self.count = 0
        self.missing = 0
        self.other = 0
        self.counts: dict[str, int] = {}
        self._hll: Any = datasketches.hll_sketch(lg_k)

    @classmethod
    def of(
        cls,
        values: Sequence[object] | npt.NDArray[Any] | pd.Series,
        *,
        max_labels: int = DEFAULT_MAX_LABELS,
        lg_k: int = DEFAULT_HLL_LG_K,
    ) -> CategoricalProfile:
        """Profile of ``values`` (``None``/NaN where missing)."""
        profile = cls(max_labels=max_labels, lg_k=lg_k)
        profile.update(values)
        return profile

    @property
    def present(self) -> int:
        """Number of non-missing values."""
        return self.count - self.missing

    @property
    def truncated(self) -> bool:
        """Whether some labels were folded into ``other``."""
        return self.other > 0

    def distinct_estimate(self) -> float:
        """HyperLogLog estimate of the number of distinct labels."""
        return float(self._hll.get_estimate())

    def update(self, values: Sequence[object] | npt.NDArray[Any] | pd.Series) -> None:
        """Fold in a batch of values; ``None``/NaN are missing, the others count by their
        canonical label (:mod:`watchkeeper.labels`)."""
        if not isinstance(values, pd.Series):
            # As objects: NumPy would read [True, "gold"] as the strings ["True", "gold"].
            array = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
            if array.ndim != 1:
                raise InputError("categorical values must be one-dimensional")
            values = pd.Series(array)
        counts = category_counts(values)
        self.update_counts(counts, missing=len(values) - int(counts.sum()))

    def update_counts(self, counts: Mapping[object, int] | pd.Series, *, missing: int = 0) -> None:
        """Fold in counts by value or label (as from :func:`watchkeeper.frame.category_counts`).

        Keys are named by :func:`watchkeeper.labels.canonical_label`, so ``True`` and ``"1"``
        count as one label; a missing key (``None``, NaN) adds to ``missing``.
        """
        batch: dict[str, int] = {}
        missing = _count(missing, "missing")
        for key, value in counts.items():
            count = _count(value, f"count of {key!r}")
            label = canonical_label(key)
            if label is None:
                missing += count
            else:
                batch[label] = batch.get(label, 0) + count
        self.count += sum(batch.values()) + missing
        self.missing += missing
        # One sketch update per distinct label of the batch, not per row.
        for label, value in batch.items():
            if value:
                self._hll.update(label)
                self.counts[label] = self.counts.get(label, 0) + value
        self._truncate()

    def _truncate(self) -> None:
        if len(self.counts) <= self.max_labels:
            return
        ranked = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        kept = ranked[: self.max_labels]
        self.other += sum(value for _, value in ranked[self.max_labels :])
        self.counts = dict(kept)

    def top(self, limit: int = _TOP_LABELS) -> list[tuple[str, int]]:
        """The ``limit`` most frequent kept labels with their counts (ties by label)."""
        return sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[:limit]

    def copy(self) -> CategoricalProfile:
        """An independent copy."""
        twin = type(self)(max_labels=self.max_labels, lg_k=self.lg_k)
        twin.count, twin.missing, twin.other = self.count, self.missing, self.other
        twin.counts = dict(self.counts)
        twin._hll = datasketches.hll_sketch.deserialize(self._hll.serialize_compact())
        return twin

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        """A new profile of both inputs' data; neither input changes."""
        if type(other) is not type(self):
            raise InputError(f"cannot merge a categorical profile with {type(other).__name__}")
        if (other.max_labels, other.lg_k) != (self.max_labels, self.lg_k):
            raise InputError(
                "cannot merge categorical profiles with different max_labels or lg_k: "
                f"({self.max_labels}, {self.lg_k}) vs ({other.max_labels}, {other.lg_k})"
            )
        merged = self.copy()
        merged.count += other.count
        merged.missing += other.missing
        merged.other += other.other
        for label, value in other.counts.items():
            merged.counts[label] = merged.counts.get(label, 0) + value
        merged._truncate()
        union = datasketches.hll_union(self.lg_k)
        union.update(self._hll)
        union.update(other._hll)
        merged._hll = union.get_result()
        return merged

    def to_dict(self) -> dict[str, object]:
        """JSON-safe summary: counts, distinct estimate and the top labels."""
        return {
            "kind": self.kind.value,
            "count": self.count,
            "missing": self.missing,
            "distinct": round(self.distinct_estimate(), 1),
            "kept_labels": len(self.counts),
            "other": self.other,
            "top": [{"label": label, "count": value} for label, value in self.top()],
        }

    def _state(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "missing": self.missing,
            "other": self.other,
            "max_labels": self.max_labels,
            "lg_k": self.lg_k,
            "labels": list(self.counts),
            "label_counts": list(self.counts.values()),
            "hll": bytes(self._hll.serialize_compact()),
        }

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> CategoricalProfile:
        profile = cls(max_labels=state["max_labels"], lg_k=state["lg_k"])
        labels, values = state["labels"], state["label_counts"]
        if (
            not isinstance(labels, list)
            or not isinstance(values, list)
            or len(labels) != len(values)
        ):
            raise InputError("categorical profile labels and counts do not match")
        if not all(isinstance(label, str) for label in labels) or len(set(labels)) != len(labels):
            raise InputError("categorical profile labels must be distinct strings")
        if len(labels) > profile.max_labels:
            raise InputError("categorical profile keeps more labels than its max_labels")
        profile.counts = {
            label: _count(value, "label count") for label, value in zip(labels, values, strict=True)
        }
        profile.count = _count(state["count"], "count")
        profile.missing = _count(state["missing"], "missing")
        profile.other = _count(state["other"], "other")
        if sum(profile.counts.values()) + profile.other + profile.missing != profile.count:
            raise InputError("categorical profile counts do not add up")
        profile._hll = datasketches.hll_sketch.deserialize(state["hll"])
        return profile


class BooleanProfile:
    """Mergeable summary of one boolean column: values seen, missing, true, invalid.

    Booleans, and numbers 0/1 are read; NaN/``None`` is missing and any other value is
    ``invalid`` (a data-quality problem, not part of the drift test).

    >>> profile = BooleanProfile.of([True, False, True, None])
    >>> profile.true_count, profile.false_count, profile.missing
    (2, 1, 1)
    """

    kind: ClassVar[ColumnKind] = ColumnKind.BOOLEAN

    __slots__ = ("count", "invalid", "missing", "true_count")

    def __init__(self) -> None:
        self.count = 0
        self.missing = 0
        self.invalid = 0
        self.true_count = 0

    @classmethod
    def of(cls, values: npt.ArrayLike | pd.Series) -> BooleanProfile:
        """Profile of ``values``."""
        profile = cls()
        profile.update(values)
        return profile

    @property
    def false_count(self) -> int:
        """Number of false values."""
        return self.count - self.missing - self.invalid - self.true_count

    @property
    def counts(self) -> dict[str, int]:
        """Counts by canonical label, ``{"0": false_count, "1": true_count}``, as
        :attr:`CategoricalProfile.counts` and :func:`watchkeeper.frame.category_counts` name
        booleans."""
        return dict(zip(BOOLEAN_LABELS, (self.false_count, self.true_count), strict=True))

    def update(self, values: npt.ArrayLike | pd.Series) -> None:
        """Fold in a batch of booleans (or 0/1 numbers; NaN/``None`` missing)."""
        array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
        if array.ndim != 1:
            raise InputError("boolean values must be one-dimensional")
        if array.dtype == np.bool_:
            self.count += int(array.size)
            self.true_count += int(np.count_nonzero(array))
            return
        series = pd.Series(array)
        missing_mask = series.isna().to_numpy()
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        true_mask = numbers == 1.0
        false_mask = numbers == 0.0
        self.count += int(array.size)
        self.missing += int(np.count_nonzero(missing_mask))
        self.true_count += int(np.count_nonzero(true_mask))
        self.invalid += int(np.count_nonzero(~(missing_mask | true_mask | false_mask)))

    def copy(self) -> BooleanProfile:
        """An independent copy."""
        twin = BooleanProfile()
        twin.count, twin.missing = self.count, self.missing
        twin.invalid, twin.true_count = self.invalid, self.true_count
        return twin

    def merge(self, other: BooleanProfile) -> BooleanProfile:
        """A new profile of both inputs' data."""
        if not isinstance(other, BooleanProfile):
            raise InputError(f"cannot merge a boolean profile with {type(other).__name__}")
        merged = self.copy()
        merged.count += other.count
        merged.missing += other.missing
        merged.invalid += other.invalid
        merged.true_count += other.true_count
        return merged

    def to_dict(self) -> dict[str, object]:
        """JSON-safe summary."""
        valid = self.true_count + self.false_count
        return {
            "kind": self.kind.value,
            "count": self.count,
            "missing": self.missing,
            "invalid": self.invalid,
            "true": self.true_count,
            "false": self.false_count,
            "true_share": self.true_count / valid if valid else None,
        }

    def _state(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "missing": self.missing,
            "invalid": self.invalid,
            "true": self.true_count,
        }

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> BooleanProfile:
        profile = cls()
        profile.count = _count(state["count"], "count")
        profile.missing = _count(state["missing"], "missing")
        profile.invalid = _count(state["invalid"], "invalid")
        profile.true_count = _count(state["true"], "true")
        if profile.false_count < 0:
            raise InputError("boolean profile counts do not add up")
        return profile
