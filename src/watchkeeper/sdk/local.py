"""Local mode: a sink that runs the monitoring service in-process, without a server.

``Client.local("sqlite:///watchkeeper.db")`` needs no server. Every batch is JSON-encoded and
decoded exactly as it would travel over HTTP (so NaN becomes null, NumPy scalars plain
numbers) and handed to an in-process :class:`~watchkeeper.monitor.service.MonitorService`:
validated against the model's config, committed to the store, folded into the model's windows,
and windows that are due are closed. The alerting engine runs too, as in the server: a model
registered here gets the default rule pack, and each time windows close or change (labels or
late events joining closed windows) their signals are evaluated against the rules in event
time, and otherwise at most every ``settings.alerts_interval_seconds`` of the clock the latest
signals are (so absent-data rules see a stream that stopped); due notifications are delivered
(receivers from ``settings.alerts_config``). A ``clock`` replaces the wall clock for both, so a
notebook can replay history and see the alerts it would have raised. Closing the last sink
checkpoints the open windows, so a server started later on the same database carries on where
local mode stopped. As with the server, one process at a time owns a database's open windows.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from watchkeeper.config import Settings
from watchkeeper.errors import NotFoundError, StoreError, WatchkeeperError
from watchkeeper.sdk.sink import BatchKind, Delivery, Outcome, encode_batch
from watchkeeper.store import Store

if TYPE_CHECKING:
    from watchkeeper.alerts.engine import AlertingEngine, EvaluationReport
    from watchkeeper.monitor.service import IngestOutcome, MonitorService

__all__ = ["LocalSink"]


class _SharedService:
    """One service, its alerting engine and its store, used by several sinks; closed when the
    last one closes."""

    def __init__(
        self,
        service: MonitorService,
        store: Store,
        alerting: AlertingEngine | None,
        clock: Callable[[], float],
        alerts_interval: float,
    ) -> None:
        self.service = service
        self.store = store
        self.alerting = alerting
        self.clock = clock
        self.alerts_interval = alerts_interval
        self.evaluated_at = -math.inf
        self._users = 0
        self._lock = threading.Lock()

    def acquire(self) -> MonitorService:
        with self._lock:
            self._users += 1
        return self.service

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            try:
                if self.alerting is not None:
                    self.alerting.close()
                self.service.close()
            finally:
                self.store.close()


class LocalSink:
    """Hands batches to an in-process :class:`MonitorService` over ``store``.

    Parameters
    ----------
    service:
        The monitoring service; its models must already be registered.
    store:
        The service's store, closed with the last sink.
    alerting:
        The alerting engine evaluated when windows close (None: no alerting).
    clock:
        The clock of both (the wall clock by default).
    alerts_interval:
        Seconds of the clock after which a tick evaluates the rules even when no window closed.
    """

    def __init__(
        self,
        *,
        service: MonitorService,
        store: Store,
        alerting: AlertingEngine | None = None,
        clock: Callable[[], float] = time.time,
        alerts_interval: float = 15.0,
    ) -> None:
        self._shared = _SharedService(service, store, alerting, clock, alerts_interval)
        self._service = self._shared.acquire()
        self._closed = False

    @classmethod
    def open(
        cls,
        db_url: str,
        *,
        settings: Settings | None = None,
        clock: Callable[[], float] | None = None,
    ) -> LocalSink:
        """Open (and migrate) the store at ``db_url``, start a service and its alerting engine
        on it (both on ``clock``, default the wall clock), return a sink."""
        from watchkeeper.alerts.engine import AlertingEngine
        from watchkeeper.monitor.service import MonitorService

        settings = settings or Settings(db=db_url)
        clock = clock or time.time
        store = Store.open(db_url)
        try:
            service = MonitorService(store, settings=settings, clock=clock)
            service.start()
            alerting = AlertingEngine(
                db=store.engine,
                config=settings.alerts_config,
                clock=clock,
                external_url=settings.external_url,
                signal_catalog=service.signal_catalog,
                notify_horizon=settings.notify_horizon,
            )
        except BaseException:
            store.close()
            raise
        return cls(
            service=service,
            store=store,
            alerting=alerting,
            clock=clock,
            alerts_interval=settings.alerts_interval_seconds,
        )

    def share(self) -> LocalSink:
        """Another sink on the same service (one per logger); it closes with the last."""
        sink = copy.copy(self)
        sink._service = self._shared.acquire()
        sink._closed = False
        return sink

    @property
    def store(self) -> Store:
        """The store written to."""
        return self._shared.store

    @property
    def service(self) -> MonitorService:
        """The in-process monitoring service."""
        return self._service

    @property
    def alerting(self) -> AlertingEngine | None:
        """The in-process alerting engine."""
        return self._shared.alerting

    def tick(self, now: float | None = None) -> EvaluationReport | None:
        """Close the windows due at ``now`` (default: the clock); when any window closed or
        changed (late events, labels, feedback), or ``alerts_interval`` seconds passed since the
        last evaluation, evaluate the alert rules on each changed window in event time (and
        absence on the latest signals) and deliver due notifications."""
        self._service.tick(now)
        shared = self._shared
        alerting = shared.alerting
        if alerting is None:
            return None
        at = shared.clock() if now is None else now
        windows = self._service.changed_windows()
        if not windows and at - shared.evaluated_at < shared.alerts_interval:
            return None
        shared.evaluated_at = at
        report = alerting.evaluate(at, self._service.latest_samples(), windows=windows)
        self._service.acknowledge_windows()
        alerting.deliver(at)
        return report

    def send(self, model: str, kind: BatchKind, records: Sequence[Mapping[str, Any]]) -> Delivery:
        """Ingest the batch as the server would; close windows that are due."""
        body, kept, unencodable = encode_batch(kind, records)
        ingest = {
            "events": self._service.ingest_events,
            "labels": self._service.ingest_labels,
            "feedback": self._service.ingest_feedback,
            "outcomes": self._service.ingest_outcomes,
        }[kind]
        try:
            outcome: IngestOutcome = ingest(model, orjson.loads(body)[kind])
            self.tick()
        except NotFoundError as error:
            return Delivery(Outcome.REFUSED, status=404, detail=str(error))
        except StoreError as error:
            # A locked or briefly unavailable database: the same batch may well succeed later.
            return Delivery(Outcome.RETRY, detail=str(error))
        except WatchkeeperError as error:
            return Delivery(Outcome.REFUSED, status=422, detail=str(error))
        mapped = [
            type(rejection)(kept[rejection.index], rejection.field, rejection.reason)
            for rejection in outcome.rejected
        ]
        conflicts = tuple(
            type(conflict)(kept[conflict.index], conflict.field, conflict.reason)
            for conflict in outcome.conflicts or ()
        )
        return Delivery(
            Outcome.DELIVERED,
            accepted=outcome.accepted,
            duplicates=outcome.duplicates,
            rejected=tuple(sorted(unencodable + mapped, key=lambda item: item.index)),
            conflicts=conflicts,
            status=200,
        )

    def close(self) -> None:
        """Release the service; the last sink sharing it checkpoints windows and closes."""
        if not self._closed:
            self._closed = True
            self._shared.release()
