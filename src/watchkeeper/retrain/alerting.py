"""How a failed retraining run reaches the alert engine: an event sample and its rule.

A failure is an event, not a window signal, so it goes through
:meth:`AlertingEngine.raise_event`: one sample ``retrain_failed`` = 1 labelled with the model,
the run and the reason, evaluated by :data:`FAILED_RULE` (``RetrainFailed``, warning, fires at
once). When a later run of the model ends without failing, 0 is sent for the failed run's
series, which resolves its alert.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.alerts.model import Severity
from watchkeeper.alerts.rules import Op, RuleSpec, ThresholdCondition
from watchkeeper.retrain.runs import RetrainRunRecord

__all__ = ["FAILED_RULE", "FAILED_SIGNAL", "EngineFailureAlerts", "FailureAlerts"]

FAILED_SIGNAL: Final = "retrain_failed"

FAILED_RULE = RuleSpec(
    name="RetrainFailed",
    signal=FAILED_SIGNAL,
    condition=ThresholdCondition(op=Op.GE, threshold=1.0),
    severity=Severity.WARNING,
    annotations={
        "summary": "{{ labels.model }}: retraining run {{ labels.run }} failed: "
        "{{ labels.reason }} (GET /v1/retrain/runs/{{ labels.run }})"
    },
)


class FailureAlerts(Protocol):
    """Where failed runs are reported (:class:`EngineFailureAlerts`: through the engine)."""

    def failed(self, *, at: float, run: RetrainRunRecord, reason: str) -> None:
        """Fire the failure alert of ``run``."""
        ...

    def resolved(self, *, at: float, run: RetrainRunRecord) -> None:
        """Resolve the failure alert of ``run`` (a later run of the model did not fail)."""
        ...


class EngineFailureAlerts:
    """:class:`FailureAlerts` through an :class:`AlertingEngine`.

    ``samples`` gives what the engine's evaluation loop passes (the monitor's latest samples),
    so raising the event leaves ``absent`` rules as the loop would.
    """

    def __init__(
        self, engine: AlertingEngine, *, samples: Callable[[], Iterable[Mapping[str, Any]]]
    ) -> None:
        self._engine = engine
        self._samples = samples

    def failed(self, *, at: float, run: RetrainRunRecord, reason: str) -> None:
        """Fire ``RetrainFailed`` for ``run``."""
        self._send(at, run, 1.0)

    def resolved(self, *, at: float, run: RetrainRunRecord) -> None:
        """Send 0 for ``run``'s series: its firing alert resolves."""
        self._send(at, run, 0.0)

    def _send(self, at: float, run: RetrainRunRecord, value: float) -> None:
        labels = {
            "model": run.model,
            "signal": FAILED_SIGNAL,
            "run": str(run.id),
            # A label, so the notification says why (the same for every sample of the run).
            "reason": (run.error or run.reason)[:200],
        }
        event = {"labels": labels, "value": value, "timestamp": at}
        self._engine.raise_event(at, event, rule=FAILED_RULE, samples=list(self._samples()))
