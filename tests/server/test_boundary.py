"""The HTTP boundary holds under hostile requests: huge bodies and headers cost no memory.

A real ``watchkeeper serve`` process (auth on, SQLite) is sent a 2 GiB body or a 186 MiB
header through a raw socket that stops sending once the answer arrives. The server's RSS is
sampled while the request runs: it must grow less than 64 MB, and the answer must be 401
(no token: refused before any body byte is read), 413 naming the limit, or 431.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import psutil
import pytest

from tests.server.conftest import ADMIN_TOKEN, MODEL, free_port

MB = 1024 * 1024
GIB = 1024 * MB
_CHUNK = b"x" * MB


@dataclass(frozen=True)
class Served:
    """A running ``watchkeeper serve`` process."""

    port: int
    pid: int


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("boundary")
    port = free_port()
    env = {
        **os.environ,
        "WATCHKEEPER_AUTH": "true",
        "WATCHKEEPER_ADMIN_TOKEN": ADMIN_TOKEN,
        "WATCHKEEPER_INGEST_WORKERS": "0",
    }
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "watchkeeper", "serve", "--db", f"sqlite:///{root / 'wk.db'}",
         "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (root / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not become ready within 60 s"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        created = httpx.post(f"http://127.0.0.1:{port}/v1/models", json=MODEL, headers=headers)
        assert created.status_code == 201, created.text
        yield Served(port=port, pid=process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@dataclass(frozen=True)
class Answer:
    """What the server answered, and how its memory moved meanwhile."""

    status: int
    headers: dict[str, str]
    body: bytes
    sent_bytes: int
    rss_growth: int

    def error(self) -> dict[str, object]:
        document = orjson.loads(self.body)
        assert isinstance(document, dict)
        error = document["error"]
        assert isinstance(error, dict)
        return error


class _RssPeak:
    """Samples a process's RSS every 10 ms in a thread; ``growth`` is peak minus start."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._start = self._process.memory_info().rss
        self._peak = self._start
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        return self._peak - self._start


