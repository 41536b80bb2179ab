"""Start-up, periodic upkeep and shutdown of the service behind the app.

On start the monitor rebuilds its open windows from the store. While the app runs, one
background task closes due windows every ``window_check_seconds`` and applies retention every
``retention_check_seconds`` (either is off when set to 0). On shutdown the task is cancelled, the
monitor checkpoints its open windows, and a store the app opened itself is closed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import WatchkeeperError
from watchkeeper.server.state import AppState

__all__ = ["lifespan", "maintain"]

logger = logging.getLogger("watchkeeper.server")


async def maintain(state: AppState) -> None:
    """Tick the monitor and apply retention on their schedules, until cancelled."""
    tick_every = state.settings.window_check_seconds or math.inf
    retain_every = state.settings.retention_check_seconds or math.inf
    if math.isinf(tick_every) and math.isinf(retain_every):
        return
    loop = asyncio.get_running_loop()
    next_tick = loop.time() + tick_every
    next_retention = loop.time()
    while True:
        await asyncio.sleep(max(0.0, min(next_tick, next_retention) - loop.time()))
        if loop.time() >= next_tick:
            next_tick = loop.time() + tick_every
            try:
                await run_in_threadpool(state.service.tick)
            except WatchkeeperError as error:
                logger.error("closing windows failed: %s", error)
            except Exception:
                logger.exception("closing windows failed")
        if loop.time() >= next_retention:
            next_retention = loop.time() + retain_every
            try:
                deleted = await run_in_threadpool(state.service.apply_retention)
                if any(any(counts.values()) for counts in deleted.values()):
                    logger.info("retention deleted %s", deleted)
            except WatchkeeperError as error:
                logger.error("retention failed: %s", error)
            except Exception:
                logger.exception("retention failed")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the monitor, run upkeep in the background, and shut down in order."""
    state: AppState = app.state.watchkeeper
    owns_store: bool = app.state.owns_store
    try:
        await run_in_threadpool(state.service.start)
        if state.workers is not None:
            await run_in_threadpool(state.workers.start)
    except BaseException:
        if state.workers is not None:
            state.workers.close()
        if owns_store:
            state.store.close()
        raise
    state.started = True
    # Everything loaded so far (modules, the app, recovered windows) lives as long as the process.
    # Frozen, it is no longer rescanned by every full collection: ingest allocates tens of
    # thousands of objects per batch, and each full collection of the start-up heap stalled a
    # request by ~80 ms.
    gc.freeze()
    state.alerting.start(
        state.service.latest_samples, interval=state.settings.alerts_interval_seconds
    )
    upkeep = asyncio.create_task(maintain(state), name="watchkeeper-upkeep")
    try:
        yield
    finally:
        state.started = False
        gc.unfreeze()
        upkeep.cancel()
        with suppress(asyncio.CancelledError):
            await upkeep
        try:
            if state.workers is not None:
                await run_in_threadpool(state.workers.close)
            await run_in_threadpool(state.alerting.close)
            await run_in_threadpool(state.service.close)
        finally:
            if owns_store:
                state.store.close()
