"""End-to-end tests of the monitor service on a real store (SQLite file and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from watchkeeper.config import Settings
from watchkeeper.errors import ConfigError, ConflictError, InputError, NotFoundError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor import MonitorService
from watchkeeper.monitor.windows import WindowProfile
from watchkeeper.report import Report
from watchkeeper.schema import Schema
from watchkeeper.stats.performance import classification_metrics, regression_metrics
from watchkeeper.store import Store

HOUR = 3600
# Aligned to a day so that hourly and daily windows start together.
T0 = 1_700_006_400.0 - (1_700_006_400.0 % 86_400)
FEATURES = ("a", "b", "c")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_service(store: Store, clock: Clock) -> MonitorService:
    service = MonitorService(
        store,
        settings=Settings(max_event_age_seconds=30 * 86_400, max_event_future_seconds=2 * HOUR),
        clock=clock,
    )
    service.start()
    return service


def reference_frame(rows: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in FEATURES})
    frame["prediction"] = np.where(frame["a"] + frame["b"] > 0, "1", "0")
    frame["p1"] = 1.0 / (1.0 + np.exp(-(frame["a"] + frame["b"])))
    return frame


def spec(name: str = "churn") -> ModelSpec:
    return ModelSpec.from_dict(
        {
            "name": name,
            "task": "classification",
            "features": {},
            "proba": {"0": "p0", "1": "p1"},
            "segments": ["country"],
        }
    )


def events(
    count: int, ts: float, *, seed: int, shift: float = 0.0, prefix: str = "e", country: str = "de"
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(count, len(FEATURES)))
    values[:, 0] += shift
    score = values[:, 0] + values[:, 1]
    proba = 1.0 / (1.0 + np.exp(-score))
    return [
        {
            "id": f"{prefix}{index}",
            "timestamp": ts + index * (HOUR / (count + 1)),
            "version": "v1",
            "features": dict(zip(FEATURES, map(float, row), strict=True)),
            "prediction": "1" if s > 0 else "0",
            "proba": {"1": float(p)},
            "latency_ms": float(5 + index % 10),
            "segment": {"country": country},
        }
        for index, (row, s, p) in enumerate(zip(values, score, proba, strict=True))
    ]


def true_labels(batch: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    flips = rng.uniform(size=len(batch)) < 0.2
    return [
        {
            "id": event["id"],
            "label": ("0" if event["prediction"] == "1" else "1") if flip else event["prediction"],
        }
        for event, flip in zip(batch, flips, strict=True)
    ]


def series_values(service: MonitorService, signal: str, **options: Any) -> list[Any]:
    return [point["value"] for point in service.series("churn", signal, **options)]


def test_register_infers_features_and_rejects_duplicates(store: Store) -> None:
    service = make_service(store, Clock(T0))
    registered = service.register_model(spec(), reference=reference_frame())
    assert set(registered.features) == set(FEATURES)
    assert service.get_model("churn") == registered
    assert [model.name for model in service.list_models()] == ["churn"]
    with pytest.raises(ConflictError):
        service.register_model(spec(), reference=reference_frame())
    with pytest.raises(NotFoundError):
        service.get_model("nope")
    assert "drift.a.score" in service.signal_names("churn")


def test_drift_fires_for_the_shifted_feature_only(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    first = events(2000, T0, seed=1)
    assert service.ingest_events("churn", first).accepted == 2000
    clock.now = T0 + HOUR + 10
    service.ingest_events("churn", events(2000, T0 + HOUR, seed=2, shift=1.0, prefix="s"))
    closed = service.tick()
    assert {(w["window_seconds"], w["start"], w["count"]) for w in closed} == {(HOUR, T0, 2000)}
    clock.now = T0 + 2 * HOUR + 10
    service.tick()
    window = {"start": T0, "end": T0 + 2 * HOUR}
    assert series_values(service, "drift.a.detected", **window) == [0.0, 1.0]
    assert series_values(service, "drift.b.detected", **window) == [0.0, 0.0]
    assert series_values(service, "drift.c.detected", **window) == [0.0, 0.0]
    assert series_values(service, "count", **window) == [2000.0, 2000.0]
    assert series_values(service, "prediction_drift.detected", **window)[1] == 1.0
    p95 = series_values(service, "latency_p95", **window)[0]
    assert 12.0 <= p95 <= 14.0
    samples = service.latest_samples()
    drift_a = [s for s in samples if s["labels"]["signal"] == "drift.a.detected"]
    assert drift_a[0]["value"] == 1.0
    assert drift_a[0]["labels"]["feature"] == "a"


def test_events_for_an_already_closed_window_reach_latest_samples(store: Store) -> None:
    # A replay, or a client's backlog flushed after an outage: the window ended before its
    # events arrived, so it is closed at ingest, never by tick — alerts must still see it.
    clock = Clock(T0 + 3 * HOUR)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    service.ingest_events("churn", events(2000, T0, seed=1, shift=1.0))
    assert service.tick() == []
    samples = service.latest_samples()
    drift_a = [s for s in samples if s["labels"]["signal"] == "drift.a.detected"]
    assert [s["value"] for s in drift_a] == [1.0]
    assert drift_a[0]["timestamp"] == T0 + HOUR


def test_late_labels_update_the_closed_window_exactly(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    batch = events(1500, T0, seed=3)
    service.ingest_events("churn", batch)
    clock.now = T0 + 3 * HOUR
    service.tick()
    labels = true_labels(batch, seed=4)
    outcome = service.ingest_labels("churn", labels[:1000])
    assert outcome.accepted == 1000
    service.ingest_labels("churn", labels[1000:])
    expected = classification_metrics(
        [label["label"] for label in labels], [event["prediction"] for event in batch]
    )
    window = {"start": T0, "end": T0 + HOUR}
    assert series_values(service, "accuracy", **window) == [pytest.approx(expected["accuracy"])]
    assert series_values(service, "f1_macro", **window) == [pytest.approx(expected["f1_macro"])]
    assert series_values(service, "labeled_count", **window) == [1500.0]
    daily = series_values(service, "accuracy", window_seconds=86_400, start=T0, end=T0 + 86_400)
    assert daily == [pytest.approx(expected["accuracy"])]
    with_proba = classification_metrics(
        [label["label"] for label in labels],
        None,
        np.array([event["proba"]["1"] for event in batch]),
    )
    assert series_values(service, "roc_auc", **window)[0] == pytest.approx(
        with_proba["roc_auc"], abs=2e-3
    )
    assert series_values(service, "log_loss", **window)[0] == pytest.approx(with_proba["log_loss"])


def test_labels_before_predictions_join_when_they_arrive(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    batch = events(200, T0, seed=5)
    labels = true_labels(batch, seed=6)
    assert service.ingest_labels("churn", labels).accepted == 200
    service.ingest_events("churn", batch)
    expected = classification_metrics(
        [label["label"] for label in labels], [event["prediction"] for event in batch]
    )
    assert series_values(service, "accuracy", start=T0, end=T0 + HOUR) == [
        pytest.approx(expected["accuracy"])
    ]


def test_feedback_signals(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    service.ingest_events("churn", events(10, T0, seed=7))
    ratings = [5, 4, 1, 2, 5]
    feedback = [
        {"id": f"e{index}", "user_id": f"u{index}", "rating": rating, "comment": None}
        for index, rating in enumerate(ratings)
    ]
    outcome = service.ingest_feedback("churn", feedback + feedback[:1])
    assert (outcome.accepted, outcome.duplicates) == (5, 1)
    window = {"start": T0, "end": T0 + HOUR}
    assert series_values(service, "feedback_count", **window) == [5.0]
    assert series_values(service, "feedback_mean_rating", **window) == [pytest.approx(3.4)]
    assert series_values(service, "feedback_low_share", **window) == [pytest.approx(0.4)]
    assert series_values(service, "feedback_rating_5_share", **window) == [pytest.approx(0.4)]


def test_idempotent_and_mixed_batches(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    batch = events(100, T0, seed=8)
    first = service.ingest_events("churn", batch)
    again = service.ingest_events("churn", batch)
    assert (first.accepted, first.duplicates, again.accepted, again.duplicates) == (100, 0, 0, 100)
    assert first.ids == [event["id"] for event in batch]
    mixed = events(4, T0, seed=9, prefix="m")
    mixed[1]["features"]["a"] = "oops"
    mixed[3]["version"] = None
    outcome = service.ingest_events("churn", mixed)
    assert outcome.accepted == 2
    assert sorted({r.index for r in outcome.rejected}) == [1, 3]
    assert outcome.to_dict()["rejected"][0] == {
        "index": 1,
        "field": "features.a",
        "reason": "expected a number, got a string",
    }
    window = {"start": T0, "end": T0 + HOUR}
    assert series_values(service, "count", **window) == [102.0]
    assert series_values(service, "quality.rejected_share", **window) == [pytest.approx(2 / 104)]
    counts = service.counters()["models"]["churn"]
    assert (counts["accepted"], counts["duplicates"], counts["rejected"]) == (102, 100, 2)


def test_columnar_ingest_matches_json(store: Store) -> None:
    import pyarrow as pa

    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    batch = events(50, T0, seed=10)
    table = pa.table(
        {
            "id": [e["id"] for e in batch],
            "timestamp": [e["timestamp"] for e in batch],
            "version": [e["version"] for e in batch],
            **{name: [e["features"][name] for e in batch] for name in FEATURES},
            "prediction": [e["prediction"] for e in batch],
            "proba.1": [e["proba"]["1"] for e in batch],
            "latency_ms": [e["latency_ms"] for e in batch],
            "segment.country": ["de"] * len(batch),
        }
    )
    assert service.ingest_table("churn", table).accepted == 50
    assert series_values(service, "count", start=T0, end=T0 + HOUR, segment="country=de") == [50.0]


def window_state(window: WindowProfile) -> tuple[Any, ...]:
    profile = window.dataset_profile()
    assert profile is not None
    columns = profile.columns
    return (
        window.events,
        window.performance.metrics()["accuracy"],
        {name: int(columns[name].count) for name in columns},
        {name: columns[name].bin_counts.tolist() for name in FEATURES},  # type: ignore[union-attr]
        {name: round(columns[name].mean, 9) for name in FEATURES},  # type: ignore[union-attr]
    )


def run_scenario(service: MonitorService, clock: Clock) -> None:
    service.register_model(spec(), reference=reference_frame())
    batch = events(600, T0, seed=11)
    service.ingest_events("churn", batch[:300])
    service.ingest_labels("churn", true_labels(batch, seed=12)[:100])
    clock.now = T0 + HOUR + 5
    service.tick()
    service.ingest_events("churn", events(300, T0 + HOUR, seed=13, prefix="n", country="fr"))
    service.ingest_labels("churn", true_labels(batch, seed=12)[100:200])


def test_recovery_after_a_crash_equals_an_uninterrupted_run(store_url: str, tmp_path: Path) -> None:
    del tmp_path
    clock = Clock(T0 + 10)
    with Store.open(store_url) as store:
        crashed = make_service(store, clock)
        run_scenario(crashed, clock)
        expected = {
            key: window_state(window) for key, window in crashed._shared.open["churn"].items()
        }
        del crashed  # no close(): a kill -9
        recovered = make_service(store, clock)
        assert set(recovered._shared.open["churn"]) == set(expected)
        for key, window in recovered._shared.open["churn"].items():
            assert window_state(window) == expected[key], key


def test_range_report_matches_the_batch_report(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    reference = reference_frame()
    service.register_model(spec(), reference=reference)
    batch = events(3000, T0, seed=14, shift=0.3)
    service.ingest_events("churn", batch)
    clock.now = T0 + HOUR + 5
    service.tick()
    document = service.range_report("churn", start=T0, end=T0 + HOUR)
    current = pd.DataFrame([event["features"] for event in batch])
    batch_report = Report(schema=Schema()).run(reference[list(FEATURES)], current).to_dict()
    assert document["schema"] == batch_report["schema"]
    assert document["current"]["rows"] == 3000
    for name in FEATURES:
        live, offline = document["drift"]["columns"][name], batch_report["drift"]["columns"][name]
        assert live["drift"] == offline["drift"], name
        assert live["effect_size"] == pytest.approx(offline["effect_size"], abs=0.02)
        assert live["statistic"] <= offline["statistic"] + 1e-12
    assert document["summary"]["drift_share"] == batch_report["summary"]["drift_share"]
    for name in FEATURES:
        live_checks = document["quality"]["columns"][name]
        offline_checks = batch_report["quality"]["columns"][name]
        assert live_checks["missing_rate"]["current"] == offline_checks["missing_rate"]["current"]


def test_regression_performance_and_retention(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    regression = ModelSpec.from_dict(
        {"name": "price", "task": "regression", "features": {"x": "numeric"}, "retention_days": 1}
    )
    rng = np.random.default_rng(15)
    service.register_model(regression, reference=pd.DataFrame({"x": rng.normal(size=500)}))
    predictions = rng.normal(10.0, 2.0, size=200)
    targets = predictions + rng.normal(0.3, 1.0, size=200)
    service.ingest_events(
        "price",
        [
            {
                "id": f"r{i}",
                "timestamp": T0 + i,
                "version": "v1",
                "features": {"x": float(i)},
                "prediction": float(p),
            }
            for i, p in enumerate(predictions)
        ],
    )
    service.ingest_labels(
        "price", [{"id": f"r{i}", "label": float(t)} for i, t in enumerate(targets)]
    )
    expected = regression_metrics(targets, predictions)
    for metric in ("mae", "rmse", "mape", "r2", "mean_error"):
        value = service.series("price", metric, start=T0, end=T0 + HOUR)[0]["value"]
        assert value == pytest.approx(expected[metric]), metric
    clock.now = T0 + 2 * 86_400
    service.tick()
    deleted = service.apply_retention(clock.now)
    assert deleted["price"]["events"] == 200
    assert store.count_events(store.get_model("price").id) == 0
    assert service.series("price", "count", start=T0, end=T0 + HOUR)[0]["value"] == 200.0


def test_system_signals_without_gpu() -> None:
    with Store.open("sqlite:///:memory:") as store:
        signals = make_service(store, Clock(T0)).system_signals()
    assert signals["process_rss_bytes"] > 0
    assert "system_memory_total_bytes" in signals


@pytest.mark.parametrize("body", ["json", "arrow"])
def test_booleans_arrive_named_as_in_the_reference(store: Store, body: str) -> None:
    # The reference names booleans as the batch report does ("1"/"0", watchkeeper.labels), so
    # JSON true/false (or an Arrow boolean column) must arrive as "1"/"0": no unseen categories,
    # and a label true is the class "1" of proba.
    import json

    import pyarrow as pa

    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    rng = np.random.default_rng(21)
    tiers = np.array([True, False, "gold"], dtype=object)
    reference = pd.DataFrame({"x": rng.normal(size=3000), "vip": rng.uniform(size=3000) < 0.3})
    reference["tier"] = pd.Series(rng.choice(tiers, 3000), dtype=object)
    reference["prediction"] = rng.uniform(size=3000) < 0.4
    reference["p1"] = np.where(reference["prediction"], 0.8, 0.2)
    features = {"x": "numeric", "vip": "categorical", "tier": "categorical"}
    model = {"name": "flags", "task": "classification", "features": features}
    model["proba"] = {"0": "p0", "1": "p1"}
    service.register_model(ModelSpec.from_dict(model), reference=reference)
    live = reference.sample(n=600, random_state=22).reset_index(drop=True)
    live["id"] = [f"f{index}" for index in range(len(live))]
    live["timestamp"] = T0 + np.arange(len(live), dtype=float)
    if body == "json":
        batch = [
            {
                "id": row.id,
                "timestamp": row.timestamp,
                "version": "v1",
                "prediction": row.prediction,
                "features": {"x": row.x, "vip": row.vip, "tier": row.tier},
                "proba": {"1": row.p1},
            }
            for row in live.itertuples()
        ]
        outcome = service.ingest_events("flags", json.loads(json.dumps(batch)))
    else:  # An Arrow column holds one type: tier keeps its strings only.
        columns = live[["id", "timestamp", "x", "vip", "prediction"]].to_dict("list")
        columns["tier"] = [tier if isinstance(tier, str) else None for tier in live["tier"]]
        table = pa.table(columns | {"version": ["v1"] * len(live), "proba.1": live["p1"]})
        outcome = service.ingest_table("flags", table)
    assert outcome.accepted == len(live)
    labels = [{"id": row.id, "label": bool(row.prediction)} for row in live.itertuples()]
    assert service.ingest_labels("flags", json.loads(json.dumps(labels))).accepted == len(live)
    clock.now = T0 + HOUR + 10
    service.tick()

    def value(signal: str) -> Any:
        (point,) = service.series("flags", signal, window_seconds=HOUR, start=T0, end=T0 + HOUR)
        return point["value"]

    assert value("quality.vip.new_category_share") == value("drift.vip.detected") == 0.0
    assert value("prediction_drift.detected") == 0.0
    assert value("accuracy") == value("roc_auc") == 1.0
    if body == "json":
        assert value("quality.tier.new_category_share") == value("drift.tier.detected") == 0.0


def test_a_spec_feature_missing_from_the_reference_is_named(store: Store) -> None:
    service = make_service(store, Clock(T0))
    config = {"name": "typo", "task": "regression", "features": {"age": "numeric"}}
    spec_with_typo = ModelSpec.from_dict(
        config | {"features": {"age": "numeric", "incme": "numeric"}}
    )
    frame = pd.DataFrame({"age": np.arange(50.0), "income": np.arange(50.0)})
    with pytest.raises(
        ConfigError, match=r"lacks the feature\(s\) incme; its columns are age, income"
    ):
        service.register_model(spec_with_typo, reference=frame)
    assert service.register_model(ModelSpec.from_dict(config), reference=frame).name == "typo"


def test_a_stored_window_keeps_its_profile_as_text_until_it_is_needed(store: Store) -> None:
    """Reading a stored window for its signals never decodes its feature profiles, and a
    window written back unchanged is byte-identical; a corrupt profile is a clear error."""
    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    service.ingest_events("churn", events(200, T0, seed=21))
    clock.now = T0 + HOUR + 5
    service.tick()
    (row,) = [r for r in store.windows(1, window_seconds=3600, start=T0, end=T0 + HOUR) if r.closed]
    window, signals = WindowProfile.from_bytes(row.profile)
    assert signals["count"] == 200.0
    assert window.to_bytes(signals=signals) == row.profile
    assert window.dataset_profile() is not None
    assert window_state(window)[0] == 200
    corrupt = row.profile.replace(b'"profile":"', b'"profile":"!!', 1)
    broken, _ = WindowProfile.from_bytes(corrupt)
    with pytest.raises(InputError, match="corrupt window profile"):
        broken.dataset_profile()
