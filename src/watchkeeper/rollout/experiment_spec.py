"""The experiment spec: which model, which arms (versions and weights), which metrics and how
they are tested (docs/experiments.md).

A spec is plain data (a YAML/JSON mapping, stored with the experiment and sent over the API);
:func:`parse_experiment` validates it and every error names the field (``arms[1].weight``,
``metrics[0].signal``) and the valid choices. Versions are kept as given (a number or a registry
alias); :class:`~watchkeeper.rollout.experiments.Experiments` resolves aliases when it starts the
experiment, so the stored spec names the versions that served.

>>> spec = parse_experiment({"model": "shop", "arms": [{"version": 1}, {"version": 2}],
...                          "metrics": ["outcome.convert.rate"]})
>>> [(arm.name, arm.version, arm.weight) for arm in spec.arms]
[('v1', '1', 50), ('v2', '2', 50)]
>>> spec.method.value, spec.alpha
('always_valid', 0.05)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from watchkeeper.errors import ConfigError
from watchkeeper.rollout.metrics import SummaryKind, summary_kind

# The rollout spec's field checks, so both specs word their errors the same way.
from watchkeeper.rollout.spec import (
    KNOWN_DIRECTIONS,
    _choice,
    _integer,
    _known,
    _mapping,
    _probability,
    _text,
    _version,
)
from watchkeeper.serving.config import check_arm_name
from watchkeeper.stats.decision import Direction, Method
from watchkeeper.stats.sequential import DEFAULT_TUNING_SAMPLES

__all__ = ["ArmSpec", "ExperimentMetric", "ExperimentSpec", "parse_experiment"]

#: Samples per arm before a metric is compared (events, outcomes, ratings, labelled rows).
DEFAULT_MIN_SAMPLES = 100
#: Windows per arm before a signal read one value per window (``latency_p99``) is compared.
DEFAULT_MIN_WINDOWS = 5
#: Where the always-valid boundary of a per-window signal is tightest, in windows per arm.
DEFAULT_TUNING_WINDOWS = 100
_MAX_ARMS = 10


@dataclass(frozen=True, slots=True)
class ArmSpec:
    """One arm: its name in the routing config, the version it serves and its weight (%)."""

    name: str
    version: str
    weight: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "version": self.version, "weight": self.weight}


@dataclass(frozen=True, slots=True)
class ExperimentMetric:
    """One metric: a monitor signal per arm, which way it is better (``None``: not said, the
    verdict is then "different") and the samples per arm it needs before it is compared."""

    name: str
    signal: str
    direction: Direction | None
    min_samples: int

    @property
    def kind(self) -> SummaryKind:
        """What an arm's summary of the signal is: a rate, a pooled mean or one per window."""
        return summary_kind(self.signal)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "signal": self.signal,
            "direction": None if self.direction is None else self.direction.value,
            "min_samples": self.min_samples,
        }


