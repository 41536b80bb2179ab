"""Base data sources for retraining: files, callables and a Feast feature view read through
Feast's offline store (its local provider, a feature repository made in tmp_path)."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from watchkeeper.config import Settings
from watchkeeper.demo import load_rainfall
from watchkeeper.errors import ConfigError, InputError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.service import MonitorService
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.retrain import RetrainSpec, RunStatus, assemble, retrain
from watchkeeper.retrain.sources import (
    BaseRequest,
    CallableSource,
    FeastSource,
    FileSource,
    parse_base,
)
from watchkeeper.store import Store

PROJECT = Path(__file__).resolve().parents[2]
FEATURES = ("temperature", "dew_point", "sea_level_pressure", "visibility")
T0 = 1_710_000_000.0  # March 2024: the Feast repository's rows (January 2024) come before
STEP = 30.0
NOW = T0 + 6600 * STEP
REQUEST = BaseRequest("rainfall", FEATURES, T0, T0 + 1000 * STEP)
# Pieces of the bad Feast configs below.
FE = "retrain.base.feast"
E = {"file": "e.csv"}
R = {"repo": "r", "entities": E, "features": ["v:f"]}


@pytest.fixture(scope="module")
def rainfall() -> pd.DataFrame:
    return load_rainfall()


def history(request: BaseRequest) -> pd.DataFrame:
    """A base-data callable (named by the tests as ``tests.retrain.test_sources:history``)."""
    frame = load_rainfall().iloc[:300]
    return frame[[*request.features, "rain"]].assign(seen=T0 + frame.index * STEP)


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ("data.csv", "retrain.base", "expected a mapping"),
        ({}, "retrain.base", "exactly one of file, callable, feast"),
        ({"file": "a.csv", "callable": "m:f"}, "retrain.base", "both file and callable"),
        ({"file": "a.txt"}, "retrain.base.format", "csv, parquet"),
        ({"file": "a", "format": "json"}, "retrain.base.format", "got 'json'"),
        ({"file": "a.csv", "colour": 1}, "retrain.base.colour", "unknown key"),
        ({"file": ""}, "retrain.base.file", "non-empty string"),
        ({"callable": "nomodule"}, "retrain.base.callable", "package.module:function"),
        ({"callable": "m:f", "label": 3}, "retrain.base.label", "non-empty string"),
        ({"feast": {"entities": E, "features": ["v:f"]}}, f"{FE}.repo", "required"),
        ({"feast": {"repo": "r", "features": ["v:f"]}}, f"{FE}.entities", "required"),
        ({"feast": {"repo": "r", "entities": E}}, f"{FE}.features", "feature_service"),
        ({"feast": {**R, "features": "v:f"}}, f"{FE}.features", "list"),
        ({"feast": {**R, "features": ["f"]}}, f"{FE}.features", "'view:feature'"),
        ({"feast": {**R, "entities": {"feast": {}}}}, f"{FE}.entities", "not another feast"),
        ({"feast": {**R, "entities": {"file": "e.txt"}}}, f"{FE}.entities.format", "csv, parquet"),
        ({"feast": {**R, "ttl": 1}}, f"{FE}.ttl", "unknown key"),
    ],
)  # fmt: skip
def test_bad_base_config_names_the_field(config: Any, field: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        parse_base(config)
    assert caught.value.key == field
    assert str(caught.value).startswith(field)


def test_the_retrain_spec_reads_base_and_writes_it_back() -> None:
    feast = {
        "repo": "feature_repo",
        "entities": {"file": "labels.parquet", "format": "parquet", "label": "rain"},
        "features": ["weather:temperature"],
    }
    spec = RetrainSpec.from_dict({"trainer": "m:f", "base": {"feast": feast}})
    assert spec.base == FeastSource(
        "feature_repo", FileSource("labels.parquet", "parquet", "rain"), ("weather:temperature",)
    )
    assert RetrainSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ConfigError) as caught:
        RetrainSpec.from_dict({"trainer": "m:f", "base": {"file": "x.xlsx"}})
    assert caught.value.key == "retrain.base.format"


def test_files_csv_and_parquet_give_the_same_rows(tmp_path: Path, rainfall: pd.DataFrame) -> None:
    rows = rainfall.iloc[:200].assign(day=pd.date_range("2020-01-01", periods=200, tz="UTC"))
    rows.to_csv(tmp_path / "history.csv", index=False)
    rows.to_parquet(tmp_path / "history.pq")
    loaded = [
        parse_base({"file": str(tmp_path / name), "label": "rain", "timestamp": "day"}).load(
            REQUEST
        )
        for name in ("history.csv", "history.pq")
    ]
    for frame in loaded:
        assert list(frame["label"]) == list(rows["rain"])
        assert "rain" not in frame.columns
        assert frame["timestamp"].iloc[1] == pd.Timestamp("2020-01-02", tz="UTC").timestamp()
    pd.testing.assert_frame_equal(loaded[0][list(FEATURES)], loaded[1][list(FEATURES)])
    with pytest.raises(InputError, match="cannot read") as caught:
        parse_base({"file": str(tmp_path / "missing.csv")}).load(REQUEST)
    assert caught.value.column == "file"
    with pytest.raises(InputError, match="no label column 'label'"):
        parse_base({"file": str(tmp_path / "history.csv")}).load(REQUEST)


def test_a_callable_gets_the_request(tmp_path: Path) -> None:
    source = parse_base(
        {"callable": "tests.retrain.test_sources:history", "label": "rain", "timestamp": "seen"}
    )
    assert isinstance(source, CallableSource)
    frame = source.load(REQUEST)
    assert len(frame) == 300
    assert set(frame.columns) == {*FEATURES, "label", "seen", "timestamp"}
    assert frame["timestamp"].iloc[-1] == T0 + 299 * STEP
    with pytest.raises(InputError, match=r"retrain\.base\.callable: cannot import") as caught:
        parse_base({"callable": "tests.retrain.test_sources:absent"}).load(REQUEST)
    assert caught.value.column == "callable"
    with pytest.raises(InputError, match="returned str"):
        parse_base({"callable": "builtins:repr"}).load(REQUEST)


@pytest.fixture
def served(tmp_path: Path, rainfall: pd.DataFrame) -> Iterator[Store]:
    """The model's rows 6,000-6,599 served one every 30 s and labelled; now is just after."""
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    store = Store.open(url)
    rows = rainfall.iloc[6000:6600]
    service = MonitorService(
        store, settings=Settings(db=url, max_event_age_seconds=30 * 86_400), clock=lambda: NOW
    )
    spec = {"name": "rainfall", "task": "classification", "prediction": "prediction"}
    service.register_model(
        ModelSpec.from_dict({**spec, "features": dict.fromkeys(FEATURES, "numeric")})
    )
    events = [
        {"id": f"r{i}", "timestamp": T0 + i * STEP, "version": "1", "features": row,
         "prediction": "0"}
        for i, row in zip(rows.index, rows[list(FEATURES)].to_dict("records"), strict=True)
    ]  # fmt: skip
    assert not service.ingest_events("rainfall", events).rejected
    labels = [{"id": f"r{i}", "label": str(y)} for i, y in rows["rain"].items()]
    service.ingest_labels("rainfall", labels)
    service.close()
    yield store
    store.close()


