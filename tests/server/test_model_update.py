"""``PUT /v1/models/{name}`` and ``watchkeeper models update``: versioned config updates over
HTTP (a real server) and on the database, with the default rule pack following the windows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from tests.server.conftest import ADMIN_TOKEN, MODEL, ServerProcess
from watchkeeper.cli.main import app


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("update")
    process = ServerProcess(db=f"sqlite:///{root / 'wk.db'}", log=root / "server.log").start()
    try:
        yield process
    finally:
        process.stop()


def _rule(client: httpx.Client, model: str, kind: str) -> dict[str, Any]:
    """The default-pack rule ``kind`` (``FeatureDrift``, ``DriftShareHigh`` …) of ``model``."""
    rules = client.get("/v1/rules").json()["rules"]
    return next(rule for rule in rules if rule["model"] == model and rule["name"].endswith(kind))


def _reference_csv() -> bytes:
    lines = ["age,plan,active,prediction,proba_0,proba_1"]
    for index in range(300):
        proba = (index % 10) / 10
        lines.append(
            f"{20 + index % 50},{'basic' if index % 3 else 'pro'},{index % 2 == 0},"
            f"{int(proba > 0.5)},{1 - proba:.1f},{proba:.1f}"
        )
    return "\n".join(lines).encode()


def test_a_taken_name_points_to_the_update_route_and_command(server: ServerProcess) -> None:
    with server.client() as client:
        model = {**MODEL, "name": "taken"}
        assert client.post("/v1/models", json=model).status_code == 201
        again = client.post("/v1/models", json=model)
    assert again.status_code == 409
    message = again.json()["error"]["message"]
    assert "PUT /v1/models/taken" in message
    assert "watchkeeper models update taken" in message


def test_put_updates_the_config_with_versions_checked_by_if_match(
    server: ServerProcess,
) -> None:
    with server.client() as client:
        model = {**MODEL, "name": "versioned"}
        assert client.post("/v1/models", json=model).status_code == 201
        assert client.get("/v1/models/versioned").headers["etag"] == '"1"'
        reference = client.put(
            "/v1/models/versioned/reference",
            content=_reference_csv(),
            headers={"Content-Type": "text/csv"},
        )
        assert reference.status_code == 200, reference.text
        # Drift signals exist now: an update adds the pack's missing drift rules.
        first = client.put("/v1/models/versioned", json=model, headers={"If-Match": '"1"'})
        assert first.status_code == 200, first.text
        assert _rule(client, "versioned", "FeatureDrift")["for"] == "1h"
        # Someone tunes one rule of the pack.
        tuned = {**_rule(client, "versioned", "DriftShareHigh"), "for": "2h"}
        applied = client.put("/v1/rules", params={"replace": "false"}, json=[tuned])
        assert applied.status_code == 200, applied.text
        error_rate = _rule(client, "versioned", "ErrorRateHigh")

        updated = client.put(
            "/v1/models/versioned",
            json={**model, "windows": ["6h", "day"]},
            headers={"If-Match": '"2"'},
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["config_version"] == 3
        assert updated.json()["model"]["windows"] == [21600, 86400]
        assert updated.headers["etag"] == '"3"'
        assert client.get("/v1/models/versioned").json()["windows"] == [21600, 86400]
        assert client.get("/v1/models/versioned").headers["etag"] == '"3"'
        # The untouched drift rule follows the new smallest window (two windows in a row); the
        # tuned one and the rules that do not depend on windows stay as they were.
        assert _rule(client, "versioned", "FeatureDrift")["for"] == "6h"
        assert _rule(client, "versioned", "DriftShareHigh")["for"] == "2h"
        assert _rule(client, "versioned", "ErrorRateHigh") == error_rate

        stale = client.put("/v1/models/versioned", json=model, headers={"If-Match": '"1"'})
        assert stale.status_code == 412
        assert stale.json()["error"]["type"] == "precondition_failed"
        assert "config version 3, not 1" in stale.json()["error"]["message"]
        renamed = client.put("/v1/models/versioned", json={**model, "name": "other"})
        assert renamed.status_code == 422
        assert renamed.json()["error"]["field"] == "name"
        assert client.put("/v1/models/nope", json={**model, "name": "nope"}).status_code == 404
        bad_match = client.put("/v1/models/versioned", json=model, headers={"If-Match": "x"})
        assert bad_match.status_code == 422
        with server.client(token=None) as anonymous:
            assert anonymous.put("/v1/models/versioned", json=model).status_code == 401


def test_models_update_goes_through_the_server_or_the_database(
    server: ServerProcess, tmp_path: Path
) -> None:
    runner = CliRunner()
    model = {**MODEL, "name": "by-cli"}
    spec = tmp_path / "model.yaml"
    spec.write_text(yaml.safe_dump(model))
    over_http = ["--url", server.url, "--token", ADMIN_TOKEN]
    assert runner.invoke(app, ["models", "register", str(spec), *over_http]).exit_code == 0
    spec.write_text(yaml.safe_dump({**model, "windows": [7200]}))
    result = runner.invoke(
        app, ["models", "update", "by-cli", str(spec), "--expect-version", "1", *over_http]
    )
    assert result.exit_code == 0, result.output
    assert "config version 2" in result.stdout
    stale = runner.invoke(
        app, ["models", "update", "by-cli", str(spec), "--expect-version", "1", *over_http]
    )
    assert stale.exit_code == 1
    assert "412" in stale.output

    db = f"sqlite:///{tmp_path / 'local.db'}"
    spec.write_text(yaml.safe_dump(model))
    assert runner.invoke(app, ["models", "register", str(spec), "--db", db]).exit_code == 0
    spec.write_text(yaml.safe_dump({**model, "windows": [1800]}))
    local = runner.invoke(app, ["models", "update", "by-cli", str(spec), "--db", db])
    assert local.exit_code == 0, local.output
    assert "config version 2" in local.stdout
    stale_local = runner.invoke(
        app, ["models", "update", "by-cli", str(spec), "--expect-version", "1", "--db", db]
    )
    assert stale_local.exit_code != 0
    assert "config version 2, not 1" in stale_local.output
