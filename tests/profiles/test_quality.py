"""quality_summary from profiles agrees with watchkeeper.stats.quality on the raw data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from watchkeeper.profiles import DatasetProfile, NumericProfile, profile_frame, quality_summary
from watchkeeper.schema import Schema, infer_schema
from watchkeeper.stats.quality import QualityThresholds, column_quality


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


def scenario(seed: int, *, shifted: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rare Zipf labels, missing values, non-numbers and out-of-range values on both sides."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 301) ** 1.1
    weights /= weights.sum()

    def frame(rows: int, *, shift: bool) -> pd.DataFrame:
        x = rng.lognormal(size=rows).astype(object)
        x[rng.random(rows) < 0.1] = None
        x[rng.random(rows) < (0.08 if shift else 0.02)] = "n/a"
        labels = np.array([f"l{v}" for v in rng.choice(300, rows, p=weights)], dtype=object)
        labels[rng.random(rows) < 0.05] = None
        if shift:
            labels[: rows // 5] = "brand-new"
            x[rows // 5 : rows // 4] = 1e6
        return pd.DataFrame({"x": x, "c": labels})

    return frame(400, shift=False), frame(150, shift=shifted)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "thresholds",
    [None, QualityThresholds(alpha=0.2, max_new_category_share=0.0, max_out_of_range_share=0.0)],
)
def test_batch_and_live_give_the_same_verdicts(
    seed: int, thresholds: QualityThresholds | None
) -> None:
    """stats.quality on raw values and profiles.quality on profiles: same values and verdicts."""
    for shifted in (False, True):
        reference_frame, current_frame = scenario(seed, shifted=shifted)
        overrides = Schema.from_options(numeric=["x"], categorical=["c"])
        schema = infer_schema(reference_frame, overrides)
        reference = profile_frame(reference_frame, schema)
        current = profile_frame(current_frame, schema, reference=reference)
        columns = quality_summary(reference, current, thresholds)["columns"]
        assert isinstance(columns, dict)
        for name, kind in schema.kinds.items():
            expected = column_quality(reference_frame[name], current_frame[name], kind, thresholds)
            got = columns[name]["checks"]
            assert set(got) == set(expected)
            for check_name, check in expected.items():
                live = got[check_name]
                assert live["verdict"] == check.verdict.value, (seed, shifted, name, check_name)
                assert live["current"] == pytest.approx(check.current)
                if "p_value" in check.details:
                    assert live["details"]["p_value"] == pytest.approx(check.details["p_value"])
        if shifted:
            assert columns["c"]["checks"]["new_categories"]["verdict"] == "fail"
            assert columns["x"]["checks"]["out_of_range_share"]["verdict"] == "fail"
