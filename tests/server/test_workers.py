"""Ingest worker processes: same answers as in-process decoding, and recovery when one dies."""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from watchkeeper.config import Settings, load_settings
from watchkeeper.errors import ConfigError
from watchkeeper.ingest.decode import JSON, DecodedEvents, DecodeJob, decode_events
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor import MonitorService
from watchkeeper.monitor.windows import ColumnPlan
from watchkeeper.schema import ColumnKind
from watchkeeper.server.workers import IngestWorkers, default_worker_count
from watchkeeper.store import Store

SPEC = ModelSpec.from_dict(
    {"name": "m", "task": "regression", "features": {"x": "numeric", "c": "categorical"}}
)
PLAN = ColumnPlan.build(
    task=SPEC.task,
    features={"x": ColumnKind.NUMERIC, "c": ColumnKind.CATEGORICAL},
    prediction=None,
    proba=None,
    reference=None,
)
NOW = 1_700_000_000.0


def job(max_batch: int = 100) -> DecodeJob:
    return DecodeJob(
        spec=SPEC,
        plan=PLAN,
        now=NOW,
        max_age_seconds=86_400.0,
        max_future_seconds=300.0,
        max_batch=max_batch,
    )


def events() -> list[dict[str, Any]]:
    return [
        {"id": "a", "version": "v1", "timestamp": NOW, "features": {"x": 1.5, "c": "p"}},
        {"id": "b", "version": "v1", "features": {"x": "bad", "c": "p"}},
        {"version": "v2", "features": {"x": None, "c": None}, "latency_ms": 3.0},
        {
            "id": "d",
            "version": "v1",
            "timestamp": NOW - 10 * 86_400,
            "features": {"x": 1, "c": "q"},
        },
    ]


def same(left: DecodedEvents, right: DecodedEvents) -> None:
    assert left.plan == right.plan
    assert left.now == right.now
    assert left.rejected == right.rejected
    assert left.rejected_versions == right.rejected_versions
    # Server-assigned ids are random: compare everything else.
    assert left.batch.ids[:1] == right.batch.ids[:1] == ["a"]
    assert left.batch.versions == right.batch.versions
    for name, column in left.batch.columns.items():
        np.testing.assert_array_equal(column, right.batch.columns[name])
    np.testing.assert_array_equal(left.batch.ts, right.batch.ts)
    np.testing.assert_array_equal(left.batch.latency, right.batch.latency)
    # ``width`` stored values per event; the first is the id.
    width = left.encoded.width
    assert width == right.encoded.width
    assert len(left.encoded.values) == len(right.encoded.values) == width * len(left.batch)
    for start in range(0, len(left.encoded.values), width):
        assert (
            left.encoded.values[start + 1 : start + width]
            == right.encoded.values[start + 1 : start + width]
        )


@pytest.fixture(scope="module")
def workers() -> Iterator[IngestWorkers]:
    pool = IngestWorkers(1)
    pool.start()
    try:
        yield pool
    finally:
        pool.close()


def test_a_worker_decodes_as_the_server_process_does(workers: IngestWorkers) -> None:
    body = orjson.dumps({"events": events()})
    decoded = workers.decode(body, JSON, job())
    assert decoded is not None
    same(decoded, decode_events(events(), job()))
    assert [r.index for r in decoded.rejected] == [1, 3]
    assert decoded.rejected_versions == ["v1", "v1"]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"items": []}', b"[1, 2]", b'{"events": [{"x": NaN}]}'],
    ids=["malformed", "wrong-key", "not-an-object", "nan-token"],
)
def test_bodies_a_worker_cannot_decode_cleanly_go_back(workers: IngestWorkers, body: bytes) -> None:
    assert workers.decode(body, JSON, job()) is None


def test_too_many_events_and_unknown_types_go_back(workers: IngestWorkers) -> None:
    body = orjson.dumps({"events": events()})
    assert workers.decode(body, JSON, job(max_batch=3)) is None
    assert workers.decode(body, "text/csv", job()) is None


def test_a_dead_worker_is_replaced(workers: IngestWorkers) -> None:
    body = orjson.dumps({"events": events()})
    dead = workers.pids()
    assert len(dead) == 1
    os.kill(dead[0], signal.SIGKILL)
    time.sleep(0.5)
    # The batch in flight is decoded in-process by the caller, and so are the next ones until
    # the new worker has started; then they go to it.
    assert workers.decode(body, JSON, job()) is None
    replaced = workers.pids()
    assert len(replaced) == 1
    assert replaced != dead
    deadline = time.monotonic() + 60
    while (decoded := workers.decode(body, JSON, job())) is None:
        assert time.monotonic() < deadline, "the new worker never took a batch"
        time.sleep(0.1)
    assert decoded.batch.ids[0] == "a"


def test_batches_do_not_wait_for_workers_that_are_still_starting() -> None:
    pool = IngestWorkers(1)
    starting = threading.Thread(target=pool.start)
    starting.start()
    try:
        while not pool.pids():
            time.sleep(0.005)
        began = time.monotonic()
        assert pool.decode(orjson.dumps({"events": events()}), JSON, job()) is None
        assert time.monotonic() - began < 0.5  # a worker's start takes seconds
    finally:
        starting.join()
        pool.close()


