"""Retraining on the bundled rainfall data: mature labels only, a time-based holdout, and a
candidate registered only when it is significantly better than the champion."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from watchkeeper.config import Settings
from watchkeeper.demo import load_rainfall
from watchkeeper.errors import ConfigError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.service import MonitorService
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.retrain import RetrainJob, RetrainSpec, RunStatus, assemble, retrain
from watchkeeper.retrain.config import RetrainConfig
from watchkeeper.retrain.executor import run_job
from watchkeeper.store import Store

T0 = 1_700_000_000.0
STEP = 30.0  # seconds between rows: 12,159 rows span about 4.2 days
DAY = 86_400.0
FEATURES = [
    "maximum_temperature", "minimum_temperature", "temperature", "dew_point",
    "sea_level_pressure", "visibility", "average_wind_speed", "max_sustained_wind_speed",
]  # fmt: skip


@pytest.fixture(scope="module")
def rainfall() -> pd.DataFrame:
    data = load_rainfall()
    assert sorted(data.columns[:-1]) == sorted(FEATURES)
    return data


@pytest.fixture
def loop(tmp_path: Path, rainfall: pd.DataFrame) -> Iterator[tuple[Store, Registry]]:
    """A champion trained on rows 0-5,999, and every later row served and labelled."""
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    store = Store.open(url)
    registry = Registry(store, ArtifactStore(tmp_path / "artifacts"))
    now = T0 + len(rainfall) * STEP
    service = MonitorService(
        store, settings=Settings(db=url, max_event_age_seconds=30 * DAY), clock=lambda: now
    )
    spec = {"name": "rainfall", "task": "classification", "prediction": "prediction"}
    service.register_model(
        ModelSpec.from_dict({**spec, "features": dict.fromkeys(FEATURES, "numeric")})
    )
    early = rainfall.iloc[:6000]
    champion = HistGradientBoostingClassifier(max_iter=100, random_state=0)
    champion.fit(early[FEATURES], early["rain"])
    record = registry.register("rainfall", champion, trust=True, registered_by="test")
    registry.set_alias("rainfall", "champion", record.version, moved_by="test")
    later = rainfall.iloc[6000:]
    predictions = champion.predict(later[FEATURES])
    for start in range(0, len(later), 2000):
        part = later.iloc[start : start + 2000]
        events = [
            {
                "id": f"row-{index}",
                "timestamp": T0 + index * STEP,
                "version": "1",
                "features": row,
                "prediction": str(int(prediction)),
            }
            for index, row, prediction in zip(
                part.index, part[FEATURES].to_dict("records"), predictions[start:], strict=False
            )
        ]
        assert not service.ingest_events("rainfall", events).rejected
        labels = [{"id": f"row-{i}", "label": str(int(y))} for i, y in part["rain"].items()]
        service.ingest_labels("rainfall", labels)
    service.close()
    yield store, registry
    store.close()


def spec(**changes: object) -> RetrainSpec:
    base = {"trainer": "tests.retrain.trainers:fit", "label_delay": "1d", "lookback": "2d",
            "metric": "accuracy", "margin": 0.01, "min_rows": 500}  # fmt: skip
    return RetrainSpec.from_dict({**base, **changes})


def test_after_the_drift_a_candidate_on_recent_mature_data_is_proven_better(
    loop: tuple[Store, Registry], rainfall: pd.DataFrame
) -> None:
    store, registry = loop
    now = T0 + len(rainfall) * STEP
    run = retrain(store, registry, "rainfall", spec(), now=now, trigger={"kind": "manual"})
    assert run.status is RunStatus.REGISTERED, run.reason
    assert run.gate is not None
    assert run.gate.candidate > run.gate.champion + 0.01
    assert run.gate.p_value < 1e-3
    # Only mature labels: nothing predicted in the last day, the holdout after the training rows.
    assert run.data["end"] == now - DAY
    assert run.data["split_at"] <= now - DAY
    version = registry.version("rainfall", run.version or 0)
    assert version.tags["retrain.champion_version"] == 1
    assert version.tags["retrain.gate"]["p_value"] == run.gate.p_value
    assert version.metrics["holdout_accuracy"] == run.gate.candidate
    # Registered, not promoted: the champion moves only through a rollout.
    assert registry.alias_version("rainfall", "champion") == 1


def test_before_the_drift_a_candidate_is_not_significantly_better_and_is_not_registered(
    loop: tuple[Store, Registry],
) -> None:
    store, registry = loop
    now = T0 + 7000 * STEP  # mature rows 6,000-6,880: right after the champion's data
    run = retrain(
        store, registry, "rainfall", spec(lookback="8h", label_delay="1h", min_rows=200),
        now=now, trigger={"kind": "manual"},
    )  # fmt: skip
    assert run.status is RunStatus.REJECTED, run.reason
    assert "not significant" in run.reason or "below the margin" in run.reason
    assert [v.version for v in registry.versions("rainfall")] == [1]


def test_data_checks_and_training_failures_end_the_run_with_the_reason(
    loop: tuple[Store, Registry], rainfall: pd.DataFrame
) -> None:
    store, registry = loop
    now = T0 + len(rainfall) * STEP
    few = retrain(store, registry, "rainfall", spec(min_rows=50_000), now=now, trigger={})
    assert few.status is RunStatus.FAILED
    assert "retrain.min_rows" in few.reason
    failed = retrain(
        store, registry, "rainfall", spec(trainer="tests.retrain.trainers:broken"), now=now,
        trigger={},
    )  # fmt: skip
    assert failed.status is RunStatus.FAILED
    assert "training: RuntimeError: out of memory" in failed.reason
    with pytest.raises(ConfigError, match=r"retrain\.trainer: cannot import"):
        retrain(store, registry, "rainfall", spec(trainer="nowhere:fit"), now=now, trigger={})


def test_assembled_data_keeps_only_mature_labels_in_time_order(
    loop: tuple[Store, Registry], rainfall: pd.DataFrame
) -> None:
    store, _ = loop
    now = T0 + len(rainfall) * STEP
    model = ModelSpec.from_dict(dict(store.get_model("rainfall").config))
    data = assemble(store, model, spec(), now=now)
    assert data.train["timestamp"].max() < data.holdout["timestamp"].min()
    assert data.holdout["timestamp"].max() < now - DAY
    assert data.train["timestamp"].min() >= now - 2 * DAY
    assert len(data.holdout) == pytest.approx(0.2 * (len(data.train) + len(data.holdout)), abs=1)


def test_spec_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"metric: expected one of"):
        spec(metric="f1")
    with pytest.raises(ConfigError, match=r"retrain\.lookbak: unknown key"):
        RetrainSpec.from_dict({"trainer": "a:b", "lookbak": "2d"})
    with pytest.raises(ConfigError, match="label_delay"):
        spec(label_delay="soon")
    with pytest.raises(ConfigError, match=r"retrain\.trainer: required"):
        RetrainSpec.from_dict({})


def test_an_artifact_trained_elsewhere_is_gated_and_a_run_registers_once(
    loop: tuple[Store, Registry], rainfall: pd.DataFrame
) -> None:
    from watchkeeper.registry.flavors import dump_object

    store, registry = loop
    now = T0 + len(rainfall) * STEP
    recent = rainfall.iloc[-4000:-2880]
    candidate = HistGradientBoostingClassifier(max_iter=100, random_state=0)
    candidate.fit(recent[FEATURES], recent["rain"])
    flavor, raw = dump_object(candidate)
    artifact = {"sha256": registry.artifacts.put(raw), "flavor": flavor, "trusted": True}
    lines: list[str] = []
    first = retrain(
        store, registry, "rainfall", spec(), now=now, trigger={"kind": "manual"},
        run_id=7, artifact=artifact, log=lines.append,
    )  # fmt: skip
    assert first.status is RunStatus.REGISTERED, first.reason
    assert any("the artifact posted back" in line for line in lines)
    assert registry.version("rainfall", first.version or 0).tags["retrain.run_id"] == 7
    # The same run again (a restart interrupted it after registering): no second version.
    again = retrain(
        store, registry, "rainfall", spec(), now=now, trigger={"kind": "manual"},
        run_id=7, artifact=artifact,
    )  # fmt: skip
    assert again.version == first.version
    assert [v.version for v in registry.versions("rainfall")] == [1, 2]
    # An artifact that does not load fails the run, naming it.
    broken = {"sha256": registry.artifacts.put(b"not a model"), "flavor": "sklearn"}
    failed = retrain(
        store, registry, "rainfall", spec(), now=now, trigger={"kind": "manual"}, artifact=broken
    )
    assert failed.status is RunStatus.FAILED
    assert failed.reason.startswith("candidate:")


def test_the_worker_registers_the_version_on_the_servers_clock(
    loop: tuple[Store, Registry], rainfall: pd.DataFrame, tmp_path: Path
) -> None:
    store, registry = loop
    now = T0 + len(rainfall) * STEP  # years before the wall clock: a replay's simulated clock
    base = {"trainer": "tests.retrain.trainers:fit", "label_delay": "1d", "lookback": "2d",
            "margin": 0.01, "min_rows": 500}  # fmt: skip
    config = RetrainConfig.from_dict(base).to_dict()
    job = RetrainJob(1, "rainfall", 1, now, {"kind": "manual"}, config,
                     clock_offset=now - time.time())  # fmt: skip
    result = run_job(store.engine.url.render_as_string(), str(tmp_path / "artifacts"), job)
    assert result.outcome is not None, result.error
    assert result.outcome["status"] == "registered", result.outcome["reason"]
    version = registry.version("rainfall", result.outcome["version"])
    assert now <= version.registered_at < now + 120


def test_the_holdout_never_splits_events_of_one_instant(
    tmp_path: Path, rainfall: pd.DataFrame
) -> None:
    """Served predictions are stamped per request: 60 rows share each timestamp here, and the
    store returns them in no set order. The split puts a whole instant on one side."""
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    rows = rainfall.iloc[:1000]
    with Store.open(url) as store:
        service = MonitorService(
            store, settings=Settings(db=url, max_event_age_seconds=30 * DAY), clock=lambda: T0
        )
        spec = ModelSpec.from_dict(
            {
                "name": "batched",
                "task": "classification",
                "prediction": "prediction",
                "features": dict.fromkeys(FEATURES, "numeric"),
            }
        )
        service.register_model(spec)
        events = [
            {
                "id": f"row-{index}",
                "timestamp": T0 - DAY + (index // 60) * 600.0,
                "version": "1",
                "features": row,
                "prediction": "0",
            }
            for index, row in zip(rows.index, rows[FEATURES].to_dict("records"), strict=True)
        ]
        service.ingest_events("batched", events)
        service.ingest_labels(
            "batched", [{"id": f"row-{i}", "label": str(int(y))} for i, y in rows["rain"].items()]
        )
        service.close()
        retrain_spec = RetrainSpec.from_dict(
            {"trainer": "watchkeeper.demo:train_rainfall", "lookback": "2d", "min_rows": 200}
        )
        data = assemble(store, spec, retrain_spec, now=T0)
    # 80 % of 1,000 rows is row 800, inside the instant of rows 780-839.
    assert len(data.train) == 780
    assert data.train["timestamp"].max() < data.split_at == data.holdout["timestamp"].min()
