"""SQL implementations of the alerting stores: alert state, notification log, silences, outbox.

SQLAlchemy Core tables on :data:`alerts_metadata` (prefixed ``alert_``), living in the service's
database next to the monitoring tables. The schema belongs to the store's Alembic migrations
(revision ``0002``): a store given a URL or an engine brings that database to the newest
revision when it opens (:func:`upgrade_schema`; a single query when it is already there), so
tables are never created outside a migration.

The same code runs on SQLite and PostgreSQL: timestamps are epoch seconds in ``DOUBLE``
columns, upserts are ``INSERT … ON CONFLICT`` of the backend's dialect, and outbox items are
claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (concurrent workers take
different rows without waiting) and under SQLite's single write lock, with a guarded
``UPDATE … RETURNING`` on both so an item is only ever handed to one worker per lease.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import SQLAlchemyError

from watchkeeper.alerts.model import AlertState, Fingerprint
from watchkeeper.alerts.outbox import OutboxItem, OutboxStatus
from watchkeeper.alerts.routing import Silence
from watchkeeper.alerts.state import AlertRecord, NotifyLogEntry, _missing
from watchkeeper.errors import ConfigError, StoreError
from watchkeeper.store.engine import WRITE_OPTION, make_engine, normalise_url

# Alembic runs migrations through process-wide proxies (``alembic.context``, ``alembic.op``), so
# a migration started here must hold the store's own lock; the advisory-lock key must match too,
# or a store and an alerting engine opening one PostgreSQL database together would both migrate.
from watchkeeper.store.store import MIGRATIONS_DIR, migrate_connection
from watchkeeper.store.tables import metadata as store_metadata

__all__ = [
    "SqlAlertStateStore",
    "SqlOutbox",
    "SqlSilenceStore",
    "alerts_metadata",
    "create_alerts_engine",
    "upgrade_schema",
]

# The store's naming convention, so constraint and index names follow one scheme in the database.
alerts_metadata = sa.MetaData(naming_convention=store_metadata.naming_convention)

alert_state = sa.Table(
    "alert_state",
    alerts_metadata,
    sa.Column("fingerprint", sa.String, primary_key=True),
    sa.Column("rule", sa.String, nullable=False, index=True),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("annotations", sa.JSON, nullable=False),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("active_at", sa.Double, nullable=False),
    sa.Column("fired_at", sa.Double),
    sa.Column("resolved_at", sa.Double),
    sa.Column("keep_firing_since", sa.Double),
    sa.Column("last_value", sa.Double),
    sa.Column("last_sent", sa.Double),
)

alert_notify_log = sa.Table(
    "alert_notify_log",
    alerts_metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("receiver", sa.String, nullable=False),
    sa.Column("firing", sa.JSON, nullable=False),
    sa.Column("resolved", sa.JSON, nullable=False),
    sa.Column("notified_at", sa.Double, nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("group_labels", sa.JSON, nullable=False),
)

alert_silence = sa.Table(
    "alert_silence",
    alerts_metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("matchers", sa.JSON, nullable=False),
    sa.Column("starts_at", sa.Double, nullable=False),
    sa.Column("ends_at", sa.Double, nullable=False),
    sa.Column("created_by", sa.String, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

alert_outbox = sa.Table(
    "alert_outbox",
    alerts_metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("receiver", sa.String, nullable=False),
    sa.Column("integration", sa.Integer, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Double, nullable=False),
    sa.Column("delivered_at", sa.Double),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_alert_outbox_due", "status", "next_attempt_at"),
)


def create_alerts_engine(url: str) -> sa.Engine:
    """An engine for ``url`` with the store's connection settings (no schema changes).

    ``url`` is read as :class:`~watchkeeper.store.Store` reads it: a plain path is a SQLite
    file and ``postgresql://`` means psycopg 3. SQLite files get WAL, a busy timeout and
    ``BEGIN IMMEDIATE`` for writing transactions, so several processes can share one file.
    """
    return make_engine(normalise_url(url))


@functools.cache
def _head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def upgrade_schema(engine: sa.Engine) -> None:
    """Migrate the database of ``engine`` to the newest store revision, alerting tables included.

    The same Alembic scripts and locks as :meth:`watchkeeper.store.Store.upgrade`, run on a
    connection of ``engine`` (so an in-memory SQLite engine is migrated in place). A database
    already at the newest revision costs one query.
    """
    backend = engine.dialect.name
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        if current == _head_revision():
            return
        with engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                migrate_connection(connection)
    except SQLAlchemyError as error:
        raise StoreError(
            f"alert store ({backend}) could not migrate its database: {error}; check that the "
            "database is reachable and writable",
            backend=backend,
        ) from error
    except CommandError as error:
        raise StoreError(
            f"alert store ({backend}) could not migrate its database: {error}; the database "
            "may have been created by a newer watchkeeper",
            backend=backend,
        ) from error


def _insert(engine: sa.Engine, table: sa.Table) -> sqlite_dialect.Insert | pg_dialect.Insert:
    """An ``INSERT`` of ``engine``'s dialect, which has ``on_conflict_do_*`` (upserts)."""
    if engine.dialect.name == "sqlite":
        return sqlite_dialect.insert(table)
    if engine.dialect.name == "postgresql":
        return pg_dialect.insert(table)
    raise ConfigError(
        f"alert stores run on SQLite or PostgreSQL, not {engine.dialect.name!r}", key="db"
    )


