"""One analysis look of a rollout: no-data check, sample-ratio check, a verdict per metric.

:func:`look` reads the arms' windows of the current analysis period (since the weights were
set) and returns what it found with every measurement to store; the controller acts on it.
The sample-ratio check counts the whole period; each metric is judged on a recent range of it,
its ``lookback`` back from the look (:func:`judged_range`), so a degradation after hours of
healthy traffic at one weight is weighed against recent traffic only. :func:`period_state`
rebuilds, from the period's stored measurements, what the next look continues from: each
metric's previous verdict with the start of the range it judged (``decide``'s running minimum
carries on only over the same start, where each look's data contain the previous look's), and
how many sample-ratio checks have spent their alpha.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from watchkeeper.rollout.metrics import (
    SummaryKind,
    Window,
    WindowSource,
    arm_windows,
    event_count,
    summarize,
    summary_kind,
)
from watchkeeper.rollout.spec import MetricSpec, RolloutSpec
from watchkeeper.stats.decision import (
    Condition,
    MarginKind,
    Method,
    MetricDecision,
    Outcome,
    decide,
)
from watchkeeper.stats.experiments import ArmSummary, ProportionSummary
from watchkeeper.stats.srm import sample_ratio_mismatch
from watchkeeper.store.rollouts import (
    NewRolloutMeasurement,
    RolloutMeasurementRecord,
    RolloutRecord,
)

__all__ = [
    "NO_DATA_MEASUREMENT",
    "SRM_MEASUREMENT",
    "Finding",
    "JudgedRange",
    "Look",
    "PreviousVerdict",
    "judged_range",
    "look",
    "period_state",
]

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


@dataclass(frozen=True, slots=True)
class PreviousVerdict:
    """A metric's verdict at an earlier look of the period, and where its range started
    (``None``: a measurement stored before ranges were recorded, which judged the period)."""

    range_start: float | None
    decision: MetricDecision


@dataclass(frozen=True, slots=True)
class JudgedRange:
    """The range a metric's look judges: its start and the arms' summaries over it."""

    start: float
    candidate: ArmSummary
    baseline: ArmSummary


def look(
    monitor: WindowSource,
    record: RolloutRecord,
    spec: RolloutSpec,
    now: float,
    *,
    previous: Mapping[str, PreviousVerdict],
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
        judged = judged_range(
            metric,
            arms[record.candidate],
            arms[record.baseline],
            since=since,
            now=now,
            lookback=analysis.lookback_of(metric),
            min_samples=minimum,
        )
        earlier = previous.get(metric.name)
        same_range = earlier is not None and (
            (since if earlier.range_start is None else earlier.range_start) == judged.start
        )
        decision = decide(
            judged.candidate,
            judged.baseline,
            condition=metric.condition,
            min_samples=minimum,
            alpha=analysis.alpha,
            # Only data that contain the previous look's may carry its running minimum: over a
            # range that moved on, the previous evidence is about traffic no longer judged.
            previous=earlier.decision if earlier is not None and same_range else None,
        )
        outcomes.append(decision.outcome)
        if decision.outcome is Outcome.FAILURE:
            failed.append(f"{metric.name} {decision.reason}")
        values: dict[str, Any] = {
            "signal": metric.signal,
            "range_start": judged.start,
            **decision.to_dict(),
        }
        measurements.append(
            NewRolloutMeasurement(step, now, metric.name, decision.outcome.value, values)
        )
    if failed:
        return Look(Finding.JUDGED, Outcome.FAILURE, "; ".join(failed), measurements)
    if all(outcome is Outcome.SUCCESS for outcome in outcomes):
        return Look(Finding.JUDGED, Outcome.SUCCESS, "every metric succeeded", measurements)
    return Look(Finding.JUDGED, Outcome.INCONCLUSIVE, "inconclusive", measurements)


def judged_range(
    metric: MetricSpec,
    candidate: Sequence[Window],
    baseline: Sequence[Window],
    *,
    since: float,
    now: float,
    lookback: float,
    min_samples: int,
) -> JudgedRange:
    """The recent range of the period ``[since, now)`` that ``metric``'s look judges.

    The arms' windows starting at or after ``now - lookback``; when an arm the condition uses
    has fewer than ``min_samples`` there (low traffic, labels still on their way), the range
    doubles back until it has them, and at most it is the whole period — where too few
    samples leave the verdict inconclusive, as they always did. The range is chosen on counts
    alone, never on the metric's values, so choosing it does not bias the verdict.
    """
    uses_baseline = metric.condition.kind is not MarginKind.THRESHOLD
    span = lookback
    while now - span > since:
        start = now - span
        recent = _summaries(metric.signal, candidate, baseline, start)
        if all(_enough(arm, min_samples) for arm in recent[: 2 if uses_baseline else 1]):
            return JudgedRange(start, *recent)
        span *= 2
    return JudgedRange(since, *_summaries(metric.signal, candidate, baseline, since))


def _summaries(
    signal: str, candidate: Sequence[Window], baseline: Sequence[Window], start: float
) -> tuple[ArmSummary, ArmSummary]:
    return (
        summarize(signal, [window for window in candidate if window["start"] >= start]),
        summarize(signal, [window for window in baseline if window["start"] >= start]),
    )


def _enough(arm: ArmSummary, min_samples: int) -> bool:
    """As many samples as ``decide`` needs to judge: the minimum, and two values for a mean."""
    return arm.count >= max(min_samples, 1 if isinstance(arm, ProportionSummary) else 2)


def period_state(
    spec: RolloutSpec, measured: Sequence[RolloutMeasurementRecord]
) -> tuple[dict[str, PreviousVerdict], int]:
    """Each metric's latest verdict in ``measured`` (the period's measurements, oldest first)
    with the start of its range, and the number of sample-ratio checks among them."""
    conditions = {metric.name: metric.condition for metric in spec.analysis.metrics}
    latest: dict[str, PreviousVerdict] = {}
    checks = 0
    for item in measured:
        checks += item.metric == SRM_MEASUREMENT
        condition = conditions.get(item.metric)
        if condition is not None:
            start = item.values.get("range_start")
            latest[item.metric] = PreviousVerdict(
                None if start is None else float(start), _decision_from(item.values, condition)
            )
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
