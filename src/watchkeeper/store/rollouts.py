"""Rollouts' rows: the state of each rollout, its analysis measurements and its history.

A change of state, the measurements that led to it and the events it records are written in one
transaction (:meth:`RolloutStore.update_rollout`), guarded by the row's ``revision``: a restarted
controller finds exactly what the last completed tick left, and two writers (the controller and
a manual promote) cannot both act on the same state.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from watchkeeper.errors import ConflictError, NotFoundError
from watchkeeper.store import tables as t
from watchkeeper.store.base import StoreBase
from watchkeeper.store.records import record_from, records_from

__all__ = [
    "NewRolloutEvent",
    "NewRolloutMeasurement",
    "RolloutEventRecord",
    "RolloutMeasurementRecord",
    "RolloutRecord",
    "RolloutStore",
]


@dataclass(frozen=True, slots=True)
class RolloutRecord:
    """One rollout as stored: its spec, where it is and what it has done so far."""

    id: int
    model: str
    baseline: str
    candidate: str
    spec: Mapping[str, Any]
    state: str
    step_index: int
    step_started_at: float
    analysis_since: float
    looks: int
    next_analysis_at: float | None
    weights: Mapping[str, int]
    failures: int
    reason: str
    created_by: str
    created_at: float
    updated_at: float
    revision: int


@dataclass(frozen=True, slots=True)
class NewRolloutMeasurement:
    """One metric's verdict at one analysis look (``values``: the measurements behind it)."""

    step_index: int
    at: float
    metric: str
    outcome: str
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RolloutMeasurementRecord:
    """A stored measurement."""

    id: int
    rollout_id: int
    step_index: int
    at: float
    metric: str
    outcome: str
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NewRolloutEvent:
    """One event of a rollout's history: started, step, paused, promoted, aborted…"""

    at: float
    kind: str
    reason: str
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RolloutEventRecord:
    """A stored event."""

    id: int
    rollout_id: int
    at: float
    kind: str
    reason: str
    details: Mapping[str, Any]


# The columns a state change may set.
_MUTABLE = frozenset(
    {
        "state",
        "step_index",
        "step_started_at",
        "analysis_since",
        "looks",
        "next_analysis_at",
        "weights",
        "failures",
        "reason",
    }
)


