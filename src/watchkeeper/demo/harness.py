"""What the whole-loop demo runs the service with: a simulated clock, the real server on a
free localhost port, and a local webhook receiver that counts the alerts delivered to it.

The server is the production app (:func:`watchkeeper.server.app.create_app`) under uvicorn in a
thread of this process; only its clock is simulated, so two and a half weeks of event time pass
in a minute and every background loop (closing windows, alert evaluation and delivery, rollout
looks) runs as it does in production, on that clock.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

__all__ = ["ServiceThread", "SimClock", "WebhookReceiver", "free_port"]


class SimClock:
    """Event time the demo sets step by step; after :meth:`follow_wall_clock` the wall clock."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._wall = False
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return time.time() if self._wall else self._now

    def set(self, now: float) -> None:
        """Move to ``now`` (never back: every reader sees time go forward)."""
        with self._lock:
            if now < self._now:
                raise ValueError(f"the simulated clock cannot go back from {self._now} to {now}")
            self._now = now

    def follow_wall_clock(self) -> None:
        """From now on read the wall clock (the replay ended in the past, so time goes on)."""
        with self._lock:
            self._wall = True


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class WebhookReceiver:
    """A real HTTP server on localhost that stores every webhook message POSTed to it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    message = json.loads(body)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.messages.append(message)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return  # the demo prints its own narrative

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-webhook", daemon=True
        )

    @property
    def url(self) -> str:
        """Where to POST."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/alerts"

    def start(self) -> WebhookReceiver:
        """Listen in a thread."""
        self._thread.start()
        return self

    def received(self) -> list[dict[str, Any]]:
        """Every message so far, oldest first."""
        with self._lock:
            return list(self.messages)

    def firing(self, rule: str) -> list[dict[str, Any]]:
        """The firing alerts of ``rule`` in the messages received so far."""
        return [
            alert
            for message in self.received()
            for alert in message.get("alerts", [])
            if alert.get("status") == "firing" and alert["labels"].get("alertname") == rule
        ]

    def stop(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()


class ServiceThread:
    """``app`` served by uvicorn on ``127.0.0.1:port`` in a thread of this process."""

    def __init__(self, app: FastAPI, port: int) -> None:
        import uvicorn

        self.port = port
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
        self._server: uvicorn.Server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="demo-server", daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready: Callable[[], bool], timeout: float = 60.0) -> ServiceThread:
        """Start serving and wait until ``ready()`` (the service recovered and answers)."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError("the demo's server stopped while starting; see the log above")
            if self._server.started and ready():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"the demo's server did not become ready within {timeout:g} s")

    def stop(self) -> None:
        """Shut down (the app checkpoints and closes its store) and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=30.0)
