"""The registry's HTTP API on a real server, on SQLite and PostgreSQL: register versions,
list them with their live health, move aliases, read their history as of a time, roll back,
refuse bad input, and keep everything across a restart."""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression

from tests.server.conftest import MODEL, ServerProcess, event
from tests.store.backends import postgres_schema_url
from watchkeeper.config import Settings
from watchkeeper.server.app import create_app

MAX_ARTIFACT = 300_000


def model_file(folder: Path, seed: int) -> Path:
    """A fitted scikit-learn model saved with skops (the safe format)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(40, 10, 200)})
    model = LogisticRegression().fit(frame, (frame["age"] > 40).astype(int))
    path = folder / f"churn-{seed}.skops"
    path.write_bytes(skops.io.dumps(model))
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            db = f"sqlite:///{tmp_path / 'wk.db'}"
        else:
            db = stack.enter_context(postgres_schema_url())
        process = ServerProcess(
            db=db,
            log=tmp_path / "server.log",
            env={
                "WATCHKEEPER_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
                "WATCHKEEPER_MAX_ARTIFACT_BYTES": str(MAX_ARTIFACT),
                "WATCHKEEPER_WINDOW_CHECK_SECONDS": "0.2",
                "WATCHKEEPER_INGEST_WORKERS": "0",
                "WATCHKEEPER_ALERTS_INTERVAL_SECONDS": "0.2",
            },
        ).start()
        stack.callback(process.stop)
        yield process


def register(
    client: httpx.Client, path: Path, model: str = "churn", **query: Any
) -> httpx.Response:
    params = {
        name: json.dumps(value) if isinstance(value, dict) else value
        for name, value in {"filename": path.name, **query}.items()
    }
    return client.post(
        f"/v1/models/{model}/versions",
        content=path.read_bytes(),
        params=params,
        headers={"content-type": "application/octet-stream"},
    )


def live_entries(client: httpx.Client, *, timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """The versions once the windows of versions 1 and 2 have closed and been evaluated."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get("/v1/models/churn/versions")
        assert answer.status_code == 200, answer.text
        entries = {entry["version"]: entry for entry in answer.json()["versions"]}
        ready = all(
            entries.get(name, {}).get("live")
            and entries[name]["live"]["window"]
            and entries[name]["live"]["alerts"]
            for name in ("1", "2")
        )
        if ready or time.monotonic() > deadline:
            return entries
        time.sleep(0.2)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def test_versions_aliases_history_and_rollback_over_http(
    server: ServerProcess, tmp_path: Path
) -> None:
    files = [model_file(tmp_path, seed) for seed in range(3)]
    with server.client() as admin:
        assert admin.post("/v1/models", json=MODEL).status_code == 201
        bot = admin.post("/v1/tokens", json={"name": "ci-bot", "scopes": ["admin"]}).json()
        reader = admin.post("/v1/tokens", json={"name": "viewer", "scopes": ["read"]}).json()
        first = register(
            admin,
            files[0],
            description="baseline",
            params={"C": 1.0},
            metrics={"auc": 0.91},
            tags={"team": "risk"},
            code_revision="3f2c1e0",
            sha256=hashlib.sha256(files[0].read_bytes()).hexdigest(),
        )
        assert first.status_code == 201, first.text
        version = first.json()
        assert version["version"] == 1
        assert version["flavor"] == "sklearn"
        assert version["registered_by"] == "admin"
        assert version["metrics"] == {"auc": 0.91}
        assert version["params"] == {"C": 1.0}
        assert version["code_revision"] == "3f2c1e0"
        # The monitored model's features are the input signature.
        assert version["signature"]["features"] == MODEL["features"]
        assert version["artifact"]["sha256"] == hashlib.sha256(files[0].read_bytes()).hexdigest()

    with server.client(token=bot["token"]) as ci:
        second = register(ci, files[1], metrics={"auc": 0.93})
        assert second.status_code == 201, second.text
        assert (second.json()["version"], second.json()["registered_by"]) == (2, "ci-bot")
        assert register(ci, files[2]).json()["version"] == 3

        # Traffic for versions 1 and 2 (an hour-window two hours ago, closed at once) and for
        # a version the registry does not know.
        past = time.time() - 7200
        events = [
            event(i, id=f"r-{i}", version=["1", "2", "legacy"][i % 3], timestamp=past)
            for i in range(90)
        ]
        assert ci.post("/v1/models/churn/events", json={"events": events}).json()["accepted"] == 90

    with server.client(token=reader["token"]) as viewer:
        entries = live_entries(viewer)
        assert list(entries) == ["1", "2", "3", "legacy"]
        one = entries["1"]
        assert (one["registered"], one["monitored"]) == (True, True)
        assert one["registry"]["metrics"] == {"auc": 0.91}
        assert one["live"]["events"] == 30
        assert one["live"]["window"]["count"] == 30
        assert one["live"]["window"]["end"] - one["live"]["window"]["start"] == 3600
        assert "error_rate" in one["live"]["window"]["signals"]
        assert one["live"]["last_event"] is not None
        # Every tenth event is an error: the default pack's error-rate rule holds for the
        # version's window (pending until it has held for 5 minutes of event time).
        alerts = one["live"]["alerts"]
        assert [(a["rule"], a["labels"]["version"]) for a in alerts] == [
            ("ChurnErrorRateHigh", "1")
        ]
        assert alerts[0]["state"] in ("pending", "firing")
        assert isinstance(one["created_at"], float)
        assert one["metadata"] == {}
        three = entries["3"]
        assert (three["registered"], three["monitored"], three["live"]) == (True, False, None)
        legacy = entries["legacy"]
        assert (legacy["registered"], legacy["monitored"], legacy["registry"]) == (
            False,
            True,
            None,
        )
        assert legacy["live"]["events"] == 30
        single = viewer.get("/v1/models/churn/versions/2").json()
        assert single == entries["2"]
        refused = register(viewer, files[0])
        assert refused.status_code == 403

    with server.client() as admin:
        moves: list[float] = []
        for number, reason in ((1, "first release"), (2, "better AUC")):
            answer = admin.put(
                "/v1/models/churn/aliases/champion", json={"version": number, "reason": reason}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["move"]["to_version"] == number
            moves.append(answer.json()["move"]["moved_at"])
            time.sleep(0.05)
        same = admin.put("/v1/models/churn/aliases/champion", json={"version": 2})
        assert same.json()["move"] is None, "a move to where it points records nothing"
        between = (moves[0] + moves[1]) / 2
        for at in (str(between), iso(between)):
            then = admin.get("/v1/models/churn/aliases/champion/history", params={"at": at})
            assert then.status_code == 200, then.text
            assert then.json()["version"] == 1
        before = admin.get(
            "/v1/models/churn/aliases/champion/history", params={"at": moves[0] - 60}
        )
        assert before.json()["version"] is None
        assert admin.get("/v1/models/churn/versions/2").json()["registry"]["aliases"] == [
            "champion"
        ]

        rolled = admin.post(
            "/v1/models/churn/aliases/champion/rollback", json={"reason": "AUC dropped live"}
        )
        assert rolled.status_code == 200, rolled.text
        assert (rolled.json()["version"], rolled.json()["move"]["reason"]) == (
            1,
            "AUC dropped live",
        )
        again = admin.post("/v1/models/churn/aliases/champion/rollback")
        assert again.json()["move"]["reason"] == "rollback from version 1"
        assert again.json()["version"] == 2
        history = admin.get("/v1/models/churn/aliases/champion/history").json()
        assert history["version"] == 2
        assert [(m["from_version"], m["to_version"]) for m in history["history"]] == [
            (1, 2),
            (2, 1),
            (1, 2),
            (None, 1),
        ]
        assert {m["moved_by"] for m in history["history"]} == {"admin"}

        assert admin.put("/v1/models/churn/aliases/shadow", json={"version": 3}).is_success
        removed = admin.delete("/v1/models/churn/aliases/shadow", params={"reason": "done"})
        assert removed.status_code == 200, removed.text
        assert (removed.json()["version"], removed.json()["move"]["from_version"]) == (None, 3)
        assert admin.delete("/v1/models/churn/aliases/shadow").status_code == 404
        aliases = admin.get("/v1/models/churn/aliases").json()["aliases"]
        assert [(item["alias"], item["version"]) for item in aliases] == [("champion", 2)]

    # A restart keeps versions, artifacts, aliases and their history.
    server.stop()
    server.start()
    with server.client() as admin:
        entries = {
            e["version"]: e for e in admin.get("/v1/models/churn/versions").json()["versions"]
        }
        assert entries["2"]["registry"]["aliases"] == ["champion"]
        assert entries["1"]["live"]["events"] == 30
        history = admin.get("/v1/models/churn/aliases/champion/history").json()["history"]
        assert len(history) == 4
        digest = entries["1"]["registry"]["artifact"]["sha256"]
        assert (tmp_path / "artifacts" / "sha256" / digest[:2] / digest).is_file()
        assert register(admin, files[0]).json()["version"] == 4


def test_a_registry_only_model_and_bad_input_get_clear_errors(
    server: ServerProcess, tmp_path: Path
) -> None:
    good = model_file(tmp_path, 0)
    with server.client() as admin:
        created = register(admin, good, model="fraud")
        assert created.status_code == 201, created.text
        assert created.json()["signature"]["features"] == {"age": "numeric"}
        entries = admin.get("/v1/models/fraud/versions").json()["versions"]
        assert [(e["version"], e["registered"], e["monitored"]) for e in entries] == [
            ("1", True, False)
        ]

        def refused(answer: httpx.Response, status: int, field: str | None, *words: str) -> None:
            assert answer.status_code == status, answer.text
            error = answer.json()["error"]
            assert error["field"] == field, error
            for word in words:
                assert word in error["message"], error

        refused(
            register(admin, good, model="fraud", flavor="sklaern"),
            422,
            "flavor",
            "unknown flavor 'sklaern'",
            "sklearn, pickle, onnx",
        )
        pickled = tmp_path / "model.pkl"
        pickled.write_bytes(pickle.dumps(LogisticRegression().fit([[0.0], [1.0]], [0, 1])))
        refused(register(admin, pickled, model="fraud"), 422, "trust", "runs code")
        assert register(admin, pickled, model="fraud", trust="true").status_code == 201
        refused(
            register(admin, good, model="fraud", sha256="0" * 64),
            422,
            "sha256",
            "hashes to",
        )
        garbage = tmp_path / "broken.onnx"
        garbage.write_bytes(b"not a model at all")
        refused(register(admin, garbage, model="fraud"), 422, "artifact", "onnx flavor")
        huge = tmp_path / "huge.skops"
        huge.write_bytes(b"\0" * (MAX_ARTIFACT + 1))
        refused(register(admin, huge, model="fraud"), 413, "body", "WATCHKEEPER_MAX_ARTIFACT_BYTES")
        refused(
            admin.post(
                "/v1/models/fraud/versions",
                content=good.read_bytes(),
                params={"flavor": "sklearn"},
                headers={"content-type": "application/json"},
            ),
            415,
            "content-type",
            "application/octet-stream",
        )
        refused(
            register(admin, good, model="fraud", metrics="[1, 2]"), 422, "metrics", "JSON object"
        )
        refused(register(admin, good, model="fraud", tags="{team"), 422, "tags", "not valid JSON")
        refused(
            admin.post(
                "/v1/models/fraud/versions",
                content=good.read_bytes(),
                headers={"content-type": "application/octet-stream"},
            ),
            422,
            "flavor",
            "filename=",
        )
        refused(register(admin, good, model="bad name!"), 422, "model")

        refused(
            admin.put("/v1/models/fraud/aliases/champion", json={"version": 9}),
            404,
            None,
            "has no version 9",
            "1–2",
        )
        refused(
            admin.put("/v1/models/fraud/aliases/champion", json={"version": "two"}),
            422,
            "version",
        )
        refused(admin.put("/v1/models/fraud/aliases/9lives", json={"version": 1}), 422, "alias")
        refused(admin.get("/v1/models/nothing/versions"), 404, None, "'nothing'")
        refused(admin.get("/v1/models/fraud/versions/7"), 404, None, "no version '7'", "1, 2")
        refused(admin.get("/v1/models/fraud/aliases/champion/history"), 404, None, "never been set")
        assert admin.put("/v1/models/fraud/aliases/champion", json={"version": 1}).is_success
        refused(
            admin.get("/v1/models/fraud/aliases/champion/history", params={"at": "yesterday"}),
            422,
            "at",
        )
        refused(
            admin.post("/v1/models/fraud/aliases/champion/rollback"),
            422,
            "alias",
            "pointed nowhere before",
        )
        refused(admin.post("/v1/models/fraud/aliases/other/rollback"), 404, None, "never been set")


def test_the_openapi_document_lists_the_registry_routes() -> None:
    paths = create_app(Settings(db="sqlite:///:memory:")).openapi()["paths"]
    assert {"post", "get"} <= paths["/v1/models/{model}/versions"].keys()
    assert (
        "application/octet-stream"
        in (paths["/v1/models/{model}/versions"]["post"]["requestBody"]["content"])
    )
    assert {"put", "delete"} <= paths["/v1/models/{model}/aliases/{alias}"].keys()
    assert "/v1/models/{model}/aliases/{alias}/history" in paths
    assert "/v1/models/{model}/aliases/{alias}/rollback" in paths
    assert "413" in paths["/v1/models/{model}/versions"]["post"]["responses"]
