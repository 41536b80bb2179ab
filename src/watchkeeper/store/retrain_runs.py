"""Retraining runs' rows: one per run, with its trigger, status, timings, gate result and log.

A run is created queued (:meth:`RetrainRunStore.create_retrain_run`, which refuses a second
active run of the model or one started within the model's minimum interval, in the same
transaction), then moved by :meth:`RetrainRunStore.update_retrain_run`, guarded by the row's
``revision``: two writers (the worker's completion and an approval) cannot both act on the same
state, and a restarted server finds exactly what the last completed change left.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Final

import sqlalchemy as sa

from watchkeeper.errors import ConflictError, NotFoundError
from watchkeeper.store import tables as t
from watchkeeper.store.base import StoreBase
from watchkeeper.store.records import record_from, records_from

__all__ = ["ACTIVE_RUN_STATUSES", "RetrainRunRecord", "RetrainRunStore"]

#: Statuses of a run that is not over: at most one per model (``queued`` includes a run waiting
#: for its retry or requeued after a restart interrupted it).
ACTIVE_RUN_STATUSES: Final = ("queued", "running", "awaiting_artifact")


@dataclass(frozen=True, slots=True)
class RetrainRunRecord:
    """One retraining run as stored (see :class:`watchkeeper.retrain.runs.RunStatus`).

    ``trigger`` says why it started (``kind``: alert, schedule or manual; for an alert its
    rule, labels, value and fingerprint). ``as_of`` is the "now" its data is assembled at (kept,
    so a retry or an artifact posted back later sees the same rows). ``attempts`` counts its
    executions, ``interruptions`` the restarts that found it running; ``next_attempt_at`` is
    when a queued run may start (its retry backoff). ``gate`` and ``data`` are the pipeline's
    measurements, ``version`` the registered candidate, ``rollout_id`` its canary;
    ``artifact`` (``sha256``, ``flavor``, ``trusted``) the candidate an orchestrator posted back,
    in the artifact store. ``log`` is the run's text log, ``error`` the last failure.
    """

    id: int
    model: str
    status: str
    trigger: Mapping[str, Any]
    mode: str
    executor: str
    as_of: float
    attempts: int
    max_attempts: int
    interruptions: int
    next_attempt_at: float
    created_by: str
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    reason: str
    error: str
    log: str
    gate: Mapping[str, Any] | None
    data: Mapping[str, Any] | None
    champion_version: int | None
    version: int | None
    rollout_id: int | None
    artifact: Mapping[str, Any] | None
    revision: int

    @property
    def active(self) -> bool:
        """True while the run is not over (queued, running, awaiting its artifact)."""
        return self.status in ACTIVE_RUN_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the API's run document)."""
        out = {field.name: getattr(self, field.name) for field in fields(self)}
        out["trigger"] = dict(self.trigger)
        out["gate"] = None if self.gate is None else dict(self.gate)
        out["data"] = None if self.data is None else dict(self.data)
        out["artifact"] = None if self.artifact is None else dict(self.artifact)
        return out


# The columns a change may set.
_MUTABLE: Final = frozenset(
    {
        "status",
        "attempts",
        "interruptions",
        "next_attempt_at",
        "started_at",
        "finished_at",
        "reason",
        "error",
        "log",
        "gate",
        "data",
        "champion_version",
        "version",
        "rollout_id",
        "artifact",
    }
)
_REQUIRED: Final = ("model", "status", "trigger", "mode", "executor", "as_of", "max_attempts")


