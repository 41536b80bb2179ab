"""Rollouts over HTTP against a running server: start, status, promote, pause, resume, abort,
scopes, errors; an abort moves the router's weights, counts in /metrics and raises the alert."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LinearRegression
from typer.testing import CliRunner

from tests.server.conftest import ServerProcess
from watchkeeper.cli.main import app as cli
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.store import Store

MODEL = "demand"


def _linear(slope: float) -> LinearRegression:
    frame = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 0.0, 1.0, 0.0]})
    return LinearRegression().fit(frame, slope * frame["x1"] + frame["x2"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("rollout-api")
    url = f"sqlite:///{root / 'wk.db'}"
    with Store.open(url) as store:
        registry = Registry(store, ArtifactStore(root / "artifacts"))
        registry.register(MODEL, _linear(1.0), registered_by="ana")
        registry.register(MODEL, _linear(1.1), registered_by="ana")
        registry.set_alias(MODEL, "champion", 1, moved_by="ana", reason="first")
    process = ServerProcess(
        db=url,
        log=root / "server.log",
        env={
            "WATCHKEEPER_ARTIFACT_ROOT": str(root / "artifacts"),
            "WATCHKEEPER_INGEST_WORKERS": "0",
        },
    ).start()
    yield process
    process.stop()


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def spec(**changes: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "baseline": "champion",
        "candidate": 2,
        "steps": [{"set_weight": 10}, {"pause": {}}, {"set_weight": 50}, {"pause": {}}],
        "analysis": {"interval": "1h", "metrics": [{"signal": "error_rate"}]},
        **changes,
    }


def weights(admin: httpx.Client) -> dict[str, float]:
    config = admin.get(f"/v1/models/{MODEL}/routing").json()["config"]
    return {arm["name"]: arm["weight"] for arm in config["arms"]}


def test_rollout_lifecycle_over_http(server: ServerProcess, admin: httpx.Client) -> None:
    first = admin.post(f"/v1/models/{MODEL}/predict", json={"features": {"x1": 1.0, "x2": 0.0}})
    assert first.status_code == 200, first.text  # the monitor now knows the model

    bad = admin.post("/v1/rollouts", json=spec(steps=[{"set_weight": 120}]))
    assert bad.status_code == 422
    assert "steps[0].set_weight" in bad.text
    unknown = admin.post(
        "/v1/rollouts",
        json=spec(
            analysis={
                "metrics": [{"signal": "error_rte", "condition": {"direction": "lower_is_better"}}]
            }
        ),
    )
    assert unknown.status_code == 422
    assert "error_rte" in unknown.text

    started = admin.post("/v1/rollouts", json=spec())
    assert started.status_code == 201, started.text
    rollout = started.json()
    assert (rollout["baseline"], rollout["candidate"], rollout["state"]) == ("1", "2", "paused")
    assert rollout["weights"] == {"1": 90, "2": 10}
    assert weights(admin) == {"champion": 90.0, "v2": 10.0}
    assert admin.post("/v1/rollouts", json=spec()).status_code == 409

    with server.client(token=_read_token(admin)) as reader:
        assert reader.get(f"/v1/rollouts/{rollout['id']}").status_code == 200
        assert reader.post(f"/v1/rollouts/{rollout['id']}/abort").status_code == 403

    promoted = admin.post(f"/v1/rollouts/{rollout['id']}/promote")
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["weights"] == {"1": 50, "2": 50}
    assert weights(admin) == {"champion": 50.0, "v2": 50.0}
    versions = {
        admin.post(f"/v1/models/{MODEL}/predict", json={"features": {"x1": 1.0, "x2": 0.0}}).json()[
            "version"
        ]
        for _ in range(40)
    }
    assert versions == {1, 2}

    aborted = admin.post(
        f"/v1/rollouts/{rollout['id']}/abort", json={"reason": "customers complain"}
    )
    assert aborted.status_code == 200, aborted.text
    assert aborted.json()["state"] == "aborted"
    assert weights(admin) == {"champion": 100.0, "v2": 0.0}
    assert admin.post(f"/v1/rollouts/{rollout['id']}/resume").status_code == 409
    assert admin.post(f"/v1/rollouts/{rollout['id']}/jump").status_code == 404
    assert admin.get("/v1/rollouts/999").status_code == 404

    status = admin.get(f"/v1/rollouts/{rollout['id']}").json()
    kinds = [event["kind"] for event in status["events"]]
    assert kinds == [
        "started",
        "weight_set",
        "paused",
        "step_promoted",
        "weight_set",
        "paused",
        "aborted",
    ]
    assert status["events"][-1]["reason"] == "customers complain"
    listed = admin.get("/v1/rollouts", params={"model": MODEL, "state": "aborted"}).json()
    assert [item["id"] for item in listed["rollouts"]] == [rollout["id"]]

    metrics = admin.get("/metrics").text
    assert f'watchkeeper_rollbacks_total{{model="{MODEL}"}} 1.0' in metrics
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alerts = admin.get("/v1/alerts").json()["alerts"]
        if any(alert["rule"] == "RolloutRolledBack" for alert in alerts):
            break
        time.sleep(0.2)
    firing = [alert for alert in alerts if alert["rule"] == "RolloutRolledBack"]
    assert firing
    assert firing[0]["state"] == "firing"


def _rollbacks(admin: httpx.Client) -> float:
    """``watchkeeper_rollbacks_total{model=MODEL}`` as the server's /metrics shows it now."""
    prefix = f'watchkeeper_rollbacks_total{{model="{MODEL}"}} '
    lines = [line for line in admin.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def test_an_abort_by_the_cli_on_the_database_is_counted_by_the_running_server(
    server: ServerProcess, admin: httpx.Client, tmp_path: Path
) -> None:
    """The counter comes from the store's rollback events, not from the process that aborted:
    ``watchkeeper rollout abort --db`` next to a running server shows at its next scrape."""
    first = admin.post(f"/v1/models/{MODEL}/predict", json={"features": {"x1": 1.0, "x2": 0.0}})
    assert first.status_code == 200, first.text
    before = _rollbacks(admin)
    spec_file = tmp_path / "rollout.yaml"
    spec_file.write_text(yaml.safe_dump(spec()))
    database = ["--db", server.db]
    env = {"WATCHKEEPER_ARTIFACT_ROOT": server.env["WATCHKEEPER_ARTIFACT_ROOT"]}
    started = CliRunner().invoke(
        cli, ["rollout", "start", str(spec_file), *database, "--json"], env=env
    )
    assert started.exit_code == 0, started.output
    rollout_id = json.loads(started.stdout)["id"]
    aborted = CliRunner().invoke(
        cli, ["rollout", "abort", str(rollout_id), "--reason", "from the CLI", *database], env=env
    )
    assert aborted.exit_code == 0, aborted.output
    assert _rollbacks(admin) == before + 1
    assert admin.get(f"/v1/rollouts/{rollout_id}").json()["state"] == "aborted"


def _read_token(admin: httpx.Client) -> str:
    response = admin.post("/v1/tokens", json={"name": "reader", "scopes": ["read"]})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token
