"""Ingest worker processes: decode, validate and encode event batches beside the server.

Parsing a JSON body, validating its events and encoding them for the store is most of the CPU
time of ingest, and it is pure Python work that holds the interpreter lock. The worker processes
do it (:func:`~watchkeeper.ingest.decode.decode_body`), so the server process keeps its lock
for HTTP, storing and folding, and ingest uses more than one core. Results come back as
:class:`~watchkeeper.ingest.decode.DecodedEvents` (columns and encoded store rows: cheap to
pickle). A body a worker cannot decode cleanly, and any batch while no worker is available, is
handled in-process, so clients see the same answers either way.

Each worker is a spawned process with its own pipe. The request's thread takes an idle worker,
writes the body to its pipe and reads the answer itself: no pool manager or feeder threads, so a
batch crosses no other thread of the server (each such hand-off waits for the interpreter lock,
which under load costs milliseconds).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Final

from watchkeeper.ingest.decode import DecodedEvents, DecodeJob, decode_body, warm_up

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

__all__ = ["IngestWorkers", "default_worker_count"]

logger = logging.getLogger("watchkeeper.server")

# More processes than this stop paying on ingest: the server process (HTTP, store, fold) becomes
# the limit first.
_MAX_DEFAULT_WORKERS = 4
_READY: Final = b"ready"
# Importing the decoding stack takes a second or two; far longer means the process is stuck.
_START_SECONDS = 120.0
_STOP_SECONDS = 10.0


def default_worker_count() -> int:
    """One process per core the server does not use itself, up to four; none on one core."""
    return max(0, min(_MAX_DEFAULT_WORKERS, (os.cpu_count() or 1) - 1))


def _serve(connection: Connection) -> None:
    """A worker process: decode the batches that arrive on ``connection`` until it closes.

    The server's end of the pipe closes when the server stops or dies (even by kill -9), so the
    worker never outlives it.
    """
    # Ctrl-C reaches the whole process group; the server stops its workers by closing the pipes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Importing the decoding stack (NumPy, orjson, the validators) is the slow part of a start.
    warm_up()

    # As in the server: what is loaded now lives as long as the process, and a batch allocates
    # tens of thousands of objects, so full collections would rescan the modules again and again.
    gc.freeze()
    try:
        connection.send_bytes(_READY)
        while True:
            content_type, job = pickle.loads(connection.recv_bytes())
            body = connection.recv_bytes()
            try:
                answer = pickle.dumps(
                    decode_body(body, content_type, job), protocol=pickle.HIGHEST_PROTOCOL
                )
            except Exception:
                answer = pickle.dumps(None)
            connection.send_bytes(answer)
    except (EOFError, OSError):
        return


class _Worker:
    """One worker process and the server's end of its pipe; used by one thread at a time."""

    __slots__ = ("connection", "process")

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        # Spawned, not forked: the server has threads (and a store connection) at this point.
        self.connection, child = context.Pipe(duplex=True)
        self.process: BaseProcess = context.Process(
            target=_serve, args=(child,), name="watchkeeper-ingest", daemon=True
        )
        self.process.start()
        # Only the worker may hold its end: the worker sees EOF when the server's end closes.
        child.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the process has imported the decoding code; False if it failed."""
        try:
            return self.connection.poll(timeout) and self.connection.recv_bytes() == _READY
        except (EOFError, OSError):
            return False

    def decode(self, body: bytes, content_type: str, job: DecodeJob) -> DecodedEvents | None:
        """Send a batch, wait for the answer; raises EOFError or OSError when the process died."""
        self.connection.send_bytes(pickle.dumps((content_type, job), pickle.HIGHEST_PROTOCOL))
        self.connection.send_bytes(body)
        decoded: DecodedEvents | None = pickle.loads(self.connection.recv_bytes())
        return decoded

    def stop(self, timeout: float = _STOP_SECONDS) -> None:
        """Close the pipe (the process exits at EOF); kill the process if it does not."""
        self.connection.close()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class IngestWorkers:
    """``processes`` spawned worker processes; :meth:`decode` runs a batch in an idle one."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        self.processes = processes
        self._changed = threading.Condition()
        self._idle: list[_Worker] = []
        # Every process not known dead: idle, decoding a batch, or starting.
        self._workers: set[_Worker] = set()
        # Those decoding a batch: worth waiting for. A process still starting is not (it may
        # take seconds to import), so with none idle or busy a batch is decoded in-process.
        self._busy: set[_Worker] = set()
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        return f"IngestWorkers(processes={self.processes}, running={len(self._workers)})"

    def pids(self) -> list[int]:
        """Process ids of the worker processes that are running or starting."""
        with self._changed:
            return sorted(pid for worker in self._workers if (pid := worker.pid) is not None)

    def start(self) -> None:
        """Start the processes and wait until each has imported the decoding code."""
        with self._changed:
            if self._closed:
                raise RuntimeError("the ingest workers were closed")
            if self._started:
                return
            self._started = True
            starting = [_Worker() for _ in range(self.processes)]
            self._workers.update(starting)
        failed = [worker for worker in starting if not worker.wait_ready(_START_SECONDS)]
        for worker in starting:
            if worker not in failed:
                self._release(worker)
        if failed:
            for worker in failed:
                self._discard(worker)
            raise RuntimeError(
                f"ingest worker process {failed[0].pid} did not start; see the server log"
            )

    def decode(self, body: bytes, content_type: str, job: DecodeJob) -> DecodedEvents | None:
        """Decode ``body`` in a worker; None when it must be done in-process instead.

        Waits for an idle worker when all are busy; while none has started yet (the first
        seconds after start-up, or after every worker died) the batch is decoded in-process.
        A worker that died (killed, out of memory) is replaced for later batches, and this
        batch is decoded in-process.
        """
        worker = self._take()
        if worker is None:
            return None
        try:
            decoded = worker.decode(body, content_type, job)
        except (EOFError, OSError, pickle.UnpicklingError):
            self._replace(worker, "died")
            return None
        except BaseException:
            # The pipe may hold half a request or an unread answer: only a new process is safe.
            self._replace(worker, "was left mid-batch")
            raise
        self._release(worker)
        return decoded

    def _take(self) -> _Worker | None:
        with self._changed:
            while self._started and not self._closed and not self._idle and self._busy:
                self._changed.wait()
            if self._closed or not self._idle:
                return None
            worker = self._idle.pop()
            self._busy.add(worker)
            return worker

    def _release(self, worker: _Worker) -> None:
        with self._changed:
            self._busy.discard(worker)
            if not self._closed:
                self._idle.append(worker)
                self._changed.notify()
                return
            self._workers.discard(worker)
            self._changed.notify_all()
        worker.stop()

    def _replace(self, dead: _Worker, why: str) -> None:
        logger.error("ingest worker process %s %s; starting a new one", dead.pid, why)
        dead.stop(timeout=1.0)
        with self._changed:
            self._workers.discard(dead)
            self._busy.discard(dead)
            if self._closed:
                self._changed.notify_all()
                return
            fresh = _Worker()
            self._workers.add(fresh)
        threading.Thread(
            target=self._welcome, args=(fresh,), name="watchkeeper-worker-start", daemon=True
        ).start()

    def _welcome(self, worker: _Worker) -> None:
        """Put a replacement to work once it is ready (the caller that found the death goes on)."""
        if worker.wait_ready(_START_SECONDS):
            self._release(worker)
            return
        logger.error("a new ingest worker process did not start; ingest runs with fewer")
        self._discard(worker)

    def _discard(self, worker: _Worker) -> None:
        worker.stop(timeout=1.0)
        with self._changed:
            self._workers.discard(worker)
            self._changed.notify_all()

    def close(self) -> None:
        """Stop the processes; batches being decoded get up to ten seconds to finish."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            idle, self._idle = self._idle, []
            self._workers.difference_update(idle)
        for worker in idle:
            worker.stop()
        deadline = time.monotonic() + _STOP_SECONDS
        with self._changed:
            while self._workers and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            stragglers, self._workers = list(self._workers), set()
        for worker in stragglers:
            worker.stop(timeout=0.0)
