"""A 2xx means committed: kill -9 the server mid-stream, restart, count what the store kept; and
the windows it resumes from its last checkpoint are those a full replay of the raw events gives."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.server.conftest import MODEL, ServerProcess, event
from tests.server.test_recovery import rounded
from watchkeeper.config import Settings
from watchkeeper.monitor import MonitorService
from watchkeeper.store import Store
from watchkeeper.store import tables as t

BATCH = 250


def _batch(number: int, now: float) -> list[dict[str, Any]]:
    return [
        event(number * BATCH + offset, id=f"b{number}-{offset}", timestamp=now)
        for offset in range(BATCH)
    ]


def _stored_ids(db: str) -> set[str]:
    with Store(db) as store:
        model_id = store.get_model("durable").id
        return {record.event_id for record in store.events_between(model_id, 0.0, 1e12)}


def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    server = ServerProcess(db=f"sqlite:///{tmp_path / 'durable.db'}", log=tmp_path / "log.txt")
    server.start()
    now = time.time()
    acknowledged: list[int] = []
    unanswered: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        with server.client() as client:
            number = 0
            while not stop.is_set():
                try:
                    response = client.post(
                        "/v1/models/durable/events", json={"events": _batch(number, now)}
                    )
                except httpx.TransportError:
                    unanswered.append(number)
                    return
                assert response.status_code == 200, response.text
                assert response.json()["accepted"] == BATCH
                acknowledged.append(number)
                number += 1

    try:
        with server.client() as admin:
            assert admin.post("/v1/models", json={**MODEL, "name": "durable"}).status_code == 201
        sender = threading.Thread(target=stream)
        sender.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
        sender.join(timeout=30)
        stop.set()
    finally:
        server.stop()
    assert len(acknowledged) >= 12
    assert len(unanswered) == 1, "the stream must have been cut while a batch was in flight"

    server.start()
    try:
        stored = _stored_ids(server.db)
        acked_ids = {f"b{n}-{offset}" for n in acknowledged for offset in range(BATCH)}
        in_flight = {f"b{unanswered[0]}-{offset}" for offset in range(BATCH)}
        # Every acknowledged event is there; the batch cut mid-flight is all-or-nothing.
        assert acked_ids <= stored
        assert stored - acked_ids in (set(), in_flight)

        # A client retries what got no answer; idempotent ids make the total exact.
        with server.client() as client:
            retry = client.post(
                "/v1/models/durable/events", json={"events": _batch(unanswered[0], now)}
            )
            assert retry.status_code == 200
            answer = retry.json()
            assert answer["accepted"] + answer["duplicates"] == BATCH
            acknowledged.append(unanswered[0])
        total = len(acknowledged) * BATCH
        assert len(_stored_ids(server.db)) == total
        with Store(server.db) as store:
            assert store.count_events(store.get_model("durable").id) == total
    finally:
        server.stop()


def _windows_of(db: str, *, from_checkpoint: bool) -> dict[Any, tuple[Any, ...]]:
    """The open windows a restart on ``db`` recovers (from its checkpoint, or from every raw
    event when ``from_checkpoint`` is False)."""
    with Store.open(db) as store:
        if not from_checkpoint:
            with store.engine.begin() as connection:
                connection.execute(t.checkpoints.delete())
        service = MonitorService(store, settings=Settings(db=db))
        service.start()
        return {
            key: (
                window.events,
                window.errors,
                window.latency_count,
                window.ratings.tolist(),
                rounded(window.performance.to_state()),
            )
            for key, window in service._shared.open["durable"].items()
        }


def test_a_restart_after_kill_9_resumes_the_windows_a_full_replay_gives(tmp_path: Path) -> None:
    server = ServerProcess(
        db=f"sqlite:///{tmp_path / 'durable.db'}",
        log=tmp_path / "log.txt",
        env={"WATCHKEEPER_CHECKPOINT_SECONDS": "0.5"},
    )
    server.start()
    now = time.time()
    acknowledged: list[int] = []

    def checkpointed_events() -> int:
        with Store(server.db) as store:
            checkpoint = store.checkpoint()
        return 0 if checkpoint is None else sum(w.event_count for w in checkpoint.windows)

    try:
        with server.client() as client:
            assert client.post("/v1/models", json={**MODEL, "name": "durable"}).status_code == 201
            deadline = time.monotonic() + 60
            number = 0
            # Ingest until a periodic checkpoint holds events, then some more: the tail.
            while checkpointed_events() == 0 and time.monotonic() < deadline:
                response = client.post(
                    "/v1/models/durable/events", json={"events": _batch(number, now)}
                )
                assert response.status_code == 200, response.text
                acknowledged.append(number)
                number += 1
                time.sleep(0.05)
            assert checkpointed_events() > 0, "no periodic checkpoint"
            for _ in range(4):
                labels = [{"id": f"b{number - 1}-{offset}", "label": "1"} for offset in range(50)]
                assert client.post("/v1/models/durable/labels", json={"labels": labels}).is_success
                response = client.post(
                    "/v1/models/durable/events", json={"events": _batch(number, now)}
                )
                assert response.status_code == 200, response.text
                acknowledged.append(number)
                number += 1
        server.kill()
    finally:
        server.stop()
    assert checkpointed_events() < len(acknowledged) * BATCH, "the tail must not be empty"

    # Recover copies of the database both ways: from the checkpoint, and from every raw event.
    for suffix in ("", "-wal", "-shm"):
        source = tmp_path / f"durable.db{suffix}"
        if source.exists():
            shutil.copy(source, tmp_path / f"resumed.db{suffix}")
            shutil.copy(source, tmp_path / f"replayed.db{suffix}")
    resumed = _windows_of(f"sqlite:///{tmp_path / 'resumed.db'}", from_checkpoint=True)
    replayed = _windows_of(f"sqlite:///{tmp_path / 'replayed.db'}", from_checkpoint=False)
    assert resumed == replayed
    assert sum(state[0] for state in resumed.values()) == len(acknowledged) * BATCH

    server.start()
    try:
        assert _stored_ids(server.db) == {
            f"b{n}-{offset}" for n in acknowledged for offset in range(BATCH)
        }
        with server.client() as client:
            counts = client.get(
                "/v1/models/durable/signals/count",
                params={"start": now - 7200, "end": now + 3600},
            )
        assert counts.status_code == 200, counts.text
        assert sum(point["count"] for point in counts.json()["points"]) == len(acknowledged) * BATCH
    finally:
        server.stop()
