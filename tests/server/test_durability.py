"""A 2xx means committed: kill -9 the server mid-stream, restart, count what the store kept."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.server.conftest import MODEL, ServerProcess, event
from watchkeeper.store import Store

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
