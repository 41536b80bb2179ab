"""The service's entry point that answers /healthz before the service is even imported.

Importing the service (FastAPI, pandas, SciPy, the profiles) costs seconds of CPU, and uvicorn
binds its port only once the app's startup completes. :class:`DeferredApp` imports nothing heavy:
its startup completes at once, it builds the real app (:func:`~watchkeeper.server.app.create_app`)
in a thread and runs that app's lifespan (which recovers the open windows in the background),
and until then it answers /healthz 200 and everything else 503 with ``Retry-After``. Then it
hands every request to the real app.

    uvicorn watchkeeper.server.boot:app_from_environment --factory --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import TYPE_CHECKING, Any

import orjson

from watchkeeper.config import Settings, load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import Receive, Scope, Send

__all__ = ["DeferredApp", "app_from_environment"]

logger = logging.getLogger("watchkeeper.server")

# What a client refused while the service loads or recovers is told to wait before trying
# again, in seconds.
RETRY_AFTER_SECONDS = 5


def _build(settings: Settings) -> FastAPI:
    # Importing allocates hundreds of thousands of objects that all live on; the collections
    # that this growing heap triggers cost a quarter of the import's CPU (0.8 of 3 s measured).
    gc.disable()
    try:
        from watchkeeper.server.app import create_app

        return create_app(settings)
    finally:
        gc.enable()


class DeferredApp:
    """An ASGI app that serves /healthz at once and the service of ``settings`` once built.

    A service that fails to build answers /healthz 503 with the reason (logged too), so a
    liveness probe restarts it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: FastAPI | None = None
        self._error: str | None = None

    def __repr__(self) -> str:
        return f"DeferredApp(ready={self._app is not None})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        app = self._app
        if app is not None:
            await app(scope, receive, send)
        elif scope["type"] == "http":
            await self._answer_while_loading(scope["path"], send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        stop = asyncio.Event()
        serving = asyncio.create_task(self._serve(stop), name="watchkeeper-service")
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        stop.set()
        try:
            await serving
        except Exception:
            logger.exception("shutting the service down failed")
        await send({"type": "lifespan.shutdown.complete"})

    async def _serve(self, stop: asyncio.Event) -> None:
        """Build the app, run its lifespan and serve it until ``stop``."""
        try:
            app = await asyncio.to_thread(_build, self.settings)
        except Exception as error:
            self._error = f"starting the service failed: {error}"
            logger.exception("starting the service failed")
            return
        async with app.router.lifespan_context(app):
            self._app = app
            await stop.wait()

    async def _answer_while_loading(self, path: str, send: Send) -> None:
        status, headers = 503, [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())]
        document: dict[str, Any]
        reason = self._error or "starting: loading the service"
        if path == "/healthz":
            if self._error is None:
                status, headers = 200, []
                document = {"status": "ok"}
            else:
                document = {"status": "failed", "reason": reason}
        elif path == "/readyz":
            document = {"status": "not ready", "reason": reason}
        else:
            message = f"the service is not ready ({reason}); retry later"
            document = {"error": {"type": "not_ready", "message": message, "field": None,
                                  "index": None}}  # fmt: skip
        body = orjson.dumps(document)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def app_from_environment() -> DeferredApp:
    """The service from ``WATCHKEEPER_*`` variables, for ``uvicorn --factory``.

    Settings are read and checked here, so a bad one stops the start. Refuses (ConfigError)
    when ``WATCHKEEPER_HOST`` is not loopback and auth is off; the uvicorn ``--host`` flag is not
    visible here, so keep it equal to ``WATCHKEEPER_HOST``.
    """
    settings = load_settings()
    settings.check_exposure()
    return DeferredApp(settings)
