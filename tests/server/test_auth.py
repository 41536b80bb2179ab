"""Tokens and scopes against a running server; hashing, constant-time compare, exposure refusal."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from tests.server.conftest import ServerProcess, event
from watchkeeper.cli.service import register
from watchkeeper.config import Settings
from watchkeeper.errors import AuthError
from watchkeeper.server import auth
from watchkeeper.store import Store

runner = CliRunner()


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _token(admin: httpx.Client, name: str, *scopes: str) -> str:
    response = admin.post("/v1/tokens", json={"name": name, "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    secret: str = response.json()["token"]
    return secret


def test_requests_without_a_valid_token_are_401(server: ServerProcess) -> None:
    with server.client(token=None) as anonymous:
        response = anonymous.get("/v1/models")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["type"] == "unauthorized"
        assert anonymous.get("/metrics").status_code == 401
        assert anonymous.get("/healthz").status_code == 200
    secret = "wk_not-a-real-token-but-secret-looking"
    with server.client(token=secret) as stranger:
        response = stranger.post("/v1/models/churn/events", json={"events": [event(1)]})
        assert response.status_code == 401
        assert secret not in response.text


def test_scopes_are_enforced_and_revocation_is_immediate(
    admin: httpx.Client, server: ServerProcess
) -> None:
    ingest = _token(admin, "ingest-only", "ingest")
    reader = _token(admin, "reader", "read")
    with server.client(token=ingest) as client:
        assert (
            client.post("/v1/models/churn/events", json={"events": [event(900)]}).status_code == 200
        )
        forbidden = client.get("/v1/models")
        assert forbidden.status_code == 403
        assert "read" in forbidden.json()["error"]["message"]
        assert ingest not in forbidden.text
    with server.client(token=reader) as client:
        assert client.get("/v1/models/churn").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert (
            client.post("/v1/models/churn/events", json={"events": [event(901)]}).status_code == 403
        )
        assert client.post("/v1/tokens", json={"name": "x", "scopes": ["admin"]}).status_code == 403
    listed = admin.get("/v1/tokens").json()["tokens"]
    assert {"ingest-only", "reader"} <= {item["name"] for item in listed}
    assert all(set(item) == {"name", "scopes", "created_at", "revoked_at", "last_used_at"}
               for item in listed)  # fmt: skip
    assert ingest not in admin.get("/v1/tokens").text
    revoked = admin.delete("/v1/tokens/ingest-only")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    with server.client(token=ingest) as client:
        response = client.post("/v1/models/churn/events", json={"events": [event(902)]})
        assert response.status_code == 401
        assert "revoked" in response.json()["error"]["message"]
    assert admin.delete("/v1/tokens/never-existed").status_code == 404
    duplicate = admin.post("/v1/tokens", json={"name": "reader", "scopes": ["read"]})
    assert duplicate.status_code == 409


def test_tokens_are_stored_hashed(admin: httpx.Client, server: ServerProcess) -> None:
    secret = _token(admin, "hashed", "read")
    with Store(server.db) as store:
        record = next(item for item in store.list_tokens() if item.name == "hashed")
    assert record.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    database = Path(server.db.removeprefix("sqlite:///"))
    assert secret.encode() not in database.read_bytes()
    wal = database.with_name(database.name + "-wal")
    assert not wal.exists() or secret.encode() not in wal.read_bytes()


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    original = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with Store.open("sqlite:///:memory:") as store:
        secret, _ = auth.issue_token(store, "svc", ["ingest"])
        authenticator = auth.Authenticator(
            settings=Settings(auth=True, admin_token="the-admin"), store=store
        )
        assert authenticator.verify(secret).scopes == ("ingest",)
        digest = hashlib.sha256(secret.encode()).hexdigest()
        assert (digest, digest) in calls
        assert authenticator.verify("the-admin").scopes == ("admin",)
        calls.clear()
        with pytest.raises(AuthError):
            authenticator.verify("wrong")
        assert calls, "the admin token comparison must go through hmac.compare_digest"


def test_cli_tokens_create_list_revoke(server: ServerProcess) -> None:
    app = _cli()
    created = runner.invoke(app, ["tokens", "create", "cli-made", "--scope", "ingest",
                                  "--scope", "read", "--db", server.db])  # fmt: skip
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("wk_")
    with server.client(token=secret) as client:
        assert client.get("/v1/models/churn").status_code == 200
    listed = runner.invoke(app, ["tokens", "list", "--db", server.db])
    assert listed.exit_code == 0
    assert "cli-made" in listed.stdout
    assert "ingest,read" in listed.stdout
    assert secret not in listed.stdout
    revoked = runner.invoke(app, ["tokens", "revoke", "cli-made", "--db", server.db])
    assert revoked.exit_code == 0
    with server.client(token=secret) as client:
        assert client.get("/v1/models/churn").status_code == 401
    bad_scope = runner.invoke(app, ["tokens", "create", "x", "--scope", "root", "--db", server.db])
    assert bad_scope.exit_code == 2
    assert "unknown scope 'root'" in bad_scope.output


def test_serve_refuses_a_public_address_without_auth(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'refuse.db'}"
    result = runner.invoke(_cli(), ["serve", "--host", "0.0.0.0", "--db", db], env={})
    assert result.exit_code == 2
    assert "refusing to listen on non-loopback address '0.0.0.0'" in result.output
    assert not (tmp_path / "refuse.db").exists()
