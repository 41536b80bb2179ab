"""The notification outbox and its delivery worker: at-least-once, in order, with backoff.

Every notification is first written to an :class:`Outbox` (in memory here, SQL in
:mod:`watchkeeper.store.outbox`) under an idempotency key, and only then delivered by a
:class:`DeliveryWorker`. The guarantees:

* **at least once** — an item stays ``pending`` until a notifier returned without error; a
  worker that dies mid-delivery leaves a claim that expires after ``lease`` seconds, and the
  next worker (same process or after a restart) delivers it again;
* **idempotency** — the key is sent as the ``Idempotency-Key`` header (HTTP receivers) or the
  ``Message-ID`` (email), so a receiver can drop the rare duplicate;
* **retries** — exponential backoff with jitter, capped (``Backoff``), until the item is older
  than ``give_up_after`` (then ``dead``, kept with its last error);
* **order** — items of one receiver are tried oldest first, and after a failure the rest of that
  receiver's batch waits for the same retry time, so a receiver that was down for minutes gets
  every notification, in order, when it comes back;
* **history** — delivered and dead items are kept (``items()``), not deleted.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from watchkeeper.errors import ConfigError

if TYPE_CHECKING:
    from watchkeeper.alerts.notifiers import Receiver

__all__ = [
    "Backoff",
    "DeliveryReport",
    "DeliveryWorker",
    "InMemoryOutbox",
    "Outbox",
    "OutboxItem",
    "OutboxStatus",
]


class OutboxStatus(StrEnum):
    """Where a notification is in delivery."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True)
class OutboxItem:
    """One notification for one integration of one receiver.

    ``payload`` is the Alertmanager webhook (version 4) message; each notifier renders its own
    wire format from it. ``key`` is the idempotency key.
    """

    key: str
    receiver: str
    integration: int
    payload: Mapping[str, Any]
    created_at: float
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    next_attempt_at: float = 0.0
    delivered_at: float | None = None
    last_error: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", OutboxStatus(self.status))
        object.__setattr__(self, "payload", MappingProxyType(dict(self.payload)))


@runtime_checkable
class Outbox(Protocol):
    """Durable queue of notifications with delivery history."""

    def enqueue(self, items: Sequence[OutboxItem]) -> int:
        """Add items; keys already present are ignored. Returns how many were new."""
        ...

    def claim(self, now: float, *, limit: int, lease: float) -> list[OutboxItem]:
        """Pending items due by ``now``, oldest first, hidden from other claims for ``lease``."""
        ...

    def mark_delivered(self, key: str, *, now: float) -> None:
        """Record a successful delivery."""
        ...

    def mark_failed(
        self, key: str, *, now: float, error: str, next_attempt_at: float | None
    ) -> None:
        """Record a failed attempt; retry at ``next_attempt_at``, or give up (dead) if None."""
        ...

    def release(self, keys: Sequence[str], *, next_attempt_at: float) -> None:
        """Return claimed but untried items to the queue, due at ``next_attempt_at``."""
        ...

    def items(
        self, *, status: OutboxStatus | None = None, receiver: str | None = None, limit: int = 1000
    ) -> list[OutboxItem]:
        """Items (history included), oldest first, optionally filtered."""
        ...


class InMemoryOutbox:
    """An :class:`Outbox` held in a dict (tests and single-process use; not durable)."""

    def __init__(self) -> None:
        self._items: dict[str, OutboxItem] = {}

    def enqueue(self, items: Sequence[OutboxItem]) -> int:
        """Add items; keys already present are ignored."""
        added = 0
        for item in items:
            if item.key not in self._items:
                self._items[item.key] = replace(item, next_attempt_at=item.created_at)
                added += 1
        return added

    def claim(self, now: float, *, limit: int, lease: float) -> list[OutboxItem]:
        """Pending items due by ``now``, oldest first, hidden for ``lease`` seconds."""
        due = sorted(
            (
                item
                for item in self._items.values()
                if item.status is OutboxStatus.PENDING and item.next_attempt_at <= now
            ),
            key=lambda item: (item.created_at, item.key),
        )[:limit]
        for item in due:
            self._items[item.key] = replace(item, next_attempt_at=now + lease)
        return due

    def mark_delivered(self, key: str, *, now: float) -> None:
        """Record a successful delivery."""
        item = self._items[key]
        self._items[key] = replace(
            item, status=OutboxStatus.DELIVERED, attempts=item.attempts + 1, delivered_at=now
        )

    def mark_failed(
        self, key: str, *, now: float, error: str, next_attempt_at: float | None
    ) -> None:
        """Record a failed attempt and when to retry (``None`` = give up)."""
        item = self._items[key]
        self._items[key] = replace(
            item,
            status=OutboxStatus.DEAD if next_attempt_at is None else OutboxStatus.PENDING,
            attempts=item.attempts + 1,
            next_attempt_at=now if next_attempt_at is None else next_attempt_at,
            last_error=error,
        )

    def release(self, keys: Sequence[str], *, next_attempt_at: float) -> None:
        """Return claimed but untried items to the queue."""
        for key in keys:
            self._items[key] = replace(self._items[key], next_attempt_at=next_attempt_at)

    def items(
        self, *, status: OutboxStatus | None = None, receiver: str | None = None, limit: int = 1000
    ) -> list[OutboxItem]:
        """Items (history included), oldest first, optionally filtered."""
        chosen = [
            item
            for item in self._items.values()
            if (status is None or item.status is status)
            and (receiver is None or item.receiver == receiver)
        ]
        chosen.sort(key=lambda item: (item.created_at, item.key))
        return chosen[:limit]


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with "equal jitter".

    Attempt ``n`` (1-based) waits ``d/2 + U(0, d/2)`` with ``d = min(cap, initial · factor^(n-1))``
    — M. Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog (2015). Jitter spreads
    the retries of many items so a receiver coming back is not hit by all of them at once.
    """

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 300.0

    def __post_init__(self) -> None:
        if not (self.initial > 0 and self.factor >= 1 and self.cap >= self.initial):
            raise ConfigError(
                f"backoff needs initial > 0, factor ≥ 1 and cap ≥ initial, got {self}",
                key="backoff",
            )

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt``."""
        exponent = min(max(attempt - 1, 0), 64)
        ceiling = min(self.cap, self.initial * self.factor**exponent)
        return ceiling / 2 + rng.random() * ceiling / 2