class _SqlStore:
    def __init__(self, *, engine: sa.Engine | str) -> None:
        self._owns_engine = isinstance(engine, str)
        self.engine = create_alerts_engine(engine) if isinstance(engine, str) else engine
        self.backend = self.engine.dialect.name
        try:
            upgrade_schema(self.engine)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the connections of an engine this store made from a URL (a no-op otherwise)."""
        if self._owns_engine:
            self.engine.dispose()

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as error:
            raise StoreError(
                f"alert store ({self.backend}) could not {action}: {error}; check that the "
                "database is reachable and writable",
                backend=self.backend,
            ) from error

    @contextmanager
    def _transaction(self, action: str, *, write: bool = True) -> Iterator[sa.Connection]:
        # A writing transaction takes SQLite's write lock up front (BEGIN IMMEDIATE, see
        # watchkeeper.store.engine): upgrading a read snapshot to a write fails at once when
        # another connection wrote meanwhile, while waiting for the lock honours busy_timeout.
        with self._errors(action), self.engine.connect() as connection:
            if write:
                connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                yield connection


class SqlAlertStateStore(_SqlStore):
    """:class:`~watchkeeper.alerts.state.AlertStateStore` on SQL tables."""

    def load_alerts(self) -> list[AlertRecord]:
        """Every stored alert record."""
        with self._transaction("load alerts", write=False) as connection:
            rows = connection.execute(sa.select(alert_state)).mappings().all()
        return [
            AlertRecord(
                fingerprint=row["fingerprint"],
                rule=row["rule"],
                labels=row["labels"],
                annotations=row["annotations"],
                state=AlertState(row["state"]),
                active_at=row["active_at"],
                fired_at=row["fired_at"],
                resolved_at=row["resolved_at"],
                keep_firing_since=row["keep_firing_since"],
                last_value=row["last_value"],
                last_sent=row["last_sent"],
            )
            for row in rows
        ]

    def save_alerts(self, records: Sequence[AlertRecord]) -> None:
        """Insert or replace records by fingerprint, in one transaction."""
        if not records:
            return
        rows = {
            record.fingerprint: {
                "fingerprint": record.fingerprint,
                "rule": record.rule,
                "labels": dict(record.labels),
                "annotations": dict(record.annotations),
                "state": record.state.value,
                "active_at": record.active_at,
                "fired_at": record.fired_at,
                "resolved_at": record.resolved_at,
                "keep_firing_since": record.keep_firing_since,
                "last_value": record.last_value,
                "last_sent": record.last_sent,
            }
            for record in records
        }
        insert = _insert(self.engine, alert_state)
        upsert = insert.on_conflict_do_update(
            index_elements=[alert_state.c.fingerprint],
            set_={
                column.name: insert.excluded[column.name]
                for column in alert_state.columns
                if not column.primary_key
            },
        )
        with self._transaction("save alerts") as connection:
            # Key order: two writers upserting overlapping records lock them in the same order.
            connection.execute(upsert, [rows[key] for key in sorted(rows)])

    def delete_alerts(self, fingerprints: Sequence[Fingerprint]) -> None:
        """Forget records; unknown fingerprints are ignored."""
        if not fingerprints:
            return
        with self._transaction("delete alerts") as connection:
            connection.execute(
                alert_state.delete().where(alert_state.c.fingerprint.in_(list(fingerprints)))
            )

    def load_notify_log(self) -> list[NotifyLogEntry]:
        """Every notification-log entry."""
        with self._transaction("load the notification log", write=False) as connection:
            rows = connection.execute(sa.select(alert_notify_log)).mappings().all()
        return [
            NotifyLogEntry(
                group_key=row["group_key"],
                receiver=row["receiver"],
                firing=frozenset(row["firing"]),
                resolved=frozenset(row["resolved"]),
                notified_at=row["notified_at"],
                sequence=row["sequence"],
                group_labels=row["group_labels"],
            )
            for row in rows
        ]

    def save_notify_entry(self, entry: NotifyLogEntry) -> None:
        """Insert or replace the entry for (group_key, receiver)."""
        insert = _insert(self.engine, alert_notify_log).values(
            id=_log_id(entry.group_key, entry.receiver),
            group_key=entry.group_key,
            receiver=entry.receiver,
            firing=sorted(entry.firing),
            resolved=sorted(entry.resolved),
            notified_at=entry.notified_at,
            sequence=entry.sequence,
            group_labels=dict(entry.group_labels),
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[alert_notify_log.c.id],
            set_={
                name: insert.excluded[name]
                for name in ("firing", "resolved", "notified_at", "sequence", "group_labels")
            },
        )
        with self._transaction("save the notification log") as connection:
            connection.execute(upsert)

    def delete_notify_entries(self, keys: Sequence[tuple[str, str]]) -> None:
        """Forget entries by (group_key, receiver)."""
        if not keys:
            return
        ids = [_log_id(group_key, receiver) for group_key, receiver in keys]
        with self._transaction("prune the notification log") as connection:
            connection.execute(alert_notify_log.delete().where(alert_notify_log.c.id.in_(ids)))


def _log_id(group_key: str, receiver: str) -> str:
    return hashlib.sha256(f"{group_key}\x00{receiver}".encode()).hexdigest()


class SqlSilenceStore(_SqlStore):
    """:class:`~watchkeeper.alerts.state.SilenceStore` on an SQL table."""

    def add(self, silence: Silence) -> Silence:
        """Store a new silence."""
        with self._transaction("add a silence") as connection:
            connection.execute(alert_silence.insert().values(**silence.to_dict()))
        return silence

    def get(self, silence_id: str) -> Silence:
        """The silence with ``silence_id``."""
        with self._transaction("read a silence", write=False) as connection:
            row = (
                connection.execute(sa.select(alert_silence).where(alert_silence.c.id == silence_id))
                .mappings()
                .first()
            )
        if row is None:
            raise _missing(silence_id)
        return Silence.from_dict(dict(row))

    def list(self) -> list[Silence]:
        """Every silence, oldest first."""
        with self._transaction("list silences", write=False) as connection:
            rows = (
                connection.execute(
                    sa.select(alert_silence).order_by(alert_silence.c.starts_at, alert_silence.c.id)
                )
                .mappings()
                .all()
            )
        return [Silence.from_dict(dict(row)) for row in rows]

    def update(self, silence: Silence) -> Silence:
        """Replace the silence with the same id."""
        row = silence.to_dict()
        with self._transaction("update a silence") as connection:
            result = connection.execute(
                alert_silence.update().where(alert_silence.c.id == silence.id).values(**row)
            )
        if result.rowcount == 0:
            raise _missing(silence.id)
        return silence

    def delete(self, silence_id: str) -> None:
        """Remove a silence for good."""
        with self._transaction("delete a silence") as connection:
            result = connection.execute(
                alert_silence.delete().where(alert_silence.c.id == silence_id)
            )
        if result.rowcount == 0:
            raise _missing(silence_id)


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        key=row["key"],
        receiver=row["receiver"],
        integration=row["integration"],
        payload=row["payload"],
        created_at=row["created_at"],
        status=OutboxStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        delivered_at=row["delivered_at"],
        last_error=row["last_error"],
    )


class SqlOutbox(_SqlStore):
    """:class:`~watchkeeper.alerts.outbox.Outbox` on an SQL table; several workers may share it."""

    def enqueue(self, items: Sequence[OutboxItem]) -> int:
        """Add items; keys already present are ignored."""
        if not items:
            return 0
        rows = {
            item.key: {
                "key": item.key,
                "receiver": item.receiver,
                "integration": item.integration,
                "payload": dict(item.payload),
                "created_at": item.created_at,
                "status": OutboxStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": item.created_at,
                "delivered_at": None,
                "last_error": None,
            }
            for item in items
        }
        insert = (
            _insert(self.engine, alert_outbox)
            .on_conflict_do_nothing(index_elements=[alert_outbox.c.key])
            .returning(alert_outbox.c.key)
        )
        with self._transaction("enqueue notifications") as connection:
            # Key order, so concurrent enqueues of overlapping keys cannot deadlock.
            added = connection.execute(insert, [rows[key] for key in sorted(rows)]).scalars()
            return len(added.all())

    def claim(self, now: float, *, limit: int, lease: float) -> list[OutboxItem]:
        """Pending items due by ``now``, oldest first, hidden from other claims for ``lease``."""
        due = (alert_outbox.c.status == OutboxStatus.PENDING.value) & (
            alert_outbox.c.next_attempt_at <= now
        )
        with self._transaction("claim notifications") as connection:
            rows = (
                connection.execute(
                    sa.select(alert_outbox)
                    .where(due)
                    .order_by(alert_outbox.c.created_at, alert_outbox.c.key)
                    .limit(limit)
                    # PostgreSQL: lock the rows and skip those another claim holds; SQLite
                    # renders nothing here, its transaction already holds the write lock.
                    .with_for_update(skip_locked=True)
                )
                .mappings()
                .all()
            )
            if not rows:
                return []
            # Re-checking ``due`` hands out only rows no other worker claimed in between (a
            # connection without the write lock up front, e.g. a bare SQLite engine).
            claimed = set(
                connection.execute(
                    alert_outbox.update()
                    .where(alert_outbox.c.key.in_([row["key"] for row in rows]), due)
                    .values(next_attempt_at=now + lease)
                    .returning(alert_outbox.c.key)
                ).scalars()
            )
        return [_item(row) for row in rows if row["key"] in claimed]

    def mark_delivered(self, key: str, *, now: float) -> None:
        """Record a successful delivery."""
        with self._transaction("mark a notification delivered") as connection:
            connection.execute(
                alert_outbox.update()
                .where(alert_outbox.c.key == key)
                .values(
                    status=OutboxStatus.DELIVERED.value,
                    attempts=alert_outbox.c.attempts + 1,
                    delivered_at=now,
                )
            )

    def mark_failed(
        self, key: str, *, now: float, error: str, next_attempt_at: float | None
    ) -> None:
        """Record a failed attempt and when to retry (``None`` = give up)."""
        status = OutboxStatus.DEAD if next_attempt_at is None else OutboxStatus.PENDING
        with self._transaction("record a failed delivery") as connection:
            connection.execute(
                alert_outbox.update()
                .where(alert_outbox.c.key == key)
                .values(
                    status=status.value,
                    attempts=alert_outbox.c.attempts + 1,
                    next_attempt_at=now if next_attempt_at is None else next_attempt_at,
                    last_error=error[:2000],
                )
            )

    def release(self, keys: Sequence[str], *, next_attempt_at: float) -> None:
        """Return claimed but untried items to the queue."""
        if not keys:
            return
        with self._transaction("release notifications") as connection:
            connection.execute(
                alert_outbox.update()
                .where(alert_outbox.c.key.in_(list(keys)))
                .values(next_attempt_at=next_attempt_at)
            )

    def items(
        self, *, status: OutboxStatus | None = None, receiver: str | None = None, limit: int = 1000
    ) -> list[OutboxItem]:
        """Items (history included), oldest first, optionally filtered."""
        query = sa.select(alert_outbox).order_by(alert_outbox.c.created_at, alert_outbox.c.key)
        if status is not None:
            query = query.where(alert_outbox.c.status == status.value)
        if receiver is not None:
            query = query.where(alert_outbox.c.receiver == receiver)
        with self._transaction("list notifications", write=False) as connection:
            rows = connection.execute(query.limit(limit)).mappings().all()
        return [_item(row) for row in rows]
