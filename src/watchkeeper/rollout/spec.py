"""The rollout spec: which versions, which steps, which analysis (docs/rollouts.md).

A spec is plain data (a YAML/JSON mapping, stored with the rollout and sent over the API);
:func:`parse_spec` validates it and every error names the field (``steps[2].pause.duration``)
and the valid choices.

>>> spec = parse_spec({"model": "churn", "baseline": 3, "candidate": 4,
...                    "step_weight": 25, "max_weight": 50,
...                    "analysis": {"metrics": [{"signal": "error_rate"}]}})
>>> [step.to_dict() for step in spec.steps]
[{'set_weight': 25}, {'analysis': {'count': 5}}, {'set_weight': 50}, {'analysis': {'count': 5}}]
>>> spec.analysis.metrics[0].condition.describe()
'candidate <= baseline × 1.1'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from watchkeeper.alerts.model import format_duration, parse_duration
from watchkeeper.errors import ConfigError
from watchkeeper.stats.decision import Condition, Direction, MarginKind

__all__ = [
    "AnalysisSpec",
    "AnalysisStep",
    "MetricSpec",
    "PauseStep",
    "Policy",
    "RolloutSpec",
    "SetWeightStep",
    "Step",
    "parse_spec",
]

#: Known signals and which way they are better (others must say ``direction``).
KNOWN_DIRECTIONS: Mapping[str, Direction] = {
    "error_rate": Direction.LOWER_IS_BETTER,
    "latency_p50": Direction.LOWER_IS_BETTER,
    "latency_p95": Direction.LOWER_IS_BETTER,
    "latency_p99": Direction.LOWER_IS_BETTER,
    "accuracy": Direction.HIGHER_IS_BETTER,
    "drift_share": Direction.LOWER_IS_BETTER,
    "feedback_mean_rating": Direction.HIGHER_IS_BETTER,
    "feedback_low_share": Direction.LOWER_IS_BETTER,
}
_DEFAULT_COUNT = 5
_E = TypeVar("_E", bound=StrEnum)


class Policy(StrEnum):
    """What an inconclusive analysis step or a step without data does."""

    PAUSE = "pause"
    CONTINUE = "continue"
    ABORT = "abort"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One analysis metric: a monitor signal per arm and the condition the candidate must meet.

    ``min_samples`` (``None``: the analysis default) counts what the arm's summary counts:
    events, labelled rows, ratings or outcomes for rates and means, windows for signals read
    one value per window (quantiles such as ``latency_p99``, ``drift_share``, others).
    ``lookback`` (seconds; ``None``: the analysis's) is the recent range each look judges.
    """

    name: str
    signal: str
    condition: Condition
    min_samples: int | None = None
    lookback: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {
            "name": self.name,
            "signal": self.signal,
            "condition": self.condition.to_dict(),
        }
        if self.min_samples is not None:
            out["min_samples"] = self.min_samples
        if self.lookback is not None:
            out["lookback"] = self.lookback
        return out


