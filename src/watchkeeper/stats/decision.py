"""The verdict of one analysis metric of a rollout: success, failure or inconclusive.

A rollout's controller compares the candidate arm with the baseline arm (or with a fixed
threshold) after every interval and acts on the verdict. :func:`decide` gives it, from the two
arms' cumulative summaries, with the measurements behind it (effect, interval, p-values, samples
per arm). Its rules, one place for every metric:

- fewer than ``min_samples`` in an arm that the condition uses: **inconclusive**, whatever the
  numbers say (low traffic never decides);
- **failure** when the data show the condition violated (its one-sided p-value below
  ``alpha``), **success** when they show it holds, **inconclusive** otherwise — so a wrong
  verdict has probability at most ``alpha`` per side;
- by default the p-values are always-valid (:mod:`watchkeeper.stats.sequential`), because the
  controller looks at the same cumulative data after every interval: a fixed-horizon test looked
  at 100 times calls a healthy candidate bad far more often than ``alpha``. The running minimum
  over the previous looks (``previous``) keeps a verdict, once reached, from being lost to noise.

Condition tests are those of :func:`watchkeeper.stats.experiments.margin_contrast` (Welch for
means, score tests for rates); the reported difference, interval and lift are those of
:func:`~watchkeeper.stats.experiments.compare` or, always-valid, of
:func:`~watchkeeper.stats.sequential.sequential_compare`. A sample-ratio mismatch
(:func:`~watchkeeper.stats.experiments.sample_ratio_mismatch`) is checked by the caller first.

>>> from watchkeeper.stats.experiments import ProportionSummary
>>> errors = Condition(direction=Direction.LOWER_IS_BETTER, kind=MarginKind.RELATIVE, value=0.1)
>>> verdict = decide(ProportionSummary(300, 20_000), ProportionSummary(200, 20_000),
...                  condition=errors, min_samples=1000)
>>> verdict.outcome.value, round(verdict.lift, 2), f"{verdict.p_violated:.3f}"
('failure', 0.5, '0.036')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from watchkeeper.errors import ConfigError
from watchkeeper.stats.experiments import (
    ArmSummary,
    Contrast,
    Direction,
    MarginKind,
    ProportionSummary,
    compare,
    margin_contrast,
    margin_test,
)
from watchkeeper.stats.sequential import (
    confidence_half_width,
    contrast_p_value,
    mixture_ratio,
    sequential_compare,
)

__all__ = [
    "Condition",
    "Direction",
    "MarginKind",
    "Method",
    "MetricDecision",
    "Outcome",
    "decide",
]


class Outcome(StrEnum):
    """The verdict of one analysis metric."""

    SUCCESS = "success"
    FAILURE = "failure"
    INCONCLUSIVE = "inconclusive"


class Method(StrEnum):
    """How p-values are computed: once at a fixed horizon, or valid at every look."""

    FIXED = "fixed"
    ALWAYS_VALID = "always_valid"


@dataclass(frozen=True, slots=True)
class Condition:
    """What the candidate must satisfy, and which way the metric is better.

    ``kind`` ``threshold``: the candidate's metric against ``value``; ``difference``: not worse
    than the baseline by more than ``value`` (the metric's units); ``relative``: not worse than
    the baseline by more than ``value`` as a fraction (0.1 is 10 %). ``value`` 0 with
    ``difference`` or ``relative`` is Welch's t-test / the two-proportion z-test.
    """

    direction: Direction
    kind: MarginKind
    value: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):
            raise ConfigError(
                f"condition value must be a finite number, got {self.value}", key="value"
            )
        if self.kind is not MarginKind.THRESHOLD and self.value < 0.0:
            raise ConfigError(
                f"a {self.kind.value} margin must be >= 0, got {self.value}", key="value"
            )
        if (
            self.kind is MarginKind.RELATIVE
            and self.direction is Direction.HIGHER_IS_BETTER
            and self.value >= 1.0
        ):
            raise ConfigError(
                f"a relative margin must be < 1 when higher is better, got {self.value}",
                key="value",
            )

    def describe(self) -> str:
        """The condition as a formula: ``candidate <= baseline × 1.1``."""
        lower = self.direction is Direction.LOWER_IS_BETTER
        relation = "<=" if lower else ">="
        if self.kind is MarginKind.THRESHOLD:
            return f"candidate {relation} {self.value:g}"
        if self.kind is MarginKind.DIFFERENCE:
            if self.value == 0.0:
                return f"candidate {relation} baseline"
            return f"candidate {relation} baseline {'+' if lower else '-'} {self.value:g}"
        factor = 1.0 + self.value if lower else 1.0 - self.value
        return f"candidate {relation} baseline × {factor:g}"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"direction": self.direction.value, "kind": self.kind.value, "value": self.value}


@dataclass(frozen=True, slots=True)
class MetricDecision:
    """A verdict with what was measured.

    ``effect`` is candidate − baseline (candidate − threshold for a threshold), with its
    two-sided ``1 − alpha`` interval and the two-sided ``p_value`` of "no difference" (always-
    valid or fixed-horizon, as ``method``); ``lift`` is candidate / baseline − 1 with its
    delta-method interval. ``p_holds`` is the one-sided p-value of "the condition is violated"
    (small: success), ``p_violated`` of "the condition holds" (small: failure). Measurements are
    ``None`` when the samples are below the minimum.
    """

    outcome: Outcome
    reason: str
    condition: Condition
    method: Method
    alpha: float
    min_samples: int
    candidate_count: int
    baseline_count: int | None
    candidate_value: float | None = None
    baseline_value: float | None = None
    effect: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    lift: float | None = None
    lift_ci_low: float | None = None
    lift_ci_high: float | None = None
    p_holds: float | None = None
    p_violated: float | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (infinite bounds of an interval as ``None``)."""
        values: dict[str, object] = {
            "outcome": self.outcome.value,
            "reason": self.reason,
            "condition": self.condition.to_dict(),
            "method": self.method.value,
            "alpha": self.alpha,
            "min_samples": self.min_samples,
            "candidate_count": self.candidate_count,
            "baseline_count": self.baseline_count,
        }
        for name in (
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
        ):
            value = getattr(self, name)
            values[name] = value if value is None or math.isfinite(value) else None
        return values


def decide(
    candidate: ArmSummary,
    baseline: ArmSummary | None,
    *,
    condition: Condition,
    min_samples: int,
    alpha: float = 0.05,
    method: Method = Method.ALWAYS_VALID,
    tuning_samples: float | None = None,
    previous: MetricDecision | None = None,
) -> MetricDecision:
    """Success, failure or inconclusive for one metric, from cumulative per-arm summaries.

    ``baseline`` may be ``None`` for a threshold condition. ``min_samples`` is per arm (at
    least 2 values for a mean are needed in any case). ``tuning_samples`` (per arm) is where the
    always-valid boundary is tightest; it defaults to ``min_samples``, the first look that may
    decide, so a clearly bad canary fails early: the boundary widens slowly after it (27 % at a
    thousand times the tuning size) and fast before it (2.2 times at a fiftieth). ``previous``
    is this metric's verdict at the previous look of the same rollout step (same condition,
    ``alpha`` and ``method``): with always-valid p-values their running minimum is used, and
    the interval is intersected.
    """
    if not 0.0 < alpha < 0.5:
        raise ConfigError(f"alpha must be in (0, 0.5), got {alpha}", key="alpha")
    if min_samples < 1:
        raise ConfigError(f"min_samples must be >= 1, got {min_samples}", key="min_samples")
    if previous is not None and (
        previous.condition != condition or previous.alpha != alpha or previous.method != method
    ):
        raise ConfigError(
            "previous was decided with another condition, alpha or method", key="previous"
        )
    tuning = float(min_samples) if tuning_samples is None else tuning_samples
    uses_baseline = condition.kind is not MarginKind.THRESHOLD
    if uses_baseline and baseline is None:
        raise ConfigError(
            f"a {condition.kind.value} condition needs the baseline arm", key="baseline"
        )
    short = [
        f"{name} has {arm.count}"
        for name, arm in (
            ("candidate", candidate),
            ("baseline", baseline if uses_baseline else None),
        )
        if arm is not None and arm.count < max(min_samples, _least_samples(arm))
    ]
    measured = _Measurements()
    p_holds: float | None = None
    p_violated: float | None = None
    if short:
        needed = max(min_samples, _least_samples(candidate))
        outcome = Outcome.INCONCLUSIVE
        reason = f"too few samples: {', '.join(short)}; at least {needed} per arm are needed"
    else:
        contrast = margin_contrast(
            candidate,
            baseline,
            direction=condition.direction,
            kind=condition.kind,
            margin=condition.value,
        )
        measured = _measure(candidate, baseline, contrast, condition, method, alpha, tuning)
        p_holds, p_violated = _condition_p_values(contrast, method, alpha, tuning)
        if previous is not None and method is Method.ALWAYS_VALID:
            measured.combine(previous)
            p_holds = _running_min(p_holds, previous.p_holds)
            p_violated = _running_min(p_violated, previous.p_violated)
        outcome, reason = _verdict(condition, alpha, p_holds, p_violated)
    return MetricDecision(
        outcome=outcome,
        reason=reason,
        condition=condition,
        method=method,
        alpha=alpha,
        min_samples=min_samples,
        candidate_count=candidate.count,
        baseline_count=None if baseline is None else baseline.count,
        candidate_value=measured.candidate_value,
        baseline_value=measured.baseline_value,
        effect=measured.effect,
        ci_low=measured.ci_low,
        ci_high=measured.ci_high,
        p_value=measured.p_value,
        lift=measured.lift,
        lift_ci_low=measured.lift_ci_low,
        lift_ci_high=measured.lift_ci_high,
        p_holds=p_holds,
        p_violated=p_violated,
    )


def _verdict(
    condition: Condition, alpha: float, p_holds: float, p_violated: float
) -> tuple[Outcome, str]:
    """The outcome and its reason from the condition's two one-sided p-values."""
    described = condition.describe()
    # Failure first: when both sides were once significant, the safe verdict wins.
    if p_violated < alpha:
        return Outcome.FAILURE, f"violates {described} (p = {p_violated:.3g} < {alpha:g})"
    if p_holds < alpha:
        return Outcome.SUCCESS, f"meets {described} (p = {p_holds:.3g} < {alpha:g})"
    return Outcome.INCONCLUSIVE, (
        f"no evidence yet for or against {described} "
        f"(p = {p_holds:.3g} that it holds, {p_violated:.3g} that it is violated)"
    )


def _least_samples(arm: ArmSummary) -> int:
    """Two values for a mean's variance, one trial for a rate."""
    return 1 if isinstance(arm, ProportionSummary) else 2


def _condition_p_values(
    contrast: Contrast, method: Method, alpha: float, tuning_samples: float
) -> tuple[float, float]:
    """(p_holds, p_violated) of the condition's contrast, fixed or always-valid."""
    if method is Method.FIXED:
        test = margin_test(contrast)
        return test.p_holds, test.p_violated
    # The two-sided mixture: crossing 1/alpha on either side has probability <= alpha.
    p_value = contrast_p_value(contrast, alpha=alpha, tuning_samples=tuning_samples)
    if contrast.estimate > 0.0:
        return p_value, 1.0
    if contrast.estimate < 0.0:
        return 1.0, p_value
    return 1.0, 1.0


@dataclass(slots=True)
class _Measurements:
    """What one look measured (``None``: not measured)."""

    candidate_value: float | None = None
    baseline_value: float | None = None
    effect: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    lift: float | None = None
    lift_ci_low: float | None = None
    lift_ci_high: float | None = None

    def combine(self, previous: MetricDecision) -> None:
        """Always-valid: running minimum of the p-value, intersection of the intervals."""
        if self.ci_low is not None and previous.ci_low is not None:
            self.ci_low = max(self.ci_low, previous.ci_low)
        if self.ci_high is not None and previous.ci_high is not None:
            self.ci_high = min(self.ci_high, previous.ci_high)
        if self.p_value is not None:
            self.p_value = _running_min(self.p_value, previous.p_value)


def _measure(
    candidate: ArmSummary,
    baseline: ArmSummary | None,
    contrast: Contrast,
    condition: Condition,
    method: Method,
    alpha: float,
    tuning_samples: float,
) -> _Measurements:
    """The reported effect, interval, p-value and lift of one look."""
    measured = _Measurements(candidate_value=candidate.mean)
    if baseline is not None and baseline.count >= _least_samples(baseline):
        fixed = compare(candidate, baseline, confidence=1.0 - alpha)
        measured.baseline_value = baseline.mean
        measured.lift, measured.lift_ci_low = fixed.lift, fixed.lift_ci_low
        measured.lift_ci_high = fixed.lift_ci_high
        if condition.kind is not MarginKind.THRESHOLD:
            measured.effect = fixed.difference
            if method is Method.FIXED:
                measured.ci_low, measured.ci_high = fixed.ci_low, fixed.ci_high
                measured.p_value = fixed.p_value
            else:
                look = sequential_compare(
                    candidate, baseline, alpha=alpha, tuning_samples=tuning_samples
                )
                measured.ci_low, measured.ci_high = look.ci_low, look.ci_high
                measured.p_value = look.p_value
            return measured
    # Threshold: the candidate against a fixed value, with the contrast's own variance.
    effect = candidate.mean - condition.value
    if method is Method.FIXED:
        test = margin_test(contrast)
        measured.p_value = min(1.0, 2.0 * min(test.p_holds, test.p_violated))
        half_width = contrast.half_width(1.0 - alpha)
    else:
        measured.p_value = contrast_p_value(contrast, alpha=alpha, tuning_samples=tuning_samples)
        ratio = mixture_ratio(contrast.size, alpha=alpha, tuning_samples=tuning_samples)
        half_width = float(confidence_half_width(contrast.variance, ratio, alpha))
    measured.effect = effect
    measured.ci_low, measured.ci_high = effect - half_width, effect + half_width
    return measured


def _running_min(value: float, earlier: float | None) -> float:
    return value if earlier is None else min(value, earlier)
