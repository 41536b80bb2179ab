"""Business outcomes in the store: idempotent inserts per prediction and name, reads for the
joins and the replay after a restart."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import sqlalchemy as sa

from watchkeeper.errors import IngestError
from watchkeeper.store import tables as t
from watchkeeper.store.base import StoreBase, chunks, first_occurrences
from watchkeeper.store.labels import split_repeats
from watchkeeper.store.records import (
    Conflict,
    EventId,
    ModelId,
    NewOutcome,
    OutcomeInsertResult,
    OutcomeRecord,
    records_from,
)

__all__ = ["OutcomeStore"]


class OutcomeStore(StoreBase):
    """Outcomes of predictions (a click, a conversion, revenue): one value per event and name."""

    def insert_outcomes(
        self, model_id: ModelId, outcomes: Sequence[NewOutcome], *, seq: int = 0
    ) -> OutcomeInsertResult:
        """Store outcomes, idempotently per ``(event_id, name)``; ``seq`` as for events.

        The first value of a key is kept: a repeat of it is a duplicate (a retry), a different
        value is not stored and comes back in ``conflicts`` with the kept value.
        """
        for index, item in enumerate(outcomes):
            if not math.isfinite(item.value):
                raise IngestError(
                    f"outcome value must be a finite number, got {item.value!r}",
                    index=index,
                    field="value",
                )
        if not outcomes:
            return OutcomeInsertResult(inserted_ids=(), duplicate_ids=(), stored_positions=())
        keys = [(item.event_id, item.name) for item in outcomes]
        first: dict[tuple[str, str], NewOutcome] = {}
        for key, item in zip(keys, outcomes, strict=True):
            first.setdefault(key, item)
        now = time.time()
        rows = [
            {
                "model_id": model_id,
                "event_id": item.event_id,
                "name": item.name,
                "value": float(item.value),
                "ts": item.ts,
                "unit": item.unit,
                "received_at": now,
                "seq": seq,
            }
            for _, item in sorted(first.items())
        ]
        c = t.outcomes.c
        statement = (
            self._insert(t.outcomes)
            .on_conflict_do_nothing(index_elements=[c.model_id, c.event_id, c.name])
            .returning(c.event_id, c.name)
        )
        with self._connection(f"insert {len(outcomes)} outcomes", write=True) as connection:
            inserted = {(event_id, name) for event_id, name in connection.execute(statement, rows)}
            stored = {key: first[key].value for key in inserted}
            repeated = first.keys() - inserted
            for chunk in chunks(sorted({event_id for event_id, _ in repeated})):
                for event_id, name, value in connection.execute(
                    sa.select(c.event_id, c.name, c.value).where(
                        c.model_id == model_id, c.event_id.in_(chunk)
                    )
                ):
                    if (event_id, name) in repeated:
                        stored[(event_id, name)] = value
        accepted, duplicates, conflicting = split_repeats(
            keys, [float(item.value) for item in outcomes], inserted, stored
        )
        positions: list[int] = []
        for position, key in enumerate(keys):
            if key in inserted:
                inserted.discard(key)  # only the first copy of a key was stored
                positions.append(position)
        return OutcomeInsertResult(
            inserted_ids=tuple(event_id for event_id, _ in accepted),
            duplicate_ids=tuple(event_id for event_id, _ in duplicates),
            stored_positions=tuple(positions),
            conflicts=tuple(Conflict(p, keys[p][0], stored[keys[p]]) for p in conflicting),
        )

    def latest_predictions(
        self, model_id: ModelId, wanted: Sequence[tuple[str, float]]
    ) -> dict[tuple[str, float], EventId]:
        """For each ``(unit, at)``, the id of the unit's latest stored prediction at or before
        ``at`` (ties by the larger event id); pairs without one are left out."""
        e = t.events.c
        found: dict[tuple[str, float], EventId] = {}
        with self._connection("find units' predictions", write=False) as connection:
            for unit, at in dict.fromkeys(wanted):
                event_id = connection.execute(
                    sa.select(e.event_id)
                    .where(e.model_id == model_id, e.unit == unit, e.ts <= at)
                    .order_by(e.ts.desc(), e.event_id.desc())
                    .limit(1)
                ).scalar_one_or_none()
                if event_id is not None:
                    found[(unit, at)] = event_id
        return found

    def outcomes_for(self, model_id: ModelId, ids: Sequence[EventId]) -> list[OutcomeRecord]:
        """The stored outcomes of the events ``ids``."""
        c = t.outcomes.c
        found: list[OutcomeRecord] = []
        with self._connection("read outcomes", write=False) as connection:
            for chunk in chunks(first_occurrences(ids)):
                rows = connection.execute(
                    sa.select(t.outcomes)
                    .where(c.model_id == model_id, c.event_id.in_(chunk))
                    .order_by(c.event_id, c.name)
                ).all()
                found += records_from(OutcomeRecord, rows)
        return found

    def outcomes_after(self, seq: int) -> list[OutcomeRecord]:
        """Outcomes (of every model) stored by ingest calls numbered above ``seq``, in call
        order."""
        c = t.outcomes.c
        with self._connection("read outcomes", write=False) as connection:
            rows = connection.execute(
                sa.select(t.outcomes).where(c.seq > seq).order_by(c.seq, c.event_id, c.name)
            ).all()
        return records_from(OutcomeRecord, rows)
