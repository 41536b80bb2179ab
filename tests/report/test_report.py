from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd
import polars as pl
import pytest
from sklearn.metrics import accuracy_score, mean_squared_error

from watchkeeper import DriftConfig, DriftTest, Report, Schema
from watchkeeper.errors import ConfigError, EmptyDataError, SchemaError
from watchkeeper.report.report import REPORT_SCHEMA


def _frames(rows: int = 3000, *, shift: float = 0.0, seed: int = 1) -> tuple[pd.DataFrame, ...]:
    rng = np.random.default_rng(seed)

    def frame(offset: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "a": rng.normal(offset, 1.0, rows),
                "b": rng.normal(0.0, 1.0, rows),
                "color": rng.choice(["red", "green", "blue"], rows),
                "flag": rng.random(rows) < 0.3,
            }
        )

    return frame(0.0), frame(shift)


def test_contract_fields_and_verdicts() -> None:
    reference, current = _frames(shift=0.6)
    document = Report().run(reference, current).to_dict()
    assert document["schema"] == REPORT_SCHEMA
    drift = document["drift"]
    assert isinstance(drift["dataset_drift"], bool)
    assert drift["drift_share"] == pytest.approx(0.25)
    assert drift["dataset_drift"] is False
    for name in ("a", "b", "color", "flag"):
        entry = drift["columns"][name]
        assert set(entry) >= {"drift", "kind", "test", "statistic", "p_value", "effect_size", "psi"}
    assert drift["columns"]["a"]["drift"] is True
    assert drift["columns"]["a"]["kind"] == "numeric"
    assert drift["columns"]["color"]["kind"] == "categorical"
    assert drift["columns"]["flag"]["kind"] == "boolean"
    assert drift["ranking"][0]["column"] == "a"
    assert [r["effect_size"] for r in drift["ranking"]] == sorted(
        (r["effect_size"] for r in drift["ranking"]), reverse=True
    )
    assert document["performance"] is None
    assert document["quality"]["passed"] is True


def test_json_is_strict_and_round_trips() -> None:
    reference, current = _frames(shift=0.6)
    result = Report().run(reference, current)
    text = result.to_json()
    assert "NaN" not in text
    assert orjson.loads(text)["drift"]["columns"]["a"]["drift"] is True


def test_rainfall_real_drift_and_performance(rainfall: pd.DataFrame) -> None:
    reference = rainfall.iloc[:6000]
    current = rainfall.iloc[12000:]
    result = Report(schema=Schema(exclude=frozenset({"rain"}))).run(reference, current)
    assert result.drift_share > 0
    assert result.drifted_columns, "the documented drift after row 12,000 must be found"
    same_era = Report(schema=Schema(exclude=frozenset({"rain"}))).run(
        rainfall.iloc[:3000], rainfall.iloc[3000:6000]
    )
    assert same_era.drift_share < result.drift_share


def test_identical_distributions_do_not_drift() -> None:
    reference, current = _frames(rows=5000, shift=0.0, seed=7)
    result = Report().run(reference, current)
    assert result.drifted_columns == []
    assert result.dataset_drift is False


@pytest.mark.parametrize("kind", ["polars", "dict", "pyarrow"])
def test_other_input_types(kind: str) -> None:
    reference, current = _frames(shift=0.6)
    convert = {
        "polars": pl.from_pandas,
        "dict": lambda f: {c: f[c].to_numpy() for c in f.columns},
        "pyarrow": lambda f: __import__("pyarrow").Table.from_pandas(f),
    }[kind]
    result = Report().run(convert(reference), convert(current))
    assert "a" in result.drifted_columns


def test_per_column_and_per_kind_configuration() -> None:
    reference, current = _frames(shift=0.6)
    report = Report(
        drift_by_kind={"numeric": DriftConfig(test=DriftTest.PSI, threshold=0.2)},
        drift_by_column={"b": DriftConfig(test=DriftTest.WASSERSTEIN, threshold=0.5)},
    )
    columns = report.run(reference, current).to_dict()["drift"]["columns"]
    assert columns["a"]["test"] == "psi"
    assert columns["b"]["test"] == "wasserstein"
    assert columns["color"]["test"] == "chi2"
    with pytest.raises(ConfigError):
        Report(drift_by_kind={"categorical": DriftConfig(test=DriftTest.KS)})


