"""Recovery: checkpoints plus the rows stored after them give back exactly the open windows, and
the server answers /healthz while it recovers, /readyz and /v1/models only once it is done."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.monitor.test_service import (
    HOUR,
    T0,
    Clock,
    events,
    reference_frame,
    spec,
    true_labels,
)
from tests.server.conftest import MODEL, ServerProcess, event
from tests.store.backends import backend_url
from watchkeeper.config import Settings
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor import MonitorService
from watchkeeper.monitor.windows import WindowKey, WindowProfile
from watchkeeper.store import Store
from watchkeeper.store import tables as t


@pytest.fixture(params=["sqlite-file", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with backend_url(request.param, tmp_path) as url, Store.open(url) as opened:
        yield opened


def service_on(store: Store, clock: Clock, *, start: bool = True) -> MonitorService:
    service = MonitorService(
        store,
        settings=Settings(max_event_age_seconds=30 * 86_400, max_event_future_seconds=2 * HOUR),
        clock=clock,
    )
    if start:
        service.start()
    return service


def window_state(window: WindowProfile) -> tuple[Any, ...]:
    """Everything a window counts exactly (float moments to 9 digits: summation order)."""
    profile = window.dataset_profile()
    assert profile is not None
    columns = profile.columns
    numeric = [name for name in ("a", "b", "c") if name in columns]
    return (
        window.events,
        window.errors,
        window.latency_count,
        window.ratings.tolist(),
        rounded(window.performance.to_state()),
        {name: int(column.count) for name, column in columns.items()},
        {name: columns[name].bin_counts.tolist() for name in numeric},  # type: ignore[union-attr]
        {name: rounded(columns[name].mean) for name in numeric},  # type: ignore[union-attr]
    )


def rounded(value: Any) -> Any:
    """``value`` with its floats to 9 digits (sums in another order differ in the last bits)
    and NaN as None (NaN is not equal to itself)."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 9)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item) for item in value]
    return value


def open_windows(service: MonitorService) -> dict[WindowKey, tuple[Any, ...]]:
    return {key: window_state(window) for key, window in service._shared.open["churn"].items()}


def feedback(ids: list[str], user: str) -> list[dict[str, Any]]:
    return [
        {"id": event_id, "user_id": user, "rating": 1 + index % 5}
        for index, event_id in enumerate(ids)
    ]


def test_a_checkpoint_and_the_rows_after_it_give_back_the_open_windows(store: Store) -> None:
    clock = Clock(T0 + 10)
    live = service_on(store, clock)
    live.register_model(spec(), reference=reference_frame())
    first = events(400, T0, seed=1)
    second = events(300, T0 + HOUR, seed=2, prefix="s", country="fr")
    live.ingest_events("churn", first[:300])
    live.ingest_labels("churn", true_labels(first, seed=3)[:100])
    live.ingest_feedback("churn", feedback([e["id"] for e in first[:40]], "u1"))
    # Labels that come before their predictions wait for them.
    live.ingest_labels("churn", true_labels(second, seed=4)[:50])
    assert live.checkpoint() > 0

    live.ingest_events("churn", first[300:] + second)
    live.ingest_events("churn", first[:20])  # duplicates change nothing
    live.ingest_labels("churn", true_labels(first, seed=3)[100:250])  # for checkpointed events
    live.ingest_labels("churn", true_labels(second, seed=4)[50:120])
    live.ingest_feedback("churn", feedback([e["id"] for e in first[:60] + second[:30]], "u2"))
    expected = open_windows(live)
    assert sum(state[0] for key, state in expected.items() if key.window_seconds == HOUR) == 700
    # No close(): as after a kill -9.

    resumed = service_on(store, clock)
    assert open_windows(resumed) == expected
    # The same as rebuilding the windows from every raw event, without a checkpoint.
    with store.engine.begin() as connection:
        connection.execute(t.checkpoints.delete())
    rebuilt = service_on(store, clock)
    assert open_windows(rebuilt) == expected


def test_ingest_while_checkpointing_counts_every_event_once(store: Store) -> None:
    clock = Clock(T0 + 10)
    live = service_on(store, clock)
    live.register_model(spec(), reference=reference_frame())
    batches = [events(50, T0, seed=n, prefix=f"t{n}-") for n in range(60)]
    stop = threading.Event()
    checkpoints = [0]

    def checkpoint_all_the_time() -> None:
        while not stop.is_set():
            live.checkpoint()
            checkpoints[0] += 1

    def send(part: list[list[dict[str, Any]]]) -> None:
        for batch in part:
            live.ingest_events("churn", batch)
            live.ingest_labels("churn", true_labels(batch, seed=5)[:10])

    checkpointer = threading.Thread(target=checkpoint_all_the_time)
    senders = [threading.Thread(target=send, args=(batches[n::3],)) for n in range(3)]
    checkpointer.start()
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    stop.set()
    checkpointer.join()
    assert checkpoints[0] > 3
    expected = open_windows(live)
    assert sum(state[0] for state in expected.values()) == 60 * 50 * len(spec().windows)

    assert open_windows(service_on(store, clock)) == expected


def test_a_reference_set_after_the_checkpoint_leaves_the_windows_unprofiled(store: Store) -> None:
    clock = Clock(T0 + 10)
    live = service_on(store, clock)
    live.register_model(spec(), reference=reference_frame())
    live.ingest_events("churn", events(200, T0, seed=1))
    live.checkpoint()
    live.set_reference("churn", reference_frame(seed=9))
    live.ingest_events("churn", events(100, T0, seed=2, prefix="late"))
    expected = {
        key: (w.events, w.dataset_profile()) for key, w in live._shared.open["churn"].items()
    }
    assert all(profile is None for _, profile in expected.values())

    resumed = service_on(store, clock)
    assert {
        key: (w.events, w.dataset_profile()) for key, w in resumed._shared.open["churn"].items()
    } == dict.fromkeys(expected, (300, None))