@dataclass(frozen=True, slots=True)
class AnalysisSpec:
    """How the candidate is judged: metrics, cadence, limits and policies.

    ``lookback`` (seconds) is how far back from each look the arms are compared — like the
    range of an Argo Rollouts or Flagger query — so a late degradation is not diluted by the
    healthy hours before it; ``None`` is :meth:`default_lookback`.
    """

    metrics: tuple[MetricSpec, ...]
    interval: float = 60.0
    initial_delay: float = 0.0
    failure_limit: int = 0
    inconclusive: Policy = Policy.PAUSE
    no_data: Policy = Policy.PAUSE
    srm_alpha: float = 0.001
    alpha: float = 0.05
    min_samples: int = 500
    min_windows: int = 5
    lookback: float | None = None

    def default_lookback(self) -> float:
        """Ten intervals, or twice ``min_windows`` intervals when that is longer.

        Ten looks share nine tenths of their data, so verdicts do not flip on one interval's
        noise, and the range holds twice the windows a per-window signal needs when the
        monitor's windows are as long as the interval (a thinner range is widened, below).
        """
        return max(10, 2 * self.min_windows) * self.interval

    def lookback_of(self, metric: MetricSpec) -> float:
        """The range ``metric``'s looks judge: its own, the analysis's, or the default."""
        if metric.lookback is not None:
            return metric.lookback
        return self.default_lookback() if self.lookback is None else self.lookback

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (durations in seconds; ``lookback`` only when given)."""
        lookback = {} if self.lookback is None else {"lookback": self.lookback}
        return {
            "metrics": [metric.to_dict() for metric in self.metrics],
            "interval": self.interval,
            "initial_delay": self.initial_delay,
            "failure_limit": self.failure_limit,
            "inconclusive": self.inconclusive.value,
            "no_data": self.no_data.value,
            "srm_alpha": self.srm_alpha,
            "alpha": self.alpha,
            "min_samples": self.min_samples,
            "min_windows": self.min_windows,
            **lookback,
        }


@dataclass(frozen=True, slots=True)
class SetWeightStep:
    """Send ``weight`` percent of the traffic to the candidate."""

    weight: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"set_weight": self.weight}


@dataclass(frozen=True, slots=True)
class PauseStep:
    """Wait ``duration`` seconds (analysis keeps running), or until promoted by hand (None)."""

    duration: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"pause": {} if self.duration is None else {"duration": self.duration}}


@dataclass(frozen=True, slots=True)
class AnalysisStep:
    """Stay until every metric succeeds; after ``count`` inconclusive looks, the policy acts."""

    count: int = _DEFAULT_COUNT

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"analysis": {"count": self.count}}


Step = SetWeightStep | PauseStep | AnalysisStep


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    """A validated rollout: ``baseline`` and ``candidate`` as given (numbers or aliases)."""

    model: str
    baseline: str
    candidate: str
    steps: tuple[Step, ...]
    analysis: AnalysisSpec

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form; ``parse_spec(spec.to_dict()) == spec``."""
        return {
            "model": self.model,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "steps": [step.to_dict() for step in self.steps],
            "analysis": self.analysis.to_dict(),
        }


def parse_spec(raw: Any) -> RolloutSpec:
    """A :class:`RolloutSpec` from a mapping; :class:`ConfigError` names the bad field."""
    data = _mapping(raw, "spec")
    _known(
        data,
        "spec",
        {"model", "baseline", "candidate", "steps", "step_weight", "max_weight", "analysis"},
    )
    model = _text(data.get("model"), "model")
    baseline = _version(data.get("baseline"), "baseline")
    candidate = _version(data.get("candidate"), "candidate")
    if baseline == candidate:
        raise ConfigError(f"candidate: must differ from baseline ({baseline!r})", key="candidate")
    analysis = _analysis(data.get("analysis"))
    has_steps = data.get("steps") is not None
    has_shorthand = data.get("step_weight") is not None or data.get("max_weight") is not None
    if has_steps == has_shorthand:
        raise ConfigError(
            "steps: give either steps or step_weight (with optional max_weight), not both "
            "and not neither",
            key="steps",
        )
    steps = _steps(data["steps"]) if has_steps else _shorthand(data)
    if not any(isinstance(step, SetWeightStep) for step in steps):
        raise ConfigError("steps: need at least one set_weight step", key="steps")
    if not analysis.metrics and any(isinstance(step, AnalysisStep) for step in steps):
        raise ConfigError(
            "analysis.metrics: an analysis step needs metrics", key="analysis.metrics"
        )
    weight = 0
    for index, step in enumerate(steps):
        if isinstance(step, SetWeightStep):
            weight = step.weight
        elif isinstance(step, AnalysisStep) and weight == 0:
            # With no candidate traffic there is nothing to look at: the step would never end.
            raise ConfigError(
                f"steps[{index}]: an analysis step needs traffic on the candidate; put a "
                "set_weight above 0 before it",
                key=f"steps[{index}]",
            )
    return RolloutSpec(
        model=model, baseline=baseline, candidate=candidate, steps=steps, analysis=analysis
    )