def _chunked(total: int) -> Iterator[bytes]:
    """``total`` bytes as HTTP/1.1 chunks of 1 MiB, made lazily."""
    frame = f"{len(_CHUNK):x}\r\n".encode() + _CHUNK + b"\r\n"
    for _ in range(total // len(_CHUNK)):
        yield frame
    yield b"0\r\n\r\n"


def _plain(total: int) -> Iterator[bytes]:
    for _ in range(total // len(_CHUNK)):
        yield _CHUNK


def _read_answer(sock: socket.socket, deadline: float) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data or len(data) < _answer_length(data):
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            piece = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not piece:
            break
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    assert head, "the server closed the connection without an answer"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def _answer_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(data) + 1


def send(served: Served, head: bytes, body: Iterator[bytes], *, seconds: float = 8.0) -> Answer:
    """Send ``head`` then ``body`` until the server answers; read the answer."""
    rss = _RssPeak(served.pid)
    try:
        status, headers, answer, sent = _exchange(served.port, head, body, seconds)
    finally:
        growth = rss.stop()
    return Answer(status, headers, answer, sent, growth)


def _exchange(
    port: int, head: bytes, body: Iterator[bytes], seconds: float
) -> tuple[int, dict[str, str], bytes, int]:
    deadline = time.monotonic() + seconds
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(1.0)
        try:
            sock.sendall(head)
            for piece in body:
                if select.select([sock], [], [], 0)[0] or time.monotonic() > deadline:
                    break
                try:
                    sock.sendall(piece)
                except TimeoutError:
                    # The server stopped reading: its answer should be on the way.
                    break
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, headers, answer = _read_answer(sock, deadline + 2.0)
    return status, headers, answer, sent


def _head(method: str, path: str, *extra: str, token: str | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join([*lines, *extra]) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    "path", ["/v1/tokens", "/v1/silences", "/v1/models", "/v1/models/churn/events"]
)
def test_a_huge_body_without_token_is_refused_before_it_is_read(served: Served, path: str) -> None:
    answer = send(
        served,
        _head("POST", path, "Content-Type: application/json", "Transfer-Encoding: chunked"),
        _chunked(2 * GIB),
    )
    assert answer.status == 401, answer.body
    assert answer.error()["field"] == "authorization"
    assert answer.headers.get("connection") == "close", "the unread body is not waited for"
    assert answer.sent_bytes < 256 * MB
    assert answer.rss_growth < 64 * MB, f"RSS grew {answer.rss_growth / MB:.0f} MiB"


@pytest.mark.parametrize(
    ("method", "path", "setting"),
    [
        ("POST", "/v1/tokens", "WATCHKEEPER_MAX_ADMIN_BODY_BYTES"),
        ("POST", "/v1/silences", "WATCHKEEPER_MAX_ADMIN_BODY_BYTES"),
        ("PUT", "/v1/rules", "WATCHKEEPER_MAX_ADMIN_BODY_BYTES"),
        ("POST", "/v1/models", "WATCHKEEPER_MAX_ADMIN_BODY_BYTES"),
        ("POST", "/v1/models/churn/events", "WATCHKEEPER_MAX_BODY_BYTES"),
        ("POST", "/v1/models/churn/labels", "WATCHKEEPER_MAX_BODY_BYTES"),
        ("POST", "/v1/models/churn/feedback", "WATCHKEEPER_MAX_BODY_BYTES"),
        ("PUT", "/v1/models/churn/reference", "WATCHKEEPER_MAX_BODY_BYTES"),
    ],
)
def test_a_huge_streamed_body_stops_at_the_limit(
    served: Served, method: str, path: str, setting: str
) -> None:
    answer = send(
        served,
        _head(
            method, path, "Content-Type: application/json", "Transfer-Encoding: chunked",
            token=ADMIN_TOKEN,
        ),
        _chunked(2 * GIB),
    )  # fmt: skip
    assert answer.status == 413, answer.body
    error = answer.error()
    assert setting in str(error["message"]), error
    assert error["field"] == "body"
    assert answer.headers.get("connection") == "close"
    assert answer.rss_growth < 64 * MB, f"RSS grew {answer.rss_growth / MB:.0f} MiB"


@pytest.mark.parametrize("path", ["/v1/tokens", "/v1/models/churn/events"])
def test_a_declared_huge_length_is_refused_before_reading(served: Served, path: str) -> None:
    answer = send(
        served,
        _head(
            "POST", path, "Content-Type: application/json", f"Content-Length: {2 * GIB}",
            token=ADMIN_TOKEN,
        ),
        _plain(2 * GIB),
    )  # fmt: skip
    assert answer.status == 413, answer.body
    assert f"the body has {2 * GIB} bytes" in str(answer.error()["message"])
    assert answer.sent_bytes < 256 * MB
    assert answer.rss_growth < 64 * MB, f"RSS grew {answer.rss_growth / MB:.0f} MiB"


def test_a_huge_header_is_refused_with_431(served: Served) -> None:
    def header() -> Iterator[bytes]:
        yield b"Authorization: Bearer "
        for _ in range(186):
            yield b"a" * MB

    answer = send(served, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n", header())
    assert answer.status == 431, answer.body
    error = answer.error()
    assert error["type"] == "request_header_fields_too_large"
    assert "WATCHKEEPER_MAX_HEADER_BYTES" in str(error["message"])
    assert answer.headers.get("connection") == "close"
    assert answer.sent_bytes < 64 * MB
    assert answer.rss_growth < 64 * MB, f"RSS grew {answer.rss_growth / MB:.0f} MiB"


@pytest.mark.parametrize(("size", "status"), [(60 * 1024, 401), (70 * 1024, 431)])
def test_a_head_sent_at_once_is_held_to_the_limit(served: Served, size: int, status: int) -> None:
    """The default limit is 64 KiB of request target and header fields."""
    head = _head("GET", "/v1/models", f"X-Padding: {'p' * size}", token="not-a-token")
    answer = send(served, head, iter(()))
    assert answer.status == status, answer.body


def test_a_malformed_request_gets_a_json_400(served: Served) -> None:
    answer = send(served, b"NOT A REQUEST\r\n\r\n", iter(()))
    assert answer.status == 400
    assert answer.error()["type"] == "bad_request"
    assert answer.headers.get("connection") == "close"


def test_the_connection_serves_on_after_a_refused_small_body(served: Served) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{served.port}") as client:
        refused = client.post("/v1/tokens", json={"name": "x", "scopes": ["read"]})
        assert refused.status_code == 401
        listed = client.get("/v1/models", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert listed.status_code == 200


def test_normal_requests_still_work(served: Served, tmp_path: Path) -> None:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{served.port}", headers=headers) as client:
        created = client.post("/v1/tokens", json={"name": "reader", "scopes": ["read"]})
        assert created.status_code == 201, created.text
        silence = client.post(
            "/v1/silences", json={"matchers": ['model="churn"'], "duration": "1h"}
        )
        assert silence.status_code == 201, silence.text
        rules = client.put(
            "/v1/rules?replace=false",
            content=b"rules: []\n",
            headers={"content-type": "application/yaml"},
        )
        assert rules.status_code == 200, rules.text
