"""Models, their versions and reference profiles in the store."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from watchkeeper.errors import ConflictError, NotFoundError, StaleVersionError
from watchkeeper.store import tables as t
from watchkeeper.store.base import StoreBase, json_object
from watchkeeper.store.records import (
    ModelId,
    ModelRecord,
    ReferenceProfileRecord,
    VersionRecord,
    record_from,
    records_from,
)

__all__ = ["ModelStore"]


class ModelStore(StoreBase):
    """Registered models (name → config), the versions seen, and each model's reference."""

    def create_model(self, name: str, config: Mapping[str, Any]) -> ModelRecord:
        """Register a model; :class:`ConflictError` when the name is taken."""
        config = json_object(config, key="config")
        now = time.time()
        try:
            with self._connection(f"create model {name!r}", write=True) as connection:
                model_id = connection.execute(
                    t.models.insert()
                    .values(name=name, config=dict(config), created_at=now, updated_at=now)
                    .returning(t.models.c.id)
                ).scalar_one()
        except ConflictError:
            raise ConflictError(
                f"a model named {name!r} already exists; pick another name, or change its config "
                f"with PUT /v1/models/{name} (`watchkeeper models update {name} FILE`)"
            ) from None
        return ModelRecord(
            id=model_id, name=name, config=dict(config), created_at=now, updated_at=now
        )

    def get_model(self, name: str) -> ModelRecord:
        """The model called ``name``; :class:`NotFoundError` when there is none."""
        with self._connection(f"read model {name!r}", write=False) as connection:
            row = connection.execute(sa.select(t.models).where(t.models.c.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"no model named {name!r}; register it first", kind="model", name=name
            )
        return record_from(ModelRecord, row)

    def model_by_id(self, model_id: ModelId) -> ModelRecord:
        """The model with id ``model_id``; :class:`NotFoundError` when there is none."""
        with self._connection(f"read model {model_id}", write=False) as connection:
            row = connection.execute(sa.select(t.models).where(t.models.c.id == model_id)).first()
        if row is None:
            raise NotFoundError(f"no model with id {model_id}", kind="model", name=str(model_id))
        return record_from(ModelRecord, row)

    def list_models(self) -> list[ModelRecord]:
        """Every registered model, by name."""
        with self._connection("list models", write=False) as connection:
            rows = connection.execute(sa.select(t.models).order_by(t.models.c.name)).all()
        return records_from(ModelRecord, rows)

    def update_model_config(
        self, name: str, config: Mapping[str, Any], *, expected_version: int | None = None
    ) -> ModelRecord:
        """Replace the config of model ``name`` and add one to its ``config_version``.

        With ``expected_version``, only if that is still the stored version (one compare and
        set, so of two concurrent updates made against one version exactly one wins); otherwise
        :class:`StaleVersionError` carrying the current version.
        """
        config = json_object(config, key="config")
        now = time.time()
        where = t.models.c.name == name
        if expected_version is not None:
            where &= t.models.c.config_version == expected_version
        with self._connection(f"update model {name!r}", write=True) as connection:
            row = connection.execute(
                t.models.update()
                .where(where)
                .values(
                    config=dict(config),
                    updated_at=now,
                    config_version=t.models.c.config_version + 1,
                )
                .returning(*t.models.columns)
            ).first()
            current = (
                None
                if row is not None
                else connection.execute(
                    sa.select(t.models.c.config_version).where(t.models.c.name == name)
                ).scalar()
            )
        if row is not None:
            return record_from(ModelRecord, row)
        if current is None:
            raise NotFoundError(
                f"no model named {name!r}; register it first", kind="model", name=name
            )
        raise StaleVersionError(
            f"model {name!r} is at config version {current}, not {expected_version}: it changed "
            f"since you read it; read it again (GET /v1/models/{name}) and redo your change",
            current=int(current),
        )

    def delete_model(self, name: str) -> None:
        """Delete model ``name`` with all its versions, profiles, events, labels and feedback."""
        with self._connection(f"delete model {name!r}", write=True) as connection:
            deleted = connection.execute(t.models.delete().where(t.models.c.name == name)).rowcount
        if not deleted:
            raise NotFoundError(f"no model named {name!r}", kind="model", name=name)

    # ------------------------------------------------------------------ versions and reference

    def upsert_version(
        self, model_id: ModelId, version: str, *, metadata: Mapping[str, Any] | None = None
    ) -> VersionRecord:
        """Record ``version``; replaces its metadata when given, keeps ``created_at``."""
        if metadata is not None:
            metadata = json_object(metadata, key="metadata")
        insert = self._insert(t.model_versions).values(
            model_id=model_id,
            version=version,
            created_at=time.time(),
            metadata=dict(metadata or {}),
        )
        if metadata is None:
            statement = insert.on_conflict_do_nothing()
        else:
            statement = insert.on_conflict_do_update(
                index_elements=[t.model_versions.c.model_id, t.model_versions.c.version],
                set_={"metadata": insert.excluded["metadata"]},
            )
        key = (t.model_versions.c.model_id == model_id) & (t.model_versions.c.version == version)
        with self._connection(f"record version {version!r}", write=True) as connection:
            connection.execute(statement)
            row = connection.execute(sa.select(t.model_versions).where(key)).one()
        return record_from(VersionRecord, row)

    def list_versions(self, model_id: ModelId) -> list[VersionRecord]:
        """The versions of a model, oldest first."""
        with self._connection("list versions", write=False) as connection:
            rows = connection.execute(
                sa.select(t.model_versions)
                .where(t.model_versions.c.model_id == model_id)
                .order_by(t.model_versions.c.created_at, t.model_versions.c.version)
            ).all()
        return records_from(VersionRecord, rows)

    def put_reference_profile(
        self, model_id: ModelId, profile: bytes, *, rows: int
    ) -> ReferenceProfileRecord:
        """Store (or replace) the serialised reference profile of a model."""
        record = ReferenceProfileRecord(
            model_id=model_id, profile=bytes(profile), rows=rows, created_at=time.time()
        )
        insert = self._insert(t.reference_profiles).values(
            model_id=model_id, profile=record.profile, rows=rows, created_at=record.created_at
        )
        statement = insert.on_conflict_do_update(
            index_elements=[t.reference_profiles.c.model_id],
            set_={
                "profile": insert.excluded.profile,
                "rows": insert.excluded.rows,
                "created_at": insert.excluded.created_at,
            },
        )
        with self._connection("store reference profile", write=True) as connection:
            connection.execute(statement)
        return record

    def get_reference_profile(self, model_id: ModelId) -> ReferenceProfileRecord:
        """The reference profile of a model; :class:`NotFoundError` when none was stored."""
        with self._connection("read reference profile", write=False) as connection:
            row = connection.execute(
                sa.select(t.reference_profiles).where(t.reference_profiles.c.model_id == model_id)
            ).first()
        if row is None:
            raise NotFoundError(
                f"model {model_id} has no reference profile; upload its training data first",
                kind="reference_profile",
                name=str(model_id),
            )
        return record_from(ReferenceProfileRecord, row)
