"""The OpenAPI document tells the truth, and the answers no route decides are right too.

What each answer's body looks like is checked against a live server by schemathesis
(test_schemathesis.py); here: every operation documents what it can answer, 405 names every
method of the path, a 500 says it closes the connection, and auth comes before the body.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.server.conftest import ADMIN_TOKEN, MODEL, free_port
from watchkeeper.config import Settings
from watchkeeper.server.app import create_app
from watchkeeper.server.protocol import uvicorn_options

_ERROR = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("openapi")
    return Settings(
        db=f"sqlite:///{root / 'wk.db'}", auth=True, admin_token=ADMIN_TOKEN, ingest_workers=0
    )


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[httpx.Client]:
    server, thread, url = _served(create_app(settings), settings)
    try:
        with httpx.Client(base_url=url) as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_every_reference_in_the_document_resolves(client: httpx.Client) -> None:
    """A ``$ref`` to a schema the document lacks breaks ReDoc and every client generator."""
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]

    def references(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    yield value
                else:
                    yield from references(value)
        elif isinstance(node, list):
            for item in node:
                yield from references(item)

    found = set(references(document))
    assert found
    prefix = "#/components/schemas/"
    assert all(ref.startswith(prefix) for ref in found), found
    missing = sorted(ref for ref in found if ref[len(prefix) :] not in schemas)
    assert missing == []


def test_every_success_answer_has_a_schema(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    for method, path, operation in _operations(document):
        success = [status for status in operation["responses"] if status.startswith("2")]
        assert len(success) == 1, (method, path)
        answer = operation["responses"][success[0]]
        if success[0] == "204" or path == "/metrics":
            continue
        schema = answer["content"]["application/json"]["schema"]
        assert schema != {"type": "string"}, (method, path)
        if path.startswith("/v1/"):
            assert "$ref" in schema, (method, path, schema)


def test_every_error_an_operation_can_answer_is_documented(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        expected = {"431"}
        if path != "/healthz" and path != "/readyz":
            expected |= {"401", "403"}
            assert operation["security"] == [{"bearer": []}], (method, path)
        if path.startswith("/v1/"):
            expected.add("503")
        if "requestBody" in operation:
            expected |= {"400", "413", "415", "422"}
        if "{" in path and method != "POST":
            expected.add("404")
        assert expected <= set(responses), (method, path, sorted(responses))
        for status, answer in responses.items():
            if path in ("/healthz", "/readyz") and status in ("200", "503"):
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/HealthStatus"}, (path, status)
            elif status.startswith(("4", "5")):
                assert answer["content"]["application/json"]["schema"] == _ERROR, (path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_hand_read_bodies_are_documented(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    for path, method, model in [
        ("/v1/tokens", "post", "TokenCreate"),
        ("/v1/silences", "post", "SilenceRequest"),
        ("/v1/models", "post", "ModelConfig"),
    ]:
        body = document["paths"][path][method]["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"]["$ref"].endswith("/" + model)
        assert model in document["components"]["schemas"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/v1/models", "GET, POST"),
        ("PUT", "/v1/tokens", "GET, POST"),
        ("POST", "/v1/rules", "GET, PUT"),
        ("PUT", "/v1/silences/abc", "DELETE, GET"),
        ("POST", "/v1/models/churn", "DELETE, GET, PUT"),
    ],
)
def test_405_allows_every_method_of_the_path(
    client: httpx.Client, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["error"]["type"] == "method_not_allowed"
    assert allowed in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/tokens", b'{"name": 1}'),
        ("/v1/silences", b"not json"),
        ("/v1/models", b"[]"),
        ("/v1/models/churn/events", b"{"),
    ],
)
def test_without_a_token_the_body_is_not_looked_at(
    client: httpx.Client, path: str, body: bytes
) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 401, response.text
    assert response.json()["error"]["field"] == "authorization"
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_read_token_cannot_create_tokens_whatever_the_body(client: httpx.Client) -> None:
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    created = client.post("/v1/tokens", json={"name": "reader", "scopes": ["read"]}, headers=admin)
    assert created.status_code == 201, created.text
    reader = {"authorization": f"Bearer {created.json()['token']}"}
    response = client.post("/v1/tokens", content=b"x" * 10_000, headers=reader)
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{", 400, "body"),
        (b'{"name": "t", "scopes": ["root"]}', 422, "scopes"),
        (b'{"name": "t"}', 422, "scopes"),
        (b'{"name": "t", "scopes": ["read"], "extra": 1}', 422, "extra"),
    ],
)
def test_token_bodies_are_validated_after_the_limited_read(
    client: httpx.Client, body: bytes, status: int, field: str
) -> None:
    response = client.post(
        "/v1/tokens",
        content=body,
        headers={"authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field


def test_a_token_body_of_another_type_is_refused(client: httpx.Client) -> None:
    response = client.post(
        "/v1/tokens",
        content=b"name=t",
        headers={
            "authorization": f"Bearer {ADMIN_TOKEN}",
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 415
    assert response.json()["error"]["field"] == "content-type"


def _served(app: FastAPI, settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="critical", **uvicorn_options(settings)
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    assert server.started, "uvicorn did not start"
    return server, thread, f"http://127.0.0.1:{port}"


def test_after_a_500_clients_that_reuse_connections_are_told_to_close(tmp_path: Path) -> None:
    settings = Settings(db=f"sqlite:///{tmp_path / 'wk.db'}", ingest_workers=0)
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    server, thread, url = _served(app, settings)
    try:
        statuses = []
        with httpx.Client(base_url=url) as client:
            assert client.post("/v1/models", json=MODEL).status_code == 201
            for _ in range(10):
                failed = client.get("/boom")
                assert failed.headers["connection"] == "close"
                statuses += [failed.status_code, client.get("/v1/models").status_code]
        assert statuses == [500, 200] * 10
        assert failed.json()["error"]["type"] == "internal_error"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
