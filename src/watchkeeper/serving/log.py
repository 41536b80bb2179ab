"""Predictions logged to the monitor off the request path, in batches.

Every served prediction (shadow ones included) becomes a prediction event of its model, with
its version, arm and unit, and goes through the same ingest as ``POST /v1/models/{name}/events``
(:meth:`MonitorService.ingest_events`, in-process). A request only puts its events on a queue;
one thread takes what is queued after letting it gather for up to 50 ms, one batch per model,
so even a quiet server writes few batches and a busy one few large ones. A full queue makes
requests wait for room (never drop): the monitor's record of what served stays complete.
:meth:`PredictionLog.flush` waits until everything queued is stored.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from watchkeeper.monitor.outcome import IngestOutcome
    from watchkeeper.monitor.service import MonitorService

__all__ = ["PredictionLog"]

logger = logging.getLogger("watchkeeper.serving")

DEFAULT_CAPACITY: Final = 50_000
_BATCH: Final = 2_000
# How long the thread lets events gather before it ingests them: one batch of many events costs
# far less than many batches of one, and a request never waits for it.
_LINGER_SECONDS: Final = 0.05


class PredictionLog:
    """A bounded queue of prediction events and the thread that ingests them."""

    def __init__(
        self,
        service: MonitorService,
        *,
        capacity: int = DEFAULT_CAPACITY,
        on_stored: Callable[[str, IngestOutcome], None] | None = None,
    ) -> None:
        self._service = service
        self._capacity = capacity
        self._on_stored = on_stored
        self._queue: deque[tuple[str, dict[str, Any]]] = deque()
        self._changed = threading.Condition()
        self._in_flight = 0
        self._closing = False
        self.logged = 0
        self.rejected = 0
        self.failed = 0
        # Started by the first put: an app that never serves a prediction runs no thread.
        self._thread: threading.Thread | None = None

    def put(self, model: str, events: Sequence[dict[str, Any]]) -> None:
        """Queue ``events`` of ``model``; waits while the queue is full."""
        with self._changed:
            while len(self._queue) + len(events) > self._capacity and self._queue:
                self._changed.wait(0.1)
            self._queue.extend((model, event) for event in events)
            self._changed.notify_all()
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(
                    target=self._run, name="watchkeeper-predictions", daemon=True
                )
                self._thread.start()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued event is ingested; False on timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: not self._queue and not self._in_flight, timeout=timeout
            )

    def close(self, timeout: float = 30.0) -> None:
        """Ingest what is queued, then stop the thread."""
        self.flush(timeout)
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _take(self) -> dict[str, list[dict[str, Any]]] | None:
        with self._changed:
            while not self._queue:
                if self._closing:
                    return None
                self._changed.wait()
            if not self._closing and len(self._queue) < _BATCH:
                self._changed.wait_for(
                    lambda: self._closing or len(self._queue) >= _BATCH, timeout=_LINGER_SECONDS
                )
            batches: dict[str, list[dict[str, Any]]] = defaultdict(list)
            taken = 0
            while self._queue and taken < _BATCH:
                model, event = self._queue.popleft()
                batches[model].append(event)
                taken += 1
            self._in_flight = taken
            self._changed.notify_all()
            return batches

    def _run(self) -> None:
        while (batches := self._take()) is not None:
            for model, events in batches.items():
                self._ingest(model, events)
            with self._changed:
                self._in_flight = 0
                self._changed.notify_all()

    def _ingest(self, model: str, events: list[dict[str, Any]]) -> None:
        try:
            outcome = self._service.ingest_events(model, events)
        except Exception:
            # The prediction was answered already; the loss is counted and said once per batch.
            self.failed += len(events)
            logger.exception(
                "could not log %d predictions of %r to the monitor", len(events), model
            )
            return
        self.logged += outcome.accepted
        if outcome.rejected:
            self.rejected += len({rejection.index for rejection in outcome.rejected})
            first = outcome.rejected[0]
            logger.warning(
                "the monitor rejected %d predictions of %r; first: %s: %s",
                len(outcome.rejected),
                model,
                first.field,
                first.reason,
            )
        if self._on_stored is not None:
            self._on_stored(model, outcome)
