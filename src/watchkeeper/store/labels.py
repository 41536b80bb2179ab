"""Labels and user feedback in the store: idempotent inserts, joins by event id, replay."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watchkeeper.errors import IngestError
from watchkeeper.store import tables as t
from watchkeeper.store.base import StoreBase, chunks, first_occurrences
from watchkeeper.store.engine import JSON_OPTIONS
from watchkeeper.store.records import (
    Conflict,
    EventId,
    FeedbackInsertResult,
    FeedbackRecord,
    LabelInsertResult,
    LabelRecord,
    ModelId,
    NewFeedback,
    NewLabel,
    records_from,
)

__all__ = ["LabelStore", "split_repeats"]

K = TypeVar("K")


def split_repeats(
    keys: Sequence[K], values: Sequence[Any], inserted: set[K], stored: Mapping[K, Any]
) -> tuple[list[K], list[K], list[int]]:
    """Split items (``keys`` in input order) into the first copy of each key stored now, the
    repeats of the stored value (retries: duplicates) and the positions of repeats with another
    value than the stored one (conflicts: the first value of a key is kept)."""
    accepted: list[K] = []
    duplicates: list[K] = []
    conflicts: list[int] = []
    claimed: set[K] = set()
    for position, (key, value) in enumerate(zip(keys, values, strict=True)):
        if key in inserted and key not in claimed:
            claimed.add(key)
            accepted.append(key)
        elif key in stored and stored[key] != value:
            conflicts.append(position)
        else:
            duplicates.append(key)
    return accepted, duplicates, conflicts


class LabelStore(StoreBase):
    """The ground truth of events (one label per event) and users' ratings (one per event and
    user); both may arrive before their event."""

    def insert_labels(
        self, model_id: ModelId, labels: Sequence[NewLabel], *, seq: int = 0
    ) -> LabelInsertResult:
        """Store labels, idempotently: the first label of an id is kept; ``seq`` as for events.

        A repeat of the stored label is a duplicate (a retry); a different label for an id
        already labelled is not stored and comes back in ``conflicts`` with the kept label.
        Labels may arrive before their events; they are kept, and listed in ``unmatched_ids``.
        """
        if not labels:
            return LabelInsertResult(inserted_ids=(), duplicate_ids=(), unmatched_ids=())
        for index, label in enumerate(labels):
            try:
                orjson.dumps(label.label, option=JSON_OPTIONS)
            except orjson.JSONEncodeError as exc:
                raise IngestError(
                    f"label {index} ({label.event_id!r}) is not JSON-serialisable ({exc})",
                    index=index,
                    field="label",
                ) from None
        now = time.time()
        ids = [label.event_id for label in labels]
        first = {label.event_id: label for label in reversed(labels)}
        rows = [
            {
                "model_id": model_id,
                "event_id": label.event_id,
                "label": label.label,
                "ts": label.ts,
                "received_at": now,
                "seq": seq,
            }
            for label in sorted(first.values(), key=lambda label: label.event_id)
        ]
        statement = (
            self._insert(t.labels)
            .on_conflict_do_nothing(index_elements=[t.labels.c.model_id, t.labels.c.event_id])
            .returning(t.labels.c.event_id)
        )
        c = t.labels.c
        with self._connection(f"insert {len(labels)} labels", write=True) as connection:
            inserted = set(connection.execute(statement, rows).scalars())
            matched = self._existing_event_ids(connection, model_id, sorted(inserted))
            stored = {event_id: first[event_id].label for event_id in inserted}
            for chunk in chunks(sorted(first.keys() - inserted)):
                stored.update(
                    (event_id, label)
                    for event_id, label in connection.execute(
                        sa.select(c.event_id, c.label).where(
                            c.model_id == model_id, c.event_id.in_(chunk)
                        )
                    )
                )
        accepted, duplicates, conflicting = split_repeats(
            ids, [label.label for label in labels], inserted, stored
        )
        unmatched = tuple(event_id for event_id in accepted if event_id not in matched)
        return LabelInsertResult(
            inserted_ids=tuple(accepted),
            duplicate_ids=tuple(duplicates),
            unmatched_ids=unmatched,
            conflicts=tuple(Conflict(p, ids[p], stored[ids[p]]) for p in conflicting),
        )

    def labels_for(self, model_id: ModelId, ids: Sequence[EventId]) -> dict[EventId, LabelRecord]:
        """The stored labels among ``ids``, keyed by event id."""
        found: dict[EventId, LabelRecord] = {}
        with self._connection("read labels", write=False) as connection:
            for chunk in chunks(first_occurrences(ids)):
                rows = connection.execute(
                    sa.select(t.labels).where(
                        t.labels.c.model_id == model_id, t.labels.c.event_id.in_(chunk)
                    )
                ).all()
                found.update(
                    (record.event_id, record) for record in records_from(LabelRecord, rows)
                )
        return found

    def labels_received_between(
        self, model_id: ModelId, start: float, end: float
    ) -> list[LabelRecord]:
        """Labels the store received with ``start <= received_at < end``, oldest first."""
        c = t.labels.c
        with self._connection("read labels", write=False) as connection:
            rows = connection.execute(
                sa.select(t.labels)
                .where(c.model_id == model_id, c.received_at >= start, c.received_at < end)
                .order_by(c.received_at, c.event_id)
            ).all()
        return records_from(LabelRecord, rows)

    def insert_feedback(
        self, model_id: ModelId, feedback: Sequence[NewFeedback], *, seq: int = 0
    ) -> FeedbackInsertResult:
        """Store ratings, idempotently per ``(event_id, user_id)``; result ids are event ids;
        ``seq`` as for events.

        A user's first rating of an event is kept: a repeat of it (same rating and comment) is
        a duplicate, a different one is not stored and comes back in ``conflicts``.
        """
        for index, item in enumerate(feedback):
            if not 1 <= item.rating <= 5:
                raise IngestError(
                    f"feedback rating must be an integer from 1 to 5, got {item.rating!r}",
                    index=index,
                    field="rating",
                )
        if not feedback:
            return FeedbackInsertResult(inserted_ids=(), duplicate_ids=(), stored_positions=())
        keys = [f"{item.event_id}\x00{item.user_id}" for item in feedback]
        first: dict[str, NewFeedback] = {}
        for key, item in zip(keys, feedback, strict=True):
            first.setdefault(key, item)
        rows = [
            {
                "model_id": model_id,
                "event_id": item.event_id,
                "user_id": item.user_id,
                "rating": int(item.rating),
                "comment": item.comment,
                "ts": item.ts,
                "seq": seq,
            }
            for _, item in sorted(first.items())
        ]
        c = t.feedback.c
        statement = (
            self._insert(t.feedback)
            .on_conflict_do_nothing(index_elements=[c.model_id, c.event_id, c.user_id])
            .returning(c.event_id, c.user_id)
        )
        with self._connection(f"insert {len(feedback)} feedback", write=True) as connection:
            inserted = {f"{e}\x00{u}" for e, u in connection.execute(statement, rows)}
            stored = {key: (first[key].rating, first[key].comment) for key in inserted}
            repeated = first.keys() - inserted
            for chunk in chunks(sorted({first[key].event_id for key in repeated})):
                for event_id, user_id, rating, comment in connection.execute(
                    sa.select(c.event_id, c.user_id, c.rating, c.comment).where(
                        c.model_id == model_id, c.event_id.in_(chunk)
                    )
                ):
                    key = f"{event_id}\x00{user_id}"
                    if key in repeated:
                        stored[key] = (rating, comment)
        accepted, duplicates, conflicting = split_repeats(
            keys, [(int(item.rating), item.comment) for item in feedback], inserted, stored
        )
        positions: list[int] = []
        for position, key in enumerate(keys):
            if key in inserted:
                inserted.discard(key)  # only the first copy of a key was stored
                positions.append(position)
        return FeedbackInsertResult(
            inserted_ids=tuple(key.partition("\x00")[0] for key in accepted),
            duplicate_ids=tuple(key.partition("\x00")[0] for key in duplicates),
            stored_positions=tuple(positions),
            conflicts=tuple(
                Conflict(p, feedback[p].event_id, stored[keys[p]][0]) for p in conflicting
            ),
        )

    def feedback_between(self, model_id: ModelId, start: float, end: float) -> list[FeedbackRecord]:
        """Feedback with ``start <= ts < end``, oldest first."""
        c = t.feedback.c
        with self._connection("read feedback", write=False) as connection:
            rows = connection.execute(
                sa.select(t.feedback)
                .where(c.model_id == model_id, c.ts >= start, c.ts < end)
                .order_by(c.ts, c.event_id, c.user_id)
            ).all()
        return records_from(FeedbackRecord, rows)

    def labels_of_events_after(self, seq: int) -> list[LabelRecord]:
        """The labels of the events stored by ingest calls numbered above ``seq`` (whenever
        the labels came)."""
        c, e = t.labels.c, t.events.c
        with self._connection("read labels", write=False) as connection:
            rows = connection.execute(
                sa.select(t.labels)
                .join(t.events, (e.model_id == c.model_id) & (e.event_id == c.event_id))
                .where(e.seq > seq)
            ).all()
        return records_from(LabelRecord, rows)

    def labels_after(self, seq: int) -> list[LabelRecord]:
        """Labels (of every model) stored by ingest calls numbered above ``seq``, in call order."""
        with self._connection("read labels", write=False) as connection:
            rows = connection.execute(
                sa.select(t.labels).where(t.labels.c.seq > seq).order_by(t.labels.c.seq)
            ).all()
        return records_from(LabelRecord, rows)

    def feedback_after(self, seq: int) -> list[FeedbackRecord]:
        """Feedback (of every model) stored by ingest calls numbered above ``seq``, in call
        order."""
        with self._connection("read feedback", write=False) as connection:
            rows = connection.execute(
                sa.select(t.feedback).where(t.feedback.c.seq > seq).order_by(t.feedback.c.seq)
            ).all()
        return records_from(FeedbackRecord, rows)

    def _existing_event_ids(
        self, connection: Connection, model_id: ModelId, ids: Sequence[EventId]
    ) -> set[EventId]:
        found: set[EventId] = set()
        for chunk in chunks(ids):
            found.update(
                connection.execute(
                    sa.select(t.events.c.event_id).where(
                        t.events.c.model_id == model_id, t.events.c.event_id.in_(chunk)
                    )
                ).scalars()
            )
        return found
