"""An experiment's results: for each metric, each arm's estimate and every comparison with the
control, behind a sample-ratio check.

:func:`analyse` reads nothing but the arms' windows (the monitor's windows of each arm's version
since the experiment started, :func:`watchkeeper.rollout.metrics.arm_windows`) and computes
everything from them each time it is called, so the results are reproducible from the stored
events and outcomes and nothing is cached as truth:

- the **sample-ratio check** (:func:`~watchkeeper.stats.srm.sample_ratio_mismatch`) of the
  arms' event counts against their weights; a mismatch **stops the verdict** of every metric
  (assignment or logging is broken; no comparison can be trusted);
- per metric and arm, the estimate and its ``n`` (:func:`~watchkeeper.rollout.metrics.summarize`:
  a rate, a pooled mean, or one value per window);
- per metric and treatment arm, against the control: the fixed-horizon difference with its
  interval and p-value and the relative lift with its delta-method interval
  (:func:`~watchkeeper.stats.experiments.compare`), and the always-valid p-value and confidence
  sequence (:func:`~watchkeeper.stats.sequential.sequential_compare`) taken as if someone had
  looked after every window: the running minimum of the p-value and the intersection of the
  intervals over those looks;
- the verdict, by the spec's ``method``: significant when its p-value is below ``alpha``, then
  ``better`` or ``worse`` by the metric's direction (``different`` when it has none).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from watchkeeper.rollout.experiment_spec import ArmSpec, ExperimentMetric, ExperimentSpec
from watchkeeper.rollout.metrics import SummaryKind, Window, event_count, summarize
from watchkeeper.stats.decision import Direction, Method
from watchkeeper.stats.experiments import ArmSummary, MeanSummary, ProportionSummary, compare
from watchkeeper.stats.sequential import SequentialComparison, sequential_compare
from watchkeeper.stats.srm import SampleRatioCheck, sample_ratio_mismatch

__all__ = ["analyse", "cumulative_looks"]

# What an arm's n counts: events, labelled rows, ratings or outcomes behind a rate; ratings or
# outcomes behind a mean; windows for a signal read one value per window.
_COUNTED = {
    SummaryKind.RATE: "trials",
    SummaryKind.MEAN: "values",
    SummaryKind.PER_WINDOW: "windows",
}


def analyse(spec: ExperimentSpec, windows: Mapping[str, Sequence[Window]]) -> dict[str, Any]:
    """The results of ``spec`` from each arm's windows (arm name → its version's windows)."""
    counts = [event_count(windows[arm.name]) for arm in spec.arms]
    srm = sample_ratio_mismatch(counts, [arm.weight for arm in spec.arms], alpha=spec.srm_alpha)
    if sum(counts) == 0:
        verdict, reason = "no_data", "no arm has had events since the experiment started"
    elif srm.mismatch:
        verdict, reason = "stopped", _mismatch(spec, srm)
    else:
        verdict, reason = "analysed", "sample ratio as configured"
    return {
        "verdict": verdict,
        "reason": reason,
        "method": spec.method.value,
        "alpha": spec.alpha,
        "sample_ratio": {
            "arms": [arm.name for arm in spec.arms],
            "weights": [arm.weight for arm in spec.arms],
            **srm.to_dict(),
        },
        "metrics": [_metric(spec, metric, windows, srm) for metric in spec.metrics],
    }


def _mismatch(spec: ExperimentSpec, srm: SampleRatioCheck) -> str:
    observed = ", ".join(
        f"{arm.name} {count}" for arm, count in zip(spec.arms, srm.counts, strict=True)
    )
    weights = "/".join(str(arm.weight) for arm in spec.arms)
    return (
        f"sample ratio mismatch: {observed} events for a {weights} split (p = "
        f"{srm.p_value:.2g} < {srm.alpha:g}); verdicts stopped: check the routing and the "
        "logging before trusting any comparison"
    )


def _metric(
    spec: ExperimentSpec,
    metric: ExperimentMetric,
    windows: Mapping[str, Sequence[Window]],
    srm: SampleRatioCheck,
) -> dict[str, Any]:
    summaries = {arm.name: summarize(metric.signal, windows[arm.name]) for arm in spec.arms}
    return {
        **metric.to_dict(),
        "kind": metric.kind.value,
        "counts": _COUNTED[metric.kind],
        "arms": [_estimate(arm, summaries[arm.name]) for arm in spec.arms],
        "comparisons": [
            _comparison(spec, metric, arm, summaries, windows, srm) for arm in spec.arms[1:]
        ],
    }


def _estimate(arm: ArmSpec, summary: ArmSummary) -> dict[str, Any]:
    found: dict[str, Any] = {
        "arm": arm.name,
        "version": arm.version,
        "n": summary.count,
        "estimate": summary.mean if summary.count else None,
    }
    if isinstance(summary, ProportionSummary):
        found["successes"] = summary.successes
    else:
        found["std"] = math.sqrt(summary.variance) if summary.count > 1 else None
    return found


def _comparison(
    spec: ExperimentSpec,
    metric: ExperimentMetric,
    arm: ArmSpec,
    summaries: Mapping[str, ArmSummary],
    windows: Mapping[str, Sequence[Window]],
    srm: SampleRatioCheck,
) -> dict[str, Any]:
    control = spec.control
    treatment, baseline = summaries[arm.name], summaries[control.name]
    found: dict[str, Any] = {"arm": arm.name, "against": control.name}
    needed = max(metric.min_samples, _least(treatment))
    short = [
        f"{name} has {summary.count}"
        for name, summary in ((arm.name, treatment), (control.name, baseline))
        if summary.count < needed
    ]
    if short:
        found.update(
            verdict="insufficient_data",
            reason=f"too few samples: {', '.join(short)}; {needed} per arm are needed",
            significant=None,
        )
        return found
    fixed = compare(treatment, baseline, confidence=1.0 - spec.alpha)
    looked = cumulative_looks(
        metric.signal,
        windows[arm.name],
        windows[control.name],
        alpha=spec.alpha,
        tuning_samples=spec.tuning_for(metric),
        min_samples=needed,
    )
    chosen_p, low, high = (
        (fixed.p_value, fixed.ci_low, fixed.ci_high)
        if spec.method is Method.FIXED or looked is None
        else (looked.p_value, looked.ci_low, looked.ci_high)
    )
    found.update(
        effect=_finite(fixed.difference),
        ci_low=_finite(low),
        ci_high=_finite(high),
        p_value=chosen_p,
        lift=fixed.lift,
        lift_ci_low=fixed.lift_ci_low,
        lift_ci_high=fixed.lift_ci_high,
        fixed_horizon=fixed.to_dict(),
        always_valid=None if looked is None else looked.to_dict(),
    )
    significant = chosen_p < spec.alpha
    found["significant"] = significant
    if srm.mismatch:
        found["verdict"] = "stopped"
        found["reason"] = "sample ratio mismatch: no verdict until the split is as configured"
    elif not significant:
        found["verdict"] = "no_difference"
        found["reason"] = f"p = {chosen_p:.3g} >= {spec.alpha:g} ({spec.method.value})"
    else:
        found["verdict"] = _direction(metric.direction, fixed.difference)
        found["reason"] = f"p = {chosen_p:.3g} < {spec.alpha:g} ({spec.method.value})"
    return found


def _direction(direction: Direction | None, effect: float) -> str:
    if direction is None or effect == 0.0:
        return "different"
    return "better" if direction.sign * effect > 0 else "worse"


def cumulative_looks(
    signal: str,
    treatment: Sequence[Window],
    control: Sequence[Window],
    *,
    alpha: float,
    tuning_samples: float,
    min_samples: int,
) -> SequentialComparison | None:
    """The always-valid comparison after the last of the looks taken at every window start
    (cumulative summaries, running minimum of the p-value, intervals intersected); ``None``
    when no look had ``min_samples`` in both arms.

    Each window's summary is merged into the running one (sums for rates, Chan et al.'s
    update for means), so the last look's summaries are :func:`summarize`'s of all windows.
    """
    starts = sorted({window["start"] for window in (*treatment, *control)})
    by_start: dict[int, dict[float, list[Window]]] = {0: {}, 1: {}}
    for side, arm in enumerate((treatment, control)):
        for window in arm:
            by_start[side].setdefault(window["start"], []).append(window)
    running: list[ArmSummary | None] = [None, None]
    look: SequentialComparison | None = None
    for start in starts:
        for side in (0, 1):
            found = by_start[side].get(start)
            if found:
                running[side] = _merge(running[side], summarize(signal, found))
        first, second = running
        if first is None or second is None or min(first.count, second.count) < min_samples:
            continue
        look = sequential_compare(
            first, second, alpha=alpha, tuning_samples=tuning_samples, previous=look
        )
    return look


def _merge(total: ArmSummary | None, part: ArmSummary) -> ArmSummary:
    """Two summaries of one arm as one (Chan, Golub & LeVeque 1979 for means)."""
    if total is None:
        return part
    if isinstance(total, ProportionSummary) and isinstance(part, ProportionSummary):
        return ProportionSummary(total.successes + part.successes, total.trials + part.trials)
    # One signal's summaries are all of one kind: rates above, means here.
    assert isinstance(total, MeanSummary)
    assert isinstance(part, MeanSummary)
    count = total.count + part.count
    if part.count == 0:
        return total
    if total.count == 0:
        return part
    delta = part.mean - total.mean
    mean = total.mean + delta * part.count / count
    squares = (
        total.variance * (total.count - 1)
        + part.variance * (part.count - 1)
        + delta * delta * total.count * part.count / count
    )
    return MeanSummary(count=count, mean=mean, variance=max(squares / (count - 1), 0.0))


def _least(summary: ArmSummary) -> int:
    """Two values for a mean's variance, one trial for a rate."""
    return 1 if isinstance(summary, ProportionSummary) else 2


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
