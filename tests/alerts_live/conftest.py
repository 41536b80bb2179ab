"""Fixtures for the live alerting tests: a real HTTP receiver, a real uvicorn server and the
SQL databases (a SQLite file, a real PostgreSQL) the engine runs on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.alerts._databases import sql_url
from tests.alerts._servers import CaptureServer, free_port

__all__ = ["http_receiver", "serve", "sql_url"]


@pytest.fixture
def http_receiver() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(3000):  # 30 s: a busy 2-core machine can take seconds to start a server
        if server.started:
            started.set()
            break
        if not thread.is_alive():
            break
        threading.Event().wait(0.01)
    assert started.is_set(), "uvicorn did not start"
    # The service answers while it recovers; its /v1/models routes answer once it is ready (503
    # until then; apps without /readyz answer 404).
    for _ in range(3000):
        if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code != 503:
            break
        threading.Event().wait(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