def test_assembly_adds_base_rows_but_never_in_the_holdout_period(
    tmp_path: Path, rainfall: pd.DataFrame, served: Store
) -> None:
    store = served
    now = NOW
    # Base rows: 0-299 (long before the run's data) and 6,500-6,599, inside the holdout's period.
    base = pd.concat([rainfall.iloc[:300], rainfall.iloc[6500:6600]])
    base = base.assign(seen=T0 + base.index * STEP)
    base.to_parquet(tmp_path / "base.parquet")
    spec = RetrainSpec.from_dict(
        {"trainer": "m:f", "lookback": "1d", "min_rows": 100,
         "base": {"file": str(tmp_path / "base.parquet"), "label": "rain", "timestamp": "seen"}}
    )  # fmt: skip
    data = assemble(
        store,
        ModelSpec.from_dict(store.get_model("rainfall").config),
        spec,
        now=now,
        base=spec.base,
    )
    assert len(data.holdout) == 120
    assert data.split_at == T0 + 6480 * STEP
    # 300 old base rows, none of the 100 in the holdout's period, then the 480 training events.
    assert len(data.train) == 300 + 480
    assert (
        data.train["label"].iloc[:300].astype(int).tolist() == rainfall["rain"].iloc[:300].tolist()
    )


def _feast() -> ModuleType:
    """Feast: from the venv when installed there, else from scripts/feast.sh's directory."""
    try:
        return importlib.import_module("feast")
    except ImportError:
        site = subprocess.run(
            ["bash", str(PROJECT / "scripts" / "feast.sh"), "install"],
            env={**os.environ, "PYTHON": sys.executable},
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        # After the venv's own packages, so Feast's helpers never shadow them.
        sys.path.append(site)
        return importlib.import_module("feast")


@pytest.fixture(scope="module")
def feature_repo(tmp_path_factory: pytest.TempPathFactory, rainfall: pd.DataFrame) -> Path:
    """A Feast repository on the local provider: rows 0-599 as a feature view of 3 stations,
    each row one hour after the last, applied and materialised through Feast's Python API;
    ``labels.parquet`` is its entity table: each row's station, time (+30 min) and label."""
    feast = _feast()
    from feast.types import Float64

    repo = tmp_path_factory.mktemp("feature_repo")
    (repo / "feature_store.yaml").write_text(
        "project: watchkeeper_test\nprovider: local\nregistry: registry.db\n"
        "online_store: {type: sqlite, path: online.db}\noffline_store: {type: dask}\n"
        "entity_key_serialization_version: 3\n"
    )
    rows = rainfall.iloc[:600]
    weather = rows[list(FEATURES)].assign(
        station=np.arange(600) % 3,
        ts=pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(600), unit="h"),
    )
    weather.to_parquet(repo / "weather.parquet")
    store = feast.FeatureStore(repo_path=str(repo))
    station = feast.Entity(name="station", join_keys=["station"], value_type=feast.ValueType.INT64)
    view = feast.FeatureView(
        name="weather",
        entities=[station],
        ttl=dt.timedelta(days=60),
        schema=[feast.Field(name=name, dtype=Float64) for name in FEATURES],
        source=feast.FileSource(path=str(repo / "weather.parquet"), timestamp_field="ts"),
    )
    store.apply([station, view, feast.FeatureService(name="all_weather", features=[view])])
    store.materialize(
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
    )
    # Labels of rows 0-599, each read 30 minutes after its row: its station's latest features
    # are that row's, not the station's next row (3 hours later), nor any later one.
    hours = pd.to_timedelta(np.arange(600), unit="h") + pd.Timedelta(minutes=30)
    labels = pd.DataFrame(
        {
            "station": np.arange(600) % 3,
            "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC") + hours,
            "rain": rows["rain"].to_numpy(),
        }
    )
    labels.to_parquet(repo / "labels.parquet")
    online = store.get_online_features(
        features=["weather:temperature"], entity_rows=[{"station": 2}]
    )
    assert online.to_dict()["temperature"] == [rows["temperature"].iloc[599]]
    return repo


