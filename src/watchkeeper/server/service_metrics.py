"""Service metrics beyond ingest counts: HTTP requests per route, model load status, confidence.

* :class:`RequestMetrics` (ASGI middleware) counts every HTTP request by method, **route
  template** (``/v1/models/{model}/events``, never the raw path, so the label set stays bounded)
  and status, and times it: ``watchkeeper_http_requests_total{method,route,status}`` and
  ``watchkeeper_http_request_duration_seconds{method,route}``. A request that matches no route
  is counted under ``route="<unmatched>"``.
* :class:`ModelLoadStatus` holds ``watchkeeper_model_load_status{model,version,state}``: 1 for
  the state a model version is in (``loading``, ``loaded``, ``failed``, ``unloaded``), 0 for the
  others, the way kube-state-metrics exports a pod's phase. The code that loads models for
  serving calls :meth:`ModelLoadStatus.set`.
* :class:`RollbackCounts` exports ``watchkeeper_rollbacks_total{model}`` from the rollbacks the
  store records, read at each scrape: a rollout aborted by another process (the CLI on the
  database, another server) is counted as soon as it is recorded, and a restart loses nothing.
* :func:`max_class_probability` is the confidence of each prediction of a batch (its largest
  class probability), computed per batch with NumPy for the
  ``watchkeeper_prediction_confidence`` histogram.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Final, Protocol

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match

from watchkeeper.errors import StoreError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from watchkeeper.monitor.windows import EventBatch

__all__ = [
    "BATCH_SIZE_BUCKETS",
    "CONFIDENCE_BUCKETS",
    "LOAD_STATES",
    "REQUEST_BUCKETS_SECONDS",
    "ModelLoadStatus",
    "RequestMetrics",
    "RollbackCounts",
    "max_class_probability",
]

_log = logging.getLogger(__name__)

REQUEST_BUCKETS_SECONDS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
# Finer near 1: a classifier's confidence lives mostly above 0.5, and a shift from 0.95 to 0.8
# is what this histogram is for.
CONFIDENCE_BUCKETS: Final = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
BATCH_SIZE_BUCKETS: Final = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000)
LOAD_STATES: Final = ("loading", "loaded", "failed", "unloaded")
UNMATCHED_ROUTE: Final = "<unmatched>"
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """ASGI middleware: count and time every HTTP request by method, route template and status.

    Install it outermost, so it sees the answers of the other middleware (a 503 while the
    service recovers, a 413 of an oversized body) too.
    """

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry) -> None:
        self.app = app
        self._requests = Counter(
            "watchkeeper_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ("method", "route", "status"),
            registry=registry,
        )
        self._duration = Histogram(
            "watchkeeper_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route.",
            ("method", "route"),
            buckets=REQUEST_BUCKETS_SECONDS,
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app fails before it starts an answer

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            method = scope.get("method", "")
            method = method if method in _METHODS else "other"
            route = route_template(scope)
            self._requests.labels(method, route, str(status)).inc()
            self._duration.labels(method, route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The path template of the route that served (or would serve) ``scope``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # Answered before routing (a middleware refused it): find the route it was meant for.
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = candidate.matches(scope)
        if match is not Match.NONE and isinstance(getattr(candidate, "path", None), str):
            return str(candidate.path)
    return UNMATCHED_ROUTE


class ModelLoadStatus:
    """The load state of each served model version, for ``watchkeeper_model_load_status``.

    >>> status = ModelLoadStatus()
    >>> status.set("churn", "3", "loaded")
    >>> status.state("churn", "3")
    'loaded'
    """

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def set(self, model: str, version: str, state: str) -> None:
        """Record that ``model`` version ``version`` is now in ``state`` (one of LOAD_STATES)."""
        if state not in LOAD_STATES:
            raise ValueError(f"state: expected one of {', '.join(LOAD_STATES)}, got {state!r}")
        with self._lock:
            self._states[(str(model), str(version))] = state

    def forget(self, model: str, version: str) -> None:
        """Stop exporting ``model`` version ``version`` (it was deleted)."""
        with self._lock:
            self._states.pop((str(model), str(version)), None)

    def state(self, model: str, version: str) -> str | None:
        """The recorded state of ``model`` version ``version``, or None."""
        with self._lock:
            return self._states.get((str(model), str(version)))

    def family(self) -> GaugeMetricFamily:
        """The one-hot gauge family: one series per model, version and state."""
        with self._lock:
            states = sorted(self._states.items())
        family = GaugeMetricFamily(
            "watchkeeper_model_load_status",
            "1 for the load state a model version is in (loading, loaded, failed, unloaded).",
            labels=["model", "version", "state"],
        )
        for (model, version), current in states:
            for state in LOAD_STATES:
                family.add_metric([model, version, state], 1.0 if state == current else 0.0)
        return family


class RollbackSource(Protocol):
    """Where rollbacks are recorded: :meth:`RolloutStore.rollback_counts`."""

    def rollback_counts(self) -> dict[str, int]: ...


class RollbackCounts(Collector):
    """``watchkeeper_rollbacks_total{model}``: the rollbacks recorded in the store, per model.

    An in-process counter would miss every abort made by another process on the same store
    (``watchkeeper rollout abort --db``, a second server) and restart from 0 with the server;
    the store's ``aborted`` events are the one record of every rollback, so the count is read
    from them at each scrape (one grouped query over the rollout events).
    """

    def __init__(self, store: RollbackSource) -> None:
        self._store = store

    def describe(self) -> list[Metric]:
        """The family's name without a query (registration does not touch the store)."""
        return [_rollbacks_family()]

    def collect(self) -> Iterator[Metric]:
        """The family with one sample per model that has had a rollback."""
        try:
            counts = self._store.rollback_counts()
        except StoreError:
            # The rest of /metrics (the store's own error counters among it) still answers.
            _log.warning("watchkeeper_rollbacks_total: the store could not be read", exc_info=True)
            return
        family = _rollbacks_family()
        for model, count in sorted(counts.items()):
            family.add_metric([model], float(count))
        yield family


def _rollbacks_family() -> CounterMetricFamily:
    return CounterMetricFamily(
        "watchkeeper_rollbacks",
        "Rollouts aborted with all traffic put back on the baseline, by model (from the store).",
        labels=["model"],
    )


def max_class_probability(
    batch: EventBatch, proba: Mapping[str, str] | None
) -> npt.NDArray[np.float64] | None:
    """Each event's largest class probability (NaN when it sent none); None without ``proba``.

    ``proba`` maps class labels to their probability columns (the model spec's). Columns the
    window profiles already hold are reused; the others are read from the events' ``proba``
    maps in one pass per class.
    """
    if not proba or len(batch) == 0:
        return None
    best = np.full(len(batch), np.nan)
    for label, column in proba.items():
        values = batch.columns.get(column)
        if values is None:
            values = np.array(
                [None if p is None else p.get(label) for p in batch.probas], dtype=np.float64
            )
        # fmax ignores NaN unless both sides are NaN: an event missing one class keeps the rest.
        np.fmax(best, values, out=best)
    return best
