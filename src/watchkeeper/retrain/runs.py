"""Where a retraining run is, why it started, and what an executor is asked to do.

A run's life (``status`` of :class:`~watchkeeper.store.retrain_runs.RetrainRunRecord`)::

    queued ──> running ──> registered ──> rolling_out          (automatic mode)
       ^          │   │        └───────> awaiting_approval ──> rolling_out  (manual mode)
       │          │   └──> rejected                            (the gate said no)
       │          ├──> awaiting_artifact ──> running ...       (an orchestrator trains)
       └─ retry ──┴──> failed                                  (retries exhausted)
    running ── server restart ──> interrupted ──> queued (once; a second time it stays)

``registered`` is final only when no canary could start (no champion, or a rollout of the model
already in progress); the run's ``reason`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from watchkeeper.store.retrain_runs import ACTIVE_RUN_STATUSES, RetrainRunRecord

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "SETTLED_STATUSES",
    "RetrainJob",
    "RetrainRunRecord",
    "RunStatus",
    "TriggerKind",
]


class RunStatus(StrEnum):
    """Where a run is (the pipeline's own outcome is one of registered, rejected, failed)."""

    QUEUED = "queued"  # waiting for a worker (or for its retry's backoff)
    RUNNING = "running"  # an executor is assembling data, training, gating
    AWAITING_ARTIFACT = "awaiting_artifact"  # handed to an orchestrator; the artifact comes back
    AWAITING_APPROVAL = "awaiting_approval"  # registered; manual mode waits for approve
    ROLLING_OUT = "rolling_out"  # registered and in a canary rollout (``rollout_id``)
    REGISTERED = "registered"  # the candidate passed the gate and is a new version
    REJECTED = "rejected"  # the candidate trained but did not pass the gate
    FAILED = "failed"  # data checks failed, or training/scoring failed on every attempt
    INTERRUPTED = "interrupted"  # a restart found it running, and its retry was interrupted too


#: Statuses a run does not leave by itself: over, or waiting for a person or an orchestrator.
SETTLED_STATUSES: Final = frozenset(set(RunStatus) - {RunStatus.QUEUED, RunStatus.RUNNING})

assert set(ACTIVE_RUN_STATUSES) <= set(RunStatus)


class TriggerKind(StrEnum):
    """Why a run started."""

    ALERT = "alert"  # a rule with ``action: retrain`` started firing
    SCHEDULE = "schedule"  # the model's ``retrain.schedule``
    MANUAL = "manual"  # the API or the CLI


@dataclass(frozen=True, slots=True)
class RetrainJob:
    """What an executor is asked to run: one attempt of one run.

    ``config`` is the model's ``retrain:`` configuration (:class:`RetrainConfig.to_dict`
    form, the executor's options under ``executor``); the data are the model's labelled events
    predicted in ``[start, end)`` (``as_of − lookback``, ``as_of − label_delay``), the same at
    every attempt. ``artifact`` (``sha256`` in the artifact store, ``flavor``, ``trusted``) is
    set when the candidate was trained elsewhere and posted back: the executor then gates and
    registers it without training. ``clock_offset`` is the server's clock minus the wall clock
    when the job was handed over: the worker stamps what it registers with the wall clock plus
    it, so a server on a simulated clock (a replay, the demo) gets versions registered at its
    own time.
    """

    run_id: int
    model: str
    attempt: int
    as_of: float
    trigger: Mapping[str, Any]
    config: Mapping[str, Any]
    artifact: Mapping[str, Any] | None = None
    clock_offset: float = 0.0

    @property
    def start(self) -> float:
        """The start of the data's time range."""
        return self.as_of - float(self.config["lookback"])

    @property
    def end(self) -> float:
        """The end of the data's time range (only mature labels before it)."""
        return self.as_of - float(self.config["label_delay"])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what a webhook executor posts)."""
        return {
            "run_id": self.run_id,
            "model": self.model,
            "attempt": self.attempt,
            "as_of": self.as_of,
            "start": self.start,
            "end": self.end,
            "trigger": dict(self.trigger),
            "config": dict(self.config),
            "artifact_url": f"/v1/retrain/runs/{self.run_id}/artifact",
        }
