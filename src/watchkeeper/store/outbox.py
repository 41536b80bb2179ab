"""The notification outbox on SQL: several delivery workers may share it.

The ``alert_outbox`` table lives in :mod:`watchkeeper.store.tables`; transactions, migrations
and error translation are those of :class:`~watchkeeper.store.alerts.AlertDatabase`. Items are
claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (concurrent workers take
different rows without waiting) and under SQLite's single write lock, with a guarded
``UPDATE … RETURNING`` on both so an item is only ever handed to one worker per lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from watchkeeper.alerts.outbox import OutboxItem, OutboxStatus
from watchkeeper.store.alerts import AlertDatabase
from watchkeeper.store.tables import alert_outbox

__all__ = ["SqlOutbox"]


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


class SqlOutbox(AlertDatabase):
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
            self._insert(alert_outbox)
            .on_conflict_do_nothing(index_elements=[alert_outbox.c.key])
            .returning(alert_outbox.c.key)
        )
        with self._connection("enqueue notifications", write=True) as connection:
            # Key order, so concurrent enqueues of overlapping keys cannot deadlock.
            added = connection.execute(insert, [rows[key] for key in sorted(rows)]).scalars()
            return len(added.all())

    def claim(self, now: float, *, limit: int, lease: float) -> list[OutboxItem]:
        """Pending items due by ``now``, oldest first, hidden from other claims for ``lease``."""
        due = (alert_outbox.c.status == OutboxStatus.PENDING.value) & (
            alert_outbox.c.next_attempt_at <= now
        )
        with self._connection("claim notifications", write=True) as connection:
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
        with self._connection("mark a notification delivered", write=True) as connection:
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
        with self._connection("record a failed delivery", write=True) as connection:
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
        with self._connection("release notifications", write=True) as connection:
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
        with self._connection("list notifications", write=False) as connection:
            rows = connection.execute(query.limit(limit)).mappings().all()
        return [_item(row) for row in rows]
