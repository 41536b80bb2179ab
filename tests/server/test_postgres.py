"""The main end-to-end flow against PostgreSQL (the server from scripts/postgres.sh)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pyarrow as pa
import pytest

from tests.server.conftest import MODEL, ServerProcess, event
from tests.store.backends import postgres_schema_url
from watchkeeper.store import Store

pytestmark = pytest.mark.postgres


def test_end_to_end_on_postgresql(tmp_path: Path) -> None:
    with postgres_schema_url() as url:
        server = ServerProcess(db=url, log=tmp_path / "server.log").start()
        try:
            with server.client() as admin:
                assert admin.get("/readyz").json()["store"] == "postgresql"
                assert admin.post("/v1/models", json=MODEL).status_code == 201
                now = time.time()
                events = [event(i, id=f"pg-{i}", timestamp=now) for i in range(100)]
                events[5]["features"]["age"] = "not a number"
                answer = admin.post("/v1/models/churn/events", json={"events": events}).json()
                assert answer["accepted"] == 99
                assert [(r["index"], r["field"]) for r in answer["rejected"]] == [
                    (5, "features.age")
                ]
                table = pa.table(
                    {
                        "id": [f"pg-arrow-{i}" for i in range(50)],
                        "version": ["v2"] * 50,
                        "age": [float(i) for i in range(50)],
                        "plan": ["pro"] * 50,
                        "active": [True] * 50,
                    }
                )
                sink = io.BytesIO()
                with pa.ipc.new_stream(sink, table.schema) as writer:
                    writer.write_table(table)
                arrow = admin.post(
                    "/v1/models/churn/events",
                    content=sink.getvalue(),
                    headers={"content-type": "application/vnd.apache.arrow.stream"},
                )
                assert arrow.json()["accepted"] == 50
                labels = [{"id": f"pg-{i}", "label": "1"} for i in range(10)]
                assert (
                    admin.post("/v1/models/churn/labels", json={"labels": labels}).json()[
                        "accepted"
                    ]
                    == 10
                )
                token = admin.post("/v1/tokens", json={"name": "pg", "scopes": ["read"]}).json()
            with server.client(token=token["token"]) as reader:
                versions = reader.get("/v1/models/churn/versions").json()["versions"]
                assert {item["version"] for item in versions} == {"v1", "v2"}
                assert "watchkeeper_predictions_total" in reader.get("/metrics").text
        finally:
            server.stop()

        server.start()
        try:
            with server.client() as admin:
                assert [m["name"] for m in admin.get("/v1/models").json()["models"]] == ["churn"]
                duplicate = admin.post("/v1/models/churn/events", json={"events": events[:3]})
                assert duplicate.json()["duplicates"] == 3
        finally:
            server.stop()
        with Store(url) as store:
            assert store.count_events(store.get_model("churn").id) == 149