@dataclass(frozen=True, slots=True)
class ExperimentSpec:
    """A whole experiment. The first arm is the control every other arm is compared with.

    ``method`` says which p-value and interval decide "significant": ``always_valid`` (look
    at the results as often as you like) or ``fixed`` (look once, at the planned sample size);
    both are always reported. ``srm_alpha`` is the sample-ratio check's level;
    ``tuning_samples`` the samples per arm where the always-valid interval is tightest.
    """

    model: str
    arms: tuple[ArmSpec, ...]
    metrics: tuple[ExperimentMetric, ...]
    name: str = ""
    alpha: float = 0.05
    method: Method = Method.ALWAYS_VALID
    srm_alpha: float = 0.001
    tuning_samples: int = DEFAULT_TUNING_SAMPLES

    @property
    def control(self) -> ArmSpec:
        """The arm the others are compared with."""
        return self.arms[0]

    def with_versions(self, versions: Mapping[str, str]) -> ExperimentSpec:
        """The same spec with the arms' versions replaced (arm name → version)."""
        arms = tuple(replace(arm, version=versions.get(arm.name, arm.version)) for arm in self.arms)
        return replace(self, arms=arms)

    def tuning_for(self, metric: ExperimentMetric) -> float:
        """The tuning sample size of ``metric``: windows for per-window signals."""
        if metric.kind is SummaryKind.PER_WINDOW:
            return float(DEFAULT_TUNING_WINDOWS)
        return float(self.tuning_samples)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, which :func:`parse_experiment` reads back."""
        return {
            "model": self.model,
            "name": self.name,
            "arms": [arm.to_dict() for arm in self.arms],
            "metrics": [metric.to_dict() for metric in self.metrics],
            "alpha": self.alpha,
            "method": self.method.value,
            "srm_alpha": self.srm_alpha,
            "tuning_samples": self.tuning_samples,
        }


_FIELDS = {"model", "name", "arms", "metrics", "alpha", "method", "srm_alpha", "tuning_samples"}


def parse_experiment(raw: Any) -> ExperimentSpec:
    """Validate an experiment spec; :class:`ConfigError` names the first bad field."""
    data = _mapping(raw, "experiment")
    _known(data, "experiment", _FIELDS)
    model = _text(data.get("model"), "model")
    name = data.get("name", "")
    if not isinstance(name, str):
        raise ConfigError(f"name: expected a string, got {name!r}", key="name")
    return ExperimentSpec(
        model=model,
        name=name,
        arms=_arms(data.get("arms")),
        metrics=_metrics(data.get("metrics")),
        alpha=_probability(data.get("alpha", 0.05), "alpha", 0.5),
        method=_choice(Method, data.get("method", Method.ALWAYS_VALID.value), "method"),
        srm_alpha=_probability(data.get("srm_alpha", 0.001), "srm_alpha", 0.5),
        tuning_samples=_integer(
            data.get("tuning_samples", DEFAULT_TUNING_SAMPLES),
            "tuning_samples",
            low=1,
            high=10**9,
        ),
    )


def _arms(raw: Any) -> tuple[ArmSpec, ...]:
    if not isinstance(raw, list) or not 2 <= len(raw) <= _MAX_ARMS:
        raise ConfigError(
            f"arms: expected a list of 2 to {_MAX_ARMS} arms (the first is the control), "
            f"got {raw!r}",
            key="arms",
        )
    entries = []
    for index, item in enumerate(raw):
        where = f"arms[{index}]"
        entry = _mapping(item, where)
        _known(entry, where, {"name", "version", "weight"})
        version = _version(entry.get("version"), f"{where}.version")
        default_name = f"v{version}" if version.isdigit() else version
        arm_name = check_arm_name(entry.get("name", default_name), f"{where}.name")
        weight = entry.get("weight")
        if weight is not None:
            weight = _integer(weight, f"{where}.weight", low=0, high=100)
        entries.append((arm_name, version, weight))
    given = [weight for _, _, weight in entries if weight is not None]
    if given and len(given) != len(entries):
        missing = next(i for i, (_, _, weight) in enumerate(entries) if weight is None)
        raise ConfigError(
            f"arms[{missing}].weight: give every arm a weight, or none for an equal split",
            key=f"arms[{missing}].weight",
        )
    if not given:
        share, extra = divmod(100, len(entries))
        weights = [share + (index < extra) for index in range(len(entries))]
    else:
        weights = [int(weight) for _, _, weight in entries if weight is not None]
        if sum(weights) != 100:
            raise ConfigError(
                f"arms: the weights must sum to 100, got {' + '.join(map(str, weights))} = "
                f"{sum(weights)}",
                key="arms",
            )
    for index, weight in enumerate(weights):
        if weight == 0:
            raise ConfigError(
                f"arms[{index}].weight: an arm of an experiment needs a weight > 0",
                key=f"arms[{index}].weight",
            )
    arms = tuple(
        ArmSpec(arm_name, version, weight)
        for (arm_name, version, _), weight in zip(entries, weights, strict=True)
    )
    # Versions first: two arms of one version also get the same default name.
    _distinct([arm.version for arm in arms], "version")
    _distinct([arm.name for arm in arms], "name")
    return arms


def _distinct(values: list[str], field: str) -> None:
    for index, value in enumerate(values):
        if value in values[:index]:
            raise ConfigError(
                f"arms[{index}].{field}: {value!r} is also arms[{values.index(value)}]'s; "
                f"every arm needs its own {field}",
                key=f"arms[{index}].{field}",
            )


def _metrics(raw: Any) -> tuple[ExperimentMetric, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(
            "metrics: expected a non-empty list of signals (error_rate, accuracy, "
            "outcome.<name>.rate, …) or {signal, name, direction, min_samples}",
            key="metrics",
        )
    metrics = []
    for index, item in enumerate(raw):
        where = f"metrics[{index}]"
        entry = {"signal": item} if isinstance(item, str) else _mapping(item, where)
        _known(entry, where, {"name", "signal", "direction", "min_samples"})
        signal = _text(entry.get("signal"), f"{where}.signal")
        direction_raw = entry.get("direction")
        direction = (
            KNOWN_DIRECTIONS.get(signal)
            if direction_raw is None
            else _choice(Direction, direction_raw, f"{where}.direction")
        )
        per_window = summary_kind(signal) is SummaryKind.PER_WINDOW
        default = DEFAULT_MIN_WINDOWS if per_window else DEFAULT_MIN_SAMPLES
        metrics.append(
            ExperimentMetric(
                name=_text(entry.get("name", signal), f"{where}.name"),
                signal=signal,
                direction=direction,
                min_samples=_integer(
                    entry.get("min_samples", default), f"{where}.min_samples", low=2, high=10**9
                ),
            )
        )
    names = [metric.name for metric in metrics]
    for index, metric_name in enumerate(names):
        if metric_name in names[:index]:
            raise ConfigError(
                f"metrics[{index}].name: {metric_name!r} is used twice; name each metric once",
                key=f"metrics[{index}].name",
            )
    return tuple(metrics)
