"""Persisted alerting state: alert records, the notification log and silences.

Three small Protocols with in-memory implementations here and SQL implementations in
:mod:`watchkeeper.store.alerts`. What they keep is exactly what a restart needs so that no page
is sent twice and no firing alert is lost:

* :class:`AlertRecord` per fingerprint — state, ``active_at`` (so ``for`` keeps counting from
  the first activation), ``fired_at``, ``resolved_at``, ``keep_firing_since``, last value;
* :class:`NotifyLogEntry` per (group, receiver) — which alerts were last notified as firing
  or resolved and when (Alertmanager's notification log), which decides repeats;
* :class:`Silence` by id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from watchkeeper.alerts.model import AlertState, Fingerprint, Labels
from watchkeeper.alerts.routing import Silence
from watchkeeper.errors import NotFoundError

__all__ = [
    "AlertRecord",
    "AlertStateStore",
    "InMemoryAlertStateStore",
    "InMemorySilenceStore",
    "NotifyLogEntry",
    "SilenceStore",
]


@dataclass(frozen=True)
class AlertRecord:
    """The persisted state of one alert (one rule × one series)."""

    fingerprint: Fingerprint
    rule: str
    labels: Labels
    annotations: Labels
    state: AlertState
    active_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    keep_firing_since: float | None = None
    last_value: float | None = None
    last_sent: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(self, "annotations", MappingProxyType(dict(self.annotations)))
        object.__setattr__(self, "state", AlertState(self.state))

    def evolve(self, **changes: Any) -> AlertRecord:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)

    def to_dict(self, *, muted: bool = False) -> dict[str, Any]:
        """The alert as the API and the SDK show it (``muted``: silenced or inhibited now)."""
        return {
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "state": self.state.value,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "active_at": self.active_at,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
            "value": self.last_value,
            "muted": muted,
        }


@dataclass(frozen=True)
class NotifyLogEntry:
    """What a receiver was last told about a group (Alertmanager's notification log)."""

    group_key: str
    receiver: str
    firing: frozenset[str]
    resolved: frozenset[str]
    notified_at: float
    sequence: int = 0
    group_labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "firing", frozenset(self.firing))
        object.__setattr__(self, "resolved", frozenset(self.resolved))
        object.__setattr__(self, "group_labels", MappingProxyType(dict(self.group_labels)))


@runtime_checkable
class AlertStateStore(Protocol):
    """Keeps alert records and the notification log across restarts."""

    def load_alerts(self) -> list[AlertRecord]:
        """Every stored alert record."""
        ...

    def save_alerts(self, records: Sequence[AlertRecord]) -> None:
        """Insert or replace records (by fingerprint), all or nothing."""
        ...

    def delete_alerts(self, fingerprints: Sequence[Fingerprint]) -> None:
        """Forget records; unknown fingerprints are ignored."""
        ...

    def load_notify_log(self) -> list[NotifyLogEntry]:
        """Every notification-log entry."""
        ...

    def save_notify_entry(self, entry: NotifyLogEntry) -> None:
        """Insert or replace the entry for (group_key, receiver)."""
        ...

    def delete_notify_entries(self, keys: Sequence[tuple[str, str]]) -> None:
        """Forget entries by (group_key, receiver); unknown keys are ignored."""
        ...


@runtime_checkable
class SilenceStore(Protocol):
    """Create, read, update and delete silences."""

    def add(self, silence: Silence) -> Silence:
        """Store a new silence; ConflictError-free: a new id is never taken."""
        ...

    def get(self, silence_id: str) -> Silence:
        """The silence with ``silence_id``; NotFoundError if there is none."""
        ...

    def list(self) -> list[Silence]:
        """Every silence, active, pending or expired, oldest first."""
        ...

    def update(self, silence: Silence) -> Silence:
        """Replace the silence with the same id; NotFoundError if there is none."""
        ...

    def delete(self, silence_id: str) -> None:
        """Remove a silence for good; NotFoundError if there is none."""
        ...


class InMemoryAlertStateStore:
    """An :class:`AlertStateStore` held in dicts (tests, notebooks, single-process use)."""

    def __init__(self) -> None:
        self._alerts: dict[Fingerprint, AlertRecord] = {}
        self._log: dict[tuple[str, str], NotifyLogEntry] = {}

    def load_alerts(self) -> list[AlertRecord]:
        """Every stored alert record."""
        return list(self._alerts.values())

    def save_alerts(self, records: Sequence[AlertRecord]) -> None:
        """Insert or replace records by fingerprint."""
        for record in records:
            self._alerts[record.fingerprint] = record

    def delete_alerts(self, fingerprints: Sequence[Fingerprint]) -> None:
        """Forget records; unknown fingerprints are ignored."""
        for value in fingerprints:
            self._alerts.pop(value, None)

    def load_notify_log(self) -> list[NotifyLogEntry]:
        """Every notification-log entry."""
        return list(self._log.values())

    def save_notify_entry(self, entry: NotifyLogEntry) -> None:
        """Insert or replace the entry for (group_key, receiver)."""
        self._log[(entry.group_key, entry.receiver)] = entry

    def delete_notify_entries(self, keys: Sequence[tuple[str, str]]) -> None:
        """Forget entries; unknown keys are ignored."""
        for key in keys:
            self._log.pop(key, None)


class InMemorySilenceStore:
    """A :class:`SilenceStore` held in a dict."""

    def __init__(self) -> None:
        self._silences: dict[str, Silence] = {}

    def add(self, silence: Silence) -> Silence:
        """Store a new silence."""
        self._silences[silence.id] = silence
        return silence

    def get(self, silence_id: str) -> Silence:
        """The silence with ``silence_id``."""
        try:
            return self._silences[silence_id]
        except KeyError:
            raise _missing(silence_id) from None

    def list(self) -> list[Silence]:
        """Every silence, oldest first."""
        return sorted(self._silences.values(), key=lambda silence: silence.starts_at)

    def update(self, silence: Silence) -> Silence:
        """Replace the silence with the same id."""
        if silence.id not in self._silences:
            raise _missing(silence.id)
        self._silences[silence.id] = silence
        return silence

    def delete(self, silence_id: str) -> None:
        """Remove a silence for good."""
        if self._silences.pop(silence_id, None) is None:
            raise _missing(silence_id)


def _missing(silence_id: str) -> NotFoundError:
    return NotFoundError(
        f"no silence with id {silence_id!r}; list silences to see the ids",
        kind="silence",
        name=silence_id,
    )