def _shorthand(data: Mapping[str, Any]) -> tuple[Step, ...]:
    """``step_weight``/``max_weight``: weight up by the step, an analysis after each (Flagger)."""
    step = _integer(data.get("step_weight"), "step_weight", low=1, high=100)
    top = _integer(data.get("max_weight", 100), "max_weight", low=1, high=100)
    if step > top:
        raise ConfigError(
            f"step_weight: must be <= max_weight ({top}), got {step}", key="step_weight"
        )
    weights = list(range(step, top + 1, step))
    if weights[-1] != top:
        weights.append(top)
    steps: list[Step] = []
    for weight in weights:
        steps += [SetWeightStep(weight), AnalysisStep()]
    return tuple(steps)


def _steps(raw: Any) -> tuple[Step, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("steps: expected a non-empty list of steps", key="steps")
    steps: list[Step] = []
    for index, item in enumerate(raw):
        where = f"steps[{index}]"
        entry = _mapping(item, where)
        if len(entry) != 1 or next(iter(entry)) not in ("set_weight", "pause", "analysis"):
            raise ConfigError(
                f"{where}: expected one of set_weight, pause, analysis, got {sorted(entry)}",
                key=where,
            )
        kind, value = next(iter(entry.items()))
        if kind == "set_weight":
            steps.append(SetWeightStep(_integer(value, f"{where}.set_weight", low=0, high=100)))
        elif kind == "pause":
            body = _mapping({} if value is None else value, f"{where}.pause")
            _known(body, f"{where}.pause", {"duration"})
            duration = body.get("duration")
            steps.append(
                PauseStep(
                    None
                    if duration is None
                    else parse_duration(duration, key=f"{where}.pause.duration")
                )
            )
        else:
            body = _mapping({} if value is None else value, f"{where}.analysis")
            _known(body, f"{where}.analysis", {"count"})
            count = _integer(
                body.get("count", _DEFAULT_COUNT), f"{where}.analysis.count", low=1, high=10_000
            )
            steps.append(AnalysisStep(count))
    return tuple(steps)


def _analysis(raw: Any) -> AnalysisSpec:
    data = _mapping({} if raw is None else raw, "analysis")
    _known(
        data,
        "analysis",
        {
            "metrics",
            "interval",
            "initial_delay",
            "failure_limit",
            "inconclusive",
            "no_data",
            "srm_alpha",
            "alpha",
            "min_samples",
            "min_windows",
            "lookback",
        },
    )
    raw_metrics = data.get("metrics", [])
    if not isinstance(raw_metrics, list):
        raise ConfigError("analysis.metrics: expected a list of metrics", key="analysis.metrics")
    metrics = tuple(_metric(item, f"analysis.metrics[{i}]") for i, item in enumerate(raw_metrics))
    names = [metric.name for metric in metrics]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ConfigError(
            f"analysis.metrics: names must be unique, repeated: {', '.join(duplicated)}",
            key="analysis.metrics",
        )
    interval = parse_duration(data.get("interval", 60.0), key="analysis.interval")
    if interval <= 0:
        raise ConfigError("analysis.interval: must be > 0", key="analysis.interval")
    lookback = _lookback(data.get("lookback"), "analysis.lookback", interval)
    for index, metric in enumerate(metrics):
        _lookback(metric.lookback, f"analysis.metrics[{index}].lookback", interval)
    return AnalysisSpec(
        metrics=metrics,
        interval=interval,
        initial_delay=parse_duration(data.get("initial_delay", 0.0), key="analysis.initial_delay"),
        failure_limit=_integer(
            data.get("failure_limit", 0), "analysis.failure_limit", low=0, high=1000
        ),
        inconclusive=_policy(data.get("inconclusive", "pause"), "analysis.inconclusive"),
        no_data=_policy(data.get("no_data", "pause"), "analysis.no_data"),
        srm_alpha=_probability(data.get("srm_alpha", 0.001), "analysis.srm_alpha", 0.5),
        alpha=_probability(data.get("alpha", 0.05), "analysis.alpha", 0.5),
        min_samples=_integer(
            data.get("min_samples", 500), "analysis.min_samples", low=1, high=10**9
        ),
        min_windows=_integer(data.get("min_windows", 5), "analysis.min_windows", low=2, high=10**6),
        lookback=lookback,
    )


def _lookback(value: Any, key: str, interval: float) -> float | None:
    """A look's range: a duration of at least one interval (or None: the default)."""
    if value is None:
        return None
    seconds = parse_duration(value, key=key)
    if seconds < interval:
        raise ConfigError(
            f"{key}: must be at least analysis.interval ({format_duration(interval)}), got "
            f"{format_duration(seconds)}: a shorter range would leave the traffic between two "
            "looks unjudged",
            key=key,
        )
    return seconds


def _metric(raw: Any, where: str) -> MetricSpec:
    data = _mapping(raw, where)
    _known(data, where, {"name", "signal", "condition", "min_samples", "lookback"})
    signal = _text(data.get("signal"), f"{where}.signal")
    name = _text(data.get("name", signal), f"{where}.name")
    body = _mapping(data.get("condition", {}), f"{where}.condition")
    _known(body, f"{where}.condition", {"direction", "kind", "value"})
    direction_raw = body.get("direction")
    if direction_raw is None:
        if signal not in KNOWN_DIRECTIONS:
            raise ConfigError(
                f"{where}.condition.direction: required for signal {signal!r} (one of "
                f"{', '.join(d.value for d in Direction)}); it is known only for "
                f"{', '.join(KNOWN_DIRECTIONS)}",
                key=f"{where}.condition.direction",
            )
        direction = KNOWN_DIRECTIONS[signal]
    else:
        direction = _choice(Direction, direction_raw, f"{where}.condition.direction")
    kind = _choice(MarginKind, body.get("kind", "relative"), f"{where}.condition.kind")
    default_value = 0.1 if kind is MarginKind.RELATIVE else None
    value = body.get("value", default_value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"{where}.condition.value: expected a number, got {value!r}",
            key=f"{where}.condition.value",
        )
    try:
        condition = Condition(direction=direction, kind=kind, value=float(value))
    except ConfigError as error:
        raise ConfigError(f"{where}.condition: {error}", key=f"{where}.condition.value") from None
    minimum = data.get("min_samples")
    lookback = data.get("lookback")
    return MetricSpec(
        name=name,
        signal=signal,
        condition=condition,
        min_samples=None
        if minimum is None
        else _integer(minimum, f"{where}.min_samples", low=1, high=10**9),
        # Checked against the interval by _analysis, which knows it.
        lookback=None if lookback is None else parse_duration(lookback, key=f"{where}.lookback"),
    )


def describe_duration(seconds: float | None) -> str:
    """``10m`` for 600 seconds; ``until promoted`` for None."""
    return "until promoted" if seconds is None else format_duration(seconds)


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}", key=key)
    return value


def _known(data: Mapping[str, Any], key: str, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{key}: unknown field(s) {', '.join(map(str, unknown))}; valid: "
            f"{', '.join(sorted(allowed))}",
            key=f"{key}.{unknown[0]}",
        )


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: expected a non-empty string, got {value!r}", key=key)
    return value


def _version(value: Any, key: str) -> str:
    """A registry version number or an alias, kept as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ConfigError(f"{key}: version numbers start at 1, got {value}", key=key)
        return str(value)
    return _text(value, key)


def _integer(value: Any, key: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{key}: expected an integer in [{low}, {high}], got {value!r}", key=key)
    return value


def _probability(value: Any, key: str, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: expected a number in (0, {high}), got {value!r}", key=key)
    if not (math.isfinite(value) and 0.0 < value < high):
        raise ConfigError(f"{key}: expected a number in (0, {high}), got {value!r}", key=key)
    return float(value)


def _policy(value: Any, key: str) -> Policy:
    return _choice(Policy, value, key)


def _choice(enum: type[_E], value: Any, key: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        raise ConfigError(
            f"{key}: expected one of {', '.join(member.value for member in enum)}, got {value!r}",
            key=key,
        ) from None
