"""How many event batches the server decodes and stores at a time (``ingest_concurrency``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerts_live.conftest import serve
from watchkeeper.config import Settings
from watchkeeper.monitor.service import IngestOutcome, MonitorService
from watchkeeper.server.app import create_app
from watchkeeper.store import Store

MODEL = {"name": "m", "task": "regression", "features": {"x": "numeric"}, "windows": [3600]}


class SlowService(MonitorService):
    """Takes 0.2 s per event batch and records how many batches it had at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = threading.Lock()
        self.running = 0
        self.most = 0

    def ingest_events(self, model: str, events: list[Any]) -> IngestOutcome:
        with self.guard:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.2)
            return super().ingest_events(model, events)
        finally:
            with self.guard:
                self.running -= 1


@contextmanager
def running(tmp_path: Path, **settings: Any) -> Iterator[tuple[str, SlowService, Store]]:
    chosen = Settings(db=f"sqlite:///{tmp_path / 'wk.db'}", ingest_workers=0, **settings)
    store = Store.open(chosen.db)
    service = SlowService(store, settings=chosen)
    try:
        with serve(create_app(chosen, service=service, store=store)) as url:
            httpx.post(f"{url}/v1/models", json=MODEL).raise_for_status()
            yield url, service, store
    finally:
        store.close()


def post_at_once(url: str, batches: int) -> list[int]:
    statuses: list[int] = []

    def post(index: int) -> None:
        response = httpx.post(
            f"{url}/v1/models/m/events",
            json={"events": [{"id": f"{index}-{row}", "version": "1", "features": {"x": row}}
                             for row in range(5)]},
            timeout=30.0,
        )  # fmt: skip
        statuses.append(response.status_code if response.json()["accepted"] == 5 else -1)

    threads = [threading.Thread(target=post, args=(index,)) for index in range(batches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.parametrize(("limit", "expected"), [(None, 2), (1, 1), (3, 3)])
def test_batches_beyond_the_limit_wait_their_turn_and_are_all_stored(
    tmp_path: Path, limit: int | None, expected: int
) -> None:
    # No ingest workers: the default is two at a time (storing overlaps the next decode).
    with running(tmp_path, ingest_concurrency=limit) as (url, service, store):
        assert post_at_once(url, 6) == [200] * 6
        assert service.most == expected
        assert store.count_events(store.get_model("m").id) == 30
