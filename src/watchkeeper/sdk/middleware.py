"""ASGI middleware that logs the predictions a web service (FastAPI, Starlette) makes.

It copies the request and response bodies as they stream past, and only after the last
response byte has been handed to the server does it decode them and call ``extract``; the
client's latency therefore grows by nothing but the copying, and the event is only queued on
the logger (the network send happens on the logger's own thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

from watchkeeper.errors import ConfigError

if TYPE_CHECKING:
    from watchkeeper.sdk.logger import PredictionLogger

__all__ = ["Extract", "PredictionLoggingMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: ``extract(request_json, response_json)`` → ``(features, prediction)``, or None to skip the
#: call. ``response_json`` is None when the endpoint failed (an error event is then logged).
Extract = Callable[[Any, Any], "tuple[Mapping[str, Any], Any] | None"]

_log = logging.getLogger("watchkeeper.sdk")


class _Exchange:
    """The copied bodies and status of one request."""

    __slots__ = ("overflow", "request", "response", "status")

    def __init__(self) -> None:
        self.request: list[bytes] = []
        self.response: list[bytes] = []
        self.status = 500
        self.overflow = False


class PredictionLoggingMiddleware:
    """Log every matching request/response pair as a prediction event.

    Parameters
    ----------
    app:
        The ASGI application to wrap.
    logger:
        Where events are queued.
    extract:
        ``(request_json, response_json) -> (features, prediction) | None``.
    paths:
        Only these request paths are logged (all when None).
    methods:
        Only these HTTP methods are logged.
    max_body_bytes:
        Larger bodies are passed through without logging (bounds the copy).

    Example
    -------
    >>> app.add_middleware(PredictionLoggingMiddleware, logger=logger,  # doctest: +SKIP
    ...     extract=lambda req, resp: (req["features"], resp and resp["label"]),
    ...     paths={"/predict"})
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        logger: PredictionLogger,
        extract: Extract,
        paths: Collection[str] | None = None,
        methods: Collection[str] = ("POST",),
        max_body_bytes: int = 1 << 20,
    ) -> None:
        if not callable(extract):
            raise ConfigError(
                "extract: must be a callable (request_json, response_json)", key="extract"
            )
        if max_body_bytes <= 0:
            raise ConfigError(
                f"max_body_bytes: must be > 0, got {max_body_bytes}", key="max_body_bytes"
            )
        self.app = app
        self._logger = logger
        self._extract = extract
        self._paths = None if paths is None else frozenset(paths)
        self._methods = frozenset(method.upper() for method in methods)
        self._max_body_bytes = max_body_bytes
        self._warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method", "GET") not in self._methods
            or (self._paths is not None and scope.get("path") not in self._paths)
        ):
            await self.app(scope, receive, send)
            return
        exchange = _Exchange()
        limit = self._max_body_bytes
        sizes = [0]

        def keep(chunks: list[bytes], body: bytes) -> None:
            sizes[0] += len(body)
            if sizes[0] > limit:
                exchange.overflow = True
            elif body:
                chunks.append(body)

        async def copying_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not exchange.overflow:
                keep(exchange.request, message.get("body", b""))
            return message

        async def copying_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = int(message["status"])
            elif message["type"] == "http.response.body" and not exchange.overflow:
                keep(exchange.response, message.get("body", b""))
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, copying_receive, copying_send)
        except Exception:
            self._record(exchange, started, failed=True)
            raise
        self._record(exchange, started, failed=exchange.status >= 500)

    def _record(self, exchange: _Exchange, started: float, *, failed: bool) -> None:
        latency_ms = (time.perf_counter() - started) * 1000.0
        if exchange.overflow:
            return
        try:
            request_json = orjson.loads(b"".join(exchange.request)) if exchange.request else None
            response_json = None
            if not failed and exchange.response:
                response_json = orjson.loads(b"".join(exchange.response))
            extracted = self._extract(request_json, response_json)
            if extracted is None:
                return
            features, prediction = extracted
            self._logger.log(
                features, None if failed else prediction, latency_ms=latency_ms, error=failed
            )
        except Exception as error:  # logging must never break the service it watches
            if not self._warned:
                self._warned = True
                _log.warning("watchkeeper middleware cannot log a request: %s", error)