class RetrainRunStore(StoreBase):
    """Retraining runs."""

    def create_retrain_run(
        self,
        fields_: Mapping[str, Any],
        *,
        min_interval: float = 0.0,
        now: float | None = None,
    ) -> RetrainRunRecord:
        """Store a new run of ``fields_["model"]`` (queued unless ``fields_`` says otherwise).

        :class:`ConflictError` when the model has an active run, or when its latest run was
        created less than ``min_interval`` seconds before ``now``; checked and written in one
        transaction (the model's row is locked on PostgreSQL), so two triggers at once make
        one run.
        """
        missing = [name for name in _REQUIRED if name not in fields_]
        if missing:
            raise ValueError(f"a retraining run needs {', '.join(missing)}")
        at = time.time() if now is None else now
        model = str(fields_["model"])
        row: dict[str, Any] = {
            "attempts": 0,
            "interruptions": 0,
            "next_attempt_at": at,
            "created_by": "",
            "started_at": None,
            "finished_at": None,
            "reason": "",
            "error": "",
            "log": "",
            "gate": None,
            "data": None,
            "champion_version": None,
            "version": None,
            "rollout_id": None,
            "artifact": None,
            **fields_,
            "created_at": at,
            "updated_at": at,
            "revision": 1,
        }
        table = t.retrain_runs
        with self._connection(f"create a retraining run of {model}", write=True) as connection:
            # Serialises two servers' triggers of one model on PostgreSQL (SQLite's write
            # transaction already excludes every other writer).
            connection.execute(
                sa.select(t.models.c.id).where(t.models.c.name == model).with_for_update()
            ).first()
            active = connection.execute(
                sa.select(table.c.id, table.c.status)
                .where(table.c.model == model, table.c.status.in_(ACTIVE_RUN_STATUSES))
                .order_by(table.c.id)
                .limit(1)
            ).first()
            if active is not None:
                raise ConflictError(
                    f"model {model!r} already has retraining run {active.id} ({active.status}); "
                    "at most one run per model at a time"
                )
            if min_interval > 0:
                latest = connection.execute(
                    sa.select(sa.func.max(table.c.created_at)).where(table.c.model == model)
                ).scalar()
                if latest is not None and at - latest < min_interval:
                    raise ConflictError(
                        f"model {model!r} started a retraining run {at - latest:.0f} s ago; "
                        f"retrain.min_interval is {min_interval:g} s (next at "
                        f"{latest + min_interval:.0f})"
                    )
            run_id = connection.execute(
                table.insert().values(**row).returning(table.c.id)
            ).scalar_one()
        return RetrainRunRecord(id=run_id, **row)

    def retrain_run(self, run_id: int) -> RetrainRunRecord:
        """The run ``run_id``; :class:`NotFoundError` when there is none."""
        with self._connection(f"read retraining run {run_id}", write=False) as connection:
            row = connection.execute(
                sa.select(t.retrain_runs).where(t.retrain_runs.c.id == run_id)
            ).first()
        if row is None:
            raise NotFoundError(
                f"no retraining run {run_id}; list them with GET /v1/retrain/runs",
                kind="retrain run",
                name=str(run_id),
            )
        return record_from(RetrainRunRecord, row)

    def retrain_runs(
        self,
        *,
        model: str | None = None,
        statuses: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[RetrainRunRecord]:
        """Runs, oldest first, of ``model`` and in ``statuses`` when given (the newest
        ``limit`` of them when given)."""
        table = t.retrain_runs
        query = sa.select(table).order_by(table.c.id.desc())
        if model is not None:
            query = query.where(table.c.model == model)
        if statuses is not None:
            query = query.where(table.c.status.in_(list(statuses)))
        if limit is not None:
            query = query.limit(limit)
        with self._connection("list retraining runs", write=False) as connection:
            rows = connection.execute(query).all()
        return records_from(RetrainRunRecord, rows)[::-1]

    def update_retrain_run(
        self, current: RetrainRunRecord, changes: Mapping[str, Any], *, now: float | None = None
    ) -> RetrainRunRecord:
        """Apply ``changes`` to ``current``.

        :class:`ConflictError` when the stored run is no longer ``current`` (another writer
        changed it first): nothing is written, and the caller re-reads and decides again.
        """
        unknown = set(changes) - _MUTABLE
        if unknown:
            raise ValueError(f"not a mutable retraining run column: {sorted(unknown)}")
        at = time.time() if now is None else now
        values = {**changes, "updated_at": at, "revision": current.revision + 1}
        table = t.retrain_runs
        with self._connection(f"update retraining run {current.id}", write=True) as connection:
            updated = connection.execute(
                table.update()
                .where(table.c.id == current.id, table.c.revision == current.revision)
                .values(**values)
            ).rowcount
        if updated != 1:
            raise ConflictError(
                f"retraining run {current.id} changed while it was being updated; read it again"
            )
        kept = {field.name: getattr(current, field.name) for field in fields(current)}
        return RetrainRunRecord(**{**kept, **values})
