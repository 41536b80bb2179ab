"""SQL persistence of the alerting engine: alert state, notification log, silences, rules, history.

The tables live in :mod:`watchkeeper.store.tables` (revision ``0002``), next to the monitoring
tables of the same database; the outbox is in :mod:`watchkeeper.store.outbox`. Each store is
given an engine or a URL (read as :class:`~watchkeeper.store.Store` reads it) and brings that
database to the newest revision when it opens (:func:`~watchkeeper.store.base.upgrade_engine`;
one query when it is already there), so tables are never created outside a migration. Every
database error goes through :func:`~watchkeeper.store.engine.translate_error`: a
:class:`StoreError` naming the operation and the driver's reason, never the SQL statement.

The same code runs on SQLite and PostgreSQL: timestamps are epoch seconds in ``DOUBLE``
columns and upserts are ``INSERT … ON CONFLICT`` of the backend's dialect.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from watchkeeper.alerts.model import AlertState, Fingerprint
from watchkeeper.alerts.routing import Silence
from watchkeeper.alerts.state import AlertRecord, NotifyLogEntry, _missing
from watchkeeper.errors import StoreError
from watchkeeper.store.base import engine_backend, upgrade_engine
from watchkeeper.store.engine import WRITE_OPTION, make_engine, normalise_url, translate_error
from watchkeeper.store.tables import (
    alert_history,
    alert_notify_log,
    alert_rule,
    alert_silence,
    alert_state,
)

__all__ = [
    "AlertDatabase",
    "RuleRows",
    "SqlAlertStateStore",
    "SqlRuleStore",
    "SqlSilenceStore",
    "create_alerts_engine",
]

# A stored rule set: (name, spec as a dict) in the order the rules were applied.
RuleRows = list[tuple[str, dict[str, Any]]]


def create_alerts_engine(url: str) -> sa.Engine:
    """An engine for ``url`` with the store's connection settings (no schema changes).

    ``url`` is read as :class:`~watchkeeper.store.Store` reads it: a plain path is a SQLite
    file and ``postgresql://`` means psycopg 3. SQLite files get WAL, a busy timeout and
    ``BEGIN IMMEDIATE`` for writing transactions, so several processes can share one file.
    """
    return make_engine(normalise_url(url))


class AlertDatabase:
    """One database of the alerting engine: its engine, migrations and transactions."""

    def __init__(self, *, engine: sa.Engine | str) -> None:
        self._owns_engine = isinstance(engine, str)
        self.engine = create_alerts_engine(engine) if isinstance(engine, str) else engine
        self._closed = False
        try:
            self.backend = engine_backend(self.engine)
            upgrade_engine(self.engine)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Refuse further calls; dispose of the engine if this store made it from a URL."""
        self._closed = True
        if self._owns_engine:
            self.engine.dispose()

    @contextmanager
    def _connection(self, operation: str, *, write: bool) -> Iterator[sa.Connection]:
        """One transaction; a writing one takes SQLite's write lock up front (BEGIN IMMEDIATE,
        see :mod:`watchkeeper.store.engine`), which honours the busy timeout where upgrading a
        read snapshot would fail at once."""
        if self._closed:
            raise StoreError(
                f"{operation}: this alert store is closed; open a new one", backend=self.backend
            )
        try:
            with self.engine.connect() as connection:
                if write:
                    connection.execution_options(**{WRITE_OPTION: True})
                with connection.begin():
                    yield connection
        except sa_exc.SQLAlchemyError as exc:
            raise translate_error(
                exc, backend=self.backend, operation=operation, url=self.engine.url
            ) from exc

    def _insert(self, table: sa.Table) -> sqlite_dialect.Insert | pg_dialect.Insert:
        """An ``INSERT`` of the backend's dialect, which has ``on_conflict_do_*`` (upserts)."""
        if self.backend == "sqlite":
            return sqlite_dialect.insert(table)
        return pg_dialect.insert(table)


