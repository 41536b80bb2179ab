"""How a rollback reaches the alert engine: an event sample and the rule that fires on it.

A rollback is an event, not a window signal, so it goes through
:meth:`AlertingEngine.raise_event`: one sample ``rollout_rollback`` = 1 labelled with the
model and the candidate version, evaluated by the rule :data:`ROLLBACK_RULE`
(``RolloutRolledBack``, critical, fires at once). The next rollout of that model and candidate
sends 0 for the same series, which resolves the alert.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.alerts.model import Severity
from watchkeeper.alerts.rules import Op, RuleSpec, ThresholdCondition

__all__ = ["ROLLBACK_RULE", "ROLLBACK_SIGNAL", "EngineAlerts", "RollbackAlerts"]

ROLLBACK_SIGNAL = "rollout_rollback"

ROLLBACK_RULE = RuleSpec(
    name="RolloutRolledBack",
    signal=ROLLBACK_SIGNAL,
    condition=ThresholdCondition(op=Op.GE, threshold=1.0),
    severity=Severity.CRITICAL,
    annotations={
        "summary": "{{ labels.model }}: the rollout of version {{ labels.version }} was rolled "
        "back; all traffic is on the baseline again (see its history: "
        "GET /v1/rollouts?model={{ labels.model }})"
    },
)


class RollbackAlerts(Protocol):
    """Where the controller reports rollbacks (and the start of a rollout, which clears one)."""

    def rollback(self, *, at: float, model: str, candidate: str, reason: str) -> None:
        """Raise the rollback alert of ``model``'s ``candidate``."""
        ...

    def cleared(self, *, at: float, model: str, candidate: str) -> None:
        """A new rollout of ``candidate`` started: resolve its earlier rollback alert."""
        ...


class EngineAlerts:
    """:class:`RollbackAlerts` through an :class:`AlertingEngine`.

    ``samples`` gives what the engine's evaluation loop passes (the monitor's latest samples),
    so raising the event leaves ``absent`` rules as the loop would (with none, a firing
    ``absent`` alert would resolve).
    """

    def __init__(
        self, engine: AlertingEngine, *, samples: Callable[[], Iterable[Mapping[str, Any]]]
    ) -> None:
        self._engine = engine
        self._samples = samples

    def rollback(self, *, at: float, model: str, candidate: str, reason: str) -> None:
        """Fire ``RolloutRolledBack`` for the candidate."""
        self._send(at, model, candidate, 1.0)

    def cleared(self, *, at: float, model: str, candidate: str) -> None:
        """Send 0 for the candidate's series: a firing rollback alert resolves."""
        self._send(at, model, candidate, 0.0)

    def _send(self, at: float, model: str, candidate: str, value: float) -> None:
        labels = {"model": model, "version": candidate, "signal": ROLLBACK_SIGNAL}
        event = {"labels": labels, "value": value, "timestamp": at}
        self._engine.raise_event(at, event, rule=ROLLBACK_RULE, samples=list(self._samples()))
