"""Data-quality checks of a current data set against its reference.

Every check returns a :class:`QualityCheck`: the value in the reference and in the current
data, the threshold it was held to and a :class:`Verdict`. Column checks:

- ``missing_rate``        share of rows with a missing value
- ``non_numeric_share``   share of rows of a numeric column holding something that is no number
- ``infinite_share``      share of rows of a numeric column holding ±inf
- ``out_of_range_share``  share of current finite values outside [reference min, reference max]
- ``new_categories``      share of current rows whose label the reference never had
- ``constant``            a column that stopped varying

Data-set checks: ``duplicate_rows`` (tested with :mod:`watchkeeper.stats.duplicates`) and
``schema`` (missing, unexpected and re-typed columns).
Definitions, defaults and verdict rules are in ``docs/quality.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from watchkeeper.errors import EmptyDataError, InputError
from watchkeeper.frame import NumericColumn, category_counts, numeric_values
from watchkeeper.schema import ColumnKind
from watchkeeper.stats._quality_tests import (
    ValueMasses,
    constant_p_value,
    largest_new_label_p_value,
    new_category_p_value,
    out_of_range_p_value,
    rate_increase_p_value,
)
from watchkeeper.stats.duplicates import (
    REFERENCE_ROW_LIMIT,
    WINDOW_ROW_LIMIT,
    DuplicateTest,
    RowHashSample,
    duplicate_rows_test,
    fold_keys,
    frame_row_hashes,
)
from watchkeeper.stats.quality_thresholds import QualityThresholds

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "NumericSummary",
    "QualityCheck",
    "QualityThresholds",
    "ValueMasses",
    "Verdict",
    "categorical_column_quality",
    "column_quality",
    "constant_range_check",
    "dataset_quality",
    "duplicate_rows",
    "duplicate_rows_check",
    "infinite_check",
    "largest_new_label_p_value",
    "missing_rate_check",
    "new_category_check",
    "new_category_p_value",
    "non_numeric_check",
    "numeric_column_quality",
    "out_of_range_check",
    "out_of_range_p_value",
    "rate_increase_p_value",
    "schema_changes",
    "worst_verdict",
]

_EXAMPLES = 5
_NEW_LISTED = 20

# Kind pairs that inference can produce from the same stored values on cardinality alone
# (rules 5, 6 and 8 of watchkeeper.schema), so a change between them is a warning, not a break.
# A numeric column arriving as strings is caught by ``non_numeric_share`` on the column itself.
_SOFT_KIND_CHANGES = frozenset(
    {
        frozenset({ColumnKind.NUMERIC, ColumnKind.BOOLEAN}),
        frozenset({ColumnKind.NUMERIC, ColumnKind.CATEGORICAL}),
        frozenset({ColumnKind.BOOLEAN, ColumnKind.CATEGORICAL}),
        frozenset({ColumnKind.CATEGORICAL, ColumnKind.TEXT}),
    }
)


class Verdict(StrEnum):
    """Outcome of one check, ordered ``ok < warning < fail``."""

    OK = "ok"
    WARNING = "warning"
    FAIL = "fail"

    @property
    def severity(self) -> int:
        """0 for ok, 1 for warning, 2 for fail."""
        return _SEVERITY[self]


_SEVERITY = {Verdict.OK: 0, Verdict.WARNING: 1, Verdict.FAIL: 2}


def worst_verdict(checks: Iterable[QualityCheck]) -> Verdict:
    """The most severe verdict among ``checks`` (``ok`` when there are none)."""
    return max((check.verdict for check in checks), key=_SEVERITY.__getitem__, default=Verdict.OK)


@dataclass(frozen=True, slots=True)
class QualityCheck:
    """One data-quality check: values in both data sets, the threshold, the verdict.

    ``reference`` is ``None`` where the check has no reference value (the out-of-range share of
    the reference against its own range is zero by definition). ``threshold`` is the limit the
    current value was compared with, ``None`` for checks with a fixed rule. ``details`` holds
    JSON-ready extras such as counts and example labels.
    """

    name: str
    reference: float | None
    current: float
    threshold: float | None
    verdict: Verdict
    details: Mapping[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "reference": self.reference,
            "current": self.current,
            "threshold": self.threshold,
            "verdict": self.verdict.value,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NumericSummary:
    """What the numeric checks need from the reference, precomputed once.

    ``minimum`` / ``maximum`` are over the finite values; ``None`` when there are none.
    ``masses`` are the repeated finite values the ``constant`` check tests a single-valued
    current column against; without them that check fails every constant column.
    """

    rows: int
    missing: int
    non_numeric: int
    infinite: int
    minimum: float | None
    maximum: float | None
    masses: ValueMasses | None = None

    def __post_init__(self) -> None:
        counts = {
            "rows": self.rows,
            "missing": self.missing,
            "non_numeric": self.non_numeric,
            "infinite": self.infinite,
        }
        for name, count in counts.items():
            if count < 0:
                raise InputError(f"NumericSummary.{name} must be >= 0, got {count}")
        if self.missing + self.non_numeric + self.infinite > self.rows:
            raise InputError(
                f"NumericSummary counts missing + non_numeric + infinite = "
                f"{self.missing + self.non_numeric + self.infinite} exceed rows = {self.rows}"
            )
        if (self.minimum is None) != (self.maximum is None):
            raise InputError("NumericSummary needs both minimum and maximum, or neither")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise InputError(
                f"NumericSummary minimum {self.minimum} is greater than maximum {self.maximum}"
            )

    @classmethod
    def of(cls, column: NumericColumn, *, masses: bool = True) -> NumericSummary:
        """Summarise a column read with :func:`watchkeeper.frame.numeric_values`.

        ``masses=False`` leaves out the repeated values, which take a sort of the column to
        find; only a constant current column needs them.
        """
        minimum, maximum = _finite_range(column.values)
        return cls(
            rows=len(column.values),
            missing=column.missing,
            non_numeric=column.non_numeric,
            infinite=column.infinite,
            minimum=minimum,
            maximum=maximum,
            masses=ValueMasses.of(column.values[np.isfinite(column.values)]) if masses else None,
        )


def numeric_column_quality(
    reference: NumericColumn | NumericSummary,
    current: NumericColumn,
    thresholds: QualityThresholds | None = None,
    *,
    column: str | None = None,
) -> dict[str, QualityCheck]:
    """Quality checks of one numeric column: missing, non-numeric, infinite, range, constant.

    ``reference`` may be a precomputed :class:`NumericSummary` so that the reference data need
    not be kept. ``column`` only names the column in error messages. Raises
    :class:`EmptyDataError` when either side has no rows.

    >>> import numpy as np, pandas as pd
    >>> from watchkeeper.frame import numeric_values
    >>> rng = np.random.default_rng(0)
    >>> reference = numeric_values(pd.Series(rng.normal(size=1000)))
    >>> current = numeric_values(pd.Series(np.r_[rng.normal(size=990), [9.0] * 10]))
    >>> checks = numeric_column_quality(reference, current)
    >>> checks["out_of_range_share"].current, checks["out_of_range_share"].verdict.value
    (0.01, 'ok')
    """
    thresholds = thresholds or QualityThresholds()
    finite_mask = np.isfinite(current.values)
    finite_count = int(np.count_nonzero(finite_mask))
    current_min, current_max = _finite_range(current.values, finite_mask)
    if isinstance(reference, NumericSummary):
        summary = reference
    else:
        # The reference's repeated values matter only when the current column is constant.
        constant = current_min is not None and current_min == current_max
        summary = NumericSummary.of(reference, masses=constant)
    _require_rows(summary.rows, "reference", column)
    rows = len(current.values)
    _require_rows(rows, "current", column)

    return {
        "missing_rate": missing_rate_check(
            missing=(summary.missing, current.missing),
            rows=(summary.rows, rows),
            thresholds=thresholds,
        ),
        "non_numeric_share": non_numeric_check(
            non_numeric=(summary.non_numeric, current.non_numeric),
            rows=(summary.rows, rows),
            thresholds=thresholds,
        ),
        "infinite_share": infinite_check(summary.infinite / summary.rows, current.infinite / rows),
        "out_of_range_share": _out_of_range_check(
            summary, current.values, finite_mask, finite_count, thresholds
        ),
        "constant": constant_range_check(
            summary.minimum,
            summary.maximum,
            current_min,
            current_max,
            masses=summary.masses,
            current_count=finite_count,
            thresholds=thresholds,
        ),
    }


def categorical_column_quality(
    reference_counts: pd.Series,
    current_counts: pd.Series,
    *,
    reference_rows: int,
    current_rows: int,
    reference_missing: int,
    current_missing: int,
    thresholds: QualityThresholds | None = None,
    column: str | None = None,
) -> dict[str, QualityCheck]:
    """Quality checks of one categorical column: missing rate, new categories, constant.

    Counts are those of :func:`watchkeeper.frame.category_counts` (index = string label);
    labels with a zero count are treated as absent. Raises :class:`EmptyDataError` when either
    side has no rows and :class:`InputError` when counts and row numbers disagree.

    >>> import pandas as pd
    >>> reference = pd.Series([60, 40], index=["a", "b"])
    >>> current = pd.Series([50, 40, 10], index=["a", "b", "z"])
    >>> checks = categorical_column_quality(reference, current, reference_rows=100,
    ...     current_rows=100, reference_missing=0, current_missing=0)
    >>> checks["new_categories"].current, checks["new_categories"].verdict.value
    (0.1, 'fail')
    """
    thresholds = thresholds or QualityThresholds()
    reference_present = _present_counts(reference_counts)
    current_present = _present_counts(current_counts)
    for side, rows, missing, counts in (
        ("reference", reference_rows, reference_missing, reference_present),
        ("current", current_rows, current_missing, current_present),
    ):
        _require_rows(rows, side, column)
        total = int(counts.sum()) + missing
        if missing < 0 or total > rows:
            raise InputError(
                f"{_label(column)}{side}: {int(counts.sum())} counted values + {missing} missing "
                f"do not fit in {rows} rows; pass the counts and row number of the same data",
                column=column,
            )

    new_categories = new_category_check(
        reference_present,
        current_present,
        reference_rows=reference_rows,
        current_rows=current_rows,
        thresholds=thresholds,
    )
    return {
        "missing_rate": missing_rate_check(
            missing=(reference_missing, current_missing),
            rows=(reference_rows, current_rows),
            thresholds=thresholds,
        ),
        "new_categories": new_categories,
        "constant": _categorical_constant(reference_present, current_present, thresholds),
    }


def _categorical_constant(
    reference_present: pd.Series, current_present: pd.Series, thresholds: QualityThresholds
) -> QualityCheck:
    """``constant`` of a categorical column: one label now where the reference had several,
    and unlikely by chance (:func:`constant_p_value` below ``alpha``); a small window of a
    column dominated by one label is often single-valued."""
    reference_distinct = len(reference_present)
    current_distinct = len(current_present)
    verdict = _constant_verdict(reference_distinct <= 1, current_distinct <= 1)
    details: dict[str, object] = {
        "measure": "distinct labels",
        "reference_distinct": reference_distinct,
        "current_distinct": current_distinct,
    }
    if verdict is Verdict.FAIL and current_distinct == 1:
        p_value = constant_p_value(
            {str(label): int(count) for label, count in reference_present.items()},
            str(current_present.index[0]),
            int(current_present.iloc[0]),
        )
        details["p_value"] = p_value
        if p_value >= thresholds.alpha:
            verdict = Verdict.OK
    return QualityCheck(
        name="constant",
        reference=float(reference_distinct),
        current=float(current_distinct),
        threshold=None,
        verdict=verdict,
        details=details,
    )


def new_category_check(
    reference_counts: pd.Series,
    current_counts: pd.Series,
    *,
    reference_rows: int,
    current_rows: int,
    thresholds: QualityThresholds,
) -> QualityCheck:
    """Fail when more current rows carry unseen labels than the reference's own rate allows.

    ``reference_counts`` / ``current_counts`` are the positive label counts; the rows include
    missing ones. The value is the share of current rows whose label the reference never had;
    ``reference`` is the reference's own rate of such rows, the Good–Turing estimate f1 / n
    (the share of reference rows whose label occurs once). **fail** when the current share
    exceeds ``max_new_category_share`` and :func:`new_category_p_value` is below ``alpha``
    (the floor is absolute: with many rare labels the reference's own rate is too noisy to
    subtract, and the test already accounts for it); **warning** when a column whose reference
    had no rare label (no label seen once) shows new labels; **ok** otherwise. The new labels
    are always listed (``details.new_counts``, the 20 most frequent), failing or not.
    """
    is_new = ~current_counts.index.isin(reference_counts.index)
    new_counts = current_counts[is_new].sort_values(ascending=False, kind="stable")
    is_gone = ~reference_counts.index.isin(current_counts.index)
    gone_counts = reference_counts[is_gone].sort_values(ascending=False, kind="stable")
    new_rows = int(new_counts.sum())
    reference_values = reference_counts.to_numpy()
    singletons = int(np.count_nonzero(reference_values == 1))
    doubletons = int(np.count_nonzero(reference_values == 2))
    p_value = new_category_p_value(
        new_rows=new_rows,
        current_rows=int(current_counts.sum()),
        singletons=singletons,
        doubletons=doubletons,
        reference_rows=int(reference_values.sum()),
        largest_new=int(new_counts.iloc[0]) if new_rows else 0,
    )
    reference_share = singletons / reference_rows
    share = new_rows / current_rows
    if share > thresholds.max_new_category_share and p_value < thresholds.alpha:
        verdict = Verdict.FAIL
    elif new_rows > 0 and singletons == 0:
        # A column with a closed set of labels (none rare) has a new one: real news.
        verdict = Verdict.WARNING
    else:
        verdict = Verdict.OK
    return QualityCheck(
        name="new_categories",
        reference=reference_share,
        current=share,
        threshold=thresholds.max_new_category_share,
        verdict=verdict,
        details={
            "new_labels": len(new_counts),
            "new_rows": new_rows,
            "examples": [str(label) for label in new_counts.index[:_EXAMPLES]],
            "new_counts": {
                str(label): int(count) for label, count in new_counts.iloc[:_NEW_LISTED].items()
            },
            "reference_singletons": singletons,
            "p_value": p_value,
            "vanished_labels": len(gone_counts),
            "vanished_examples": [str(label) for label in gone_counts.index[:_EXAMPLES]],
        },
    )


def column_quality(
    reference: pd.Series,
    current: pd.Series,
    kind: ColumnKind,
    thresholds: QualityThresholds | None = None,
) -> dict[str, QualityCheck]:
    """The checks that fit a column of ``kind``, read from two pandas Series.

    Numeric columns get :func:`numeric_column_quality`; categorical and boolean columns
    :func:`categorical_column_quality`; datetime and text columns only ``missing_rate``.
    """
    name = str(reference.name) if reference.name is not None else None
    kind = ColumnKind(kind)
    if kind is ColumnKind.NUMERIC:
        return numeric_column_quality(
            numeric_values(reference), numeric_values(current), thresholds, column=name
        )
    reference_missing = int(reference.isna().sum())
    current_missing = int(current.isna().sum())
    if kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
        return categorical_column_quality(
            category_counts(reference),
            category_counts(current),
            reference_rows=len(reference),
            current_rows=len(current),
            reference_missing=reference_missing,
            current_missing=current_missing,
            thresholds=thresholds,
            column=name,
        )
    _require_rows(len(reference), "reference", name)
    _require_rows(len(current), "current", name)
    return {
        "missing_rate": missing_rate_check(
            missing=(reference_missing, current_missing),
            rows=(len(reference), len(current)),
            thresholds=thresholds or QualityThresholds(),
        )
    }


def duplicate_rows(frame: pd.DataFrame) -> tuple[int, float]:
    """Number and share of rows equal to an earlier row, as ``DataFrame.duplicated().sum()``.

    Each column becomes a 64-bit key that is equal exactly when pandas considers the values
    equal (float bit patterns with ``-0.0`` folded into ``0.0`` and every NaN made one NaN;
    integer, boolean and datetime bits; ``pandas.factorize`` codes for anything else). The keys
    are folded into one row hash (multiply-add, then MurmurHash3's fmix64 finaliser; Appleby
    2011), and only rows whose hash occurs more than once are candidates. Equal rows always
    share a hash, so no duplicate is missed; a candidate group is confirmed by comparing every
    column key with the group's first row, and should two different rows ever collide the
    candidates are counted exactly with ``DataFrame.duplicated``. The result is therefore
    exact; collisions only cost time.

    >>> import pandas as pd
    >>> duplicate_rows(pd.DataFrame({"a": [1.0, 1.0, float("nan"), float("nan")],
    ...                              "b": ["x", "x", None, None]}))
    (2, 0.5)
    """
    rows = len(frame)
    if rows == 0 or frame.shape[1] == 0:
        return 0, 0.0
    row_hash = _row_hash(frame)
    import pandas as pd

    candidate_mask = pd.Series(row_hash, copy=False).duplicated(keep=False).to_numpy()
    candidates = np.flatnonzero(candidate_mask)
    if len(candidates) == 0:
        return 0, 0.0
    # A stable sort keeps rows of one hash group in their original order, so the first row
    # of each group is the one that pandas keeps.
    order = candidates[np.argsort(row_hash[candidates], kind="stable")]
    sorted_hash = row_hash[order]
    starts = np.r_[True, sorted_hash[1:] != sorted_hash[:-1]]
    representative = np.flatnonzero(starts)[np.cumsum(starts) - 1]
    grouped = frame.iloc[order]
    confirmed = all(
        np.array_equal(keys, keys[representative])
        for keys in (_column_keys(grouped.iloc[:, j]) for j in range(grouped.shape[1]))
    )
    if confirmed:
        count = len(order) - int(np.count_nonzero(starts))
    else:
        count = int(frame.iloc[candidates].duplicated().sum())
    return count, count / rows


def schema_changes(
    reference_kinds: Mapping[str, ColumnKind], current_kinds: Mapping[str, ColumnKind]
) -> QualityCheck:
    """Columns missing from the current data, unexpected ones, and columns whose kind changed.

    Verdict: ``fail`` when a reference column is missing or its kind changed between
    incompatible kinds (e.g. numeric → text, anything ↔ datetime); ``warning`` for unexpected
    columns and for kind changes that inference can make from the same values on cardinality
    alone (numeric ↔ boolean ↔ categorical, categorical ↔ text); ``ok`` otherwise. The value is
    the number of affected columns.
    """
    missing = [name for name in reference_kinds if name not in current_kinds]
    unexpected = [name for name in current_kinds if name not in reference_kinds]
    changed: dict[str, dict[str, str]] = {}
    verdict = Verdict.WARNING if unexpected else Verdict.OK
    if missing:
        verdict = Verdict.FAIL
    for name, reference_kind in reference_kinds.items():
        if name not in current_kinds:
            continue
        old, new = ColumnKind(reference_kind), ColumnKind(current_kinds[name])
        if old is new:
            continue
        soft = frozenset({old, new}) in _SOFT_KIND_CHANGES
        changed[name] = {
            "reference": old.value,
            "current": new.value,
            "verdict": (Verdict.WARNING if soft else Verdict.FAIL).value,
        }
        if not soft:
            verdict = Verdict.FAIL
        elif verdict is Verdict.OK:
            verdict = Verdict.WARNING
    return QualityCheck(
        name="schema",
        reference=None,
        current=float(len(missing) + len(unexpected) + len(changed)),
        threshold=None,
        verdict=verdict,
        details={"missing": missing, "unexpected": unexpected, "changed": changed},
    )


def dataset_quality(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    reference_kinds: Mapping[str, ColumnKind],
    current_kinds: Mapping[str, ColumnKind],
    thresholds: QualityThresholds | None = None,
) -> dict[str, QualityCheck]:
    """Data-set checks: ``duplicate_rows`` and ``schema``.

    Duplicates are counted over the columns both frames have (of ``reference_kinds``) and
    tested with :func:`duplicate_rows_check` on the rows' hash samples, as the live service
    does with its windows.
    """
    thresholds = thresholds or QualityThresholds()
    shared = {
        name: kind
        for name, kind in reference_kinds.items()
        if name in current_kinds and name in reference.columns and name in current.columns
    }
    columns = list(shared)
    reference_count, reference_share = duplicate_rows(reference[columns])
    current_count, current_share = duplicate_rows(current[columns])
    if shared:
        test = duplicate_rows_test(
            RowHashSample.of(frame_row_hashes(reference, shared), limit=REFERENCE_ROW_LIMIT),
            RowHashSample.of(frame_row_hashes(current, shared), limit=WINDOW_ROW_LIMIT),
        )
        duplicates = duplicate_rows_check(test, thresholds)
        duplicates = QualityCheck(
            name=duplicates.name,
            reference=reference_share,
            current=current_share,
            threshold=duplicates.threshold,
            verdict=duplicates.verdict,
            details={
                **duplicates.details,
                "reference_count": reference_count,
                "current_count": current_count,
            },
        )
    else:
        duplicates = QualityCheck(
            name="duplicate_rows",
            reference=0.0,
            current=0.0,
            threshold=thresholds.max_duplicate_increase,
            verdict=Verdict.OK,
            details={"reason": "the two data sets share no column"},
        )
    return {"duplicate_rows": duplicates, "schema": schema_changes(reference_kinds, current_kinds)}


def duplicate_rows_check(test: DuplicateTest, thresholds: QualityThresholds) -> QualityCheck:
    """Fail when the current rows hold more duplicates than a same-size sample of the pooled
    rows would, by more than the floor and than chance (batch and live).

    The share must exceed the expected share by ``max_duplicate_increase`` and the
    permutation test (:func:`watchkeeper.stats.duplicates.duplicate_rows_test`) must have
    ``p < alpha``; a window with duplicates where the reference had none that does not fail
    is a warning. Values are shares of the tested (hash-sampled) rows.
    """
    increase = test.current_share - test.expected_share
    if increase > thresholds.max_duplicate_increase and test.p_value < thresholds.alpha:
        verdict = Verdict.FAIL
    elif test.current_duplicates > 0 and test.reference_duplicates == 0:
        verdict = Verdict.WARNING
    else:
        verdict = Verdict.OK
    return QualityCheck(
        name="duplicate_rows",
        reference=test.reference_share,
        current=test.current_share,
        threshold=thresholds.max_duplicate_increase,
        verdict=verdict,
        details={
            **test.to_dict(),
            "reference_count": test.reference_duplicates,
            "current_count": test.current_duplicates,
        },
    )


def _label(column: str | None) -> str:
    return "" if column is None else f"column {column!r}: "


def _require_rows(rows: int, side: str, column: str | None) -> None:
    if rows <= 0:
        raise EmptyDataError(
            f"{_label(column)}the {side} data has no rows; quality checks need at least one",
            column=column,
        )


def _present_counts(counts: pd.Series) -> pd.Series:
    values = counts.to_numpy()
    if len(values) and (values < 0).any():
        raise InputError("category counts must be >= 0; pass the output of category_counts")
    return counts[values > 0]


def _finite_range(
    values: npt.NDArray[np.float64], finite_mask: npt.NDArray[np.bool_] | None = None
) -> tuple[float | None, float | None]:
    mask = np.isfinite(values) if finite_mask is None else finite_mask
    if not mask.any():
        return None, None
    minimum = float(np.min(values, where=mask, initial=np.inf))
    maximum = float(np.max(values, where=mask, initial=-np.inf))
    return minimum, maximum


def missing_rate_check(
    *, missing: tuple[int, int], rows: tuple[int, int], thresholds: QualityThresholds
) -> QualityCheck:
    """Fail when the missing rate grew by more than the threshold and by more than chance.

    ``missing`` and ``rows`` are (reference, current) counts. The growth must pass
    ``max_missing_increase`` and Fisher's exact test of the increase
    (:func:`rate_increase_p_value`, ``details.p_value``) must have ``p < alpha``: a 60-row window
    of a column that is 30 % missing shows 40 % by chance often enough. A column that was
    always complete and now has gaps is a warning.
    """
    reference_rate, current_rate = missing[0] / rows[0], missing[1] / rows[1]
    p_value = rate_increase_p_value(missing, rows)
    if current_rate - reference_rate > thresholds.max_missing_increase and (
        p_value < thresholds.alpha
    ):
        verdict = Verdict.FAIL
    elif current_rate > 0.0 and reference_rate == 0.0:
        # A column that was always complete now has gaps: usually a pipeline change.
        verdict = Verdict.WARNING
    else:
        verdict = Verdict.OK
    return QualityCheck(
        name="missing_rate",
        reference=reference_rate,
        current=current_rate,
        threshold=thresholds.max_missing_increase,
        verdict=verdict,
        details={"p_value": p_value},
    )


def non_numeric_check(
    *, non_numeric: tuple[int, int], rows: tuple[int, int], thresholds: QualityThresholds
) -> QualityCheck:
    """Fail when more rows than the floor allow are not numbers, and more than by chance.

    ``non_numeric`` and ``rows`` are (reference, current) counts. The current share must pass
    ``max(max_non_numeric_share, reference share)`` and Fisher's exact test of the increase
    (:func:`rate_increase_p_value`) must have ``p < alpha``: a reference with 1 % "n/a" shows
    2 % in a 100-row window by chance. A column that had no non-numbers and now has a few
    that are not significant is a warning.
    """
    reference_share, current_share = non_numeric[0] / rows[0], non_numeric[1] / rows[1]
    limit = max(thresholds.max_non_numeric_share, reference_share)
    p_value = rate_increase_p_value(non_numeric, rows)
    if current_share > limit and p_value < thresholds.alpha:
        verdict = Verdict.FAIL
    elif non_numeric[1] > 0 and non_numeric[0] == 0:
        verdict = Verdict.WARNING
    else:
        verdict = Verdict.OK
    return QualityCheck(
        name="non_numeric_share",
        reference=reference_share,
        current=current_share,
        threshold=limit,
        verdict=verdict,
        details={"count": non_numeric[1], "p_value": p_value},
    )


def infinite_check(reference_share: float, current_share: float) -> QualityCheck:
    """Warn when the share of ±inf values grew."""
    return QualityCheck(
        name="infinite_share",
        reference=reference_share,
        current=current_share,
        threshold=None,
        verdict=Verdict.WARNING if current_share > reference_share else Verdict.OK,
    )


def _out_of_range_check(
    reference: NumericSummary,
    values: npt.NDArray[np.float64],
    finite_mask: npt.NDArray[np.bool_],
    finite_count: int,
    thresholds: QualityThresholds,
) -> QualityCheck:
    if reference.minimum is None or reference.maximum is None:
        below = above = 0
    else:
        # Comparisons with NaN are false and ±inf are excluded by the mask: finite values only.
        below = int(np.count_nonzero((values < reference.minimum) & finite_mask))
        above = int(np.count_nonzero((values > reference.maximum) & finite_mask))
    return out_of_range_check(
        below=below,
        above=above,
        finite_count=finite_count,
        reference_finite_count=(
            reference.rows - reference.missing - reference.non_numeric - reference.infinite
        ),
        reference_min=reference.minimum,
        reference_max=reference.maximum,
        thresholds=thresholds,
    )


def out_of_range_check(
    *,
    below: int,
    above: int,
    finite_count: int,
    reference_finite_count: int,
    reference_min: float | None,
    reference_max: float | None,
    thresholds: QualityThresholds,
    details: Mapping[str, object] | None = None,
) -> QualityCheck:
    """Fail when more current finite values than allowed *and than chance* lie outside the
    reference range: the share must pass ``max_out_of_range_share`` and the exact test of
    :func:`out_of_range_p_value` must be significant at ``alpha``."""
    limit = thresholds.max_out_of_range_share
    if reference_min is None or reference_max is None:
        return QualityCheck(
            name="out_of_range_share",
            reference=None,
            current=0.0,
            threshold=limit,
            verdict=Verdict.WARNING,
            details={"reason": "the reference has no finite values, so it defines no range"},
        )
    share = (below + above) / finite_count if finite_count else 0.0
    p_value = out_of_range_p_value(below + above, reference_finite_count, finite_count)
    failed = share > limit and p_value < thresholds.alpha
    return QualityCheck(
        name="out_of_range_share",
        reference=None,
        current=share,
        threshold=limit,
        verdict=Verdict.FAIL if failed else Verdict.OK,
        details={
            "below": below,
            "above": above,
            "reference_min": reference_min,
            "reference_max": reference_max,
            "p_value": p_value,
            **(details or {}),
        },
    )


def constant_range_check(
    reference_min: float | None,
    reference_max: float | None,
    current_min: float | None,
    current_max: float | None,
    *,
    masses: ValueMasses | None = None,
    current_count: int = 0,
    thresholds: QualityThresholds | None = None,
) -> QualityCheck:
    """Fail when a column that varied in the reference is constant now, and unlikely by
    chance (warn if it always was constant).

    With the reference's ``masses``, a current column of ``current_count`` finite values,
    all one value, fails only when :func:`constant_p_value` is below ``alpha``: a window of a
    column with a point mass (many zeros) is often all zeros, a continuous column that
    stopped varying never is by chance. Without ``masses`` every such column fails.
    """
    reference_range = _spread(reference_min, reference_max)
    current_range = _spread(current_min, current_max)
    details: dict[str, object] = {"measure": "range, max − min"}
    verdict = _constant_verdict(reference_range == 0.0, current_range == 0.0)
    if current_range == 0.0 and current_min is not None:
        details["value"] = current_min
        if verdict is Verdict.FAIL and masses is not None:
            p_value = masses.p_value(current_min, current_count)
            details["p_value"] = p_value
            if p_value >= (thresholds or QualityThresholds()).alpha:
                verdict = Verdict.OK
    return QualityCheck(
        name="constant",
        reference=reference_range,
        current=current_range,
        threshold=None,
        verdict=verdict,
        details=details,
    )


def _spread(minimum: float | None, maximum: float | None) -> float:
    if minimum is None or maximum is None:
        return 0.0
    return maximum - minimum


def _constant_verdict(reference_constant: bool, current_constant: bool) -> Verdict:
    if not current_constant:
        return Verdict.OK
    return Verdict.WARNING if reference_constant else Verdict.FAIL


def _row_hash(frame: pd.DataFrame) -> npt.NDArray[np.uint64]:
    return fold_keys([_column_keys(frame.iloc[:, j]) for j in range(frame.shape[1])])


def _column_keys(series: pd.Series) -> npt.NDArray[np.uint64]:
    """A fresh uint64 array, equal exactly where ``DataFrame.duplicated`` sees equal values."""
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        values = series.to_numpy()
        if dtype.kind == "f":
            # Adding 0.0 turns -0.0 into 0.0; NaN payloads differ, so every NaN becomes one.
            normalised: npt.NDArray[np.float64] = np.add(values, 0.0, dtype=np.float64)
            nan_mask = np.isnan(normalised)
            if nan_mask.any():
                normalised[nan_mask] = np.nan
            return normalised.view(np.uint64)
        if dtype.kind in "iumM":
            return values.astype(np.int64 if dtype.kind != "u" else np.uint64).view(np.uint64)
        if dtype.kind == "b":
            return values.astype(np.uint64)
    codes, _ = pd.factorize(series)
    return codes.astype(np.int64).view(np.uint64)
