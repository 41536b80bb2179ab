"""A real HTTP server on 127.0.0.1 that records the batches the SDK sends."""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    path: str
    authorization: str | None
    body: dict[str, Any]
    status: int


class RecordingServer:
    """Answers POSTs like the watchkeeper service and records every request.

    ``script`` holds (status, headers) answers used before the default 200. Events whose
    features contain ``"reject": true`` are refused one by one; ids seen before are duplicates.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.requests: list[Request] = []
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.seen_ids: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = orjson.loads(self.rfile.read(length))
                status, headers, answer = recorder._answer(self.path, body)
                with recorder._lock:
                    recorder.requests.append(
                        Request(self.path, self.headers.get("authorization"), body, status)
                    )
                payload = orjson.dumps(answer)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            if self.script:
                status, headers = self.script.popleft()
                return status, headers, {"detail": f"scripted {status}"}
            if path.endswith("/unknown/labels"):
                return 404, {}, {"detail": "no model named 'unknown'"}
            kind = path.rsplit("/", 1)[-1]
            items = body[kind]
            rejected, ids, duplicates = [], [], 0
            for index, item in enumerate(items):
                if kind == "events" and item["features"].get("reject"):
                    rejected.append({"index": index, "field": "features.reject", "reason": "no"})
                elif item["id"] in self.seen_ids:
                    duplicates += 1
                else:
                    self.seen_ids.add(item["id"])
                    ids.append(item["id"])
            answer = {
                "accepted": len(ids),
                "duplicates": duplicates,
                "ids": ids,
                "rejected": rejected,
            }
            return 200, {}, answer

    def delivered(self, kind: str = "events") -> list[dict[str, Any]]:
        """Items of every answered-200 request, in arrival order."""
        with self._lock:
            return [
                item
                for request in self.requests
                if request.status == 200 and request.path.endswith(kind)
                for item in request.body[kind]
            ]

    def batch_sizes(self) -> list[int]:
        with self._lock:
            return [len(r.body["events"]) for r in self.requests if r.path.endswith("events")]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait (bounded) until ``count`` events arrived; return them."""
        end = time.monotonic() + timeout
        while len(self.delivered()) < count and time.monotonic() < end:
            time.sleep(0.01)
        return self.delivered()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    recording = RecordingServer(free_port())
    recording.start()
    yield recording
    recording.stop()


@pytest.fixture
def stopped_server() -> Iterator[RecordingServer]:
    """A server with a reserved port that is not listening yet (``.start()`` it)."""
    recording = RecordingServer(free_port())
    yield recording
    recording.stop()
