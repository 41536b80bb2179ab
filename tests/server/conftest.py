"""A real watchkeeper server in a subprocess (uvicorn on an ephemeral port), and helpers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

ADMIN_TOKEN = "test-admin-token-6f1d0c8e5b"
MODEL: dict[str, Any] = {
    "name": "churn",
    "task": "classification",
    "features": {"age": "numeric", "plan": "categorical", "active": "boolean"},
    "prediction": "prediction",
    "proba": {"0": "proba_0", "1": "proba_1"},
    "segments": ["region"],
    "windows": [3600],
}


def free_port() -> int:
    """A port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess:
    """``python -m uvicorn watchkeeper.server.app:app_from_environment`` on 127.0.0.1."""

    def __init__(self, *, db: str, log: Path, env: Mapping[str, str] | None = None) -> None:
        self.db = db
        self.log = log
        self.port = free_port()
        self.env = {
            **os.environ,
            "WATCHKEEPER_DB": db,
            "WATCHKEEPER_HOST": "127.0.0.1",
            "WATCHKEEPER_AUTH": "true",
            "WATCHKEEPER_ADMIN_TOKEN": ADMIN_TOKEN,
            "WATCHKEEPER_MAX_BODY_BYTES": "2000000",
            "WATCHKEEPER_MAX_BATCH_EVENTS": "2000",
            "WATCHKEEPER_LOG_LEVEL": "warning",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 60.0) -> ServerProcess:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "watchkeeper.server.app:app_from_environment",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}:\n{self.log.read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, like a crash or an OOM kill."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def client(self, token: str | None = ADMIN_TOKEN, **options: Any) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **options)


@pytest.fixture(scope="module", params=["0", "1"], ids=["in-process", "ingest-worker"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A running server with authentication, a SQLite file, and the ``churn`` model; once
    decoding batches in the server process and once in an ingest worker process."""
    root = tmp_path_factory.mktemp("server")
    process = ServerProcess(
        db=f"sqlite:///{root / 'wk.db'}",
        log=root / "server.log",
        env={"WATCHKEEPER_INGEST_WORKERS": request.param},
    ).start()
    try:
        with process.client() as client:
            response = client.post("/v1/models", json=MODEL)
            assert response.status_code == 201, response.text
        yield process
    finally:
        process.stop()


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def event(index: int, **changes: Any) -> dict[str, Any]:
    """A valid event of the ``churn`` model; ``changes`` replace top-level fields."""
    base: dict[str, Any] = {
        "id": f"e-{index}",
        "version": "v1",
        "features": {
            "age": 20.0 + index % 50,
            "plan": "basic" if index % 3 else "pro",
            "active": index % 2 == 0,
        },
        "prediction": str(index % 2),
        "proba": {"0": 0.3, "1": 0.7},
        "latency_ms": 5.0 + index % 7,
        "error": index % 10 == 0,
        "segment": {"region": "eu" if index % 2 else "us"},
    }
    base.update(changes)
    return base
