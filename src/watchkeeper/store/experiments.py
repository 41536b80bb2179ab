"""Experiments' rows: what each A/B test compares and the routing it replaced.

Only the definition is stored (model, arms, metrics, alpha, method) with when it started and
stopped: results are always recomputed from the stored windows of the arms' versions
(:mod:`watchkeeper.rollout.experiments`), never cached. Stopping is guarded by the row's
``revision``, so two concurrent stops cannot both restore the routing.
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

__all__ = ["ExperimentRecord", "ExperimentStore"]


@dataclass(frozen=True, slots=True)
class ExperimentRecord:
    """One experiment as stored: its spec, its state and the routing it replaced."""

    id: int
    model: str
    spec: Mapping[str, Any]
    state: str
    previous_routing: Mapping[str, Any] | None
    routing_revision: int
    reason: str
    created_by: str
    created_at: float
    stopped_by: str | None
    stopped_at: float | None
    revision: int


class ExperimentStore(StoreBase):
    """Experiments: create, read, list and stop."""

    def create_experiment(
        self,
        *,
        model: str,
        spec: Mapping[str, Any],
        previous_routing: Mapping[str, Any] | None,
        routing_revision: int,
        created_by: str,
        now: float | None = None,
    ) -> ExperimentRecord:
        """Store a new running experiment."""
        row: dict[str, Any] = {
            "model": model,
            "spec": dict(spec),
            "state": "running",
            "previous_routing": None if previous_routing is None else dict(previous_routing),
            "routing_revision": routing_revision,
            "reason": "",
            "created_by": created_by,
            "created_at": time.time() if now is None else now,
            "stopped_by": None,
            "stopped_at": None,
            "revision": 1,
        }
        with self._connection("create an experiment", write=True) as connection:
            experiment_id = connection.execute(
                t.experiments.insert().values(**row).returning(t.experiments.c.id)
            ).scalar_one()
        return ExperimentRecord(id=experiment_id, **row)

    def experiment(self, experiment_id: int) -> ExperimentRecord:
        """The experiment ``experiment_id``; :class:`NotFoundError` when there is none."""
        with self._connection(f"read experiment {experiment_id}", write=False) as connection:
            row = connection.execute(
                sa.select(t.experiments).where(t.experiments.c.id == experiment_id)
            ).first()
        if row is None:
            raise NotFoundError(
                f"no experiment {experiment_id}; list them with GET /v1/experiments",
                kind="experiment",
                name=str(experiment_id),
            )
        return record_from(ExperimentRecord, row)

    def experiments(
        self, *, model: str | None = None, states: Sequence[str] | None = None
    ) -> list[ExperimentRecord]:
        """Experiments, oldest first, of ``model`` and in ``states`` when given."""
        query = sa.select(t.experiments).order_by(t.experiments.c.id)
        if model is not None:
            query = query.where(t.experiments.c.model == model)
        if states is not None:
            query = query.where(t.experiments.c.state.in_(list(states)))
        with self._connection("list experiments", write=False) as connection:
            rows = connection.execute(query).all()
        return records_from(ExperimentRecord, rows)

    def stop_experiment(
        self, current: ExperimentRecord, *, stopped_by: str, reason: str, now: float | None = None
    ) -> ExperimentRecord:
        """Mark ``current`` stopped; :class:`ConflictError` when the stored row is no longer
        ``current`` (another stop got there first) — nothing is written then."""
        values = {
            "state": "stopped",
            "stopped_by": stopped_by,
            "stopped_at": time.time() if now is None else now,
            "reason": reason,
            "revision": current.revision + 1,
        }
        with self._connection(f"stop experiment {current.id}", write=True) as connection:
            updated = connection.execute(
                t.experiments.update()
                .where(
                    t.experiments.c.id == current.id,
                    t.experiments.c.revision == current.revision,
                )
                .values(**values)
            ).rowcount
        if updated != 1:
            raise ConflictError(
                f"experiment {current.id} changed while it was being stopped; read it again"
            )
        fields = {name: getattr(current, name) for name in ExperimentRecord.__dataclass_fields__}
        return ExperimentRecord(**{**fields, **values})
