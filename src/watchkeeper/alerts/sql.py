"""SQL implementations of the alerting stores: alert state, notification log, silences, outbox.

SQLAlchemy Core on its own :data:`alerts_metadata` (tables prefixed ``alert_``), created with
``create_all`` when a store opens. Only portable constructs are used — ``String``/``Text``/
``Integer``/``Double``/``JSON`` columns, plain ``SELECT``/``INSERT``/``UPDATE``/``DELETE``,
upserts as delete-then-insert inside one transaction, and optimistic ``UPDATE ... WHERE`` for
claiming outbox items — so the same code runs on SQLite and PostgreSQL. Times are epoch
seconds in ``Double`` columns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from watchkeeper.alerts.model import AlertState, Fingerprint
from watchkeeper.alerts.outbox import OutboxItem, OutboxStatus
from watchkeeper.alerts.routing import Silence
from watchkeeper.alerts.state import AlertRecord, NotifyLogEntry, _missing
from watchkeeper.errors import StoreError

__all__ = [
    "SqlAlertStateStore",
    "SqlOutbox",
    "SqlSilenceStore",
    "alerts_metadata",
    "create_alerts_engine",
]

alerts_metadata = sa.MetaData()

alert_state = sa.Table(
    "alert_state",
    alerts_metadata,
    sa.Column("fingerprint", sa.String(32), primary_key=True),
    sa.Column("rule", sa.String(200), nullable=False, index=True),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("annotations", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
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
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("receiver", sa.String(200), nullable=False),
    sa.Column("firing", sa.JSON, nullable=False),
    sa.Column("resolved", sa.JSON, nullable=False),
    sa.Column("notified_at", sa.Double, nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("group_labels", sa.JSON, nullable=False),
)

alert_silence = sa.Table(
    "alert_silence",
    alerts_metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("matchers", sa.JSON, nullable=False),
    sa.Column("starts_at", sa.Double, nullable=False),
    sa.Column("ends_at", sa.Double, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

alert_outbox = sa.Table(
    "alert_outbox",
    alerts_metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("receiver", sa.String(200), nullable=False),
    sa.Column("integration", sa.Integer, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Double, nullable=False),
    sa.Column("delivered_at", sa.Double),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_alert_outbox_due", "status", "next_attempt_at"),
)


def create_alerts_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite files get WAL and a busy timeout for several processes."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


class _SqlStore:
    def __init__(self, *, engine: sa.Engine | str) -> None:
        self.engine = create_alerts_engine(engine) if isinstance(engine, str) else engine
        self.backend = self.engine.dialect.name
        with self._errors("create tables"):
            alerts_metadata.create_all(self.engine)

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
    def _transaction(self, action: str) -> Iterator[sa.Connection]:
        with self._errors(action), self.engine.begin() as connection:
            yield connection


class SqlAlertStateStore(_SqlStore):
    """:class:`~watchkeeper.alerts.state.AlertStateStore` on SQL tables."""

    def load_alerts(self) -> list[AlertRecord]:
        """Every stored alert record."""
        with self._transaction("load alerts") as connection:
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
        rows = [
            {
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
        ]
        with self._transaction("save alerts") as connection:
            connection.execute(
                alert_state.delete().where(
                    alert_state.c.fingerprint.in_([row["fingerprint"] for row in rows])
                )
            )
            connection.execute(alert_state.insert(), rows)

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
        with self._transaction("load the notification log") as connection:
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
        entry_id = _log_id(entry.group_key, entry.receiver)
        with self._transaction("save the notification log") as connection:
            connection.execute(alert_notify_log.delete().where(alert_notify_log.c.id == entry_id))
            connection.execute(
                alert_notify_log.insert().values(
                    id=entry_id,
                    group_key=entry.group_key,
                    receiver=entry.receiver,
                    firing=sorted(entry.firing),
                    resolved=sorted(entry.resolved),
                    notified_at=entry.notified_at,
                    sequence=entry.sequence,
                    group_labels=dict(entry.group_labels),
                )
            )

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
        with self._transaction("read a silence") as connection:
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
        with self._transaction("list silences") as connection:
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
        for _ in range(2):
            try:
                with self._errors("enqueue notifications"), self.engine.begin() as connection:
                    present = set(
                        connection.execute(
                            sa.select(alert_outbox.c.key).where(alert_outbox.c.key.in_(list(rows)))
                        ).scalars()
                    )
                    new_rows = [row for key, row in rows.items() if key not in present]
                    if new_rows:
                        connection.execute(alert_outbox.insert(), new_rows)
                    return len(new_rows)
            except StoreError as error:
                # Another writer inserted one of the keys between our SELECT and INSERT: the
                # second pass sees it and skips it.
                if not isinstance(error.__cause__, IntegrityError):
                    raise
        raise StoreError("could not enqueue notifications after a retry", backend=self.backend)

    def claim(self, now: float, *, limit: int, lease: float) -> list[OutboxItem]:
        """Pending items due by ``now``, oldest first, hidden from other claims for ``lease``."""
        claimed: list[OutboxItem] = []
        with self._transaction("claim notifications") as connection:
            rows = (
                connection.execute(
                    sa.select(alert_outbox)
                    .where(
                        alert_outbox.c.status == OutboxStatus.PENDING.value,
                        alert_outbox.c.next_attempt_at <= now,
                    )
                    .order_by(alert_outbox.c.created_at, alert_outbox.c.key)
                    .limit(limit)
                )
                .mappings()
                .all()
            )
            for row in rows:
                # Optimistic claim: only one worker's UPDATE matches the old due time.
                result = connection.execute(
                    alert_outbox.update()
                    .where(
                        alert_outbox.c.key == row["key"],
                        alert_outbox.c.status == OutboxStatus.PENDING.value,
                        alert_outbox.c.next_attempt_at == row["next_attempt_at"],
                    )
                    .values(next_attempt_at=now + lease)
                )
                if result.rowcount == 1:
                    claimed.append(_item(row))
        return claimed

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
        with self._transaction("list notifications") as connection:
            rows = connection.execute(query.limit(limit)).mappings().all()
        return [_item(row) for row in rows]
