"""Start-up, periodic upkeep and shutdown of the service behind the app.

The app serves at once: /healthz answers while the monitor recovers its open windows in the
background (from the latest checkpoint and the rows stored after it), /readyz answers 503 with
the progress, and :class:`RefuseWhileRecovering` answers 503 with ``Retry-After`` to the routes
that need the monitor. Once recovered, the alerting engine starts (evaluating every window that
closed or changed — late events, labels, feedback — in event time), retraining runs a previous
process left running are requeued, and one background task closes due windows every
``window_check_seconds`` (advancing rollouts and retraining runs on the same schedule),
checkpoints the open windows every ``checkpoint_seconds`` and applies retention every
``retention_check_seconds`` (each is off when set to 0). On shutdown the task is cancelled (a
recovery in progress is interrupted), the monitor checkpoints its open windows, the retraining
worker stops, and a store the app opened itself is closed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from watchkeeper.errors import WatchkeeperError
from watchkeeper.server.boot import RETRY_AFTER_SECONDS
from watchkeeper.server.errors import error_body
from watchkeeper.server.state import AppState

if TYPE_CHECKING:
    from watchkeeper.monitor import MonitorService

__all__ = ["RefuseWhileRecovering", "lifespan", "maintain", "not_ready_reason", "recover"]

logger = logging.getLogger("watchkeeper.server")


async def _upkeep(name: str, work: Callable[[], Any]) -> Any:
    """Run one round of ``work`` in the thread pool; log (and survive) its failure."""
    try:
        return await run_in_threadpool(work)
    except WatchkeeperError as error:
        logger.error("%s failed: %s", name, error)
    except Exception:
        logger.exception("%s failed", name)
    return None


def _closed_then_latest(service: MonitorService) -> list[dict[str, Any]]:
    """The latest samples, after closing the windows that are due: a rule whose ``for`` is one
    window then sees the next window's signals whenever it has held for one window, never the
    same window's for longer (the windows' own tick runs on another schedule)."""
    service.tick()
    return service.latest_samples()


async def maintain(state: AppState) -> None:
    """Tick the monitor, checkpoint it and apply retention on their schedules, until cancelled."""
    settings = state.settings
    every = {
        "closing windows": settings.window_check_seconds or math.inf,
        "checkpoint": settings.checkpoint_seconds or math.inf,
        "retention": settings.retention_check_seconds or math.inf,
    }
    work: dict[str, Callable[[], Any]] = {
        "closing windows": state.service.tick,
        "checkpoint": state.service.checkpoint,
        "retention": state.service.apply_retention,
    }
    if state.rollouts is not None:
        # Rollouts advance on the windows' schedule; each look waits for its own interval.
        every["rollouts"] = every["closing windows"]
        work["rollouts"] = state.rollouts.tick
    if state.retrain is not None:
        # Scheduled runs come due and queued runs (retries) start on the windows' schedule.
        every["retraining"] = every["closing windows"]
        work["retraining"] = state.retrain.tick
    if all(math.isinf(seconds) for seconds in every.values()):
        return
    loop = asyncio.get_running_loop()
    due = {name: loop.time() + seconds for name, seconds in every.items()}
    due["retention"] = loop.time()
    while True:
        await asyncio.sleep(max(0.0, min(due.values()) - loop.time()))
        for name in every:
            if loop.time() < due[name]:
                continue
            due[name] = loop.time() + every[name]
            outcome = await _upkeep(name, work[name])
            if name == "retention" and outcome and any(any(c.values()) for c in outcome.values()):
                logger.info("retention deleted %s", outcome)


async def _start_workers(state: AppState) -> None:
    assert state.workers is not None
    try:
        await run_in_threadpool(state.workers.start)
    except Exception:
        logger.exception("the ingest worker processes did not start; batches are decoded here")


async def recover(state: AppState) -> None:
    """Recover the monitor (and start the ingest workers meanwhile), then run alerting and
    upkeep.

    A failed recovery leaves the service not ready, and not live (see /healthz), with the
    reason; it is logged too.
    """
    from watchkeeper.ingest.arrow import warm_up_columnar

    workers = None
    if state.workers is not None:
        # Not waited for: the first batches after recovery wait for a worker to be up (a second
        # or two after the service was built), or are decoded in-process if none comes up.
        workers = asyncio.create_task(_start_workers(state), name="watchkeeper-workers")
    try:
        try:
            await run_in_threadpool(state.service.start)
            # Batches decoded here (before a worker is up, or without workers) then add no
            # first-time load of the Arrow, Parquet and zstd code to their latency or memory.
            await run_in_threadpool(warm_up_columnar)
        except Exception as error:
            state.start_error = f"recovering the open windows failed: {error}"
            logger.exception("recovering the open windows failed")
            return
        if state.stopping:
            return
        if state.retrain is not None:
            # Runs a previous process left running are interrupted: queued again, once.
            await _upkeep("retraining recovery", state.retrain.recover)
        state.started = True
        # Everything loaded so far (modules, the app, recovered windows) lives as long as the
        # process. Frozen, it is no longer rescanned by every full collection: ingest allocates
        # tens of thousands of objects per batch, and each full collection of the start-up heap
        # stalled a request by ~80 ms.
        gc.freeze()
        # Window signals are evaluated per changed window in event time (delayed labels,
        # backfills); the latest samples serve absence on the wall clock.
        state.alerting.start(
            # The samples first: closing due windows there puts them in the changed windows.
            lambda: _closed_then_latest(state.service),
            window_source=state.service.changed_windows,
            window_ack=state.service.acknowledge_windows,
            interval=state.settings.alerts_interval_seconds,
            delivery_interval=state.settings.alerts_delivery_interval_seconds,
        )
        await maintain(state)
    finally:
        # On shutdown the workers are closed next: their start must be over.
        if workers is not None:
            await workers


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Serve at once, recover in the background, and shut down in order."""
    state: AppState = app.state.watchkeeper
    owns_store: bool = app.state.owns_store
    background = asyncio.create_task(recover(state), name="watchkeeper-recovery")
    try:
        yield
    finally:
        state.started = False
        state.stopping = True
        background.cancel()
        try:
            if state.serving is not None:
                # Its queued predictions go to the monitor before the monitor closes.
                await run_in_threadpool(state.serving.close)
            # Interrupts a recovery in progress (the task waits for its thread), or
            # checkpoints the recovered windows.
            await run_in_threadpool(state.service.close)
            with suppress(asyncio.CancelledError):
                await background
            gc.unfreeze()
            if state.workers is not None:
                await run_in_threadpool(state.workers.close)
            await run_in_threadpool(state.alerting.close)
            if state.retrain is not None:
                await run_in_threadpool(state.retrain.close)
        finally:
            if owns_store:
                state.store.close()


class RefuseWhileRecovering:
    """ASGI middleware: 503 with ``Retry-After`` for ``/v1/models…`` until the monitor is ready.

    Those routes ingest into, or read, the open windows being recovered; refusing them keeps
    every event counted once (clients retry a 503, the SDK included).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/models"):
            state: AppState = scope["app"].state.watchkeeper
            if not state.started:
                await _refuse(state, send)
                return
        await self.app(scope, receive, send)


def not_ready_reason(state: AppState) -> str:
    """Why the service is not ready: recovering (with progress), failed, or shutting down."""
    if state.start_error is not None:
        return state.start_error
    if state.stopping:
        return "the service is shutting down"
    done, total = state.service.recovery_progress()
    return f"recovering open windows: {done} of {total} events"


async def _refuse(state: AppState, send: Send) -> None:
    message = f"the service is not ready ({not_ready_reason(state)}); retry later"
    body = orjson.dumps(error_body("not_ready", message))
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
