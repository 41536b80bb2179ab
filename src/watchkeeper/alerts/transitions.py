"""State changes of alerts between two evaluations, as the alert history keeps them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from watchkeeper.alerts.model import Alert, AlertState, Fingerprint
from watchkeeper.alerts.outbox import OutboxItem
from watchkeeper.alerts.state import AlertRecord

__all__ = ["AlertTransition", "EvaluationReport", "state_changes"]


@dataclass(frozen=True)
class AlertTransition:
    """One state change of one alert, as kept in the alert history."""

    fingerprint: Fingerprint
    rule: str
    labels: Mapping[str, str]
    previous: AlertState
    state: AlertState
    at: float
    value: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "labels": dict(self.labels),
            "previous": self.previous.value,
            "state": self.state.value,
            "at": self.at,
            "value": self.value,
        }


@dataclass(frozen=True)
class EvaluationReport:
    """What one :meth:`AlertingEngine.evaluate` did."""

    alerts: tuple[Alert, ...]
    transitions: tuple[AlertTransition, ...]
    notifications: tuple[OutboxItem, ...]


def state_changes(
    before: Mapping[Fingerprint, AlertRecord],
    after: Mapping[Fingerprint, AlertRecord],
    now: float,
    observed: Callable[[Fingerprint], float | None],
) -> list[AlertTransition]:
    """State changes between two evaluations; a dropped pending alert carries the value that
    ended it (``observed``), not the one that started it."""
    changes: list[AlertTransition] = []
    for fp, record in after.items():
        old = before.get(fp)
        previous = AlertState.INACTIVE if old is None else old.state
        if previous is not record.state:
            changes.append(
                AlertTransition(
                    fingerprint=fp,
                    rule=record.rule,
                    labels=record.labels,
                    previous=previous,
                    state=record.state,
                    at=now,
                    value=record.last_value,
                )
            )
    for fp, old in before.items():
        # A pending alert whose condition went false is dropped; resolved ones just expire.
        if fp not in after and old.state is AlertState.PENDING:
            changes.append(
                AlertTransition(
                    fingerprint=fp,
                    rule=old.rule,
                    labels=old.labels,
                    previous=AlertState.PENDING,
                    state=AlertState.INACTIVE,
                    at=now,
                    value=observed(fp),
                )
            )
    return changes
