"""``POST /v1/models/{model}/outcomes`` against a running server: the answer, the refusals of
the route, the signals, /metrics, and a kill -9 between two sends (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import MODEL, ServerProcess, event
from tests.store.backends import backend_url

SHOP: dict[str, Any] = {
    **MODEL,
    "name": "shop",
    "outcomes": {"click": "binary", "revenue": "numeric"},
}


@pytest.fixture(params=["sqlite-file", "postgresql"])
def shop_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    with backend_url(request.param, tmp_path) as url:
        process = ServerProcess(
            db=url, log=tmp_path / "server.log", env={"WATCHKEEPER_INGEST_WORKERS": "0"}
        ).start()
        try:
            with process.client() as client:
                assert client.post("/v1/models", json=SHOP).status_code == 201
            yield process
        finally:
            process.stop()


def _signal(client: httpx.Client, name: str, now: float) -> Any:
    response = client.get(
        f"/v1/models/shop/signals/{name}", params={"start": now - 7200, "end": now + 3600}
    )
    assert response.status_code == 200, response.text
    points = response.json()["points"]
    assert len(points) == 1, points
    return points[0]["value"]


def test_outcomes_over_http_survive_a_kill(shop_server: ServerProcess) -> None:
    now = time.time()
    events = [event(i, id=f"s-{i}", timestamp=now - 30 + i / 10) for i in range(20)]
    with shop_server.client() as client:
        assert client.post("/v1/models/shop/events", json={"events": events}).status_code == 200
        outcomes = [{"id": f"s-{i}", "name": "click", "value": i % 2 == 0} for i in range(10)]
        outcomes += [
            {"id": "s-0", "name": "revenue", "value": 12.5, "timestamp": now},
            {"id": "s-1", "name": "revnue", "value": 3},
            {"id": "ghost", "name": "click", "value": 1},
        ]
        answer = client.post("/v1/models/shop/outcomes", json={"outcomes": outcomes}).json()
        assert answer["accepted"] == 11
        assert answer["ids"][:2] == ["s-0", "s-1"]
        assert [(r["index"], r["field"]) for r in answer["rejected"]] == [(11, "name"), (12, "id")]
        assert "did you mean 'revenue'" in answer["rejected"][0]["reason"]
        again = client.post(
            "/v1/models/shop/outcomes",
            json={"outcomes": [outcomes[0], {**outcomes[1], "value": True}]},
        ).json()
        assert (again["accepted"], again["duplicates"]) == (0, 1)
        assert [(c["index"], c["field"]) for c in again["conflicts"]] == [(1, "value")]

        assert {"outcome.click.rate", "outcome.revenue.sum"} <= set(
            client.get("/v1/models/shop/signals").json()["signals"]
        )
        assert _signal(client, "outcome.click.rate", now) == 0.5
        assert _signal(client, "outcome.click.per_prediction", now) == 0.25
        metrics = client.get("/metrics").text
        counts = {
            sample.labels["outcome"]: sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "watchkeeper_ingest_outcomes_total"
            and sample.labels["model"] == "shop"
        }
        assert counts == {"accepted": 11, "duplicate": 1, "rejected": 2, "conflict": 1}

    shop_server.kill()
    shop_server.start()
    with shop_server.client() as client:
        more = [{"id": f"s-{i}", "name": "click", "value": False} for i in range(10, 20)]
        assert (
            client.post("/v1/models/shop/outcomes", json={"outcomes": more}).json()["accepted"]
            == 10
        )
        assert _signal(client, "outcome.click.rate", now) == 0.25
        assert _signal(client, "outcome.revenue.mean", now) == 12.5
        by_unit = [event(99, id="s-99", timestamp=now - 30, unit="user-7")]
        assert client.post("/v1/models/shop/events", json={"events": by_unit}).status_code == 200
        answer = client.post(
            "/v1/models/shop/outcomes",
            json={"outcomes": [{"unit": "user-7", "name": "revenue", "value": 7.5}]},
        ).json()
        assert (answer["accepted"], answer["ids"]) == (1, ["s-99"])
        assert _signal(client, "outcome.revenue.mean", now) == 10.0


def test_the_route_refuses_what_the_labels_route_refuses(shop_server: ServerProcess) -> None:
    body = {"outcomes": [{"id": "x", "name": "click", "value": 1}]}
    with shop_server.client(token=None) as anonymous:
        assert anonymous.post("/v1/models/shop/outcomes", json=body).status_code == 401
    with shop_server.client() as client:
        assert client.post("/v1/models/ghost/outcomes", json=body).status_code == 404
        wrong_type = client.post(
            "/v1/models/shop/outcomes",
            content=b"x",
            headers={"content-type": "application/vnd.apache.arrow.stream"},
        )
        assert wrong_type.status_code == 415
        not_a_list = client.post("/v1/models/shop/outcomes", json={"outcomes": {"id": "x"}})
        assert not_a_list.status_code in (400, 422)
        assert not_a_list.json()["error"]["field"] == "outcomes"
        wrong_key = client.post("/v1/models/shop/outcomes", json={"labels": []})
        assert wrong_key.status_code in (400, 422)
        too_many = {"outcomes": [body["outcomes"][0]] * 2001}
        assert client.post("/v1/models/shop/outcomes", json=too_many).status_code == 413
        route = client.get("/openapi.json").json()["paths"]["/v1/models/{model}/outcomes"]
        assert "OutcomeBatch" in str(route["post"]["requestBody"])
