"""Ingest worker processes: decode, validate and encode event batches beside the server.

Parsing a JSON body, validating its events and encoding them for the store is most of the CPU
time of ingest, and it is pure Python work that holds the interpreter lock. The worker processes
do it (:func:`~watchkeeper.monitor.decoding.decode_body`), so the server process keeps its lock
for HTTP, storing and folding, and ingest uses more than one core. Results come back as
:class:`~watchkeeper.monitor.decoding.DecodedEvents` (columns and one encoded payload: cheap to
pickle). A body a worker cannot decode cleanly, and any batch while the workers are unavailable,
is handled in-process, so clients see the same answers either way.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from watchkeeper.monitor.decoding import DecodedEvents, DecodeJob, decode_body

__all__ = ["IngestWorkers", "default_worker_count"]

logger = logging.getLogger("watchkeeper.server")

# More processes than this stop paying on ingest: the server process (HTTP, store, fold) becomes
# the limit first.
_MAX_DEFAULT_WORKERS = 4
_PARENT_CHECK_SECONDS = 0.5


def default_worker_count() -> int:
    """One process per core the server does not use itself, up to four; none on one core."""
    return max(0, min(_MAX_DEFAULT_WORKERS, (os.cpu_count() or 1) - 1))


def _exit_with(parent: int) -> None:
    # A pool's worker holds both ends of its task pipe, so it never sees EOF when the server is
    # killed (kill -9, OOM): without this it would outlive the server, holding its memory.
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)
    os._exit(0)


def _prepare(parent: int) -> None:
    """Run once in every worker process as it starts."""
    threading.Thread(target=_exit_with, args=(parent,), name="watch-parent", daemon=True).start()
    # Importing the decoding stack (NumPy, orjson, the validators) is the slow part of a start.
    import pyarrow  # noqa: F401

    # As in the server: what is loaded now lives as long as the process, and a batch allocates
    # tens of thousands of objects, so full collections would rescan the modules again and again.
    gc.freeze()


def _ready() -> bool:
    return True


class IngestWorkers:
    """A pool of ``processes`` spawned worker processes; :meth:`decode` runs a batch there."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        self.processes = processes
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"IngestWorkers(processes={self.processes}, running={self._pool is not None})"

    def _new_pool(self) -> ProcessPoolExecutor:
        # Spawned, not forked: the server has threads (and a store connection) at this point.
        return ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_prepare,
            initargs=(os.getpid(),),
        )

    def start(self) -> None:
        """Start the processes and wait until each has imported the decoding code."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the ingest workers were closed")
            if self._pool is None:
                self._pool = self._new_pool()
            pool = self._pool
        for future in [pool.submit(_ready) for _ in range(self.processes)]:
            future.result()

    def decode(self, body: bytes, content_type: str, job: DecodeJob) -> DecodedEvents | None:
        """Decode ``body`` in a worker; None when it must be done in-process instead.

        A worker that died (killed, out of memory) breaks the pool: it is replaced for the next
        batch, and this batch is decoded in-process.
        """
        with self._lock:
            pool = self._pool
        if pool is None:
            return None
        try:
            return pool.submit(decode_body, body, content_type, job).result()
        except BrokenProcessPool:
            self._replace(pool)
            return None
        except RuntimeError:
            # Submitted while shutting down.
            return None

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not broken or self._closed:
                return
            logger.error("an ingest worker process died; starting new ones")
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()

    def close(self) -> None:
        """Stop the processes (batches in flight finish first)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
