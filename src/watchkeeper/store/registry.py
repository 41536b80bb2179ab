"""The model registry's rows: versions, aliases and the history of every alias move.

Artifacts are not here: a version row holds its artifact's sha256 and size, and the bytes live in
the artifact store (:mod:`watchkeeper.registry.artifacts`). An alias move and its history row are
written in one transaction, so the history is complete by construction: the alias's version at
any time is the ``to_version`` of its latest move at or before that time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watchkeeper.errors import ConflictError, NotFoundError
from watchkeeper.store import tables as t
from watchkeeper.store.base import StoreBase, json_object
from watchkeeper.store.records import record_from, records_from

__all__ = ["AliasMoveRecord", "AliasRecord", "RegistryStore", "RegistryVersionRecord"]

# Two writers may take the same next version number at once (PostgreSQL); the loser retries.
_NUMBERING_ATTEMPTS: Final = 8


@dataclass(frozen=True, slots=True)
class RegistryVersionRecord:
    """One registered version of a model, with its metadata and its artifact's digest."""

    model: str
    version: int
    flavor: str
    artifact_sha256: str
    artifact_bytes: int
    trusted: bool
    description: str
    params: Mapping[str, Any]
    metrics: Mapping[str, Any]
    tags: Mapping[str, Any]
    signature: Mapping[str, Any]
    reference_profile: bytes | None
    code_revision: str | None
    registered_by: str
    registered_at: float


@dataclass(frozen=True, slots=True)
class AliasRecord:
    """Where an alias points now."""

    model: str
    alias: str
    version: int
    updated_at: float


@dataclass(frozen=True, slots=True)
class AliasMoveRecord:
    """One move of an alias: ``from_version`` → ``to_version`` (None: unset), by whom, when, why."""

    id: int
    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    moved_by: str
    moved_at: float
    reason: str