def test_a_checkpoint_is_replaced_whole(store: Store) -> None:
    clock = Clock(T0 + 10)
    live = service_on(store, clock)
    live.register_model(spec(), reference=reference_frame())
    live.ingest_events("churn", events(10, T0, seed=1))
    assert live.checkpoint() == len(spec().windows)
    first = store.checkpoint()
    live.ingest_events("churn", events(10, T0, seed=2, prefix="f", country="fr"))
    assert live.checkpoint() == 2 * len(spec().windows)
    second = store.checkpoint()
    assert first is not None
    assert second is not None
    assert second.seq > first.seq == store.last_seq() - 1
    assert {(w.segment, w.event_count) for w in second.windows} == {
        ("country=de", 10),
        ("country=fr", 10),
    }
    # A window that closes leaves the next checkpoint; recovery never resurrects it.
    clock.now = T0 + 2 * 86_400
    live.tick()
    live.checkpoint()
    final = store.checkpoint()
    assert final is not None
    assert final.windows == ()
    assert service_on(store, clock)._shared.open.get("churn", {}) == {}


# ---------------------------------------------------------------- the server while it recovers


def _launch(server: ServerProcess) -> None:
    """Start the server process without waiting for it to be ready."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "watchkeeper.server.boot:app_from_environment",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(server.port),
        "--log-level",
        "warning",
    ]
    with server.log.open("ab") as log:
        server.process = subprocess.Popen(command, env=server.env, stdout=log, stderr=log)


def _fill(db: str, count: int) -> None:
    """Store ``count`` events of ``MODEL`` in open windows, with no checkpoint to resume from."""
    with Store.open(db) as store:
        writer = MonitorService(store, settings=Settings(db=db, max_batch_events=5000))
        writer.register_model(ModelSpec.from_dict(MODEL))
        now = time.time()
        for start in range(0, count, 5000):
            batch = [event(start + n, id=f"x{start + n}", timestamp=now) for n in range(5000)]
            assert writer.ingest_events(MODEL["name"], batch).accepted == 5000
        # Never started, this service writes no checkpoint: the restart replays every event.
        writer.close()
        assert store.checkpoint() is None


def test_healthz_answers_while_recovering_and_readyz_once_done(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'big.db'}"
    stored = 60_000
    _fill(db, stored)
    server = ServerProcess(db=db, log=tmp_path / "log.txt", env={"WATCHKEEPER_INGEST_WORKERS": "0"})
    _launch(server)
    seen_recovering = False
    late = 0
    try:
        deadline = time.monotonic() + 30
        healthy = None
        while time.monotonic() < deadline:
            try:
                healthy = httpx.get(f"{server.url}/healthz", timeout=2.0)
                break
            except httpx.TransportError:
                time.sleep(0.02)
        assert healthy is not None, "no answer from /healthz"
        assert healthy.status_code == 200
        with server.client() as client:
            while time.monotonic() < deadline:
                ready = client.get("/readyz")
                if ready.status_code == 200:
                    break
                assert ready.status_code == 503
                reason = ready.json()["reason"]
                if reason != "starting: loading the service":
                    assert reason.startswith("recovering open windows: "), reason
                    assert reason.endswith((f" of {stored} events", " of 0 events")), reason
                    seen_recovering = True
                assert client.get("/healthz").status_code == 200
                answer = client.post(
                    f"/v1/models/{MODEL['name']}/events",
                    json={"events": [event(late, id=f"late-{late}")]},
                )
                if answer.status_code == 200:
                    # Recovery ended between the two requests: the event counts like any other.
                    assert client.get("/readyz").status_code == 200
                    late += 1
                    break
                assert answer.status_code == 503, answer.text
                assert int(answer.headers["retry-after"]) > 0
                assert answer.json()["error"]["type"] == "not_ready"
                time.sleep(0.05)
            assert client.get("/readyz").status_code == 200
            assert seen_recovering, "recovery ended before a probe; store more events"
            counts = client.get(
                f"/v1/models/{MODEL['name']}/signals/count",
                params={"start": time.time() - 7200, "end": time.time() + 3600},
            )
            assert counts.status_code == 200, counts.text
            assert sum(point["count"] for point in counts.json()["points"]) == stored + late
    finally:
        server.stop()


def test_a_service_that_cannot_start_is_not_live(tmp_path: Path) -> None:
    # Nothing listens on port 1: building the service fails after the port is bound.
    server = ServerProcess(
        db="postgresql://nobody@127.0.0.1:1/none",
        log=tmp_path / "log.txt",
        env={"WATCHKEEPER_INGEST_WORKERS": "0"},
    )
    _launch(server)
    try:
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{server.url}/healthz", timeout=2.0)
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            if answer.status_code != 200:
                break
            time.sleep(0.05)
        assert answer is not None
        assert answer.status_code == 503
        assert answer.json()["status"] == "failed"
        assert answer.json()["reason"].startswith("starting the service failed: ")
        ready = httpx.get(f"{server.url}/readyz", timeout=2.0)
        assert ready.status_code == 503
        assert ready.json()["reason"] == answer.json()["reason"]
    finally:
        server.stop()
