"""Retraining runs end to end against a running server, on the bundled rainfall data.

A champion trained on rows 0-5,999 serves rows 6,000-18,158 (one every 30 s, ending now): the
weather drifts after row 12,000. An accuracy rule with ``action: retrain`` starts a run in the
server's worker process; the candidate, trained on mature labelled rows, beats the champion
significantly, is registered and goes to a canary. A run right after the champion's own data
is rejected and rolls nothing out. Runs are one at a time, ``min_interval`` apart, and a server
killed mid-run retries the run once after its restart, without registering twice.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from tests.server.conftest import ServerProcess
from watchkeeper.demo import load_rainfall
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.store import Store

STEP = 30.0
FEATURES = [
    "maximum_temperature", "minimum_temperature", "temperature", "dew_point",
    "sea_level_pressure", "visibility", "average_wind_speed", "max_sustained_wind_speed",
]  # fmt: skip
RETRAIN = {
    "trainer": "tests.retrain.trainers:fit",
    "label_delay": "1d",
    "lookback": "2d",
    "metric": "accuracy",
    "margin": 0.01,
    "min_rows": 500,
    "min_interval": "1h",
    "retry_backoff": "1s",
}
MODEL = {
    "name": "rainfall",
    "task": "classification",
    "features": dict.fromkeys(FEATURES, "numeric"),
    "windows": [3600],
    "retrain": RETRAIN,
}
# Rows from here on (the last day) are labelled later, by the alert test.
LATE = 18_159 - 2_880
RULE = {
    "name": "RainfallAccuracyRetrain",
    "model": "rainfall",
    "signal": "accuracy",
    "condition": "< 0.7",
    "min_labels": 50,
    "action": "retrain",
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A database with the champion and every later row served and labelled, through a
    running server; each test starts its own server on a copy."""
    root = tmp_path_factory.mktemp("retrain-seed")
    data = load_rainfall()
    start = time.time() - (len(data) - 6000) * STEP - 120.0
    server = _server(root).start()
    try:
        with server.client() as client:
            assert client.post("/v1/models", json=MODEL).status_code == 201
            with Store.open(server.db) as store:
                registry = Registry(store, ArtifactStore(root / "artifacts"))
                early = data.iloc[:6000]
                champion = HistGradientBoostingClassifier(max_iter=100, random_state=0)
                champion.fit(early[FEATURES], early["rain"])
                record = registry.register("rainfall", champion, trust=True, registered_by="t")
                registry.set_alias("rainfall", "champion", record.version, moved_by="t")
            later = data.iloc[6000:]
            predictions = champion.predict(later[FEATURES])
            for first in range(0, len(later), 2000):
                part = later.iloc[first : first + 2000]
                events = [
                    {"id": f"row-{index}", "timestamp": start + (index - 6000) * STEP,
                     "version": "1", "features": row, "prediction": str(int(prediction))}
                    for index, row, prediction in zip(
                        part.index, part[FEATURES].to_dict("records"),
                        predictions[first:], strict=False,
                    )
                ]  # fmt: skip
                answer = client.post("/v1/models/rainfall/events", json={"events": events})
                assert answer.status_code == 200, answer.text
                # The labels of the last day arrive later (in the alert test).
                labels = _labels(part[part.index < LATE])
                if labels:
                    answer = client.post("/v1/models/rainfall/labels", json={"labels": labels})
                    assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    return root, start


def _labels(part: pd.DataFrame) -> list[dict[str, str]]:
    return [{"id": f"row-{i}", "label": str(int(y))} for i, y in part["rain"].items()]


def _server(root: Path) -> ServerProcess:
    return ServerProcess(
        db=f"sqlite:///{root / 'wk.db'}",
        log=root / "server.log",
        env={
            "WATCHKEEPER_ARTIFACT_ROOT": str(root / "artifacts"),
            "WATCHKEEPER_INGEST_WORKERS": "0",
            "WATCHKEEPER_WINDOW_CHECK_SECONDS": "0.5",
            "WATCHKEEPER_ALERTS_INTERVAL_SECONDS": "0.5",
        },
    )


@pytest.fixture
def server(seeded: tuple[Path, float], tmp_path: Path) -> Iterator[ServerProcess]:
    root = tmp_path / "copy"
    shutil.copytree(seeded[0], root, ignore=shutil.ignore_patterns("server.log"))
    process = _server(root).start()
    yield process
    process.stop()


def _configure(client: httpx.Client, **changes: Any) -> None:
    config = {**MODEL, "retrain": {**RETRAIN, **changes}}
    answer = client.put("/v1/models/rainfall", json=config)
    assert answer.status_code == 200, answer.text