def test_a_worker_left_mid_batch_is_replaced(workers: IngestWorkers) -> None:
    """An error on the caller's side (here a job that cannot be pickled) loses no worker."""
    body = orjson.dumps({"events": events()})
    before = workers.pids()
    unpicklable = dataclasses.replace(job(), max_batch=lambda: 0)  # type: ignore[arg-type]
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        workers.decode(body, JSON, unpicklable)
    assert workers.pids() != before
    deadline = time.monotonic() + 60
    while (decoded := workers.decode(body, JSON, job())) is None:
        assert time.monotonic() < deadline, "the new worker never took a batch"
        time.sleep(0.1)
    assert len(decoded.batch) == 2


def test_busy_workers_are_waited_for() -> None:
    """More batches than processes at once: each is decoded by a worker, none in-process."""
    pool = IngestWorkers(2)
    pool.start()
    body = orjson.dumps({"events": events()})
    try:
        with ThreadPoolExecutor(max_workers=6) as threads:
            results = list(threads.map(lambda _: pool.decode(body, JSON, job()), range(24)))
    finally:
        pool.close()
    assert all(result is not None for result in results)
    assert pool.pids() == []


def test_closed_workers_decline() -> None:
    pool = IngestWorkers(1)
    pool.start()
    pool.close()
    assert pool.decode(orjson.dumps({"events": events()}), JSON, job()) is None
    with pytest.raises(RuntimeError, match="closed"):
        pool.start()
    with pytest.raises(ValueError, match="processes"):
        IngestWorkers(0)


def test_a_batch_decoded_before_a_reference_was_set_is_not_stored(tmp_path: Path) -> None:
    import pandas as pd

    with Store.open(f"sqlite:///{tmp_path / 'wk.db'}") as store:
        service = MonitorService(store, settings=Settings(), clock=lambda: NOW)
        service.start()
        service.register_model(SPEC)
        stale = service.decode_job("m")
        decoded = decode_events(events(), stale)
        frame = pd.DataFrame({"x": np.linspace(0, 1, 200), "c": ["p", "q"] * 100})
        service.set_reference("m", frame)
        assert service.ingest_decoded("m", decoded) is None
        assert store.count_events(service._shared.model("m").model_id) == 0
        fresh = decode_events(events(), service.decode_job("m"))
        outcome = service.ingest_decoded("m", fresh)
        assert outcome is not None
        assert outcome.accepted == 2
        service.close()


def test_an_in_process_batch_is_decoded_again_when_the_plan_changed(tmp_path: Path) -> None:
    """ingest_events takes the same plan check as a worker's batch: a reference set while
    the batch was decoded sends it round again, and it is stored once."""
    import pandas as pd

    with Store.open(f"sqlite:///{tmp_path / 'wk.db'}") as store:
        service = MonitorService(store, settings=Settings(), clock=lambda: NOW)
        service.start()
        service.register_model(SPEC)
        frame = pd.DataFrame({"x": np.linspace(0, 1, 200), "c": ["p", "q"] * 100})
        plans: list[ColumnPlan] = []
        decode = service._decode_and_ingest

        def decode_during_a_reference_change(job: DecodeJob) -> DecodedEvents:
            plans.append(job.plan)
            decoded = decode_events(events(), job)
            if len(plans) == 1:
                service.set_reference("m", frame)
            return decoded

        outcome = decode("m", decode_during_a_reference_change)
        assert len(plans) == 2
        assert plans[0] != plans[1]
        assert outcome.accepted == 2
        assert store.count_events(service._shared.model("m").model_id) == 2
        service.close()


def test_worker_setting() -> None:
    assert Settings().ingest_workers is None
    assert load_settings(environ={"WATCHKEEPER_INGEST_WORKERS": "3"}).ingest_workers == 3
    assert load_settings(environ={"WATCHKEEPER_INGEST_WORKERS": "0"}).ingest_workers == 0
    with pytest.raises(ConfigError, match="ingest_workers"):
        Settings(ingest_workers=-1)
    with pytest.raises(ConfigError, match="WATCHKEEPER_INGEST_WORKERS: expected an integer"):
        load_settings(environ={"WATCHKEEPER_INGEST_WORKERS": "many"})


@pytest.mark.parametrize(("cores", "workers"), [(None, 0), (1, 0), (2, 1), (3, 2), (16, 4)])
def test_default_worker_count(
    monkeypatch: pytest.MonkeyPatch, cores: int | None, workers: int
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert default_worker_count() == workers


def test_workers_exit_when_the_server_is_killed(tmp_path: Path) -> None:
    """kill -9 of the server leaves no worker process behind."""
    import psutil

    from tests.server.conftest import ServerProcess

    server = ServerProcess(
        db=f"sqlite:///{tmp_path / 'wk.db'}",
        log=tmp_path / "server.log",
        env={"WATCHKEEPER_INGEST_WORKERS": "1"},
    ).start()
    assert server.process is not None
    children = psutil.Process(server.process.pid).children(recursive=True)
    workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
    assert len(workers) == 1
    server.kill()
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []
