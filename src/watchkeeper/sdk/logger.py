"""The non-blocking prediction logger: a bounded queue drained by one background sender.

``log()`` only builds a small dict and appends it to a bounded in-memory queue under a lock; a
daemon thread sends batches when ``batch_size`` events are waiting or ``flush_interval`` seconds
have passed, and retries transient failures with capped exponential backoff and jitter
("Exponential Backoff And Jitter", AWS Architecture Blog, 2015), honouring Retry-After
(RFC 9110 §10.2.3). The serving thread never waits for the network: when the queue is full the
overflow policy drops an event and counts it.

Failure handling, by outcome of a batch:

- delivered: counted as ``sent``; events the server refused one by one count as ``rejected``.
- unreachable (connection refused): retried until the logger closes; nothing is lost while the
  queue has room, because retrying is safe (every event carries its id, the store deduplicates).
- retry (408, 429, 5xx, timeouts): retried up to ``max_retries`` times, then ``failed``.
- refused (any other 4xx): not retried, ``failed``.

Every loss (dropped, failed, rejected) and an unreachable service are also logged as warnings
of the ``watchkeeper.sdk`` logger, rate-limited by :class:`~watchkeeper.sdk.losses.LossWarnings`.
"""

from __future__ import annotations

import atexit
import itertools
import os
import random
import secrets
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from watchkeeper.errors import ConfigError
from watchkeeper.sdk.losses import Loss, LossWarnings
from watchkeeper.sdk.sink import Delivery, Outcome, Sink

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["LoggerStats", "OverflowPolicy", "PredictionLogger"]

OverflowPolicy = Literal["drop_oldest", "drop_newest"]
F = TypeVar("F", bound=Callable[..., Any])

_OVERFLOW_POLICIES = ("drop_oldest", "drop_newest")
_live_loggers: weakref.WeakSet[PredictionLogger] = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class LoggerStats:
    """Event counts of one logger since it was created.

    ``sent``: stored by the server (including duplicates of earlier attempts); ``rejected``:
    refused by the server one by one (invalid, or over a cardinality cap); ``dropped``:
    discarded by the overflow policy or logged after close; ``failed``: given up after retries,
    refused as a batch, or unsent at close; ``queued``: waiting or in flight; ``retries``:
    repeated send attempts; ``batches``: batches delivered. ``rejected``, ``dropped`` and
    ``failed`` events are lost, and each kind is also logged as a rate-limited warning.
    """

    sent: int
    rejected: int
    dropped: int
    failed: int
    queued: int
    retries: int
    batches: int


def _positive(value: float, key: str) -> None:
    if not value > 0:
        raise ConfigError(f"{key}: must be > 0, got {value!r}", key=key)


