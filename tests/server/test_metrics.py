"""/metrics against a running server: parseable, the documented names, values as ingested."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import MODEL, ServerProcess, event


def _samples(client: httpx.Client) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def _value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    matches = [value for found, value in samples[name] if labels.items() <= found.items()]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


def test_metrics_match_what_was_ingested(admin: httpx.Client, server: ServerProcess) -> None:
    assert admin.post("/v1/models", json={**MODEL, "name": "metered"}).status_code == 201
    now = time.time()
    v1 = [event(i, id=f"m1-{i}", timestamp=now - i) for i in range(120)]
    v2 = [event(i, id=f"m2-{i}", version="v2", timestamp=now - i, latency_ms=2500.0)
          for i in range(30)]  # fmt: skip
    bad = [event(999, id="m-bad", features={"age": "x", "plan": "a", "active": True})]
    response = admin.post("/v1/models/metered/events", json={"events": v1 + v2 + bad})
    assert response.json()["accepted"] == 150
    admin.post("/v1/models/metered/events", json={"events": v1[:10]})  # ten duplicates

    samples = _samples(admin)
    for name in (
        "watchkeeper_predictions_total",
        "watchkeeper_prediction_errors_total",
        "watchkeeper_prediction_latency_seconds_bucket",
        "watchkeeper_prediction_latency_seconds_sum",
        "watchkeeper_prediction_latency_seconds_count",
        "watchkeeper_ingest_events_total",
        "watchkeeper_store_operation_seconds_count",
        "process_resident_memory_bytes",
    ):
        assert name in samples, name
    assert any(name.startswith("watchkeeper_process_") for name in samples)

    assert _value(samples, "watchkeeper_predictions_total", model="metered", version="v1") == 120
    assert _value(samples, "watchkeeper_predictions_total", model="metered", version="v2") == 30
    errors_v1 = sum(1 for item in v1 if item["error"])
    assert (
        _value(samples, "watchkeeper_prediction_errors_total", model="metered", version="v1")
        == errors_v1
    )
    latency = "watchkeeper_prediction_latency_seconds"
    assert _value(samples, f"{latency}_count", model="metered", version="v1") == 120
    expected_sum = sum(item["latency_ms"] for item in v1) / 1000
    assert (
        abs(_value(samples, f"{latency}_sum", model="metered", version="v1") - expected_sum) < 1e-9
    )
    # v2 reported 2.5 s: none in the 1 s bucket, all in the 2.5 s bucket.
    assert _value(samples, f"{latency}_bucket", model="metered", version="v2", le="1.0") == 0
    assert _value(samples, f"{latency}_bucket", model="metered", version="v2", le="2.5") == 30
    ingest = "watchkeeper_ingest_events_total"
    assert _value(samples, ingest, model="metered", outcome="accepted") == 150
    assert _value(samples, ingest, model="metered", outcome="rejected") == 1
    assert _value(samples, ingest, model="metered", outcome="duplicate") == 10
    assert (
        _value(samples, "watchkeeper_store_operation_seconds_count", operation="insert_events") >= 2
    )


def test_signal_gauges_follow_closed_windows(tmp_path: Path) -> None:
    server = ServerProcess(
        db=f"sqlite:///{tmp_path / 'signals.db'}",
        log=tmp_path / "server.log",
        env={"WATCHKEEPER_WINDOW_CHECK_SECONDS": "0.2"},
    ).start()
    try:
        with server.client() as admin:
            spec = {**MODEL, "name": "gauged", "windows": [1, 3600]}
            assert admin.post("/v1/models", json=spec).status_code == 201
            reference = [
                {"age": 20.0 + i % 30, "plan": "basic" if i % 3 else "pro", "active": i % 2 == 0}
                for i in range(400)
            ]
            assert admin.put("/v1/models/gauged/reference", json=reference).status_code == 200
            now = time.time()
            events = [event(i, id=f"g-{i}", timestamp=now) for i in range(200)]
            for item in events:
                item["features"]["age"] = 60.0 + item["features"]["age"]  # shifted: drift
            assert (
                admin.post("/v1/models/gauged/events", json={"events": events}).status_code == 200
            )
            labels = [{"id": item["id"], "label": item["prediction"]} for item in events]
            assert (
                admin.post("/v1/models/gauged/labels", json={"labels": labels}).status_code == 200
            )
            deadline = time.monotonic() + 20
            samples: dict[str, list[tuple[dict[str, str], float]]] = {}
            while time.monotonic() < deadline:
                samples = _samples(admin)
                if (
                    "watchkeeper_model_accuracy" in samples
                    and "watchkeeper_feature_drift_score" in samples
                ):
                    break
                time.sleep(0.3)
            drift = _value(
                samples,
                "watchkeeper_feature_drift_score",
                model="gauged",
                version="v1",
                feature="age",
            )
            assert drift > 0.5
            assert (
                _value(samples, "watchkeeper_model_accuracy", model="gauged", version="v1") == 1.0
            )
            assert (
                _value(samples, "watchkeeper_model_performance", model="gauged", version="v1",
                       metric="accuracy") == 1.0
            )  # fmt: skip
            count = _value(
                samples, "watchkeeper_signal", model="gauged", version="v1", segment="*",
                signal="count",
            )  # fmt: skip
            assert count == 200
            # What NoData measures from: the ingest time of each stream's newest event.
            last = [
                value
                for found, value in samples["watchkeeper_signal"]
                if found.get("model") == "gauged" and found.get("signal") == "last_event"
            ]
            assert last
            assert all(now - 5 <= value <= time.time() for value in last)
    finally:
        server.stop()
