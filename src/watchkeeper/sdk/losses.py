"""Rate-limited warnings about events a logger could not deliver.

A logger that loses events must say so in the application's log, not only in ``stats``; but a
service that is down makes it lose thousands a second, and one warning per event would flood
the log. :class:`LossWarnings` warns at most once per kind of loss and ``interval`` seconds,
each warning saying how many events were lost since the previous one and in total, why, and
what to do. :meth:`LossWarnings.close` reports what the last period left unreported.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Loss", "LossWarnings"]

_log = logging.getLogger("watchkeeper.sdk")


class Loss(StrEnum):
    """The ways a logged event can miss the service (the names of ``LoggerStats`` fields)."""

    DROPPED = "dropped"
    FAILED = "failed"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"


# Each message takes: the count since the last warning, the model, the total, why.
_MESSAGES = {
    Loss.DROPPED: (
        "watchkeeper dropped %d events of model %r since the last warning (%d in total): the "
        "logger's queue was full (%s). Raise capacity= if bursts cause this, check that the "
        "service is up and fast enough, or log fewer events"
    ),
    Loss.FAILED: (
        "watchkeeper could not deliver %d events of model %r since the last warning (%d in "
        "total): %s. They are lost; fix the cause and check logger.stats"
    ),
    Loss.REJECTED: (
        "the watchkeeper service rejected %d events of model %r since the last warning (%d in "
        "total); first reason: %s. Those events are not stored: make them match the model "
        "config (docs/sdk.md, 'What the service accepts')"
    ),
    Loss.UNREACHABLE: (
        "watchkeeper failed %d times to reach the service for model %r since the last warning "
        "(%d in total): %s. Retrying with backoff; events wait in the queue, and nothing is "
        "lost until it is full"
    ),
}


@dataclass(slots=True)
class _Kind:
    reported: int = 0  # total at the last warning
    total: int = 0
    due: float = float("-inf")  # monotonic time from which the next warning may go out
    why: str = ""


class LossWarnings:
    """Warns through the ``watchkeeper.sdk`` logger, at most once per kind per ``interval`` s.

    Thread-safe; the log call itself happens outside the lock.
    """

    def __init__(self, *, model: str, interval: float) -> None:
        self._model = model
        self._interval = interval
        self._kinds = {loss: _Kind() for loss in Loss}
        self._lock = threading.Lock()

    def note(self, loss: Loss, count: int, why: str) -> None:
        """Count ``count`` events lost for reason ``why``; warn if the period has passed."""
        now = time.monotonic()
        with self._lock:
            kind = self._kinds[loss]
            kind.total += count
            kind.why = why
            if now < kind.due:
                return
            kind.due = now + self._interval
            since, kind.reported = kind.total - kind.reported, kind.total
            total = kind.total
        _log.warning(_MESSAGES[loss], since, self._model, total, why)

    def close(self) -> None:
        """Warn about the events lost but not reported yet (the logger is closing)."""
        with self._lock:
            pending = [
                (loss, kind.total - kind.reported, kind.total, kind.why)
                for loss, kind in self._kinds.items()
                if kind.total > kind.reported and loss is not Loss.UNREACHABLE
            ]
            for loss, _, total, _ in pending:
                self._kinds[loss].reported = total
        for loss, since, total, why in pending:
            _log.warning(_MESSAGES[loss], since, self._model, total, why)