class RegistryStore(StoreBase):
    """Registry versions (numbered 1, 2, … per model), aliases and their moves."""

    def add_registry_version(
        self, model: str, fields: Mapping[str, Any], *, now: float | None = None
    ) -> RegistryVersionRecord:
        """Store a new version of ``model`` under the next number; returns it."""
        values = {
            "description": "",
            "params": {},
            "metrics": {},
            "tags": {},
            "signature": {},
            "reference_profile": None,
            "code_revision": None,
            "trusted": False,
            **fields,
        }
        for key in ("params", "metrics", "tags", "signature"):
            values[key] = json_object(values[key], key=key)
        at = time.time() if now is None else now
        for attempt in range(_NUMBERING_ATTEMPTS):
            try:
                with self._connection(f"register a version of {model!r}", write=True) as conn:
                    latest = conn.execute(
                        sa.select(sa.func.max(t.registry_versions.c.version)).where(
                            t.registry_versions.c.model == model
                        )
                    ).scalar_one()
                    number = (latest or 0) + 1
                    row = {**values, "model": model, "version": number, "registered_at": at}
                    conn.execute(t.registry_versions.insert().values(**row))
                return RegistryVersionRecord(**row)
            except ConflictError:
                if attempt == _NUMBERING_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def registry_version(self, model: str, version: int) -> RegistryVersionRecord:
        """Version ``version`` of ``model``; :class:`NotFoundError` naming the known versions."""
        with self._connection(f"read {model}/{version}", write=False) as connection:
            row = connection.execute(
                sa.select(t.registry_versions).where(
                    t.registry_versions.c.model == model, t.registry_versions.c.version == version
                )
            ).first()
            if row is None:
                numbers = self._version_numbers(connection, model)
        if row is None:
            known = f"its versions are 1–{max(numbers)}" if numbers else "it has no versions"
            raise NotFoundError(
                f"model {model!r} has no version {version}; {known}",
                kind="version",
                name=f"{model}/{version}",
            )
        return record_from(RegistryVersionRecord, row)

    def registry_versions(self, model: str) -> list[RegistryVersionRecord]:
        """Every version of ``model``, oldest first (empty when it has none)."""
        with self._connection(f"list versions of {model!r}", write=False) as connection:
            rows = connection.execute(
                sa.select(t.registry_versions)
                .where(t.registry_versions.c.model == model)
                .order_by(t.registry_versions.c.version)
            ).all()
        return records_from(RegistryVersionRecord, rows)

    def registry_models(self) -> list[str]:
        """The names of the models that have registered versions, sorted."""
        with self._connection("list registry models", write=False) as connection:
            rows = connection.execute(
                sa.select(t.registry_versions.c.model).distinct().order_by("model")
            ).all()
        return [row.model for row in rows]

    def move_alias(
        self,
        model: str,
        alias: str,
        version: int | None,
        *,
        moved_by: str,
        reason: str,
        now: float | None = None,
    ) -> AliasMoveRecord | None:
        """Point ``alias`` at ``version`` (None removes it) and record the move.

        Returns the move, or None when the alias already points there (nothing is recorded).
        """
        at = time.time() if now is None else now
        aliases = t.registry_aliases
        where = (aliases.c.model == model, aliases.c.alias == alias)
        with self._connection(f"move alias {model}@{alias}", write=True) as connection:
            if version is not None and not self._version_exists(connection, model, version):
                numbers = self._version_numbers(connection, model)
                known = f"its versions are 1–{max(numbers)}" if numbers else "it has no versions"
                raise NotFoundError(
                    f"model {model!r} has no version {version}; {known}",
                    kind="version",
                    name=f"{model}/{version}",
                )
            current_query = sa.select(aliases.c.version).where(*where)
            if self.backend != "sqlite":
                current_query = current_query.with_for_update()
            current = connection.execute(current_query).scalar_one_or_none()
            if current == version:
                return None
            if version is None:
                connection.execute(aliases.delete().where(*where))
            elif current is None:
                connection.execute(
                    aliases.insert().values(
                        model=model, alias=alias, version=version, updated_at=at
                    )
                )
            else:
                connection.execute(
                    aliases.update().where(*where).values(version=version, updated_at=at)
                )
            move_id = connection.execute(
                t.registry_alias_moves.insert()
                .values(
                    model=model,
                    alias=alias,
                    from_version=current,
                    to_version=version,
                    moved_by=moved_by,
                    moved_at=at,
                    reason=reason,
                )
                .returning(t.registry_alias_moves.c.id)
            ).scalar_one()
        return AliasMoveRecord(move_id, model, alias, current, version, moved_by, at, reason)

    def aliases(self, model: str) -> list[AliasRecord]:
        """The aliases of ``model`` as they point now, by name."""
        with self._connection(f"read aliases of {model!r}", write=False) as connection:
            rows = connection.execute(
                sa.select(t.registry_aliases)
                .where(t.registry_aliases.c.model == model)
                .order_by(t.registry_aliases.c.alias)
            ).all()
        return records_from(AliasRecord, rows)

    def alias_moves(self, model: str, alias: str, *, limit: int = 1000) -> list[AliasMoveRecord]:
        """The moves of ``model@alias``, newest first."""
        moves = t.registry_alias_moves
        with self._connection(f"read history of {model}@{alias}", write=False) as connection:
            rows = connection.execute(
                sa.select(moves)
                .where(moves.c.model == model, moves.c.alias == alias)
                .order_by(moves.c.id.desc())
                .limit(limit)
            ).all()
        return records_from(AliasMoveRecord, rows)

    def alias_names(self, model: str) -> list[str]:
        """Every alias ``model`` has ever had (set now or removed), by name."""
        moves = t.registry_alias_moves
        with self._connection(f"read aliases ever set of {model}", write=False) as connection:
            rows = connection.execute(
                sa.select(moves.c.alias).where(moves.c.model == model).distinct()
            ).all()
        return sorted(str(row.alias) for row in rows)

    def alias_version_at(self, model: str, alias: str, at: float) -> int | None:
        """The version ``model@alias`` pointed at, at time ``at`` (None: it pointed nowhere)."""
        moves = t.registry_alias_moves
        with self._connection(f"read {model}@{alias} as of {at}", write=False) as connection:
            row = connection.execute(
                sa.select(moves.c.to_version)
                .where(moves.c.model == model, moves.c.alias == alias, moves.c.moved_at <= at)
                .order_by(moves.c.moved_at.desc(), moves.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else row.to_version

    @staticmethod
    def _version_exists(connection: Connection, model: str, version: int) -> bool:
        versions = t.registry_versions
        found = connection.execute(
            sa.select(versions.c.version).where(
                versions.c.model == model, versions.c.version == version
            )
        ).first()
        return found is not None

    @staticmethod
    def _version_numbers(connection: Connection, model: str) -> list[int]:
        versions = t.registry_versions
        return list(
            connection.execute(
                sa.select(versions.c.version).where(versions.c.model == model)
            ).scalars()
        )
