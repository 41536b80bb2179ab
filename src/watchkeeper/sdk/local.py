"""Local mode: a sink that validates batches like the service and writes them to a store.

``Client.local("sqlite:///watchkeeper.db")`` needs no server: every batch is JSON-encoded and
decoded exactly as it would travel over HTTP (so NaN becomes null, NumPy scalars plain numbers),
validated with :mod:`watchkeeper.ingest` against the model's stored config, and inserted into
the embedded store in the sender thread. Events older than the model's ``retention_days`` are
rejected, since retention would delete them anyway.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from watchkeeper.errors import NotFoundError, StoreError, WatchkeeperError
from watchkeeper.ingest import validate_events, validate_feedback, validate_labels
from watchkeeper.modelspec import ModelSpec
from watchkeeper.sdk.sink import BatchKind, Delivery, Outcome, encode_batch
from watchkeeper.store import (
    InsertResult,
    LabelInsertResult,
    NewEvent,
    NewFeedback,
    NewLabel,
    Store,
)

__all__ = ["LocalSink"]

_DAY = 86_400.0


class _SharedStore:
    """One store used by several sinks; closed when the last of them closes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._users = 0
        self._lock = threading.Lock()

    def acquire(self) -> Store:
        with self._lock:
            self._users += 1
        return self.store

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            self.store.close()


class LocalSink:
    """Writes batches into a :class:`~watchkeeper.store.Store` in-process.

    Parameters
    ----------
    store:
        The store; it must already hold the model (``store.create_model(name, config)``).
    max_batch:
        Largest batch accepted, as the service's limit.
    max_future_seconds:
        How far ahead of the clock an event timestamp may be.
    clock:
        Seconds since the epoch; replaced in tests.
    """

    def __init__(
        self,
        *,
        store: Store,
        max_batch: int = 10_000,
        max_future_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._shared = _SharedStore(store)
        self._store = self._shared.acquire()
        self._max_batch = max_batch
        self._max_future_seconds = max_future_seconds
        self._clock = clock
        self._closed = False

    @classmethod
    def open(cls, db_url: str, **store_options: Any) -> LocalSink:
        """Open (and migrate) the store at ``db_url`` and return a sink writing to it."""
        return cls(store=Store.open(db_url, **store_options))

    def share(self) -> LocalSink:
        """Another sink on the same store (one per logger); the store closes with the last."""
        sink = copy.copy(self)
        sink._store = self._shared.acquire()
        sink._closed = False
        return sink

    @property
    def store(self) -> Store:
        """The store written to."""
        return self._store

    def send(self, model: str, kind: BatchKind, records: Sequence[Mapping[str, Any]]) -> Delivery:
        """Validate the batch against the model's config and insert the valid items."""
        body, kept, unencodable = encode_batch(kind, records)
        try:
            record = self._store.get_model(model)
            spec = ModelSpec.from_dict(record.config)
            payload = orjson.loads(body)[kind]
            limits: dict[str, Any] = {
                "now": self._clock(),
                "max_age_seconds": spec.retention_days * _DAY,
                "max_future_seconds": self._max_future_seconds,
                "max_batch": self._max_batch,
            }
            result: InsertResult | LabelInsertResult
            if kind == "events":
                events = validate_events(payload, spec, **limits)
                result = self._store.insert_events(
                    record.id,
                    [
                        NewEvent(
                            event.id,
                            event.version,
                            event.ts,
                            event.features,
                            event.prediction,
                            event.proba,
                            event.latency_ms,
                            event.error,
                            event.segment,
                        )
                        for event in events.accepted
                    ],
                )
                rejected = events.rejected
            elif kind == "labels":
                labels = validate_labels(payload, spec, **limits)
                result = self._store.insert_labels(
                    record.id,
                    [NewLabel(label.id, label.label, label.ts) for label in labels.accepted],
                )
                rejected = labels.rejected
            else:
                feedback = validate_feedback(payload, spec, **limits)
                result = self._store.insert_feedback(
                    record.id,
                    [
                        NewFeedback(item.id, item.user_id, item.rating, item.ts, item.comment)
                        for item in feedback.accepted
                    ],
                )
                rejected = feedback.rejected
        except NotFoundError as error:
            return Delivery(Outcome.REFUSED, status=404, detail=str(error))
        except StoreError as error:
            # A locked or briefly unavailable database: the same batch may well succeed later.
            return Delivery(Outcome.RETRY, detail=str(error))
        except WatchkeeperError as error:
            return Delivery(Outcome.REFUSED, status=422, detail=str(error))
        mapped = [
            type(rejection)(kept[rejection.index], rejection.field, rejection.reason)
            for rejection in rejected
        ]
        return Delivery(
            Outcome.DELIVERED,
            accepted=len(result.inserted_ids),
            duplicates=len(result.duplicate_ids),
            rejected=tuple(sorted(unencodable + mapped, key=lambda item: item.index)),
            status=200,
        )

    def close(self) -> None:
        """Release the store; the last sink sharing it closes it."""
        if not self._closed:
            self._closed = True
            self._shared.release()
