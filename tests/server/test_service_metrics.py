"""The service metrics of /metrics: HTTP requests per route template, prediction confidence,
batch sizes, model load status and GPU gauges (an app served in-process by uvicorn)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.alerts_live.conftest import serve
from tests.server.conftest import MODEL, event
from watchkeeper.config import Settings
from watchkeeper.monitor.windows import EventBatch
from watchkeeper.server.app import create_app
from watchkeeper.server.service_metrics import ModelLoadStatus, max_class_probability

Samples = dict[str, list[tuple[dict[str, str], float]]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    root = tmp_path_factory.mktemp("service-metrics")
    settings = Settings(db=f"sqlite:///{root / 'wk.db'}", ingest_workers=0)
    app = create_app(settings)
    with serve(app) as url:
        assert httpx.post(f"{url}/v1/models", json=MODEL).status_code == 201
        yield url, app


def _samples(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def _value(samples: Samples, name: str, **labels: str) -> float:
    matches = [value for found, value in samples.get(name, []) if labels.items() <= found.items()]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


def test_requests_are_counted_by_route_template_not_raw_path(served: tuple[str, Any]) -> None:
    url, _ = served
    for name in ("churn", "nope-1", "nope-2"):
        httpx.get(f"{url}/v1/models/{name}")
    httpx.get(f"{url}/no/such/page")
    samples = _samples(url)
    requests = "watchkeeper_http_requests_total"
    route = "/v1/models/{model}"
    assert _value(samples, requests, method="GET", route=route, status="200") >= 1
    assert _value(samples, requests, method="GET", route=route, status="404") >= 2
    assert _value(samples, requests, method="GET", route="<unmatched>", status="404") >= 1
    assert not any("nope" in labels["route"] for labels, _ in samples[requests])
    duration = "watchkeeper_http_request_duration_seconds_count"
    assert _value(samples, duration, method="GET", route=route) >= 3


def test_confidence_and_batch_sizes_follow_the_ingested_batches(served: tuple[str, Any]) -> None:
    url, _ = served
    now = time.time()
    sure = [event(i, id=f"c-{i}", timestamp=now, proba={"0": 0.02, "1": 0.98}) for i in range(40)]
    unsure = [event(i, id=f"u-{i}", timestamp=now, proba={"0": 0.45, "1": 0.55}) for i in range(10)]
    bare = [event(i, id=f"b-{i}", timestamp=now, proba=None) for i in range(5)]
    bad = [event(0, id="x", features={"age": "old", "plan": "a", "active": True})]
    response = httpx.post(
        f"{url}/v1/models/churn/events", json={"events": sure + unsure + bare + bad}
    )
    assert response.json()["accepted"] == 55
    labels = [{"id": f"c-{i}", "label": "1"} for i in range(3)]
    assert httpx.post(f"{url}/v1/models/churn/labels", json={"labels": labels}).status_code == 200

    samples = _samples(url)
    confidence = "watchkeeper_prediction_confidence"
    # Events without probabilities have no confidence.
    assert _value(samples, f"{confidence}_count", model="churn", version="v1") == 50
    assert _value(samples, f"{confidence}_bucket", model="churn", version="v1", le="0.6") == 10
    assert _value(samples, f"{confidence}_bucket", model="churn", version="v1", le="0.95") == 10
    assert _value(samples, f"{confidence}_bucket", model="churn", version="v1", le="0.99") == 50
    expected = 40 * 0.98 + 10 * 0.55
    assert math.isclose(_value(samples, f"{confidence}_sum", model="churn", version="v1"), expected)
    sizes = "watchkeeper_ingest_batch_size"
    # One request of 56 items (the rejected one counts: it was sent).
    assert _value(samples, f"{sizes}_count", model="churn", kind="events") == 1
    assert _value(samples, f"{sizes}_sum", model="churn", kind="events") == 56
    assert _value(samples, f"{sizes}_bucket", model="churn", kind="events", le="50.0") == 0
    assert _value(samples, f"{sizes}_bucket", model="churn", kind="events", le="100.0") == 1
    assert _value(samples, f"{sizes}_sum", model="churn", kind="labels") == 3


def test_model_load_status_is_one_hot_per_version(served: tuple[str, Any]) -> None:
    url, app = served
    status: ModelLoadStatus = app.state.watchkeeper.load_status
    status.set("churn", "1", "loading")
    status.set("churn", "1", "loaded")
    status.set("churn", "2", "failed")
    samples = _samples(url)
    name = "watchkeeper_model_load_status"
    assert _value(samples, name, model="churn", version="1", state="loaded") == 1
    assert _value(samples, name, model="churn", version="1", state="loading") == 0
    assert _value(samples, name, model="churn", version="2", state="failed") == 1
    status.forget("churn", "2")
    assert all(labels["version"] != "2" for labels, _ in _samples(url)[name])
    with pytest.raises(ValueError, match="loading, loaded, failed, unloaded"):
        status.set("churn", "1", "ready")


def test_gpu_gauges_carry_the_device_as_a_label(
    served: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, app = served
    service = app.state.watchkeeper.service
    plain = service.system_signals()
    assert not any(key.startswith("gpu_") for key in plain)  # no NVML here: no GPU signal
    assert not any(name.startswith("watchkeeper_gpu") for name in _samples(url))
    fake = {**plain, "gpu_0_memory_used_bytes": 2.0e9, "gpu_1_memory_used_bytes": 1.0e9}
    monkeypatch.setattr(service, "system_signals", lambda: fake)
    samples = _samples(url)
    assert _value(samples, "watchkeeper_gpu_memory_used_bytes", gpu="0") == 2.0e9
    assert _value(samples, "watchkeeper_gpu_memory_used_bytes", gpu="1") == 1.0e9
    assert "process_resident_memory_bytes" in samples
    assert "process_cpu_seconds_total" in samples


def _batch(columns: dict[str, np.ndarray], probas: list[dict[str, float] | None]) -> EventBatch:
    size = len(probas)
    return EventBatch(
        ids=[str(i) for i in range(size)],
        ts=np.zeros(size),
        versions=["v"] * size,
        segments=[""] * size,
        columns=columns,
        predictions=[None] * size,
        probas=probas,
        latency=np.full(size, np.nan),
        errors=np.zeros(size, dtype=bool),
    )


def test_max_class_probability_reads_profiled_columns_and_proba_maps_alike() -> None:
    probas: list[dict[str, float] | None] = [
        {"a": 0.2, "b": 0.5, "c": 0.3},
        {"a": 0.9, "b": 0.1},  # c missing: the others still count
        None,
    ]
    proba = {"a": "p_a", "b": "p_b", "c": "p_c"}
    from_maps = max_class_probability(_batch({}, probas), proba)
    profiled = {"p_a": np.array([0.2, 0.9, np.nan]), "p_b": np.array([0.5, 0.1, np.nan])}
    from_columns = max_class_probability(_batch(profiled, probas), proba)
    for found in (from_maps, from_columns):
        assert found is not None
        np.testing.assert_array_equal(found, [0.5, 0.9, np.nan])
    assert max_class_probability(_batch({}, probas), None) is None