class SqlAlertStateStore(AlertDatabase):
    """:class:`~watchkeeper.alerts.state.AlertStateStore` on SQL tables."""

    def load_alerts(self) -> list[AlertRecord]:
        """Every stored alert record."""
        with self._connection("load alerts", write=False) as connection:
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
        insert = self._insert(alert_state)
        upsert = insert.on_conflict_do_update(
            index_elements=[alert_state.c.fingerprint],
            set_={
                column.name: insert.excluded[column.name]
                for column in alert_state.columns
                if not column.primary_key
            },
        )
        with self._connection("save alerts", write=True) as connection:
            # Key order: two writers upserting overlapping records lock them in the same order.
            connection.execute(upsert, [rows[key] for key in sorted(rows)])

    def delete_alerts(self, fingerprints: Sequence[Fingerprint]) -> None:
        """Forget records; unknown fingerprints are ignored."""
        if not fingerprints:
            return
        with self._connection("delete alerts", write=True) as connection:
            connection.execute(
                alert_state.delete().where(alert_state.c.fingerprint.in_(list(fingerprints)))
            )

    def load_notify_log(self) -> list[NotifyLogEntry]:
        """Every notification-log entry."""
        with self._connection("load the notification log", write=False) as connection:
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
        insert = self._insert(alert_notify_log).values(
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
        with self._connection("save the notification log", write=True) as connection:
            connection.execute(upsert)

    def delete_notify_entries(self, keys: Sequence[tuple[str, str]]) -> None:
        """Forget entries by (group_key, receiver)."""
        if not keys:
            return
        ids = [_log_id(group_key, receiver) for group_key, receiver in keys]
        with self._connection("prune the notification log", write=True) as connection:
            connection.execute(alert_notify_log.delete().where(alert_notify_log.c.id.in_(ids)))


def _log_id(group_key: str, receiver: str) -> str:
    return hashlib.sha256(f"{group_key}\x00{receiver}".encode()).hexdigest()


class SqlSilenceStore(AlertDatabase):
    """:class:`~watchkeeper.alerts.state.SilenceStore` on an SQL table."""

    def add(self, silence: Silence) -> Silence:
        """Store a new silence."""
        with self._connection("add a silence", write=True) as connection:
            connection.execute(alert_silence.insert().values(**silence.to_dict()))
        return silence

    def get(self, silence_id: str) -> Silence:
        """The silence with ``silence_id``."""
        with self._connection("read a silence", write=False) as connection:
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
        query = sa.select(alert_silence).order_by(alert_silence.c.starts_at, alert_silence.c.id)
        with self._connection("list silences", write=False) as connection:
            rows = connection.execute(query).mappings().all()
        return [Silence.from_dict(dict(row)) for row in rows]

    def update(self, silence: Silence) -> Silence:
        """Replace the silence with the same id."""
        row = silence.to_dict()
        with self._connection("update a silence", write=True) as connection:
            result = connection.execute(
                alert_silence.update().where(alert_silence.c.id == silence.id).values(**row)
            )
        if result.rowcount == 0:
            raise _missing(silence.id)
        return silence

    def delete(self, silence_id: str) -> None:
        """Remove a silence for good."""
        with self._connection("delete a silence", write=True) as connection:
            result = connection.execute(
                alert_silence.delete().where(alert_silence.c.id == silence_id)
            )
        if result.rowcount == 0:
            raise _missing(silence_id)


class SqlRuleStore(AlertDatabase):
    """The stored rule set (``alert_rule``) and the alert history (``alert_history``)."""

    def load_rules(self) -> RuleRows:
        """The stored rule set, in the order the rules were applied."""
        with self._connection("load rules", write=False) as connection:
            return _rule_rows(connection)

    def change_rules(
        self, change: Callable[[RuleRows], RuleRows | None], *, now: float
    ) -> RuleRows:
        """Replace the stored set by ``change(stored set)`` in one transaction (unless it
        returns None); return the set it was given.

        On PostgreSQL the table is locked first: two processes changing the rule set at once
        would both read the old set and the second would undo the first; the lock makes the
        second wait. (A SQLite writing transaction holds the database's write lock already.)
        """
        with self._connection("store rules", write=True) as connection:
            if self.backend == "postgresql":
                connection.execute(sa.text("LOCK TABLE alert_rule IN EXCLUSIVE MODE"))
            stored = _rule_rows(connection)
            replacement = change(stored)
            if replacement is not None:
                connection.execute(alert_rule.delete())
                if replacement:
                    connection.execute(
                        alert_rule.insert(),
                        [
                            {"name": name, "position": position, "spec": spec, "updated_at": now}
                            for position, (name, spec) in enumerate(replacement)
                        ],
                    )
        return stored

    def append_history(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append state changes (``alert_history`` columns but ``id``), in one transaction."""
        if not rows:
            return
        with self._connection("record alert history", write=True) as connection:
            connection.execute(alert_history.insert(), [dict(row) for row in rows])

    def history(self, limit: int) -> list[dict[str, Any]]:
        """The latest ``limit`` state changes, newest first, as dicts of their columns."""
        query = (
            sa.select(alert_history)
            .order_by(alert_history.c.at.desc(), alert_history.c.id.desc())
            .limit(limit)
        )
        with self._connection("read alert history", write=False) as connection:
            return [dict(row) for row in connection.execute(query).mappings()]


def _rule_rows(connection: sa.Connection) -> RuleRows:
    query = sa.select(alert_rule.c.name, alert_rule.c.spec).order_by(alert_rule.c.position)
    return [(name, spec) for name, spec in connection.execute(query).all()]
