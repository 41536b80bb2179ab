"""What a client cannot make the service hold, through the HTTP API of a real server:
versions and segments past the cardinality caps, and a second, different label for an id."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from tests.server.conftest import ADMIN_TOKEN, MODEL, ServerProcess, event
from watchkeeper.sdk import Client


def metrics_lines(server: ServerProcess) -> list[str]:
    with server.client() as client:
        text = client.get("/metrics").text
    return [line for line in text.splitlines() if line.startswith("watchkeeper_")]


def capped_metric(server: ServerProcess) -> float:
    prefix = 'watchkeeper_ingest_rejected_cardinality_total{field="version",model="churn"} '
    (line,) = [line for line in metrics_lines(server) if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


@pytest.mark.parametrize("workers", ["0", "1"], ids=["in-process", "ingest-worker"])
def test_versions_beyond_the_cap_are_rejected_over_http_and_after_a_restart(
    tmp_path: Path, workers: str
) -> None:
    server = ServerProcess(
        db=f"sqlite:///{tmp_path / 'wk.db'}",
        log=tmp_path / "server.log",
        env={"WATCHKEEPER_MAX_VERSIONS_PER_MODEL": "3", "WATCHKEEPER_INGEST_WORKERS": workers},
    ).start()
    try:
        with server.client() as client:
            assert client.post("/v1/models", json=MODEL).status_code == 201
            batch = [event(i, version=f"v{i % 5 + 1}") for i in range(20)]
            answer = client.post("/v1/models/churn/events", json={"events": batch}).json()
        assert answer["accepted"] == 12
        assert answer["ids"] == [e["id"] for e in batch if e["version"] in ("v1", "v2", "v3")]
        rejected = answer["rejected"]
        assert [r["index"] for r in rejected] == [
            i for i, e in enumerate(batch) if e["version"] in ("v4", "v5")
        ]
        assert {r["field"] for r in rejected} == {"version"}
        assert "WATCHKEEPER_MAX_VERSIONS_PER_MODEL" in rejected[0]["reason"]
        assert capped_metric(server) == 8

        # A client minting a version per event grows neither the answer's cost nor /metrics.
        before = len(metrics_lines(server))
        with server.client() as client:
            for round_ in range(5):
                flood = [
                    event(1000 + 100 * round_ + i, version=f"r{round_}-{i}") for i in range(100)
                ]
                reply = client.post("/v1/models/churn/events", json={"events": flood}).json()
                assert (reply["accepted"], len(reply["rejected"])) == (0, 100)
        assert len(metrics_lines(server)) == before
        assert capped_metric(server) == 508
    finally:
        server.stop()

    server.start()
    try:
        with server.client() as client:
            late = [event(5000, version="v2"), event(5001, version="v9")]
            answer = client.post("/v1/models/churn/events", json={"events": late}).json()
            versions = client.get("/v1/models/churn/versions").json()
        assert answer["ids"] == ["e-5000"]
        assert [(r["index"], r["field"]) for r in answer["rejected"]] == [(1, "version")]
        assert [v["version"] for v in versions["versions"]] == ["v1", "v2", "v3"]
    finally:
        server.stop()


def test_the_sdk_counts_and_logs_events_refused_by_a_cap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = ServerProcess(
        db=f"sqlite:///{tmp_path / 'wk.db'}",
        log=tmp_path / "server.log",
        env={"WATCHKEEPER_MAX_VERSIONS_PER_MODEL": "1", "WATCHKEEPER_INGEST_WORKERS": "0"},
    ).start()
    try:
        with server.client() as admin:
            assert admin.post("/v1/models", json=MODEL).status_code == 201
        client = Client(server.url, token=ADMIN_TOKEN)
        first, second = client.logger("churn", "v1"), client.logger("churn", "v2")
        with caplog.at_level(logging.WARNING, logger="watchkeeper.sdk"):
            for index in range(5):
                features = event(index)["features"]
                first.log(features, prediction="1", segment={"region": "eu"})
                second.log(features, prediction="1", segment={"region": "eu"})
            assert first.flush(timeout=10)
            assert second.flush(timeout=10)
            time.sleep(0.1)
        assert (first.stats.sent, first.stats.rejected) == (5, 0)
        assert (second.stats.sent, second.stats.rejected) == (0, 5)
        (warning,) = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
        assert "rejected 5 events of model 'churn'" in warning
        assert "version: version 'v2' would exceed the cap" in warning
        client.close()
    finally:
        server.stop()


def test_a_different_label_comes_back_as_a_conflict_over_http(tmp_path: Path) -> None:
    server = ServerProcess(
        db=f"sqlite:///{tmp_path / 'wk.db'}",
        log=tmp_path / "server.log",
        env={"WATCHKEEPER_INGEST_WORKERS": "0"},
    ).start()
    try:
        with server.client() as client:
            assert client.post("/v1/models", json=MODEL).status_code == 201
            batch = [event(i) for i in range(3)]
            assert client.post("/v1/models/churn/events", json={"events": batch}).status_code == 200
            labels = [{"id": "e-0", "label": "1"}, {"id": "e-1", "label": "0"}]
            first = client.post("/v1/models/churn/labels", json={"labels": labels}).json()
            corrected = [{"id": "e-0", "label": "1"}, {"id": "e-1", "label": "1"}]
            answer = client.post("/v1/models/churn/labels", json={"labels": corrected}).json()
            metrics = client.get("/metrics").text
        assert (first["accepted"], first["conflicts"]) == (2, [])
        assert (answer["accepted"], answer["duplicates"]) == (0, 1)
        (conflict,) = answer["conflicts"]
        assert (conflict["index"], conflict["field"]) == (1, "label")
        assert conflict["reason"].startswith("event 'e-1' is already labelled '0'")
        assert 'watchkeeper_ingest_labels_total{model="churn",outcome="conflict"} 1.0' in metrics
        assert 'watchkeeper_ingest_labels_total{model="churn",outcome="duplicate"} 1.0' in metrics

        receipt = Client(server.url, token=ADMIN_TOKEN).log_labels("churn", [("e-1", 1)])
        assert (receipt.accepted, receipt.duplicates) == (0, 0)
        assert [(c.index, c.field) for c in receipt.conflicts] == [(0, "label")]
    finally:
        server.stop()
