"""Serving end to end: a real server on SQLite and PostgreSQL, versions registered through the
registry's Python API on the same database, predictions through the router, logged to the
monitor."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from sklearn.linear_model import LinearRegression

from tests.server.conftest import ServerProcess
from tests.store.backends import postgres_schema_url
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.store import Store
from watchkeeper.store.records import EventRecord

ARROW = "application/vnd.apache.arrow.stream"


class Setup:
    """A running server, and a registry on its database and artifact root."""

    def __init__(self, server: ServerProcess, registry: Registry, root: Path) -> None:
        self.server = server
        self.registry = registry
        self.root = root

    def stored(
        self, model: str, ids: list[str], *, timeout: float = 20.0
    ) -> dict[str, EventRecord]:
        """The logged events of ``ids``, once all are stored (logging is off the request)."""
        deadline = time.monotonic() + timeout
        while True:
            store = self.registry.store
            try:
                found = store.events_by_ids(store.get_model(model).id, ids)
            except Exception:
                found = {}
            if len(found) == len(ids) or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def events(self, model: str) -> list[EventRecord]:
        store = self.registry.store
        return list(store.events_between(store.get_model(model).id, 0.0, 1e12))


def _linear(slope: float) -> LinearRegression:
    frame = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 0.0, 1.0, 0.0]})
    return LinearRegression().fit(frame, slope * frame["x1"] + frame["x2"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("serving")
    artifacts = root / "artifacts"
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{root / 'wk.db'}"
        else:
            url = stack.enter_context(postgres_schema_url())
        store = stack.enter_context(Store.open(url))
        registry = Registry(store, ArtifactStore(artifacts))
        registry.register("demand", _linear(1.0), registered_by="ana")
        registry.register("demand", _linear(10.0), registered_by="ana")
        server = ServerProcess(
            db=url,
            log=root / "server.log",
            env={"WATCHKEEPER_ARTIFACT_ROOT": str(artifacts), "WATCHKEEPER_INGEST_WORKERS": "0"},
        ).start()
        stack.callback(server.stop)
        yield Setup(server, registry, root)


@pytest.fixture
def admin(setup: Setup) -> Iterator[httpx.Client]:
    with setup.server.client() as client:
        yield client


def _arrow(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def test_the_champion_serves_and_every_prediction_is_logged(
    setup: Setup, admin: httpx.Client
) -> None:
    unset = admin.post("/v1/models/demand/predict", json={"features": {"x1": 1.0, "x2": 0.0}})
    assert unset.status_code == 409, unset.text
    assert "demand@champion points to no version" in unset.json()["error"]["message"]
    setup.registry.set_alias("demand", "champion", 1, moved_by="ana", reason="first")
    time.sleep(1.1)  # the server reads aliases changed by another process within 1 s
    one = admin.post(
        "/v1/models/demand/predict", json={"features": {"x1": 2.0, "x2": 1.0}, "unit": "u-1"}
    )
    assert one.status_code == 200, one.text
    answer = one.json()
    assert (answer["model"], answer["version"], answer["arm"]) == ("demand", 1, "champion")
    assert answer["prediction"] == pytest.approx(3.0)
    batch = admin.post(
        "/v1/models/demand/predict",
        json={"rows": [{"features": {"x1": float(i), "x2": 0.0}} for i in range(3)]},
    ).json()["predictions"]
    assert [row["prediction"] for row in batch] == pytest.approx([0.0, 1.0, 2.0])
    frame = pd.DataFrame({"x1": [1.0, 2.0], "x2": [1.0, 1.0], "unit": ["a", "b"]})
    arrow = admin.post(
        "/v1/models/demand/predict", content=_arrow(frame), headers={"content-type": ARROW}
    ).json()["predictions"]
    assert [row["prediction"] for row in arrow] == pytest.approx([2.0, 3.0])
    ids = [answer["id"], *(row["id"] for row in batch), *(row["id"] for row in arrow)]
    assert len(set(ids)) == 6
    stored = setup.stored("demand", ids)
    assert set(stored) == set(ids)
    first = stored[answer["id"]]
    assert (first.version, first.arm, first.unit) == ("1", "champion", "u-1")
    assert first.features == {"x1": 2.0, "x2": 1.0}
    assert first.prediction == pytest.approx(3.0)
    assert first.latency_ms is not None
    assert first.latency_ms >= 0
    assert [stored[row["id"]].unit for row in arrow] == ["a", "b"]
    metrics = admin.get("/metrics").text
    assert 'watchkeeper_model_load_status{model="demand",state="loaded",version="1"} 1.0' in metrics


def test_bad_input_names_the_feature(setup: Setup, admin: httpx.Client) -> None:
    setup.registry.set_alias("demand", "champion", 1, moved_by="ana")
    missing = admin.post("/v1/models/demand/predict", json={"features": {"x1": 1.0}})
    assert missing.status_code == 422
    error = missing.json()["error"]
    assert error["field"] == "features.x2"
    assert "missing" in error["message"]
    mistyped = admin.post(
        "/v1/models/demand/predict",
        json={"rows": [{"features": {"x1": 1.0, "x2": 0.0}}, {"features": {"x1": "a", "x2": 0}}]},
    )
    assert mistyped.status_code == 422
    assert (mistyped.json()["error"]["field"], mistyped.json()["error"]["index"]) == (
        "features.x1",
        1,
    )
    assert "expected a number, got a string" in mistyped.json()["error"]["message"]
    empty = admin.post("/v1/models/demand/predict", json={"rows": []})
    assert (empty.status_code, empty.json()) == (200, {"model": "demand", "predictions": []})
    unknown = admin.post("/v1/models/nobody/predict", json={"features": {"x1": 1.0}})
    assert unknown.status_code == 404
    bad_unit = admin.post(
        "/v1/models/demand/predict", json={"features": {"x1": 1.0, "x2": 0.0}, "unit": ""}
    )
    assert (bad_unit.status_code, bad_unit.json()["error"]["field"]) == (422, "unit")
    invalid = admin.put(
        "/v1/models/demand/routing", json={"arms": [{"name": "a", "version": 1, "weight": -2}]}
    )
    assert (invalid.status_code, invalid.json()["error"]["field"]) == (422, "arms[0].weight")
    routed = admin.put(
        "/v1/models/demand/routing", json={"arms": [{"name": "ghost", "version": 99}]}
    )
    assert routed.status_code == 200, routed.text
    try:
        gone = admin.post("/v1/models/demand/predict", json={"features": {"x1": 1.0, "x2": 0.0}})
        assert gone.status_code == 404
        assert "no version 99" in gone.json()["error"]["message"]
    finally:
        assert admin.delete("/v1/models/demand/routing").status_code == 200


def test_the_predict_scope(setup: Setup, admin: httpx.Client) -> None:
    setup.registry.set_alias("demand", "champion", 1, moved_by="ana")
    tokens = {}
    for scope in ("ingest", "predict"):
        created = admin.post("/v1/tokens", json={"name": f"{scope}-svc", "scopes": [scope]})
        assert created.status_code == 201, created.text
        tokens[scope] = created.json()["token"]
    row = {"features": {"x1": 1.0, "x2": 0.0}}
    with setup.server.client(tokens["ingest"]) as ingest:
        assert ingest.post("/v1/models/demand/predict", json=row).status_code == 403
    with setup.server.client(tokens["predict"]) as predict:
        assert predict.post("/v1/models/demand/predict", json=row).status_code == 200
        assert predict.put("/v1/models/demand/routing", json={"arms": []}).status_code == 403


def test_canary_sticky_ab_and_the_override_header(setup: Setup, admin: httpx.Client) -> None:
    setup.registry.set_alias("demand", "champion", 1, moved_by="ana")
    config = {
        "arms": [
            {"name": "champion", "alias": "champion", "weight": 80},
            {"name": "canary", "version": 2, "weight": 20},
        ],
        "sticky": True,
        "salt": "exp-1",
    }
    assert (
        admin.put("/v1/models/demand/routing", json={**config, "reason": "canary"}).status_code
        == 200
    )
    try:
        rows = [{"features": {"x1": 1.0, "x2": 0.0}, "unit": f"user-{i}"} for i in range(1000)]
        first = admin.post("/v1/models/demand/predict", json={"rows": rows}).json()["predictions"]
        counts = Counter(row["arm"] for row in first)
        # 1,000 units at 20 %: a two-sided binomial test at 0.001 does not reject.
        assert stats.binomtest(counts["canary"], 1000, 0.2).pvalue > 0.001
        assert {row["version"] for row in first if row["arm"] == "canary"} == {2}
        again = admin.post("/v1/models/demand/predict", json={"rows": rows}).json()["predictions"]
        assert [row["arm"] for row in again] == [row["arm"] for row in first]
        # Raising the canary to 50 % moves units only towards the canary.
        patched = admin.patch(
            "/v1/models/demand/routing/weights", json={"weights": {"champion": 50, "canary": 50}}
        )
        assert patched.status_code == 200, patched.text
        later = admin.post("/v1/models/demand/predict", json={"rows": rows}).json()["predictions"]
        assert all(
            after["arm"] == "canary"
            for before, after in zip(first, later, strict=True)
            if before["arm"] == "canary"
        )
        assert stats.binomtest(Counter(r["arm"] for r in later)["canary"], 1000, 0.5).pvalue > 0.001
        forced = admin.post(
            "/v1/models/demand/predict",
            json={"rows": rows[:20]},
            headers={"X-Watchkeeper-Arm": "canary"},
        ).json()["predictions"]
        assert {row["arm"] for row in forced} == {"canary"}
        nowhere = admin.post(
            "/v1/models/demand/predict",
            json={"rows": rows[:2]},
            headers={"X-Watchkeeper-Arm": "nowhere"},
        )
        assert nowhere.status_code == 404
        history = admin.get("/v1/models/demand/routing/history").json()["changes"]
        assert [change["reason"] for change in history[:2]] == ["", "canary"]
    finally:
        admin.delete("/v1/models/demand/routing")


def test_a_shadow_answers_nobody_but_is_logged(setup: Setup, admin: httpx.Client) -> None:
    setup.registry.set_alias("demand", "champion", 1, moved_by="ana")
    config = {
        "arms": [{"name": "champion", "alias": "champion"}],
        "shadow": {"version": 2, "fraction": 1.0, "name": "dark"},
    }
    assert admin.put("/v1/models/demand/routing", json=config).status_code == 200
    try:
        rows = [{"features": {"x1": 3.0, "x2": 0.0}, "unit": f"shadow-{i}"} for i in range(10)]
        answers = admin.post("/v1/models/demand/predict", json={"rows": rows}).json()["predictions"]
        assert {(row["arm"], row["version"]) for row in answers} == {("champion", 1)}
        assert [row["prediction"] for row in answers] == pytest.approx([3.0] * 10)
        deadline = time.monotonic() + 20
        shadows: list[EventRecord] = []
        while time.monotonic() < deadline and len(shadows) < 10:
            shadows = [
                event
                for event in setup.events("demand")
                if event.arm == "dark" and (event.unit or "").startswith("shadow-")
            ]
            time.sleep(0.2)
        assert sorted(event.unit for event in shadows) == sorted(row["unit"] for row in rows)
        assert {event.version for event in shadows} == {"2"}
        assert [event.prediction for event in shadows] == pytest.approx([30.0] * 10)
        assert not {event.event_id for event in shadows} & {row["id"] for row in answers}
    finally:
        admin.delete("/v1/models/demand/routing")


def test_a_slow_model_stalls_neither_ingest_nor_other_models(
    setup: Setup, admin: httpx.Client
) -> None:
    weights = setup.root / "slow.json"
    weights.write_text(json.dumps({"seconds": 3.0}))
    record = setup.registry.register(
        "slowpoke",
        weights,
        flavor="pyfunc",
        entry_point="tests.serving.slow_model:build",
        signature={"features": {"x1": "numeric", "x2": "numeric"}},
        registered_by="ana",
    )
    setup.registry.set_alias("slowpoke", "champion", record.version, moved_by="ana")
    setup.registry.set_alias("demand", "champion", 1, moved_by="ana")
    row = {"features": {"x1": 1.0, "x2": 2.0}}
    with setup.server.client() as slow_client, ThreadPoolExecutor(8) as pool:
        slow = [
            pool.submit(slow_client.post, "/v1/models/slowpoke/predict", json=row) for _ in range(8)
        ]
        time.sleep(0.5)
        started = time.monotonic()
        fast = [admin.post("/v1/models/demand/predict", json=row) for _ in range(10)]
        ingest = admin.post(
            "/v1/models/demand/events",
            json={"events": [{"version": "1", "features": {"x1": 1.0, "x2": 0.0}}]},
        )
        elapsed = time.monotonic() - started
        assert [answer.status_code for answer in fast] == [200] * 10
        assert ingest.status_code == 200, ingest.text
        assert elapsed < 2.5, f"other work waited {elapsed:.2f} s behind the slow model"
        assert all(future.result().status_code == 200 for future in slow)
    assert slow[0].result().json()["prediction"] == pytest.approx(3.0)


def test_alias_moves_and_weight_changes_drop_no_request(setup: Setup, admin: httpx.Client) -> None:
    setup.registry.set_alias("demand", "champion", 1, moved_by="ana")
    config = {
        "arms": [
            {"name": "champion", "alias": "champion", "weight": 100},
            {"name": "canary", "version": 2, "weight": 0},
        ]
    }
    assert admin.put("/v1/models/demand/routing", json=config).status_code == 200
    stop = threading.Event()
    results: list[tuple[int, Any]] = []

    def hammer() -> None:
        with setup.server.client() as client:
            while not stop.is_set():
                answer = client.post(
                    "/v1/models/demand/predict",
                    json={"rows": [{"features": {"x1": 1.0, "x2": 0.0}} for _ in range(5)]},
                )
                body = answer.json()
                results.append(
                    (
                        answer.status_code,
                        [(r["arm"], r["version"]) for r in body.get("predictions", [])],
                    )
                )

    try:
        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        setup.registry.set_alias("demand", "champion", 2, moved_by="ana", reason="promote")
        for weight in (10, 50, 90, 100):
            assert (
                admin.patch(
                    "/v1/models/demand/routing/weights",
                    json={"weights": {"champion": 100 - weight, "canary": weight}},
                ).status_code
                == 200
            )
            time.sleep(0.3)
        setup.registry.rollback("demand", moved_by="ana", reason="undo")
        time.sleep(1.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        admin.delete("/v1/models/demand/routing")
    assert len(results) > 20
    assert {status for status, _ in results} == {200}
    served = {pair for _, pairs in results for pair in pairs}
    assert {("champion", 1), ("champion", 2), ("canary", 2)} <= served
    # After the last change (all weight on the canary) every row went to the canary.
    assert set(results[-1][1]) == {("canary", 2)}


def test_a_changed_artifact_refuses_to_load(setup: Setup, admin: httpx.Client) -> None:
    record = setup.registry.register("tampered", _linear(3.0), registered_by="ana")
    setup.registry.set_alias("tampered", "champion", record.version, moved_by="ana")
    digest = record.artifact_sha256
    (path,) = [p for p in (setup.root / "artifacts").rglob("*") if p.is_file() and digest in str(p)]
    path.write_bytes(path.read_bytes() + b"tampered")
    answer = admin.post("/v1/models/tampered/predict", json={"features": {"x1": 1.0, "x2": 0.0}})
    assert answer.status_code == 409
    message = answer.json()["error"]["message"]
    assert "refuses to load" in message
    assert "has changed since it was registered" in message
    metrics = admin.get("/metrics").text
    assert (
        'watchkeeper_model_load_status{model="tampered",state="failed",version="1"} 1.0' in metrics
    )