class RolloutStore(StoreBase):
    """Rollouts, their measurements and their events."""

    def create_rollout(
        self, fields: Mapping[str, Any], event: NewRolloutEvent, *, now: float | None = None
    ) -> RolloutRecord:
        """Store a new rollout (``fields``: every column but the id, times and revision) and
        its first event."""
        at = time.time() if now is None else now
        row = {**fields, "created_at": at, "updated_at": at, "revision": 1}
        with self._connection("create a rollout", write=True) as connection:
            rollout_id = connection.execute(
                t.rollouts.insert().values(**row).returning(t.rollouts.c.id)
            ).scalar_one()
            self._append(connection, rollout_id, [], [event])
        return RolloutRecord(id=rollout_id, **row)

    def rollout(self, rollout_id: int) -> RolloutRecord:
        """The rollout ``rollout_id``; :class:`NotFoundError` when there is none."""
        with self._connection(f"read rollout {rollout_id}", write=False) as connection:
            row = connection.execute(
                sa.select(t.rollouts).where(t.rollouts.c.id == rollout_id)
            ).first()
        if row is None:
            raise NotFoundError(
                f"no rollout {rollout_id}; list them with GET /v1/rollouts",
                kind="rollout",
                name=str(rollout_id),
            )
        return record_from(RolloutRecord, row)

    def rollouts(
        self, *, model: str | None = None, states: Sequence[str] | None = None
    ) -> list[RolloutRecord]:
        """Rollouts, oldest first, of ``model`` and in ``states`` when given."""
        query = sa.select(t.rollouts).order_by(t.rollouts.c.id)
        if model is not None:
            query = query.where(t.rollouts.c.model == model)
        if states is not None:
            query = query.where(t.rollouts.c.state.in_(list(states)))
        with self._connection("list rollouts", write=False) as connection:
            rows = connection.execute(query).all()
        return records_from(RolloutRecord, rows)

    def update_rollout(
        self,
        current: RolloutRecord,
        changes: Mapping[str, Any],
        *,
        measurements: Sequence[NewRolloutMeasurement] = (),
        events: Sequence[NewRolloutEvent] = (),
        now: float | None = None,
    ) -> RolloutRecord:
        """Apply ``changes`` to ``current`` and append its measurements and events, at once.

        :class:`ConflictError` when the stored rollout is no longer ``current`` (another writer
        changed it first): nothing is written, and the caller re-reads and decides again.
        """
        unknown = set(changes) - _MUTABLE
        if unknown:
            raise ValueError(f"not a mutable rollout column: {sorted(unknown)}")
        at = time.time() if now is None else now
        values = {**changes, "updated_at": at, "revision": current.revision + 1}
        with self._connection(f"update rollout {current.id}", write=True) as connection:
            updated = connection.execute(
                t.rollouts.update()
                .where(t.rollouts.c.id == current.id, t.rollouts.c.revision == current.revision)
                .values(**values)
            ).rowcount
            if updated != 1:
                raise ConflictError(
                    f"rollout {current.id} changed while it was being updated; read it again"
                )
            self._append(connection, current.id, measurements, events)
        fields = {name: getattr(current, name) for name in RolloutRecord.__dataclass_fields__}
        return RolloutRecord(**{**fields, **values})

    def rollout_measurements(
        self, rollout_id: int, *, step_index: int | None = None, since: float | None = None
    ) -> list[RolloutMeasurementRecord]:
        """The measurements of a rollout (of one step, at or after ``since``, when given),
        oldest first."""
        table = t.rollout_measurements
        query = sa.select(table).where(table.c.rollout_id == rollout_id).order_by(table.c.id)
        if step_index is not None:
            query = query.where(table.c.step_index == step_index)
        if since is not None:
            query = query.where(table.c.at >= since)
        with self._connection(f"read measurements of rollout {rollout_id}", write=False) as conn:
            rows = conn.execute(query).all()
        return records_from(RolloutMeasurementRecord, rows)

    def rollout_events(self, rollout_id: int) -> list[RolloutEventRecord]:
        """The history of a rollout, oldest first."""
        table = t.rollout_events
        query = sa.select(table).where(table.c.rollout_id == rollout_id).order_by(table.c.id)
        with self._connection(f"read events of rollout {rollout_id}", write=False) as conn:
            rows = conn.execute(query).all()
        return records_from(RolloutEventRecord, rows)

    def rollback_counts(self) -> dict[str, int]:
        """Rollbacks recorded so far (``aborted`` events, by whichever process aborted), per
        model: what ``watchkeeper_rollbacks_total`` exports."""
        events, rollouts = t.rollout_events, t.rollouts
        query = (
            sa.select(rollouts.c.model, sa.func.count())
            .select_from(events.join(rollouts, events.c.rollout_id == rollouts.c.id))
            .where(events.c.kind == "aborted")
            .group_by(rollouts.c.model)
        )
        with self._connection("count rollbacks", write=False) as connection:
            return {str(model): int(count) for model, count in connection.execute(query).all()}

    @staticmethod
    def _append(
        connection: sa.Connection,
        rollout_id: int,
        measurements: Sequence[NewRolloutMeasurement],
        events: Sequence[NewRolloutEvent],
    ) -> None:
        if measurements:
            connection.execute(
                t.rollout_measurements.insert(),
                [
                    {
                        "rollout_id": rollout_id,
                        "step_index": m.step_index,
                        "at": m.at,
                        "metric": m.metric,
                        "outcome": m.outcome,
                        "values": dict(m.values),
                    }
                    for m in measurements
                ],
            )
        if events:
            connection.execute(
                t.rollout_events.insert(),
                [
                    {
                        "rollout_id": rollout_id,
                        "at": e.at,
                        "kind": e.kind,
                        "reason": e.reason,
                        "details": dict(e.details),
                    }
                    for e in events
                ],
            )
