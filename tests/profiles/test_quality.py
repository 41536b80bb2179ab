"""quality_summary from profiles agrees with watchkeeper.stats.quality on the raw data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from watchkeeper.profiles import DatasetProfile, NumericProfile, profile_frame, quality_summary
from watchkeeper.schema import infer_schema
from watchkeeper.stats.quality import column_quality


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(9)
    reference = pd.DataFrame(
        {
            "x": rng.normal(size=1000),
            "c": rng.choice(list("abc"), 1000),
            "b": rng.random(1000) < 0.4,
        }
    )
    x = rng.normal(0.5, 1.5, size=1000)
    x[:80] = np.nan
    x[80:83] = np.inf
    colours = rng.choice(list("abcz"), 1000).astype(object)
    colours[:10] = None
    current = pd.DataFrame({"x": x, "c": colours, "b": rng.random(1000) < 0.4})
    return reference, current


def test_checks_equal_raw_data_checks() -> None:
    reference_frame, current_frame = frames()
    schema = infer_schema(reference_frame)
    reference = profile_frame(reference_frame, schema)
    current = profile_frame(current_frame, schema, reference=reference)
    summary = quality_summary(reference, current)
    columns = summary["columns"]
    assert isinstance(columns, dict)
    for name, kind in schema.kinds.items():
        expected = column_quality(reference_frame[name], current_frame[name], kind)
        checks = columns[name]["checks"]
        assert set(checks) == set(expected)
        for check_name, check in expected.items():
            got = checks[check_name]
            assert got["verdict"] == check.verdict.value, (name, check_name)
            assert got["current"] == pytest.approx(check.current), (name, check_name)
    assert summary["verdict"] == "fail"
    assert columns["x"]["checks"]["out_of_range_share"]["details"]["exact"] is True


def test_out_of_range_estimated_without_shared_edges() -> None:
    reference = NumericProfile.of(np.arange(1000.0))
    current = NumericProfile.of(np.r_[np.arange(900.0), np.full(100, 5000.0)])
    summary = quality_summary(
        DatasetProfile(rows=1000, columns={"x": reference}),
        DatasetProfile(rows=1000, columns={"x": current}),
    )
    check = summary["columns"]["x"]["checks"]["out_of_range_share"]  # type: ignore[index]
    assert check["current"] == pytest.approx(0.1, abs=0.02)
    assert check["details"]["exact"] is False
    assert check["verdict"] == "fail"


def test_missing_column_fails() -> None:
    reference = DatasetProfile(rows=1, columns={"x": NumericProfile.of(np.array([1.0]))})
    summary = quality_summary(reference, DatasetProfile(rows=1, columns={}))
    assert summary["verdict"] == "fail"