@dataclass(frozen=True)
class DeliveryReport:
    """What one :meth:`DeliveryWorker.run_once` did."""

    delivered: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    dead: tuple[str, ...] = ()
    deferred: tuple[str, ...] = ()
    errors: Mapping[str, str] = field(default_factory=dict)


class DeliveryWorker:
    """Delivers due outbox items through the receivers' notifiers.

    Deterministic: ``run_once(now)`` takes the time as an argument and ``seed`` fixes the jitter,
    so tests drive it with a fake clock. A service calls ``run_once(time.time())`` in a loop.
    """

    def __init__(
        self,
        *,
        outbox: Outbox,
        receivers: Mapping[str, Receiver],
        backoff: Backoff | None = None,
        batch_size: int = 100,
        lease: float = 120.0,
        give_up_after: float = 86400.0,
        seed: int | None = None,
    ) -> None:
        if batch_size < 1 or lease <= 0 or give_up_after <= 0:
            raise ConfigError(
                "batch_size must be ≥ 1 and lease, give_up_after > 0; "
                f"got {batch_size}, {lease}, {give_up_after}",
                key="worker",
            )
        self._outbox = outbox
        self._receivers = receivers
        self._backoff = backoff or Backoff()
        self._batch_size = batch_size
        self._lease = lease
        self._give_up_after = give_up_after
        self._rng = random.Random(seed)

    def run_once(self, now: float) -> DeliveryReport:
        """Try every due item once (a failing receiver's remaining items wait with it)."""
        delivered: list[str] = []
        failed: list[str] = []
        dead: list[str] = []
        deferred: list[str] = []
        errors: dict[str, str] = {}
        blocked: dict[str, float] = {}
        for item in self._outbox.claim(now, limit=self._batch_size, lease=self._lease):
            if item.receiver in blocked:
                deferred.append(item.key)
                self._outbox.release([item.key], next_attempt_at=blocked[item.receiver])
                continue
            error = self._attempt(item)
            if error is None:
                self._outbox.mark_delivered(item.key, now=now)
                delivered.append(item.key)
                continue
            errors[item.key] = error
            if now - item.created_at >= self._give_up_after:
                self._outbox.mark_failed(item.key, now=now, error=error, next_attempt_at=None)
                dead.append(item.key)
                continue
            retry_at = now + self._backoff.delay(item.attempts + 1, self._rng)
            self._outbox.mark_failed(item.key, now=now, error=error, next_attempt_at=retry_at)
            failed.append(item.key)
            blocked[item.receiver] = retry_at
        return DeliveryReport(
            delivered=tuple(delivered),
            failed=tuple(failed),
            dead=tuple(dead),
            deferred=tuple(deferred),
            errors=errors,
        )

    def _attempt(self, item: OutboxItem) -> str | None:
        receiver = self._receivers.get(item.receiver)
        if receiver is None:
            return f"no receiver named {item.receiver!r} is configured"
        if not 0 <= item.integration < len(receiver.notifiers):
            return f"receiver {item.receiver!r} has no integration #{item.integration}"
        try:
            receiver.notifiers[item.integration].send(item.payload, idempotency_key=item.key)
        except Exception as error:
            # Any failure, expected (DeliveryError) or not, must leave the item for a retry
            # instead of killing the worker: at-least-once beats a crash loop.
            return f"{type(error).__name__}: {error}"
        return None