def test_classification_performance_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    frames = []
    for noise in (0.1, 0.4):
        y = rng.integers(0, 2, n)
        flip = rng.random(n) < noise
        pred = np.where(flip, 1 - y, y)
        proba = np.clip(pred * 0.7 + rng.random(n) * 0.3, 0, 1)
        frames.append(pd.DataFrame({"x": rng.normal(size=n), "y": y, "pred": pred, "p": proba}))
    result = Report(schema=Schema(target="y", prediction="pred", proba="p")).run(*frames)
    performance = result.to_dict()["performance"]
    assert performance["task"] == "classification"
    for side, frame in zip(("reference", "current"), frames, strict=True):
        assert performance[side]["accuracy"] == pytest.approx(
            accuracy_score(frame["y"], frame["pred"])
        )
    assert performance["change"]["accuracy"]["change"] < 0
    assert result.summary["performance"]["metric"] == "accuracy"
    assert result.to_dict()["drift"]["columns"]["pred"]["role"] == "prediction"


def test_regression_performance_matches_sklearn() -> None:
    rng = np.random.default_rng(4)
    frames = []
    for noise in (0.5, 1.5):
        y = rng.normal(size=1000)
        frames.append(
            pd.DataFrame(
                {"x": rng.normal(size=1000), "y": y, "yhat": y + rng.normal(0, noise, 1000)}
            )
        )
    performance = (
        Report(schema=Schema(target="y", prediction="yhat")).run(*frames).to_dict()["performance"]
    )
    assert performance["task"] == "regression"
    expected = math.sqrt(mean_squared_error(frames[1]["y"], frames[1]["yhat"]))
    assert performance["current"]["rmse"] == pytest.approx(expected)


def test_bad_inputs_are_named() -> None:
    reference, current = _frames()
    with pytest.raises(SchemaError, match="no common columns"):
        Report().run(reference, current.rename(columns=lambda c: c + "_x"))
    with pytest.raises(SchemaError, match="target column 'nope'"):
        Report(schema=Schema(target="nope", prediction="a")).run(reference, current)
    with pytest.raises(SchemaError, match="target column 'b' is not in the current data"):
        Report(schema=Schema(target="b", prediction="a")).run(reference, current.drop(columns="b"))
    with pytest.raises(SchemaError, match="without a prediction"):
        Report(schema=Schema(target="b")).run(reference, current)
    broken = reference.assign(a=np.nan)
    with pytest.raises(EmptyDataError, match="column 'a' has no numeric values in the reference"):
        Report().run(broken, current)
    with pytest.raises(ConfigError, match="drift_share"):
        Report(drift_share=0.0)
    with pytest.raises(SchemaError, match="excluded are not in the reference data: rowid"):
        Report(schema=Schema(exclude=frozenset({"rowid"}))).run(reference, current)
    typo = Report(drift_by_column={"age": DriftConfig(test=DriftTest.KS)})
    with pytest.raises(ConfigError, match=r"drift_by_column names .*: age \(features: \[a, b"):
        typo.run(reference, current)


def test_all_missing_current_column_is_a_quality_failure_not_a_crash() -> None:
    reference, current = _frames()
    document = Report().run(reference, current.assign(a=np.nan)).to_dict()
    assert "a" not in document["drift"]["columns"]
    assert "no numeric values" in document["drift"]["skipped"]["a"]
    assert document["quality"]["columns"]["a"]["missing_rate"]["verdict"] == "fail"
    assert document["quality"]["passed"] is False


def test_schema_changes_and_new_categories_are_reported() -> None:
    reference, current = _frames()
    current = current.drop(columns="b").assign(extra=1.0)
    current.loc[:200, "color"] = "purple"
    document = Report().run(reference, current).to_dict()
    details = document["quality"]["dataset"]["schema"]["details"]
    assert "b" in details["missing"]
    assert document["drift"]["missing_columns"] == ["b"]
    assert document["summary"]["missing_columns"] == ["b"]
    assert document["drift"]["skipped"]["b"] == "missing from the current data: not tested"
    assert "missing from the current data and were not tested" in Report().run(
        reference, current
    ).to_html(plotly="cdn")
    assert "extra" in details["unexpected"]
    assert document["quality"]["columns"]["color"]["new_categories"]["verdict"] == "fail"


def test_save_files(tmp_path: object) -> None:
    from pathlib import Path

    reference, current = _frames(shift=0.6)
    result = Report().run(reference, current)
    out = Path(str(tmp_path))
    json_path = result.save_json(out / "r.json")
    html_path = result.save_html(out / "r.html", plotly="cdn")
    assert orjson.loads(json_path.read_bytes())["schema"] == REPORT_SCHEMA
    assert "<html" in html_path.read_text().lower()


def test_progress_is_reported_per_column_and_finishes() -> None:
    reference, current = _frames(rows=500)
    calls: list[tuple[int, int]] = []
    Report().run(reference, current, progress=lambda done, total: calls.append((done, total)))
    totals = {total for _, total in calls}
    assert len(totals) == 1
    total = totals.pop()
    assert total == 4 + 1  # four columns, then the data-set checks and assembly
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert calls[-1] == (total, total)