def test_feast_features_are_joined_as_of_each_rows_time(
    feature_repo: Path, rainfall: pd.DataFrame
) -> None:
    # The entity table (labels.parquet) reads each row 30 minutes after it: its station's
    # latest features are that row's, not the station's next row (3 hours later).
    config = {
        "repo": str(feature_repo),
        "entities": {"file": str(feature_repo / "labels.parquet"), "label": "rain"},
    }
    by_features = parse_base({"feast": {**config, "features": [f"weather:{f}" for f in FEATURES]}})
    by_service = parse_base({"feast": {**config, "feature_service": "all_weather"}})
    for source in (by_features, by_service):
        frame = source.load(REQUEST).sort_values(["timestamp", "station"]).reset_index(drop=True)
        joined = frame
        expected = rainfall.iloc[:600].reset_index(drop=True)
        np.testing.assert_allclose(joined[list(FEATURES)], expected[list(FEATURES)])
        assert joined["label"].tolist() == expected["rain"].tolist()
        assert joined["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 00:30", tz="UTC").timestamp()
    with pytest.raises(InputError, match="humidity") as caught:
        parse_base({"feast": {**config, "features": ["weather:humidity"]}}).load(REQUEST)
    assert caught.value.column == "feast"
    with pytest.raises(InputError, match=r"no feature_store\.yaml"):
        parse_base(
            {"feast": {**config, "repo": str(feature_repo.parent), "features": ["a:b"]}}
        ).load(REQUEST)


def test_a_run_learns_from_a_feast_view_through_the_pipeline(
    feature_repo: Path, served: Store, tmp_path: Path
) -> None:
    feast = {
        "repo": str(feature_repo),
        "feature_service": "all_weather",
        "entities": {"file": str(feature_repo / "labels.parquet"), "label": "rain"},
    }
    spec = RetrainSpec.from_dict({"trainer": "tests.retrain.trainers:fit", "lookback": "1d",
                                  "min_rows": 100, "base": {"feast": feast}})  # fmt: skip
    registry = Registry(served, ArtifactStore(tmp_path / "artifacts"))
    run = retrain(served, registry, "rainfall", spec, now=NOW, trigger={"kind": "manual"})
    assert run.status is not RunStatus.FAILED, run.reason
    # The view's 600 rows (January 2024, before the run's data) and the 480 training events.
    assert run.data["train_rows"] == 600 + 480
    assert run.data["holdout_rows"] == 120
