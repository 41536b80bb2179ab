"""The conditions of alert rules: a threshold, a streaming detector, or absence of data.

Each is a frozen, serialisable value (``to_dict``) that :func:`parse_condition` reads back from
its configuration form; the signal names the rules engine reserves are here too.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

from watchkeeper.alerts.model import format_duration, parse_duration
from watchkeeper.errors import ConfigError

if TYPE_CHECKING:
    from watchkeeper.detectors import Detector

__all__ = [
    "ABSENT_SIGNAL",
    "LABELED_COUNT_SIGNAL",
    "LAST_EVENT_SIGNAL",
    "AbsentCondition",
    "Condition",
    "DetectorCondition",
    "Op",
    "ThresholdCondition",
    "parse_condition",
]

ABSENT_SIGNAL = "absent"
LAST_EVENT_SIGNAL = "last_event"
#: The signal whose value a rule's ``min_labels`` is compared with (same model, version,
#: segment and window as the rule's sample).
LABELED_COUNT_SIGNAL = "labeled_count"
_CONDITION_TEXT = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")


class Op(StrEnum):
    """A threshold comparison."""

    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "=="
    NE = "!="


_COMPARE: dict[Op, Callable[[float, float], bool]] = {
    Op.GT: operator.gt,
    Op.GE: operator.ge,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
}


@dataclass(frozen=True)
class ThresholdCondition:
    """``value op threshold``, e.g. ``> 0.2``."""

    op: Op
    threshold: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "op", Op(self.op))
        if isinstance(self.threshold, bool) or not math.isfinite(self.threshold):
            raise ConfigError(
                f"threshold: expected a finite number, got {self.threshold!r}", key="threshold"
            )

    def holds(self, value: float) -> bool:
        """Whether ``value op threshold`` (NaN never satisfies a threshold, even ``!=``)."""
        return value == value and _COMPARE[self.op](value, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """``{"op": ">", "threshold": 0.2}``."""
        return {"op": self.op.value, "threshold": self.threshold}

    def __str__(self) -> str:
        return f"{self.op.value} {self.threshold:g}"


@dataclass(frozen=True)
class DetectorCondition:
    """True while the series' streaming detector flags drift on its latest update.

    ``detector`` is a ``watchkeeper.detectors.DetectorSpec``-shaped mapping ``{kind, params}``;
    one detector is built per series and fed each new sample (by timestamp) once.
    """

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def __hash__(self) -> int:
        return hash((self.kind, tuple(sorted(self.params.items()))))

    def build_detector(self) -> Detector:
        """A fresh detector from ``watchkeeper.detectors``."""
        from watchkeeper.detectors import DetectorSpec

        return DetectorSpec(kind=self.kind, params=dict(self.params)).build()

    def to_dict(self) -> dict[str, Any]:
        """``{"detector": {"kind": ..., "params": {...}}}``."""
        return {"detector": {"kind": self.kind, "params": dict(self.params)}}


@dataclass(frozen=True)
class AbsentCondition:
    """True when the selected model (version, segment) has accepted no event for more than
    ``period`` seconds, measured from the ingest time of its newest event (the service's
    ``last_event`` samples). A selector that has never had an event is not absent: the stream
    has not started (see docs/alerts.md)."""

    period: float

    def __post_init__(self) -> None:
        if self.period <= 0:
            raise ConfigError(
                f"absent_for: expected a positive duration, got {self.period!r}", key="absent_for"
            )

    def to_dict(self) -> dict[str, Any]:
        """``{"absent_for": "30m"}``."""
        return {"absent_for": format_duration(self.period)}


Condition: TypeAlias = ThresholdCondition | DetectorCondition | AbsentCondition


def parse_condition(value: object, *, key: str) -> Condition:
    """A condition from its configuration form: ``"> 0.2"``, ``{op, threshold}``,
    ``{detector: {kind, params}}`` or ``{absent_for: 30m}``; ``ConfigError`` otherwise."""
    if isinstance(value, str):
        found = _CONDITION_TEXT.match(value)
        if found is not None:
            try:
                return ThresholdCondition(op=Op(found.group(1)), threshold=float(found.group(2)))
            except (ValueError, ConfigError):
                pass
    elif isinstance(value, Mapping):
        if set(value) == {"op", "threshold"}:
            op, threshold = value["op"], value["threshold"]
            if op not in {member.value for member in Op}:
                raise ConfigError(
                    f"{key}.op: expected one of > >= < <= == !=, got {op!r}", key=f"{key}.op"
                )
            if isinstance(threshold, bool) or not isinstance(threshold, int | float):
                raise ConfigError(
                    f"{key}.threshold: expected a number, got {threshold!r}",
                    key=f"{key}.threshold",
                )
            return ThresholdCondition(op=Op(op), threshold=float(threshold))
        if set(value) == {"detector"} and isinstance(value["detector"], Mapping):
            detector = value["detector"]
            if not isinstance(detector.get("kind"), str) or set(detector) - {"kind", "params"}:
                raise ConfigError(
                    f"{key}.detector: expected {{kind: <name>, params: {{...}}}}, got {detector!r}",
                    key=f"{key}.detector",
                )
            params = detector.get("params") or {}
            if not isinstance(params, Mapping):
                raise ConfigError(
                    f"{key}.detector.params: expected a mapping, got {params!r}",
                    key=f"{key}.detector.params",
                )
            return DetectorCondition(kind=detector["kind"], params=params)
        if set(value) == {"absent_for"}:
            period = parse_duration(value["absent_for"], key=f"{key}.absent_for")
            if period <= 0:
                raise ConfigError(
                    f"{key}.absent_for: expected a positive duration such as 30m",
                    key=f"{key}.absent_for",
                )
            return AbsentCondition(period=period)
    raise ConfigError(
        f'{key}: expected a threshold such as "> 0.2" (or {{op, threshold}}), '
        f"{{detector: {{kind, params}}}} or {{absent_for: 30m}}, got {value!r}",
        key=key,
    )
