"""One analysis look of a rollout: no-data check, sample-ratio check, a verdict per metric.

:func:`look` reads the arms' windows of the current analysis period (since the weights were
set) and returns what it found with every measurement to store; the controller acts on it.
:func:`period_state` rebuilds, from the period's stored measurements, what the next look
continues from: each metric's previous verdict (``decide``'s running minimum) and how many
sample-ratio checks have spent their alpha.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from watchkeeper.rollout.metrics import (
    SummaryKind,
    WindowSource,
    arm_windows,
    event_count,
    summarize,
    summary_kind,
)
from watchkeeper.rollout.spec import RolloutSpec
from watchkeeper.stats.decision import Condition, Method, MetricDecision, Outcome, decide
from watchkeeper.stats.srm import sample_ratio_mismatch
from watchkeeper.store.rollouts import (
    NewRolloutMeasurement,
    RolloutMeasurementRecord,
    RolloutRecord,
)

__all__ = ["NO_DATA_MEASUREMENT", "SRM_MEASUREMENT", "Finding", "Look", "look", "period_state"]

#: The measurement names that are not metrics: the sample-ratio check and a look without data.
SRM_MEASUREMENT = "sample_ratio"
NO_DATA_MEASUREMENT = "no_data"


class Finding(StrEnum):
    """What a look found: no candidate data, a sample-ratio mismatch, or verdicts."""

    NO_DATA = "no_data"
    MISMATCH = "mismatch"
    JUDGED = "judged"


@dataclass(frozen=True, slots=True)
class Look:
    """One look: its finding, the verdict over the metrics (judged looks: failure when any
    failed, success when all succeeded, else inconclusive), why, and what to store."""

    finding: Finding
    verdict: Outcome | None
    reason: str
    measurements: list[NewRolloutMeasurement] = field(default_factory=list)


def look(
    monitor: WindowSource,
    record: RolloutRecord,
    spec: RolloutSpec,
    now: float,
    *,
    previous: Mapping[str, MetricDecision],
    srm_looks: int,
) -> Look:
    """The look at ``now`` of ``record``'s current analysis period."""
    analysis = spec.analysis
    since, step = record.analysis_since, record.step_index
    arms = {
        version: arm_windows(monitor, record.model, version, since=since, until=now)
        for version in (record.baseline, record.candidate)
    }
    counts = [event_count(arms[record.baseline]), event_count(arms[record.candidate])]
    if counts[1] == 0:
        seen = {"baseline_events": counts[0], "candidate_events": 0, "since": since}
        return Look(
            Finding.NO_DATA,
            None,
            f"no data: version {record.candidate} has had no events since its weight was set",
            [NewRolloutMeasurement(step, now, NO_DATA_MEASUREMENT, "no_data", seen)],
        )
    weights = [record.weights[record.baseline], record.weights[record.candidate]]
    # Alpha spending over the period's looks: look k tests at srm_alpha / (k (k + 1)), and
    # these sum to srm_alpha, so a healthy split is stopped with probability at most srm_alpha
    # however long the period lasts (a fixed 0.001 at every look was not).
    k = srm_looks + 1
    check = sample_ratio_mismatch(counts, weights, alpha=analysis.srm_alpha / (k * (k + 1)))
    srm = NewRolloutMeasurement(
        step, now, SRM_MEASUREMENT, "mismatch" if check.mismatch else "ok", check.to_dict()
    )
    if check.mismatch:
        return Look(
            Finding.MISMATCH,
            None,
            f"sample ratio mismatch: {counts[0]} baseline and {counts[1]} candidate events "
            f"for a {weights[0]}/{weights[1]} split (p = {check.p_value:.2g} < "
            f"{check.alpha:.2g}, look {k}); analysis stopped: check the routing and the "
            "logging, then resume or abort",
            [srm],
        )
    measurements = [srm]
    failed: list[str] = []
    outcomes: list[Outcome] = []
    for metric in analysis.metrics:
        minimum = metric.min_samples or (
            analysis.min_windows
            if summary_kind(metric.signal) is SummaryKind.PER_WINDOW
            else analysis.min_samples
        )
        decision = decide(
            summarize(metric.signal, arms[record.candidate]),
            summarize(metric.signal, arms[record.baseline]),
            condition=metric.condition,
            min_samples=minimum,
            alpha=analysis.alpha,
            previous=previous.get(metric.name),
        )
        outcomes.append(decision.outcome)
        if decision.outcome is Outcome.FAILURE:
            failed.append(f"{metric.name} {decision.reason}")
        values: dict[str, Any] = {"signal": metric.signal, **decision.to_dict()}
        measurements.append(
            NewRolloutMeasurement(step, now, metric.name, decision.outcome.value, values)
        )
    if failed:
        return Look(Finding.JUDGED, Outcome.FAILURE, "; ".join(failed), measurements)
    if all(outcome is Outcome.SUCCESS for outcome in outcomes):
        return Look(Finding.JUDGED, Outcome.SUCCESS, "every metric succeeded", measurements)
    return Look(Finding.JUDGED, Outcome.INCONCLUSIVE, "inconclusive", measurements)


def period_state(
    spec: RolloutSpec, measured: Sequence[RolloutMeasurementRecord]
) -> tuple[dict[str, MetricDecision], int]:
    """Each metric's latest verdict in ``measured`` (the period's measurements, oldest first)
    and the number of sample-ratio checks among them."""
    conditions = {metric.name: metric.condition for metric in spec.analysis.metrics}
    latest: dict[str, MetricDecision] = {}
    checks = 0
    for item in measured:
        checks += item.metric == SRM_MEASUREMENT
        condition = conditions.get(item.metric)
        if condition is not None:
            latest[item.metric] = _decision_from(item.values, condition)
    return latest, checks


_NUMBERS = (
    "candidate_value",
    "baseline_value",
    "effect",
    "ci_low",
    "ci_high",
    "p_value",
    "lift",
    "lift_ci_low",
    "lift_ci_high",
    "p_holds",
    "p_violated",
)


def _decision_from(values: Mapping[str, Any], condition: Condition) -> MetricDecision:
    """A stored measurement back as the verdict ``decide`` continues from."""
    return MetricDecision(
        outcome=Outcome(values["outcome"]),
        reason=str(values["reason"]),
        condition=condition,
        method=Method(values["method"]),
        alpha=float(values["alpha"]),
        min_samples=int(values["min_samples"]),
        candidate_count=int(values["candidate_count"]),
        baseline_count=values.get("baseline_count"),
        **{name: values.get(name) for name in _NUMBERS},
    )
