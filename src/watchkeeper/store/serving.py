"""Serving's rows: each model's routing config, and every change of one.

A change and its history row are written in one transaction, and each change gets the next
revision number of its model, so two processes changing one model's routing at once cannot both
think they wrote revision N (the loser's insert or update fails and it retries with N + 1).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from watchkeeper.errors import ConflictError, StoreError
from watchkeeper.store import tables as t
from watchkeeper.store.base import StoreBase, json_object
from watchkeeper.store.records import record_from, records_from

__all__ = ["RoutingChangeRecord", "RoutingRecord", "ServingStore"]

_ATTEMPTS: Final = 8


@dataclass(frozen=True, slots=True)
class RoutingRecord:
    """A model's routing config as it is now, with its revision (1 for the first)."""

    model: str
    config: Mapping[str, Any]
    revision: int
    updated_by: str
    updated_at: float


@dataclass(frozen=True, slots=True)
class RoutingChangeRecord:
    """One change of a model's routing config (``config`` None: the config was removed)."""

    id: int
    model: str
    revision: int
    config: Mapping[str, Any] | None
    changed_by: str
    changed_at: float
    reason: str


class ServingStore(StoreBase):
    """Read and change routing configs; every change is kept."""

    def routing(self, model: str) -> RoutingRecord | None:
        """The routing config of ``model`` (None: it has none, so it serves its champion)."""
        with self._connection(f"read the routing of {model!r}", write=False) as connection:
            row = connection.execute(
                sa.select(t.serving_routes).where(t.serving_routes.c.model == model)
            ).first()
        return None if row is None else record_from(RoutingRecord, row)

    def put_routing(
        self,
        model: str,
        config: Mapping[str, Any] | None,
        *,
        changed_by: str,
        reason: str = "",
        expected_revision: int | None = None,
        now: float | None = None,
    ) -> RoutingChangeRecord:
        """Set (``config`` None: remove) the routing of ``model``; the change is recorded.

        ``expected_revision`` makes the change conditional: it fails with ConflictError when the
        stored revision (0 when there is none) is another one, so a read-modify-write by two
        writers never loses an update.
        """
        at = time.time() if now is None else now
        stored = None if config is None else json_object(config, key="routing")
        for attempt in range(_ATTEMPTS):
            try:
                return self._put_routing(model, stored, changed_by, reason, expected_revision, at)
            except StoreError:
                # Two writers took the same next revision: the history's unique revision or
                # the routes' primary key refused one; it tries again on the new state.
                if attempt == _ATTEMPTS - 1 or expected_revision is not None:
                    raise
        raise AssertionError("unreachable")

    def _put_routing(
        self,
        model: str,
        config: dict[str, Any] | None,
        changed_by: str,
        reason: str,
        expected_revision: int | None,
        at: float,
    ) -> RoutingChangeRecord:
        routes = t.serving_routes
        where = routes.c.model == model
        with self._connection(f"change the routing of {model!r}", write=True) as connection:
            query = sa.select(routes.c.revision).where(where)
            if self.backend != "sqlite":
                query = query.with_for_update()
            current = connection.execute(query).scalar_one_or_none()
            if expected_revision is not None and (current or 0) != expected_revision:
                raise ConflictError(
                    f"the routing of {model!r} is at revision {current or 0}, not "
                    f"{expected_revision}: it changed meanwhile; read it again and retry"
                )
            revision = (current or 0) + 1
            if config is None:
                connection.execute(routes.delete().where(where))
            elif current is None:
                connection.execute(
                    routes.insert().values(
                        model=model,
                        config=config,
                        revision=revision,
                        updated_by=changed_by,
                        updated_at=at,
                    )
                )
            else:
                connection.execute(
                    routes.update()
                    .where(where)
                    .values(config=config, revision=revision, updated_by=changed_by, updated_at=at)
                )
            change_id = connection.execute(
                t.serving_route_changes.insert()
                .values(
                    model=model,
                    revision=revision,
                    config=config,
                    changed_by=changed_by,
                    changed_at=at,
                    reason=reason,
                )
                .returning(t.serving_route_changes.c.id)
            ).scalar_one()
        return RoutingChangeRecord(change_id, model, revision, config, changed_by, at, reason)

    def routing_changes(self, model: str, *, limit: int = 1000) -> list[RoutingChangeRecord]:
        """The changes of ``model``'s routing, newest first."""
        changes = t.serving_route_changes
        with self._connection(f"read the routing history of {model!r}", write=False) as connection:
            rows = connection.execute(
                sa.select(changes)
                .where(changes.c.model == model)
                .order_by(changes.c.id.desc())
                .limit(limit)
            ).all()
        return records_from(RoutingChangeRecord, rows)

    def routing_at(self, model: str, at: float) -> RoutingChangeRecord | None:
        """The latest change of ``model``'s routing at or before ``at`` (None: none yet)."""
        changes = t.serving_route_changes
        with self._connection(f"read the routing of {model!r} as of {at}", write=False) as conn:
            row = conn.execute(
                sa.select(changes)
                .where(changes.c.model == model, changes.c.changed_at <= at)
                .order_by(changes.c.changed_at.desc(), changes.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else record_from(RoutingChangeRecord, row)
