"""Data-quality checks of a current profile against its reference profile.

The checks, names, thresholds and verdict rules are those of :mod:`watchkeeper.stats.quality`
(``docs/quality.md``), read off profiles instead of raw values. Out-of-range shares are exact
when the current profile shares the reference's fine bins (its two tail bins hold exactly the
values below the reference minimum and above its maximum); otherwise they are KLL estimates.
New categories are exact while the reference kept every label (no ``other`` count).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from watchkeeper.errors import EmptyDataError, SchemaError
from watchkeeper.profiles.categorical import OTHER_LABEL, BooleanProfile, CategoricalProfile
from watchkeeper.profiles.dataset import ColumnProfile, DatasetProfile
from watchkeeper.profiles.numeric import NumericProfile
from watchkeeper.stats.duplicates import duplicate_rows_test
from watchkeeper.stats.quality import (
    QualityCheck,
    QualityThresholds,
    ValueMasses,
    Verdict,
    categorical_column_quality,
    constant_range_check,
    duplicate_rows_check,
    infinite_check,
    missing_rate_check,
    non_numeric_check,
    out_of_range_check,
    worst_verdict,
)

__all__ = ["numeric_profile_quality", "quality_summary"]


def _out_of_range(
    reference: NumericProfile, current: NumericProfile, thresholds: QualityThresholds
) -> QualityCheck:
    finite = current.finite_count
    same_bins = (
        current.edges is not None
        and reference.edges is not None
        and current.edges.shape == reference.edges.shape
        and bool((current.edges == reference.edges).all())
    )
    if finite == 0 or reference.finite_count == 0:
        below = above = 0
    elif same_bins:
        counts = current.bin_counts
        below, above = int(counts[0]), int(counts[-1])
    else:
        below = round(current.rank(reference.minimum) * finite)
        above = finite - round(current.rank(reference.maximum, inclusive=True) * finite)
    has_range = reference.finite_count > 0
    return out_of_range_check(
        below=below,
        above=above,
        finite_count=finite,
        reference_finite_count=reference.finite_count,
        reference_min=reference.minimum if has_range else None,
        reference_max=reference.maximum if has_range else None,
        thresholds=thresholds,
        details={"exact": same_bins},
    )


def _range(profile: NumericProfile) -> tuple[float | None, float | None]:
    if profile.finite_count == 0:
        return None, None
    return profile.minimum, profile.maximum


def value_masses(reference: NumericProfile) -> ValueMasses | None:
    """The repeated values of a reference profile, read off its outline.

    The outline (:func:`watchkeeper.profiles._cdf.outline`) keeps the exact CDF at its points,
    so a point's count is exact. Its points are chosen evenly in a coordinate that gives each
    value at least half its rank share, so a value held by c of n values has a point of its
    own once (c - 1) / 2(n - 1) exceeds the spacing 1 / (p - 1) of the p outline points: any
    value not listed occurs at most 1 + 2(n - 1) / (p - 1) times, and at most once when
    n <= p (the outline then keeps every value). ``None`` without an outline (a profile
    from an older release, or a merged one).
    """
    cdf = reference.outline
    total = reference.finite_count
    if cdf is None or total == 0:
        return None
    counts = np.rint((cdf.right - cdf.left) * total).astype(np.int64)
    repeated = counts >= 2
    masses = dict(zip(cdf.points[repeated].tolist(), counts[repeated].tolist(), strict=True))
    points = max(reference.outline_points, 2)
    # As in the batch check (ValueMasses.of), values seen once are not listed.
    unlisted_max = 1 if total <= points else 2 + (2 * (total - 1)) // (points - 1)
    return ValueMasses(counts=masses, total=total, unlisted_max=unlisted_max)


def numeric_profile_quality(
    reference: NumericProfile,
    current: NumericProfile,
    thresholds: QualityThresholds | None = None,
) -> dict[str, QualityCheck]:
    """Missing, non-numeric, infinite, out-of-range and constant checks of a numeric column."""
    thresholds = thresholds or QualityThresholds()
    ref_rows, cur_rows = reference.count, current.count
    return {
        "missing_rate": missing_rate_check(
            missing=(reference.missing, current.missing),
            rows=(ref_rows, cur_rows),
            thresholds=thresholds,
        ),
        "non_numeric_share": non_numeric_check(
            non_numeric=(reference.non_numeric, current.non_numeric),
            rows=(ref_rows, cur_rows),
            thresholds=thresholds,
        ),
        "infinite_share": infinite_check(
            reference.infinite / ref_rows, current.infinite / cur_rows
        ),
        "out_of_range_share": _out_of_range(reference, current, thresholds),
        "constant": constant_range_check(
            *_range(reference),
            *_range(current),
            masses=value_masses(reference),
            current_count=current.finite_count,
            thresholds=thresholds,
        ),
    }


def _label_counts(profile: CategoricalProfile | BooleanProfile) -> pd.Series:
    counts = dict(profile.counts)
    if isinstance(profile, CategoricalProfile) and profile.other:
        counts[OTHER_LABEL] = profile.other
    return pd.Series(
        list(counts.values()), index=pd.Index(list(counts), dtype=object), dtype="int64"
    )


def _column_checks(
    name: str,
    reference: ColumnProfile,
    current: ColumnProfile,
    thresholds: QualityThresholds,
) -> dict[str, QualityCheck]:
    for side, profile in (("reference", reference), ("current", current)):
        if profile.count == 0:
            raise EmptyDataError(
                f"column {name!r}: the {side} profile has no rows; quality checks need rows",
                column=name,
            )
    if isinstance(reference, NumericProfile) and isinstance(current, NumericProfile):
        return numeric_profile_quality(reference, current, thresholds)
    if isinstance(reference, NumericProfile) or isinstance(current, NumericProfile):
        raise SchemaError(f"column {name!r} changed kind between the profiles", column=name)
    checks = categorical_column_quality(
        _label_counts(reference),
        _label_counts(current),
        reference_rows=reference.count,
        current_rows=current.count,
        reference_missing=reference.missing,
        current_missing=current.missing,
        thresholds=thresholds,
        column=name,
    )
    if isinstance(reference, CategoricalProfile):
        # Labels folded into the reference's "other" count may look new: say so.
        new = checks["new_categories"]
        checks["new_categories"] = QualityCheck(
            name=new.name,
            reference=new.reference,
            current=new.current,
            threshold=new.threshold,
            verdict=new.verdict,
            details={**new.details, "exact": not reference.truncated},
        )
    return checks


def quality_summary(
    reference: DatasetProfile,
    current: DatasetProfile,
    thresholds: QualityThresholds | None = None,
) -> dict[str, object]:
    """Data-quality checks of every reference column in ``current``, JSON-ready.

    Returns ``{"verdict", "rows": {"reference", "current"}, "columns": {name: {"verdict",
    "checks": {check: QualityCheck.to_dict()}}}, "dataset": {"duplicate_rows": ...}}``; a
    column absent from ``current`` fails a ``present`` check. ``duplicate_rows`` is there when
    both profiles carry row hashes (the test of the batch report, on the same samples).

    >>> import numpy as np
    >>> from watchkeeper.profiles import DatasetProfile, NumericProfile
    >>> reference = NumericProfile.of(np.arange(100.0))
    >>> current = NumericProfile.of(np.r_[np.arange(95.0), [500.0] * 5], edges=reference.edges)
    >>> summary = quality_summary(DatasetProfile(rows=100, columns={"x": reference}),
    ...                           DatasetProfile(rows=100, columns={"x": current}))
    >>> summary["columns"]["x"]["checks"]["out_of_range_share"]["current"]
    0.05
    """
    thresholds = thresholds or QualityThresholds()
    columns: dict[str, object] = {}
    verdicts: list[Verdict] = []
    for name, ref_profile in reference.columns.items():
        cur_profile = current.columns.get(name)
        if cur_profile is None:
            checks = {
                "present": QualityCheck(
                    name="present",
                    reference=1.0,
                    current=0.0,
                    threshold=None,
                    verdict=Verdict.FAIL,
                    details={"reason": "the column is missing from the current profile"},
                )
            }
        else:
            checks = _column_checks(name, ref_profile, cur_profile, thresholds)
        verdict = worst_verdict(checks.values())
        verdicts.append(verdict)
        columns[name] = {
            "verdict": verdict.value,
            "checks": {check_name: check.to_dict() for check_name, check in checks.items()},
        }
    dataset: dict[str, object] = {}
    if reference.row_hashes is not None and current.row_hashes is not None and current.rows:
        duplicates = duplicate_rows_check(
            duplicate_rows_test(reference.row_hashes, current.row_hashes), thresholds
        )
        verdicts.append(duplicates.verdict)
        dataset["duplicate_rows"] = duplicates.to_dict()
    overall = max(verdicts, key=lambda verdict: verdict.severity, default=Verdict.OK)
    return {
        "verdict": overall.value,
        "rows": {"reference": reference.rows, "current": current.rows},
        "columns": columns,
        "dataset": dataset,
    }
