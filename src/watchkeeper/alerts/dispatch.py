"""The dispatcher: routes alerts into groups and writes due notifications to the outbox.

Alertmanager's pipeline (https://prometheus.io/docs/alerting/latest/alertmanager/), driven by
an explicit clock: ``put(alerts, now)`` routes each alert through the route tree into groups
(one per route × values of ``group_by``); ``tick(now)`` flushes every group whose timer is due.

* A new group first flushes after ``group_wait`` (collect alerts that start together), then
  every ``group_interval``.
* At a flush, silenced and inhibited alerts are left out, then the notification log decides
  (Alertmanager's ``DedupStage``): notify when an alert is firing that the receiver was not
  told about, when all alerts resolved after a firing notification, when new alerts resolved
  and the receiver has ``send_resolved``, or when ``repeat_interval`` passed since the last
  notification — otherwise stay quiet.
* The notification is written to the :class:`Outbox` first and the notification log second;
  the outbox key is derived from the log's sequence number, so a crash between the two writes
  re-creates the same key and the outbox ignores the duplicate.
* A firing alert that is not reported again within ``resolve_timeout`` counts as resolved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from watchkeeper.alerts.model import Alert, AlertState, format_timestamp
from watchkeeper.alerts.notifiers import Receiver
from watchkeeper.alerts.outbox import Outbox, OutboxItem
from watchkeeper.alerts.routing import InhibitRule, Route, RouteMatch, inhibited_fingerprints
from watchkeeper.alerts.state import (
    AlertStateStore,
    InMemoryAlertStateStore,
    InMemorySilenceStore,
    NotifyLogEntry,
    SilenceStore,
)
from watchkeeper.errors import ConfigError

__all__ = ["Dispatcher", "GroupSnapshot"]


@dataclass
class _Group:
    key: str
    route: RouteMatch
    labels: dict[str, str]
    next_flush: float
    alerts: dict[str, Alert] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupSnapshot:
    """A read-only view of one aggregation group (for the API and dashboard)."""

    key: str
    receiver: str
    labels: Mapping[str, str]
    next_flush: float
    fingerprints: tuple[str, ...]


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {name: value for name, value in common.items() if other.get(name) == value}
    return common


class Dispatcher:
    """Groups, silences, inhibits and deduplicates alerts, then enqueues notifications."""

    def __init__(
        self,
        *,
        route: Route,
        receivers: Mapping[str, Receiver],
        outbox: Outbox,
        state: AlertStateStore | None = None,
        silences: SilenceStore | None = None,
        inhibit_rules: Sequence[InhibitRule] = (),
        external_url: str = "",
        resolve_timeout: float = 300.0,
        notify_log_retention: float = 5 * 86400.0,
    ) -> None:
        missing = sorted(route.receivers() - set(receivers))
        if route.receiver is None or missing:
            raise ConfigError(
                f"route: receivers {missing or ['<root receiver>']} are not configured; "
                "define them under receivers",
                key="route",
            )
        self.route = route
        self.receivers = dict(receivers)
        self.outbox = outbox
        self.state: AlertStateStore = state if state is not None else InMemoryAlertStateStore()
        self.silences: SilenceStore = silences if silences is not None else InMemorySilenceStore()
        self.inhibit_rules = tuple(inhibit_rules)
        self.external_url = external_url
        self.resolve_timeout = resolve_timeout
        self.notify_log_retention = notify_log_retention
        self._groups: dict[str, _Group] = {}
        self._log: dict[tuple[str, str], NotifyLogEntry] = {
            (entry.group_key, entry.receiver): entry for entry in self.state.load_notify_log()
        }

    def put(self, alerts: Iterable[Alert], now: float) -> None:
        """Route alerts into their groups (a group created now flushes after group_wait)."""
        for alert in alerts:
            for match in self.route.match(alert.labels):
                key = match.group_key(alert.labels)
                group = self._groups.get(key)
                if group is None:
                    group = _Group(
                        key=key,
                        route=match,
                        labels=match.group_labels(alert.labels),
                        next_flush=now + match.group_wait,
                    )
                    self._groups[key] = group
                group.alerts[alert.fingerprint] = alert

    def groups(self) -> list[GroupSnapshot]:
        """The current aggregation groups."""
        return [
            GroupSnapshot(
                key=group.key,
                receiver=group.route.receiver,
                labels=dict(group.labels),
                next_flush=group.next_flush,
                fingerprints=tuple(sorted(group.alerts)),
            )
            for group in self._groups.values()
        ]

    def muted(self, now: float) -> set[str]:
        """Fingerprints currently silenced or inhibited."""
        current = {
            fp: alert
            for group in self._groups.values()
            for fp, alert in self._effective(group, now).items()
        }
        muted = inhibited_fingerprints(self.inhibit_rules, current.values(), now)
        active_silences = [silence for silence in self.silences.list() if silence.is_active(now)]
        for fp, alert in current.items():
            if any(silence.mutes(alert.labels, now) for silence in active_silences):
                muted.add(fp)
        return muted

    def tick(self, now: float) -> list[OutboxItem]:
        """Flush every due group; return the outbox items written."""
        due = [group for group in self._groups.values() if group.next_flush <= now]
        written: list[OutboxItem] = []
        if due:
            muted = self.muted(now)
            for group in due:
                written.extend(self._flush(group, now, muted))
        self._prune_log(now)
        return written

    def _effective(self, group: _Group, now: float) -> dict[str, Alert]:
        alerts: dict[str, Alert] = {}
        for fp, alert in group.alerts.items():
            stale_at = alert.updated_at + self.resolve_timeout
            if alert.ends_at is None and stale_at <= now:
                # The evaluator stopped reporting it (rule deleted, evaluator down): resolve.
                alert = replace(alert, state=AlertState.RESOLVED, ends_at=stale_at)
            alerts[fp] = alert
        return alerts

    def _flush(self, group: _Group, now: float, muted: set[str]) -> list[OutboxItem]:
        route = group.route
        group.next_flush = now + route.group_interval
        alerts = self._effective(group, now)
        firing = {
            fp: alert
            for fp, alert in alerts.items()
            if not alert.is_resolved_at(now) and fp not in muted
        }
        resolved = {fp: alert for fp, alert in alerts.items() if alert.is_resolved_at(now)}
        receiver = self.receivers[route.receiver]
        written: list[OutboxItem] = []
        if firing or resolved:
            entry = self._log.get((group.key, receiver.name))
            if self._needs_update(entry, set(firing), set(resolved), receiver, route, now):
                written = self._notify(group, entry, firing, resolved, receiver, now)
        for fp in resolved:
            del group.alerts[fp]
        if not group.alerts:
            del self._groups[group.key]
        return written

    @staticmethod
    def _needs_update(
        entry: NotifyLogEntry | None,
        firing: set[str],
        resolved: set[str],
        receiver: Receiver,
        route: RouteMatch,
        now: float,
    ) -> bool:
        if entry is None:
            return bool(firing)
        if not firing <= entry.firing:
            return True
        if not firing:
            # All resolved: tell the receiver only if it had heard about them firing.
            return bool(entry.firing)
        if receiver.send_resolved and not resolved <= entry.resolved:
            return True
        return entry.notified_at <= now - route.repeat_interval

    def _notify(
        self,
        group: _Group,
        entry: NotifyLogEntry | None,
        firing: Mapping[str, Alert],
        resolved: Mapping[str, Alert],
        receiver: Receiver,
        now: float,
    ) -> list[OutboxItem]:
        sequence = 0 if entry is None else entry.sequence + 1
        shown = list(firing.values())
        if receiver.send_resolved:
            shown += list(resolved.values())
        items: list[OutboxItem] = []
        if shown:
            message = self._message(group, receiver.name, shown, bool(firing), now)
            base = hashlib.sha256(
                "\n".join(
                    [
                        receiver.name,
                        group.key,
                        str(sequence),
                        ",".join(sorted(firing)),
                        ",".join(sorted(resolved)),
                    ]
                ).encode()
            ).hexdigest()[:32]
            items = [
                OutboxItem(
                    key=f"{base}-{index}",
                    receiver=receiver.name,
                    integration=index,
                    payload=message,
                    created_at=now,
                )
                for index in range(len(receiver.notifiers))
            ]
            self.outbox.enqueue(items)
        updated = NotifyLogEntry(
            group_key=group.key,
            receiver=receiver.name,
            firing=frozenset(firing),
            resolved=frozenset(resolved),
            notified_at=now,
            sequence=sequence,
            group_labels=group.labels,
        )
        self.state.save_notify_entry(updated)
        self._log[(group.key, receiver.name)] = updated
        return items

    def _message(
        self, group: _Group, receiver: str, alerts: list[Alert], firing: bool, now: float
    ) -> dict[str, object]:
        """Alertmanager webhook payload, version 4."""
        alerts = sorted(alerts, key=lambda alert: (alert.starts_at, alert.fingerprint))
        return {
            "version": "4",
            "groupKey": group.key,
            "truncatedAlerts": 0,
            "status": "firing" if firing else "resolved",
            "receiver": receiver,
            "groupLabels": dict(group.labels),
            "commonLabels": _common([alert.labels for alert in alerts]),
            "commonAnnotations": _common([alert.annotations for alert in alerts]),
            "externalURL": self.external_url,
            "alerts": [
                {
                    "status": "resolved" if alert.is_resolved_at(now) else "firing",
                    "labels": dict(alert.labels),
                    "annotations": dict(alert.annotations),
                    "startsAt": format_timestamp(alert.starts_at),
                    "endsAt": format_timestamp(
                        alert.ends_at if alert.is_resolved_at(now) else None
                    ),
                    "generatorURL": alert.generator_url,
                    "fingerprint": alert.fingerprint,
                }
                for alert in alerts
            ],
        }

    def _prune_log(self, now: float) -> None:
        stale = [
            key
            for key, entry in self._log.items()
            if entry.notified_at < now - self.notify_log_retention and key[0] not in self._groups
        ]
        if stale:
            self.state.delete_notify_entries(stale)
            for key in stale:
                del self._log[key]
