"""End to end against a running server: routes, bad input, columnar ingest, OpenAPI."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.server.conftest import MODEL, ServerProcess, event
from watchkeeper.store import Store

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "field", "index"}
    detail: dict[str, Any] = body["error"]
    return detail


def _register(client: httpx.Client, name: str) -> None:
    response = client.post("/v1/models", json={**MODEL, "name": name})
    assert response.status_code == 201, response.text


def _stored(server: ServerProcess, model: str) -> list[Any]:
    with Store(server.db) as store:
        model_id = store.get_model(model).id
        return list(store.events_between(model_id, 0.0, 1e12))


def test_health_docs_and_openapi(admin: httpx.Client) -> None:
    assert admin.get("/healthz").json() == {"status": "ok"}
    assert admin.get("/readyz").json()["status"] == "ready"
    schema = admin.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert {
        "/v1/models",
        "/v1/models/{model}",
        "/v1/models/{model}/reference",
        "/v1/models/{model}/versions",
        "/v1/models/{model}/events",
        "/v1/models/{model}/labels",
        "/v1/models/{model}/feedback",
        "/v1/models/{model}/signals",
        "/v1/models/{model}/signals/{signal}",
        "/v1/models/{model}/report",
        "/v1/tokens",
        "/v1/tokens/{name}",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= paths
    events_body = schema["paths"]["/v1/models/{model}/events"]["post"]["requestBody"]
    assert set(events_body["content"]) == {"application/json", ARROW, PARQUET}
    assert "EventBatch" in schema["components"]["schemas"]
    assert "Event" in schema["components"]["schemas"]
    docs = admin.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_model_routes(admin: httpx.Client) -> None:
    listed = admin.get("/v1/models").json()["models"]
    assert "churn" in [model["name"] for model in listed]
    got = admin.get("/v1/models/churn").json()
    assert got["features"] == MODEL["features"]
    assert got["windows"] == [3600]
    missing = admin.get("/v1/models/nope")
    assert missing.status_code == 404
    assert _error(missing)["type"] == "not_found"
    duplicate = admin.post("/v1/models", json=MODEL)
    assert duplicate.status_code == 409
    assert _error(duplicate)["type"] == "conflict"
    bad = admin.post("/v1/models", json={**MODEL, "name": "bad", "features": {"x": "number"}})
    assert bad.status_code == 422
    assert _error(bad)["field"] == "features.x"
    assert "unknown column kind" in _error(bad)["message"]


def test_mixed_batch_stores_the_valid_events_and_names_each_problem(
    admin: httpx.Client, server: ServerProcess
) -> None:
    _register(admin, "mixed")
    old = time.time() - 30 * 86_400
    events = [
        event(0, id="ok-0"),
        event(1, id="bad-type", features={"age": "old", "plan": "pro", "active": True}),
        event(2, id="nan", features={"age": "__NAN__", "plan": "pro", "active": True}),
        event(3, id="unknown", features={"age": 1.0, "plan": "pro", "active": True, "zip": 1}),
        event(4, id="missing", features={"age": 1.0, "active": True}),
        event(5, id="too-old", timestamp=old),
        event(6, id="ok-6"),
        event(7, id="no-version", version=None),
    ]
    # NaN is not JSON, but Python's json module writes it: the event must be rejected alone.
    body = orjson.dumps({"events": events}).replace(b'"__NAN__"', b"NaN")
    response = admin.post(
        "/v1/models/mixed/events", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 2
    assert answer["ids"] == ["ok-0", "ok-6"]
    assert answer["duplicates"] == 0
    problems = {(item["index"], item["field"]) for item in answer["rejected"]}
    assert problems == {
        (1, "features.age"),
        (2, "features.age"),
        (3, "features.zip"),
        (4, "features.plan"),
        (5, "timestamp"),
        (7, "version"),
    }
    reasons = {item["index"]: item["reason"] for item in answer["rejected"]}
    assert "NaN" in reasons[2]
    assert "older" in reasons[5].lower()
    assert sorted(stored.event_id for stored in _stored(server, "mixed")) == ["ok-0", "ok-6"]

    again = admin.post("/v1/models/mixed/events", json={"events": [event(0, id="ok-0")]})
    assert again.json() == {"accepted": 0, "duplicates": 1, "ids": [], "rejected": []}


def test_malformed_json_gives_the_position(admin: httpx.Client) -> None:
    response = admin.post(
        "/v1/models/churn/events",
        content=b'{"events": [{"version": "v1",,}]}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    error = _error(response)
    assert error["type"] == "malformed_json"
    assert error["field"] == "body"
    assert "line 1, column 30 (byte 29)" in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"evnts": []}', "events"),
        (b'{"events": {"version": "v1"}}', "events"),
        (b"[1, 2]", "events"),
    ],
)
def test_wrong_envelope_is_422(admin: httpx.Client, body: bytes, field: str) -> None:
    response = admin.post(
        "/v1/models/churn/events", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert _error(response)["field"] == field


def test_unknown_model_is_404(admin: httpx.Client) -> None:
    response = admin.post("/v1/models/ghost/events", json={"events": [event(1)]})
    assert response.status_code == 404
    assert _error(response)["type"] == "not_found"
    assert "ghost" in _error(response)["message"]


def test_oversized_bodies_are_413(admin: httpx.Client) -> None:
    big = b'{"events": [' + b" " * 2_100_000 + b"]}"
    response = admin.post(
        "/v1/models/churn/events", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "2000000" in _error(response)["message"]

    def chunks() -> Iterator[bytes]:
        # No Content-Length: the server must count while reading and stop at the limit.
        yield b'{"events": ['
        for _ in range(40):
            yield b" " * 60_000
        yield b"]}"

    streamed = admin.post(
        "/v1/models/churn/events", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert _error(streamed)["type"] == "payload_too_large"

    many = admin.post("/v1/models/churn/events", json={"events": [event(i) for i in range(2001)]})
    assert many.status_code == 413
    assert _error(many)["field"] == "events"


def test_unsupported_content_type_is_415(admin: httpx.Client) -> None:
    response = admin.post(
        "/v1/models/churn/events", content=b"a,b\n1,2\n", headers={"content-type": "text/csv"}
    )
    assert response.status_code == 415


def _table(events: list[dict[str, Any]]) -> pa.Table:
    """The columnar form of the wire contract: flat feature, proba.<c> and segment.<k> columns."""
    columns: dict[str, list[Any]] = {
        "id": [item["id"] for item in events],
        "timestamp": [item.get("timestamp") for item in events],
        "version": [item["version"] for item in events],
        "prediction": [item["prediction"] for item in events],
        "latency_ms": [item["latency_ms"] for item in events],
        "error": [item["error"] for item in events],
        "unit": [item.get("unit") for item in events],
        "arm": [item.get("arm") for item in events],
    }
    for name in MODEL["features"]:
        columns[name] = [item["features"][name] for item in events]
    for label in ("0", "1"):
        columns[f"proba.{label}"] = [item["proba"][label] for item in events]
    columns["segment.region"] = [item["segment"]["region"] for item in events]
    return pa.table(columns)


def _arrow(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_columnar_ingest_equals_json_ingest(admin: httpx.Client, server: ServerProcess) -> None:
    now = time.time()
    events = [
        event(
            index, timestamp=now - index, unit=f"user-{index % 7}", arm=["A", "B", None][index % 3]
        )
        for index in range(300)
    ]
    events[17]["features"]["age"] = None  # a missing value travels as null in every form
    events[18]["unit"] = None
    table = _table(events)
    answers = {}
    for name, body, content_type in (
        ("as-json", orjson.dumps({"events": events}), "application/json"),
        ("as-arrow", _arrow(table), ARROW),
        ("as-parquet", _parquet(table), PARQUET),
    ):
        _register(admin, name)
        response = admin.post(
            f"/v1/models/{name}/events", content=body, headers={"content-type": content_type}
        )
        assert response.status_code == 200, response.text
        answers[name] = response.json()
    assert answers["as-json"] == answers["as-arrow"] == answers["as-parquet"]
    assert answers["as-json"]["accepted"] == 300

    def canonical(model: str) -> list[tuple[Any, ...]]:
        return [
            (e.event_id, e.version, e.ts, e.segment, dict(e.features), e.prediction,
             dict(e.proba or {}), e.latency_ms, e.error, e.unit, e.arm)
            for e in _stored(server, model)
        ]  # fmt: skip

    reference = canonical("as-json")
    assert len(reference) == 300
    sent = {row[0]: (row[-2], row[-1]) for row in reference}
    assert [sent[f"e-{index}"] for index in (16, 17, 18)] == [
        ("user-2", "B"),
        ("user-3", None),
        (None, "A"),
    ]
    assert canonical("as-arrow") == reference
    assert canonical("as-parquet") == reference


def test_columnar_rejections_name_rows_and_columns(admin: httpx.Client) -> None:
    rows = [event(index, id=f"col-{index}") for index in range(6)]
    rows[3]["features"]["age"] = float("nan")
    rows[5]["arm"] = "9 lives"
    table = _table(rows).drop_columns(["timestamp"])
    response = admin.post(
        "/v1/models/churn/events", content=_arrow(table), headers={"content-type": ARROW}
    )
    answer = response.json()
    assert answer["accepted"] == 4
    assert answer["ids"] == ["col-0", "col-1", "col-2", "col-4"]
    assert [(item["index"], item["field"]) for item in answer["rejected"]] == [
        (3, "features.age"),
        (5, "arm"),
    ]
    assert "letters, digits" in answer["rejected"][1]["reason"]
    corrupt = admin.post(
        "/v1/models/churn/events", content=b"not arrow", headers={"content-type": ARROW}
    )
    assert corrupt.status_code == 400
    assert _error(corrupt)["type"] == "malformed_body"


def test_labels_feedback_versions_signals_report(admin: httpx.Client) -> None:
    _register(admin, "flow")
    now = time.time()
    events = [event(index, id=f"f-{index}", timestamp=now - 60 + index) for index in range(40)]
    assert admin.post("/v1/models/flow/events", json={"events": events}).json()["accepted"] == 40
    labels: list[dict[str, Any]] = [
        {"id": f"f-{index}", "label": str(index % 2)} for index in range(40)
    ]
    labels.append({"id": "f-0", "label": None})
    answer = admin.post("/v1/models/flow/labels", json={"labels": labels}).json()
    assert answer["accepted"] == 40
    assert [(item["index"], item["field"]) for item in answer["rejected"]] == [(40, "label")]
    feedback = [
        {"id": "f-1", "user_id": "u1", "rating": 5},
        {"id": "f-2", "user_id": "u1", "rating": 9},
    ]
    answer = admin.post("/v1/models/flow/feedback", json={"feedback": feedback}).json()
    assert answer["accepted"] == 1
    assert [(item["index"], item["field"]) for item in answer["rejected"]] == [(1, "rating")]

    versions = admin.get("/v1/models/flow/versions").json()
    assert versions["model"] == "flow"
    assert "v1" in [item["version"] for item in versions["versions"]]
    names = admin.get("/v1/models/flow/signals").json()["signals"]
    assert "count" in names
    series = admin.get(
        "/v1/models/flow/signals/count", params={"start": now - 7200, "end": now + 3600}
    )
    assert series.status_code == 200
    assert series.json()["signal"] == "count"
    report = admin.get("/v1/models/flow/report", params={"start": now - 3600, "end": now + 60})
    assert report.status_code == 200, report.text
    assert report.json()["schema"] == "watchkeeper.report/v1"
    bad_time = admin.get("/v1/models/flow/report", params={"start": "yesterday"})
    assert bad_time.status_code == 422
    assert _error(bad_time)["field"] == "start"
    assert admin.get("/v1/models/ghost/signals").status_code == 404


def test_a_reference_sent_after_registration_brings_the_drift_rules(
    admin: httpx.Client,
) -> None:
    """The SDK over HTTP registers, then uploads the reference: the model must not be left
    without the default pack's drift rules (they need drift signals, which need a reference)."""
    _register(admin, "late")

    def drift_rules() -> set[str]:
        rules = admin.get("/v1/rules").json()["rules"]
        return {
            rule["name"]
            for rule in rules
            if rule["model"] == "late" and rule["name"].endswith(("FeatureDrift", "DriftShareHigh"))
        }

    assert drift_rules() == set()
    tuned = {r["name"] for r in admin.get("/v1/rules").json()["rules"] if r["model"] == "late"}
    csv = "age,plan,active\n" + "".join(
        f"{20 + i % 40},{'basic' if i % 3 else 'pro'},{str(i % 2 == 0).lower()}\n"
        for i in range(300)
    )
    response = admin.put(
        "/v1/models/late/reference", content=csv.encode(), headers={"content-type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert drift_rules() == {"LateFeatureDrift", "LateDriftShareHigh"}
    after = {r["name"] for r in admin.get("/v1/rules").json()["rules"] if r["model"] == "late"}
    assert tuned < after
    assert admin.delete("/v1/models/late").status_code == 204


def test_reference_upload_and_delete(admin: httpx.Client) -> None:
    _register(admin, "ref")
    csv = "age,plan,active\n" + "".join(
        f"{20 + i % 40},{'basic' if i % 3 else 'pro'},{str(i % 2 == 0).lower()}\n"
        for i in range(300)
    )
    response = admin.put(
        "/v1/models/ref/reference", content=csv.encode(), headers={"content-type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    records = [{"age": 30 + i % 5, "plan": "pro", "active": True} for i in range(50)]
    as_json = admin.put("/v1/models/ref/reference", json=records)
    assert as_json.status_code == 200, as_json.text
    assert admin.delete("/v1/models/ref").status_code == 204
    assert admin.get("/v1/models/ref").status_code == 404
    assert admin.delete("/v1/models/ref").status_code == 404
