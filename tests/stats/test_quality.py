"""Data-quality checks: verdict rules, exact counts, and duplicate rows equal to pandas."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchkeeper.errors import ConfigError, EmptyDataError, InputError
from watchkeeper.frame import NumericColumn, category_counts, numeric_values
from watchkeeper.schema import ColumnKind
from watchkeeper.stats import quality
from watchkeeper.stats.quality import (
    NumericSummary,
    QualityCheck,
    QualityThresholds,
    Verdict,
    categorical_column_quality,
    column_quality,
    dataset_quality,
    duplicate_rows,
    numeric_column_quality,
    out_of_range_p_value,
    schema_changes,
    worst_verdict,
)


def numeric(values: list[object]) -> NumericColumn:
    as_text = any(isinstance(value, str) for value in values)
    return numeric_values(pd.Series(values, dtype=object if as_text else float))


# --- thresholds and result objects -------------------------------------------------------------


def test_thresholds_defaults_are_documented_values() -> None:
    assert QualityThresholds().to_dict() == {
        "max_missing_increase": 0.05,
        "max_non_numeric_share": 0.0,
        "max_out_of_range_share": 0.01,
        "max_new_category_share": 0.01,
        "max_duplicate_increase": 0.05,
        "alpha": 0.05,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_missing_increase", -0.1),
        ("max_out_of_range_share", 1.5),
        ("max_new_category_share", math.nan),
        ("max_duplicate_increase", True),
        ("max_non_numeric_share", "0.1"),
    ],
)
def test_thresholds_reject_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field) as caught:
        QualityThresholds(**{field: value})  # type: ignore[arg-type]
    assert caught.value.key == field


def test_thresholds_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        QualityThresholds(0.1)  # type: ignore[call-arg]


def test_check_to_dict_is_json_ready() -> None:
    check = QualityCheck(
        name="new_categories",
        reference=None,
        current=0.25,
        threshold=0.01,
        verdict=Verdict.FAIL,
        details={"examples": ["z"]},
    )
    assert orjson.loads(orjson.dumps(check.to_dict())) == {
        "name": "new_categories",
        "reference": None,
        "current": 0.25,
        "threshold": 0.01,
        "verdict": "fail",
        "details": {"examples": ["z"]},
    }


def test_worst_verdict_orders_ok_warning_fail() -> None:
    def check(verdict: Verdict) -> QualityCheck:
        return QualityCheck(name="x", reference=0.0, current=0.0, threshold=None, verdict=verdict)

    assert worst_verdict([]) is Verdict.OK
    assert worst_verdict([check(Verdict.WARNING), check(Verdict.OK)]) is Verdict.WARNING
    assert worst_verdict([check(Verdict.OK), check(Verdict.FAIL), check(Verdict.WARNING)]) is (
        Verdict.FAIL
    )


# --- numeric columns ---------------------------------------------------------------------------


def test_missing_rate_verdicts() -> None:
    reference = numeric([1.0, 2.0, None, 4.0] * 25)  # 25 % missing
    within = numeric([1.0, None, None, 4.0, 5.0, 6.0, None, 8.0, 9.0, 10.0] * 10)  # 30 %
    beyond = numeric([None, None, 3.0, 4.0] * 25)  # 50 %
    checks_within = numeric_column_quality(reference, within)
    assert checks_within["missing_rate"].reference == 0.25
    assert checks_within["missing_rate"].current == pytest.approx(0.3)
    assert checks_within["missing_rate"].verdict is Verdict.OK
    assert numeric_column_quality(reference, beyond)["missing_rate"].verdict is Verdict.FAIL

    complete = numeric([1.0, 2.0, 3.0, 4.0] * 25)
    few_gaps = numeric([1.0] * 99 + [None])
    assert numeric_column_quality(complete, few_gaps)["missing_rate"].verdict is Verdict.WARNING


def test_non_numeric_values_fail_unless_the_reference_had_as_many() -> None:
    reference = numeric(["1", "2", "3", "4"] * 25)
    current = numeric(["1", "2", "n/a", "4"] * 25)
    check = numeric_column_quality(reference, current)["non_numeric_share"]
    assert (check.reference, check.current, check.verdict) == (0.0, 0.25, Verdict.FAIL)
    assert check.details == {"count": 25, "p_value": pytest.approx(5.363437730476e-09)}
    same_as_reference = numeric_column_quality(current, current)["non_numeric_share"]
    assert same_as_reference.verdict is Verdict.OK
    assert same_as_reference.threshold == 0.25
    lenient = QualityThresholds(max_non_numeric_share=0.3)
    # Within the floor: no failure, but a column that had no non-numbers now has some.
    assert numeric_column_quality(reference, current, lenient)["non_numeric_share"].verdict is (
        Verdict.WARNING
    )


def test_out_of_range_counts_only_finite_current_values() -> None:
    reference = numeric_values(pd.Series([0.0, 1.0, 2.0, math.nan, math.inf]))
    current = numeric_values(
        pd.Series([-0.5, 0.0, 2.0, 2.5, 3.0, math.nan, math.inf, -math.inf, 1.0, 1.5])
    )
    check = numeric_column_quality(reference, current)["out_of_range_share"]
    # finite current values: -0.5, 0, 2, 2.5, 3, 1, 1.5 → 1 below, 2 above, out of 7
    assert check.current == pytest.approx(3 / 7)
    # 3 of 7 beyond the extremes of 3 reference values happens by chance 2 times in 3.
    assert check.details == {
        "below": 1,
        "above": 2,
        "reference_min": 0.0,
        "reference_max": 2.0,
        "p_value": pytest.approx(out_of_range_p_value(3, 3, 7)),
    }
    assert check.reference is None
    assert check.verdict is Verdict.OK
    many = numeric_values(pd.Series(np.linspace(0.0, 2.0, 200)))
    shifted = numeric_values(pd.Series(np.linspace(1.0, 3.0, 50)))
    failed = numeric_column_quality(many, shifted)["out_of_range_share"]
    assert failed.details["p_value"] < 1e-10
    assert failed.verdict is Verdict.FAIL


@pytest.mark.parametrize(("n", "m"), [(2, 1), (3, 4), (5, 5), (20, 7)])
def test_out_of_range_p_value_is_exact(n: int, m: int) -> None:
    """Against every arrangement of n reference and m current values in sorted order."""
    from itertools import combinations

    arrangements = list(combinations(range(n + m), n))
    outside = []
    for reference_positions in arrangements:
        low, high = min(reference_positions), max(reference_positions)
        outside.append(low + (n + m - 1 - high))
    for k in range(m + 2):
        exact = sum(count >= k for count in outside) / len(arrangements)
        assert out_of_range_p_value(k, n, m) == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize("size", [100, 300, 1000])
def test_rate_checks_false_alarm_rate_on_identical_data(size: int) -> None:
    """Out-of-range and missing rate on two samples of one population fail at most at alpha."""
    rng = np.random.default_rng(size)
    reps, out_of_range, missing = 1000, 0, 0
    for _ in range(reps):
        values = rng.lognormal(size=(2, size))
        values[rng.random((2, size)) < 0.3] = np.nan
        reference, current = (
            numeric_values(pd.Series(values[0])),
            numeric_values(pd.Series(values[1])),
        )
        checks = numeric_column_quality(reference, current)
        out_of_range += checks["out_of_range_share"].verdict is Verdict.FAIL
        missing += checks["missing_rate"].verdict is Verdict.FAIL
    assert out_of_range / reps <= 0.06
    assert missing / reps <= 0.06


def test_out_of_range_within_threshold_is_ok() -> None:
    rng = np.random.default_rng(3)
    reference = numeric_values(pd.Series(rng.uniform(0.0, 1.0, 10_000)))
    current = numeric_values(pd.Series(np.r_[rng.uniform(0.1, 0.9, 9_950), np.full(50, 5.0)]))
    check = numeric_column_quality(reference, current)["out_of_range_share"]
    assert check.current == pytest.approx(0.005)
    assert check.verdict is Verdict.OK


def test_reference_without_finite_values_gives_no_range() -> None:
    reference = numeric_values(pd.Series([math.nan, math.inf]))
    current = numeric_values(pd.Series([1.0, 2.0]))
    check = numeric_column_quality(reference, current)["out_of_range_share"]
    assert check.verdict is Verdict.WARNING
    assert "no finite values" in str(check.details["reason"])


def test_infinite_share_warns_on_an_increase() -> None:
    reference = numeric_values(pd.Series([1.0, 2.0, 3.0, 4.0]))
    current = numeric_values(pd.Series([1.0, math.inf, 3.0, 4.0]))
    assert numeric_column_quality(reference, current)["infinite_share"].verdict is Verdict.WARNING
    assert numeric_column_quality(current, current)["infinite_share"].verdict is Verdict.OK


@pytest.mark.parametrize(
    ("reference", "current", "verdict"),
    [
        (list(range(100)), [2.0, 2.0, 2.0, 2.0, math.nan], Verdict.FAIL),
        # Two equal values of a three-value reference: likely by chance (p = 0.3).
        ([1.0, 2.0, 3.0], [2.0, 2.0, math.nan], Verdict.OK),
        ([1.0, 2.0, 3.0], [math.nan, math.nan, math.nan], Verdict.FAIL),
        ([5.0, 5.0, 5.0], [5.0, 5.0, 5.0], Verdict.WARNING),
        ([5.0, 5.0, 5.0], [5.0, 6.0, 5.0], Verdict.OK),
        ([1.0, 2.0, 3.0], [1.0, 2.0, math.inf], Verdict.OK),
    ],
)
def test_numeric_constant_column(
    reference: list[float], current: list[float], verdict: Verdict
) -> None:
    check = numeric_column_quality(
        numeric_values(pd.Series(reference)), numeric_values(pd.Series(current))
    )["constant"]
    assert check.verdict is verdict


def test_constant_check_reports_ranges_and_the_value() -> None:
    check = numeric_column_quality(
        numeric_values(pd.Series([1.0, 4.0])), numeric_values(pd.Series([2.5, 2.5]))
    )["constant"]
    assert (check.reference, check.current, check.details["value"]) == (3.0, 0.0, 2.5)
    assert check.details["measure"] == "range, max − min"
    # 2.5 is unlisted, so taken to occur once: C(3, 2) / C(4, 2) of the pooled values.
    assert check.details["p_value"] == pytest.approx(0.5)


def test_empty_columns_raise() -> None:
    empty = numeric_values(pd.Series([], dtype=float))
    full = numeric_values(pd.Series([1.0]))
    with pytest.raises(EmptyDataError, match="current"):
        numeric_column_quality(full, empty, column="age")
    with pytest.raises(EmptyDataError, match="reference") as caught:
        numeric_column_quality(empty, full, column="age")
    assert caught.value.column == "age"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rows": -1}, "rows"),
        ({"missing": 5}, "exceed rows"),
        ({"minimum": 1.0, "maximum": None}, "both"),
        ({"minimum": 2.0, "maximum": 1.0}, "greater"),
    ],
)
def test_numeric_summary_is_validated(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "rows": 4,
        "missing": 0,
        "non_numeric": 0,
        "infinite": 0,
        "minimum": 0.0,
        "maximum": 1.0,
    }
    values.update(kwargs)
    with pytest.raises(InputError, match=message):
        NumericSummary(**values)  # type: ignore[arg-type]


finite_or_special = st.one_of(
    st.floats(-1e6, 1e6),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)


@settings(max_examples=60, deadline=None)
@given(
    reference=st.lists(finite_or_special, min_size=1, max_size=40),
    current=st.lists(finite_or_special, min_size=1, max_size=40),
)
def test_precomputed_summary_gives_the_same_checks(
    reference: list[float], current: list[float]
) -> None:
    reference_column = numeric_values(pd.Series(reference, dtype=float))
    current_column = numeric_values(pd.Series(current, dtype=float))
    direct = numeric_column_quality(reference_column, current_column)
    from_summary = numeric_column_quality(NumericSummary.of(reference_column), current_column)
    assert {k: v.to_dict() for k, v in direct.items()} == {
        k: v.to_dict() for k, v in from_summary.items()
    }
    finite_reference = [v for v in reference if math.isfinite(v)]
    finite_current = [v for v in current if math.isfinite(v)]
    if finite_reference and finite_current:
        outside = sum(
            1 for v in finite_current if v < min(finite_reference) or v > max(finite_reference)
        )
        assert direct["out_of_range_share"].current == pytest.approx(outside / len(finite_current))


# --- categorical columns -----------------------------------------------------------------------


def categorical_checks(
    reference: pd.Series, current: pd.Series, thresholds: QualityThresholds | None = None
) -> dict[str, QualityCheck]:
    return categorical_column_quality(
        category_counts(reference),
        category_counts(current),
        reference_rows=len(reference),
        current_rows=len(current),
        reference_missing=int(reference.isna().sum()),
        current_missing=int(current.isna().sum()),
        thresholds=thresholds,
    )


def test_new_categories_share_examples_and_vanished_labels() -> None:
    reference = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    current = pd.Series(["a"] * 80 + ["x"] * 6 + ["y"] * 3 + ["z"] * 1 + [None] * 10)
    check = categorical_checks(reference, current)["new_categories"]
    assert check.current == pytest.approx(0.10)
    assert check.verdict is Verdict.FAIL
    assert check.details == {
        "new_labels": 3,
        "new_rows": 10,
        "examples": ["x", "y", "z"],
        "new_counts": {"x": 6, "y": 3, "z": 1},
        "reference_singletons": 0,
        "p_value": pytest.approx(0.000861627703219),
        "vanished_labels": 2,
        "vanished_examples": ["b", "c"],
    }


def test_few_new_categories_warn_and_none_is_ok() -> None:
    reference = pd.Series(["a", "b"] * 500)
    few_new = pd.Series(["a", "b"] * 499 + ["new", "b"])
    assert categorical_checks(reference, few_new)["new_categories"].verdict is Verdict.WARNING
    assert categorical_checks(reference, reference)["new_categories"].verdict is Verdict.OK


def test_labels_are_matched_as_strings() -> None:
    reference = pd.Series([1, 2, 3, 1])
    current = pd.Series(["1", "2", "3", "3"])
    assert categorical_checks(reference, current)["new_categories"].current == 0.0


def test_unused_pandas_categories_are_not_labels() -> None:
    reference = pd.Series(pd.Categorical(["a", "b", "a"], categories=["a", "b", "ghost"]))
    current = pd.Series(pd.Categorical(["a", "a", "a"], categories=["a", "b", "ghost"]))
    checks = categorical_checks(reference, current)
    details = checks["constant"].details
    assert (details["reference_distinct"], details["current_distinct"]) == (2, 1)
    # Three rows of one label out of a 2:1 column are not evidence (docs/quality.md).
    assert checks["constant"].verdict is Verdict.OK
    assert details["p_value"] == pytest.approx(0.5)
    assert checks["new_categories"].details["vanished_examples"] == ["b"]


def test_categorical_missing_rate_and_constant_in_both() -> None:
    reference = pd.Series(["a"] * 10)
    current = pd.Series(["a"] * 5 + [None] * 5)
    checks = categorical_checks(reference, current)
    assert checks["missing_rate"].current == 0.5
    assert checks["missing_rate"].verdict is Verdict.FAIL
    assert checks["constant"].verdict is Verdict.WARNING


def test_categorical_counts_must_fit_the_rows() -> None:
    counts = pd.Series([5, 5], index=["a", "b"])
    with pytest.raises(InputError, match="do not fit in 8 rows"):
        categorical_column_quality(
            counts,
            counts,
            reference_rows=10,
            current_rows=8,
            reference_missing=0,
            current_missing=0,
        )
    with pytest.raises(EmptyDataError):
        categorical_column_quality(
            counts.iloc[:0],
            counts,
            reference_rows=0,
            current_rows=10,
            reference_missing=0,
            current_missing=0,
        )


def test_column_quality_picks_checks_by_kind() -> None:
    numbers = pd.Series([1.0, 2.0, 3.0], name="x")
    labels = pd.Series(["a", "b", "a"], name="y")
    assert set(column_quality(numbers, numbers, ColumnKind.NUMERIC)) == {
        "missing_rate",
        "non_numeric_share",
        "infinite_share",
        "out_of_range_share",
        "constant",
    }
    assert set(column_quality(labels, labels, ColumnKind.CATEGORICAL)) == {
        "missing_rate",
        "new_categories",
        "constant",
    }
    flags = pd.Series([True, False, None], name="flag")
    assert column_quality(flags, flags, ColumnKind.BOOLEAN)["new_categories"].current == 0.0
    text = pd.Series(["free text", None, "more"], name="note")
    only = column_quality(text, text, ColumnKind.TEXT)
    assert list(only) == ["missing_rate"]
    assert only["missing_rate"].current == pytest.approx(1 / 3)


# --- duplicate rows ----------------------------------------------------------------------------


def test_duplicate_rows_docstring_case() -> None:
    frame = pd.DataFrame({"a": [1.0, 1.0, math.nan, math.nan], "b": ["x", "x", None, None]})
    assert duplicate_rows(frame) == (2, 0.5)


def test_negative_zero_and_nan_payloads_equal_as_in_pandas() -> None:
    other_nan = np.array([0x7FF8000000000001], dtype=np.uint64).view(np.float64)[0]
    frame = pd.DataFrame({"a": [0.0, -0.0, math.nan, other_nan, 1.0]})
    assert int(frame.duplicated().sum()) == 2
    assert duplicate_rows(frame) == (2, 0.4)


def test_hash_collision_is_resolved_exactly() -> None:
    # With integer keys k, the combined hash is k0·M + k1 (mod 2**64) before the bijective
    # finaliser, so (0, 0) and (1, -M) collide while being different rows.
    multiplier = 0x9E3779B97F4A7C15  # the multiplier of watchkeeper.stats.duplicates.fold_keys
    colliding = np.array([2**64 - multiplier], dtype=np.uint64).view(np.int64)[0]
    frame = pd.DataFrame({"a": [0, 1, 0, 1], "b": np.array([0, colliding, 0, 5], dtype=np.int64)})
    row_hash = quality._row_hash(frame)
    assert row_hash[0] == row_hash[1]
    assert duplicate_rows(frame) == (1, 0.25)
    assert frame.duplicated().sum() == 1


def test_duplicate_rows_of_empty_frames() -> None:
    assert duplicate_rows(pd.DataFrame({"a": []})) == (0, 0.0)
    assert duplicate_rows(pd.DataFrame(index=range(3))) == (0, 0.0)


def mixed_frame(seed: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 3, rows)
    floats = rng.choice([0.0, -0.0, 1.5, math.nan, math.inf], rows)
    frame = pd.DataFrame(
        {
            "float": floats,
            "float32": floats.astype(np.float32),
            "int": small.astype(np.int16),
            "uint": small.astype(np.uint64),
            "bool": small > 0,
            "text": rng.choice(np.array(["a", "b", None], dtype=object), rows),
            "mixed": rng.choice(np.array([1, 1.0, "1", None, math.nan], dtype=object), rows),
            "category": pd.Categorical(rng.choice(["p", "q"], rows)),
            "when": pd.to_datetime(rng.integers(0, 2, rows), unit="D"),
            "nullable": pd.Series(small).mask(small == 2).astype("Int64"),
            "aware": pd.to_datetime(rng.integers(0, 2, rows), unit="D", utc=True),
        }
    )
    return frame.iloc[:, rng.permutation(frame.shape[1])[: rng.integers(1, frame.shape[1] + 1)]]


@pytest.mark.parametrize("seed", range(40))
def test_duplicate_rows_equal_pandas_on_mixed_dtypes(seed: int) -> None:
    frame = mixed_frame(seed, rows=int(np.random.default_rng(seed).integers(1, 300)))
    expected = int(frame.duplicated().sum())
    assert duplicate_rows(frame) == (expected, expected / len(frame))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([0.0, -0.0, 1.0, math.nan, -math.inf]),
            st.integers(-2, 2),
            st.sampled_from(["a", "b", None]),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_duplicate_rows_property(rows: list[tuple[float, int, str | None]]) -> None:
    frame = pd.DataFrame(rows, columns=["f", "i", "s"])
    count, share = duplicate_rows(frame)
    assert count == int(frame.duplicated().sum())
    assert share == count / len(frame)


def test_duplicate_rows_on_a_large_float_frame_equal_pandas() -> None:
    rng = np.random.default_rng(11)
    data = rng.normal(size=(50_000, 8))
    data[rng.integers(0, 50_000, 2_000)] = data[rng.integers(0, 50_000, 2_000)]
    frame = pd.DataFrame(data, columns=[f"c{i}" for i in range(8)])
    count, _ = duplicate_rows(frame)
    assert count == int(frame.duplicated().sum())
    assert count > 1_500


# --- schema and data-set checks ----------------------------------------------------------------


def test_schema_without_changes_is_ok() -> None:
    kinds = {"a": ColumnKind.NUMERIC, "b": ColumnKind.CATEGORICAL}
    check = schema_changes(kinds, dict(kinds))
    assert (check.current, check.verdict) == (0.0, Verdict.OK)
    assert check.details == {"missing": [], "unexpected": [], "changed": {}}


def test_schema_missing_unexpected_and_changed_columns() -> None:
    reference = {
        "age": ColumnKind.NUMERIC,
        "city": ColumnKind.CATEGORICAL,
        "income": ColumnKind.NUMERIC,
        "gone": ColumnKind.BOOLEAN,
    }
    current = {
        "age": ColumnKind.TEXT,
        "city": ColumnKind.CATEGORICAL,
        "income": ColumnKind.CATEGORICAL,
        "extra": ColumnKind.NUMERIC,
    }
    check = schema_changes(reference, current)
    assert check.verdict is Verdict.FAIL
    assert check.current == 4.0
    assert check.details == {
        "missing": ["gone"],
        "unexpected": ["extra"],
        "changed": {
            "age": {"reference": "numeric", "current": "text", "verdict": "fail"},
            "income": {"reference": "numeric", "current": "categorical", "verdict": "warning"},
        },
    }


@pytest.mark.parametrize(
    ("current", "verdict"),
    [
        ({"a": ColumnKind.NUMERIC, "b": ColumnKind.NUMERIC}, Verdict.WARNING),
        ({"a": ColumnKind.BOOLEAN}, Verdict.WARNING),
        ({"a": ColumnKind.DATETIME}, Verdict.FAIL),
        ({}, Verdict.FAIL),
    ],
)
def test_schema_verdicts(current: dict[str, ColumnKind], verdict: Verdict) -> None:
    assert schema_changes({"a": ColumnKind.NUMERIC}, current).verdict is verdict


def test_dataset_quality_duplicate_verdicts() -> None:
    kinds = {"a": ColumnKind.NUMERIC}
    unique = pd.DataFrame({"a": np.arange(100.0)})
    few_duplicates = pd.DataFrame({"a": np.r_[np.arange(98.0), [0.0, 1.0]]})
    # New values (as a continuous column would have), one of them copied ten times.
    many_duplicates = pd.DataFrame({"a": np.r_[np.arange(500.0, 590.0), np.full(10, 500.0)]})
    checks = dataset_quality(unique, few_duplicates, reference_kinds=kinds, current_kinds=kinds)
    assert set(checks) == {"duplicate_rows", "schema"}
    duplicates = checks["duplicate_rows"]
    assert (duplicates.reference, duplicates.current, duplicates.verdict) == (
        0.0,
        0.02,
        Verdict.WARNING,
    )
    assert (duplicates.details["reference_count"], duplicates.details["current_count"]) == (0, 2)
    assert duplicates.details["exact"] is True
    many = dataset_quality(unique, many_duplicates, reference_kinds=kinds, current_kinds=kinds)
    assert many["duplicate_rows"].verdict is Verdict.FAIL
    same = dataset_quality(
        many_duplicates, many_duplicates, reference_kinds=kinds, current_kinds=kinds
    )
    assert same["duplicate_rows"].verdict is Verdict.OK
    # The counts and the test are over the columns both frames have.
    extra = many_duplicates.assign(row_id=np.arange(100))
    wider = dataset_quality(unique, extra, reference_kinds=kinds, current_kinds=kinds)
    assert wider["duplicate_rows"].verdict is Verdict.FAIL