class PredictionLogger:
    """Logs prediction events of one model version without blocking the caller.

    Parameters
    ----------
    sink:
        Where batches go (:class:`~watchkeeper.sdk.sink.HttpSink` or a local store sink).
    model, version:
        The registered model name and the version that makes the predictions.
    batch_size:
        Events per request; a full batch is sent at once.
    flush_interval:
        Seconds after which a partial batch is sent.
    capacity:
        Most events held in memory; beyond it ``on_full`` decides which event is dropped.
    on_full:
        ``"drop_oldest"`` keeps the freshest data (the default: monitoring cares about now);
        ``"drop_newest"`` keeps what is already queued.
    max_retries:
        Attempts after the first for transient failures (408, 429, 5xx, timeouts).
    backoff_initial, backoff_max:
        First and largest retry delay in seconds; delays double per attempt, with jitter.
    close_timeout:
        Seconds ``close()`` (and interpreter exit) spends delivering what is still queued.
    warning_interval:
        Seconds between two warnings about the same kind of loss (dropped, failed, rejected
        events, an unreachable service); each says how many since the previous one.

    Example
    -------
    >>> from watchkeeper.sdk import Client
    >>> logger = Client("http://localhost:8000").logger("churn", "v3")  # doctest: +SKIP
    >>> event_id = logger.log({"age": 42, "plan": "gold"}, prediction=1)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        sink: Sink,
        model: str,
        version: str,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        capacity: int = 10_000,
        on_full: OverflowPolicy = "drop_oldest",
        max_retries: int = 10,
        backoff_initial: float = 0.1,
        backoff_max: float = 30.0,
        close_timeout: float = 5.0,
        warning_interval: float = 30.0,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model: must be a non-empty string, got {model!r}", key="model")
        if not isinstance(version, str) or not version:
            raise ConfigError(
                f"version: must be a non-empty string, got {version!r}", key="version"
            )
        if on_full not in _OVERFLOW_POLICIES:
            raise ConfigError(
                f"on_full: must be 'drop_oldest' or 'drop_newest', got {on_full!r}", key="on_full"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(
                f"batch_size: must be an integer >= 1, got {batch_size!r}", key="batch_size"
            )
        if not isinstance(capacity, int) or capacity < batch_size:
            raise ConfigError(
                f"capacity: must be an integer >= batch_size ({batch_size}), got {capacity!r}",
                key="capacity",
            )
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(
                f"max_retries: must be an integer >= 0, got {max_retries!r}", key="max_retries"
            )
        _positive(flush_interval, "flush_interval")
        _positive(backoff_initial, "backoff_initial")
        _positive(backoff_max, "backoff_max")
        _positive(close_timeout, "close_timeout")
        _positive(warning_interval, "warning_interval")
        self._sink = sink
        self._model = model
        self._version = version
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._capacity = capacity
        self._drop_oldest = on_full == "drop_oldest"
        self._max_retries = max_retries
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._close_timeout = close_timeout
        self._warning_interval = warning_interval
        self._random = random.Random()
        # How the last send went, so that drop warnings say what keeps the queue full.
        self._last_send = "none yet"
        self._reset_state()
        self._sent = self._rejected = self._dropped = self._failed = 0
        self._retries = self._batches = 0
        self._closing = False
        self._closed = False
        self._close_deadline = 0.0
        self._exit_hook = _weak_close(self)
        atexit.register(self._exit_hook)
        _live_loggers.add(self)

    def _reset_state(self) -> None:
        """Fresh queue, locks, thread and id prefix (at start, and in a forked child)."""
        self._lock = threading.Lock()
        self._warnings = LossWarnings(model=self._model, interval=self._warning_interval)
        self._wakeup = threading.Condition(self._lock)
        self._close_requested = threading.Event()
        self._queue: deque[dict[str, Any]] = deque()
        self._in_flight = 0
        self._flush_waiters = 0
        self._thread: threading.Thread | None = None
        # 64 random bits per process + a counter: unique ids without a syscall per event.
        self._id_prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    @property
    def model(self) -> str:
        """The model name events are logged for."""
        return self._model

    @property
    def version(self) -> str:
        """The model version stamped on every event."""
        return self._version

    @property
    def stats(self) -> LoggerStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return LoggerStats(
                sent=self._sent,
                rejected=self._rejected,
                dropped=self._dropped,
                failed=self._failed,
                queued=len(self._queue) + self._in_flight,
                retries=self._retries,
                batches=self._batches,
            )

    def log(
        self,
        features: Mapping[str, Any],
        prediction: Any = None,
        *,
        proba: Mapping[str, float] | None = None,
        id: str | None = None,
        latency_ms: float | None = None,
        error: bool = False,
        segment: Mapping[str, str] | None = None,
        timestamp: float | datetime | None = None,
        unit: str | None = None,
        arm: str | None = None,
    ) -> str:
        """Queue one prediction event and return its id; never blocks on the network.

        ``timestamp`` defaults to now (epoch seconds); a naive datetime means UTC. NaN feature
        values are sent as null (missing). ``unit`` names the unit the prediction is about (a
        user, session or account id: outcomes and A/B analysis by unit read it) and ``arm`` the
        router arm that made it; both are checked by the server like every field.
        """
        event_id = id if id is not None else f"{self._id_prefix}{next(self._counter):016x}"
        event: dict[str, Any] = {
            "id": event_id,
            "timestamp": time.time() if timestamp is None else timestamp,
            "version": self._version,
            "features": dict(features),
        }
        if prediction is not None:
            event["prediction"] = prediction
        if proba is not None:
            event["proba"] = proba
        if latency_ms is not None:
            event["latency_ms"] = latency_ms
        if error:
            event["error"] = True
        if segment is not None:
            event["segment"] = segment
        if unit is not None:
            event["unit"] = unit
        if arm is not None:
            event["arm"] = arm
        dropped = ""
        with self._lock:
            queue = self._queue
            if self._closing:
                self._dropped += 1
                dropped = "logged after close()"
            elif len(queue) < self._capacity:
                queue.append(event)
                # The sender sleeps without a deadline on an empty queue and until the flush
                # interval on a partial one, so only these two lengths need to wake it.
                if len(queue) == 1 or len(queue) == self._batch_size:
                    self._wakeup.notify()
            else:
                self._dropped += 1
                dropped = f"queue full at {self._capacity} events; last send: {self._last_send}"
                if self._drop_oldest:
                    queue.popleft()
                    queue.append(event)
            if self._thread is None and not self._closing:
                self._start()
        if dropped:
            self._warnings.note(Loss.DROPPED, 1, dropped)
        return event_id

    @overload
    def monitor(self, function: F, /) -> F: ...

    @overload
    def monitor(
        self,
        function: None = None,
        /,
        *,
        feature_names: Sequence[str] | None = None,
        argument: int | str | None = None,
        output: Callable[[Any], Any] | None = None,
    ) -> Callable[[F], F]: ...

    def monitor(
        self,
        function: F | None = None,
        /,
        *,
        feature_names: Sequence[str] | None = None,
        argument: int | str | None = None,
        output: Callable[[Any], Any] | None = None,
    ) -> F | Callable[[F], F]:
        """Decorator logging every call of a predict function; see :func:`watchkeeper.sdk.monitor`.

        Use as ``@logger.monitor`` or ``@logger.monitor(feature_names=[...])``.
        """
        from watchkeeper.sdk.decorator import monitor

        decorate: Callable[[F], F] = monitor(
            self, feature_names=feature_names, argument=argument, output=output
        )
        return decorate if function is None else decorate(function)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Send everything queued now; True when the queue emptied within ``timeout`` seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flush_waiters += 1
            try:
                self._wakeup.notify_all()
                while self._queue or self._in_flight:
                    remaining = None if end is None else end - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._wakeup.wait(remaining)
                return True
            finally:
                self._flush_waiters -= 1

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (for at most ``timeout`` s, default ``close_timeout``), stop.

        Events still unsent then count as ``failed``; events logged afterwards as ``dropped``.
        Closing twice is harmless.
        """
        timeout = self._close_timeout if timeout is None else timeout
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._close_deadline = time.monotonic() + timeout
            thread = self._thread
            self._wakeup.notify_all()
        self._close_requested.set()
        atexit.unregister(self._exit_hook)
        if thread is not None:
            thread.join(timeout + 1.0)
        with self._lock:
            unsent = len(self._queue)
            self._failed += unsent
            self._queue.clear()
            finished = thread is None or not thread.is_alive()
            self._closed = True
        if unsent:
            self._warnings.note(
                Loss.FAILED,
                unsent,
                f"still queued when close() gave up after {timeout:g} s "
                f"(last send: {self._last_send})",
            )
        self._warnings.close()
        if finished:
            self._sink.close()

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- sender thread ---------------------------------------------------------------------

    def _start(self) -> None:
        thread = threading.Thread(
            target=self._run, name=f"watchkeeper-sender-{self._model}", daemon=True
        )
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._deliver(batch)
            finally:
                with self._lock:
                    self._in_flight = 0
                    self._wakeup.notify_all()

    def _next_batch(self) -> list[dict[str, Any]] | None:
        """Wait until a batch is due and take it; None when closing and nothing is left."""
        due: float | None = None
        with self._lock:
            while True:
                queued = len(self._queue)
                now = time.monotonic()
                if queued == 0:
                    due = None
                elif due is None:
                    due = now + self._flush_interval
                urgent = (
                    self._closing or self._flush_waiters > 0 or (due is not None and now >= due)
                )
                if queued >= self._batch_size or (queued and urgent):
                    count = min(queued, self._batch_size)
                    batch = [self._queue.popleft() for _ in range(count)]
                    self._in_flight = count
                    return batch
                if self._closing:
                    return None
                self._wakeup.wait(None if due is None else max(due - now, 0.0))

    def _deliver(self, batch: Sequence[dict[str, Any]]) -> None:
        transient_attempts = 0
        unreachable_attempts = 0
        while True:
            delivery = self._sink.send(self._model, "events", batch)
            if delivery.outcome is Outcome.DELIVERED:
                self._last_send = "delivered (the traffic outpaces sending)"
                self._record_delivery(delivery, len(batch))
                return
            failure = delivery.detail
            if delivery.status is not None:
                failure = f"HTTP {delivery.status}: {failure}"
            self._last_send = failure
            if delivery.outcome is Outcome.REFUSED:
                self._count_failed(
                    len(batch), f"the service refused the batch, not retried ({failure})"
                )
                return
            if delivery.outcome is Outcome.RETRY:
                transient_attempts += 1
                if transient_attempts > self._max_retries:
                    self._count_failed(
                        len(batch), f"gave up after {self._max_retries} retries ({failure})"
                    )
                    return
                attempt = transient_attempts
            else:
                unreachable_attempts += 1
                attempt = unreachable_attempts
                self._warnings.note(Loss.UNREACHABLE, 1, failure)
            delay = delivery.retry_after
            if delay is None:
                delay = self._backoff(attempt)
            if not self._pause(delay):
                self._count_failed(
                    len(batch), f"the logger closed while retrying the batch ({failure})"
                )
                return
            with self._lock:
                self._retries += 1

    def _backoff(self, attempt: int) -> float:
        """Capped exponential delay with "equal jitter": half fixed, half uniform."""
        ceiling = min(self._backoff_max, self._backoff_initial * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._random.uniform(0.0, ceiling / 2)

    def _pause(self, delay: float) -> bool:
        """Sleep before a retry; False once a closing logger has run out of time."""
        if not self._close_requested.is_set():
            self._close_requested.wait(delay)
        if self._close_requested.is_set():
            remaining = self._close_deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(delay, remaining))
            return time.monotonic() < self._close_deadline
        return True

    def _record_delivery(self, delivery: Delivery, size: int) -> None:
        rejected_events = len({rejection.index for rejection in delivery.rejected})
        with self._lock:
            self._sent += delivery.accepted + delivery.duplicates
            self._rejected += rejected_events
            self._batches += 1
        if rejected_events:
            first = delivery.rejected[0]
            self._warnings.note(
                Loss.REJECTED,
                rejected_events,
                f"{first.field}: {first.reason} ({rejected_events} of a batch of {size})",
            )

    def _count_failed(self, count: int, why: str) -> None:
        with self._lock:
            self._failed += count
        self._warnings.note(Loss.FAILED, count, why)

    def _after_fork_in_child(self) -> None:
        # The parent keeps sending what it queued; the child starts empty with its own ids.
        self._reset_state()


def _weak_close(logger: PredictionLogger) -> Callable[[], None]:
    """An atexit hook that closes the logger if it is still alive, without keeping it alive."""
    reference = weakref.ref(logger)

    def close_at_exit() -> None:
        alive = reference()
        if alive is not None:
            alive.close()

    return close_at_exit


def _reset_loggers_in_child() -> None:
    for logger in list(_live_loggers):
        logger._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_loggers_in_child)