def _wait(client: httpx.Client, run_id: int, until: set[str], timeout: float = 240.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/v1/retrain/runs/{run_id}").json()
        if run["status"] in until:
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.5)


def _registered(client: httpx.Client) -> list[str]:
    versions = client.get("/v1/models/rainfall/versions").json()["versions"]
    return [item["version"] for item in versions if item["registered"]]


def _runs(client: httpx.Client, timeout: float = 60.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        runs: list[Any] = client.get("/v1/retrain/runs").json()["runs"]
        if runs or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


def test_an_accuracy_alert_retrains_registers_the_candidate_and_starts_a_canary(
    server: ServerProcess,
) -> None:
    with server.client() as client:
        assert client.get("/v1/retrain/runs").json() == {"runs": []}
        answer = client.put("/v1/rules", json={"rules": [RULE]})
        assert answer.status_code == 200, answer.text
        # The last day's labels arrive: its windows' accuracy falls below the rule's 0.7.
        late = load_rainfall().iloc[LATE:]
        for first in range(0, len(late), 2000):
            labels = _labels(late.iloc[first : first + 2000])
            answer = client.post("/v1/models/rainfall/labels", json={"labels": labels})
            assert answer.status_code == 200, answer.text
        [run] = _runs(client)
        trigger = run["trigger"]
        assert (trigger["kind"], trigger["rule"]) == ("alert", "RainfallAccuracyRetrain")
        assert trigger["value"] < 0.7
        assert trigger["labels"]["signal"] == "accuracy"
        assert trigger["fingerprint"]
        done = _wait(client, run["id"], {"rolling_out", "registered", "rejected", "failed"})
        assert done["status"] == "rolling_out", done
        gate = done["gate"]
        assert gate["candidate"] > gate["champion"] + 0.01
        assert gate["p_value"] < 1e-3
        assert (done["version"], done["champion_version"], done["attempts"]) == (2, 1, 1)
        assert done["data"]["train_rows"] >= 500
        assert "registered: version 2" in done["log"]
        assert "canary rollout" in done["log"]
        rollout = client.get(f"/v1/rollouts/{done['rollout_id']}").json()
        assert (rollout["candidate"], rollout["state"]) == ("2", "progressing")
        assert rollout["weights"] == {"1": 90, "2": 10}
        version = client.get("/v1/models/rainfall/versions/2").json()["registry"]
        assert version["tags"]["retrain.run_id"] == done["id"]
        assert version["tags"]["retrain.trigger"]["rule"] == "RainfallAccuracyRetrain"
        # The champion moves only through the rollout.
        aliases = client.get("/v1/models/rainfall/aliases").json()
        assert {a["alias"]: a["version"] for a in aliases["aliases"]}["champion"] == 1
        # One run per model at a time: the alert keeps firing, no second run starts.
        assert len(client.get("/v1/retrain/runs").json()["runs"]) == 1


def test_a_candidate_not_significantly_better_is_rejected_one_run_at_a_time_min_interval(
    server: ServerProcess, seeded: tuple[Path, float]
) -> None:
    start = seeded[1]
    with server.client() as client:
        _configure(client, lookback="8h", label_delay="1h", min_rows=200, mode="manual")
        as_of = start + 1000 * STEP  # mature rows 6,040-6,880: right after the champion's data
        answer = client.post("/v1/models/rainfall/retrain", json={"reason": "t", "as_of": as_of})
        assert answer.status_code == 202, answer.text
        run = answer.json()
        assert run["status"] in {"queued", "running"}
        assert run["trigger"] == {"kind": "manual", "reason": "t", "by": "admin"}
        again = client.post("/v1/models/rainfall/retrain", json={})
        assert again.status_code == 409
        assert "already has retraining run" in again.json()["error"]["message"]
        done = _wait(client, run["id"], {"rejected", "registered", "failed", "rolling_out"})
        assert done["status"] == "rejected", done
        assert "not significant" in done["reason"] or "below the margin" in done["reason"]
        assert (done["version"], done["rollout_id"]) == (None, None)
        assert _registered(client) == ["1"]
        assert client.get("/v1/rollouts").json()["rollouts"] == []
        later = client.post("/v1/models/rainfall/retrain", json={})
        assert later.status_code == 409
        assert "min_interval" in later.json()["error"]["message"]
        listed = client.get("/v1/retrain/runs", params={"status": "rejected"}).json()["runs"]
        assert [item["id"] for item in listed] == [run["id"]]


def test_bad_requests_and_configs_get_clear_errors(server: ServerProcess) -> None:
    with server.client() as client:
        bad = client.put("/v1/models/rainfall", json={**MODEL, "retrain": {**RETRAIN,
                         "schedule": "every day"}})  # fmt: skip
        assert bad.status_code in (400, 422)
        assert "retrain.schedule" in bad.text
        future = client.post("/v1/models/rainfall/retrain", json={"as_of": time.time() + 3600})
        assert future.status_code == 422
        assert "as_of" in future.text
        unknown = client.post("/v1/models/rainfall/retrain", json={"when": "now"})
        assert unknown.status_code == 422
        assert client.get("/v1/retrain/runs/999").status_code == 404
        assert client.get("/v1/retrain/runs", params={"status": "done"}).status_code == 422
        assert client.post("/v1/retrain/runs/999/approve", json={}).status_code == 404
        octet = {"content-type": "application/octet-stream"}
        artifact = "/v1/retrain/runs/999/artifact"
        answer = client.post(artifact, content=b"m", headers=octet, params={"flavor": "sklearn"})
        assert answer.status_code == 404
        assert client.post(artifact, content=b"m", headers=octet).status_code == 422
        assert client.post(artifact, json={}, params={"flavor": "sklearn"}).status_code == 415
        missing = client.post("/v1/models/nobody/retrain", json={})
        assert missing.status_code == 404
        with server.client(token=None) as anonymous:
            assert anonymous.post("/v1/models/rainfall/retrain", json={}).status_code == 401


def test_a_server_killed_mid_run_retries_it_once_and_registers_once(
    server: ServerProcess,
) -> None:
    with server.client() as client:
        _configure(client, trainer="tests.retrain.trainers:slow", params={"sleep": 15},
                   mode="manual")  # fmt: skip
        run = client.post("/v1/models/rainfall/retrain", json={}).json()
        _wait(client, run["id"], {"running"})
        time.sleep(3.0)  # the worker is training
    server.kill()
    server.start()
    with server.client() as client:
        done = _wait(client, run["id"], {"awaiting_approval", "failed", "rejected"})
        assert done["status"] == "awaiting_approval", done
        assert done["interruptions"] == 1
        assert "interrupted at attempt 1 by a restart" in done["log"]
        assert done["attempts"] == 1
        assert len(client.get("/v1/retrain/runs").json()["runs"]) == 1
        assert _registered(client) == ["1", "2"]
        # Manual mode: approval starts the canary, once.
        approved = client.post(f"/v1/retrain/runs/{run['id']}/approve", json={})
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "rolling_out"
        again = client.post(f"/v1/retrain/runs/{run['id']}/approve", json={})
        assert again.status_code == 409


def test_the_cli_runs_waits_lists_shows_and_approves_and_the_canary_promotes(
    server: ServerProcess,
) -> None:
    from typer.testing import CliRunner

    from tests.server.conftest import ADMIN_TOKEN
    from watchkeeper.cli.main import app

    canary = {"steps": [{"set_weight": 50}, {"pause": {"duration": "1s"}}]}
    with server.client() as client:
        _configure(client, mode="manual", canary=canary)
    remote = ["--url", server.url, "--token", ADMIN_TOKEN]
    cli = CliRunner()
    ran = cli.invoke(app, ["retrain", "run", "rainfall", *remote, "--wait", "--json"])
    assert ran.exit_code == 0, ran.output
    run = json.loads(ran.stdout)
    assert (run["status"], run["version"]) == ("awaiting_approval", 2)
    listed = cli.invoke(app, ["retrain", "list", *remote, "--status", "awaiting_approval"])
    assert listed.exit_code == 0, listed.output
    assert "awaiting_approval" in listed.stdout
    shown = cli.invoke(app, ["retrain", "show", str(run["id"]), *remote])
    assert shown.exit_code == 0, shown.output
    assert "gate: passed" in shown.stdout
    approved = cli.invoke(app, ["retrain", "approve", str(run["id"]), *remote, "--json"])
    assert approved.exit_code == 0, approved.output
    rollout_id = json.loads(approved.stdout)["rollout_id"]
    assert json.loads(approved.stdout)["status"] == "rolling_out"
    # The canary goes through its steps and is promoted: the champion alias moves to 2.
    with server.client() as client:
        deadline = time.monotonic() + 60
        while client.get(f"/v1/rollouts/{rollout_id}").json()["state"] != "promoted":
            assert time.monotonic() < deadline
            time.sleep(0.5)
        aliases = client.get("/v1/models/rainfall/aliases").json()["aliases"]
        assert {a["alias"]: a["version"] for a in aliases}["champion"] == 2
    # On the database: the same documents.
    local = cli.invoke(app, ["retrain", "list", "--db", server.db, "--json"])
    assert local.exit_code == 0, local.output
    assert [item["status"] for item in json.loads(local.stdout)["runs"]] == ["rolling_out"]
    again = cli.invoke(app, ["retrain", "approve", str(run["id"]), *remote])
    assert again.exit_code == 1
    assert "only a run awaiting_approval" in again.output
