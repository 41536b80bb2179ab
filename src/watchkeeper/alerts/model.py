"""The alert data model: samples, alert states, alerts, fingerprints and durations.

Identity follows Prometheus/Alertmanager: an alert *is* its label set (rule labels, series
labels and ``alertname``); its fingerprint is a stable hash of the sorted label pairs, so the
same condition on the same series always maps to the same alert across evaluations, restarts
and processes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeAlias

from watchkeeper.errors import ConfigError
from watchkeeper.signalkey import feature_of

__all__ = [
    "ZERO_TIME",
    "Alert",
    "AlertState",
    "Fingerprint",
    "Labels",
    "Sample",
    "Severity",
    "fingerprint",
    "format_duration",
    "format_timestamp",
    "parse_duration",
]

Fingerprint: TypeAlias = str
"""16 hexadecimal digits identifying a label set."""

Labels: TypeAlias = Mapping[str, str]

ZERO_TIME = "0001-01-01T00:00:00Z"
"""What Alertmanager writes as ``endsAt`` of an alert that is still firing."""

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_DURATION_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}


class Severity(StrEnum):
    """How urgent an alert is; routes and inhibition rules usually match on it."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(StrEnum):
    """Where an alert is in its life: ``inactive → pending → firing → resolved``."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


def _freeze(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


def fingerprint(labels: Mapping[str, str]) -> Fingerprint:
    """Return the stable 64-bit fingerprint of a label set, as 16 hexadecimal digits.

    BLAKE2b over the sorted ``name 0xff value 0xff`` pairs: the separator byte cannot occur in
    UTF-8 text, so distinct label sets never serialise to the same bytes.

    >>> fingerprint({"alertname": "Drift", "model": "credit"})
    'e7ccf77249d5d6d2'
    """
    digest = hashlib.blake2b(digest_size=8)
    for name in sorted(labels):
        digest.update(name.encode())
        digest.update(b"\xff")
        digest.update(labels[name].encode())
        digest.update(b"\xff")
    return digest.hexdigest()


def parse_duration(value: object, *, key: str = "duration") -> float:
    """Return seconds for a Prometheus-style duration (``90s``, ``5m``, ``1h30m``) or a number.

    Raises ConfigError naming ``key`` when the value is not a non-negative duration.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration such as 5m, got {value!r}", key=key)
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(
                f"{key}: expected a non-negative duration such as 5m, got {value!r}", key=key
            )
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "0":
            return 0.0
        position = 0
        total = 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != position:
                break
            total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            position = match.end()
        if text and position == len(text):
            return total
    raise ConfigError(f"{key}: expected a duration such as 5m, got {value!r}", key=key)


def format_duration(seconds: float) -> str:
    """Return the shortest Prometheus duration string for ``seconds`` (``3600 → '1h'``)."""
    if seconds <= 0:
        return "0s"
    milliseconds = round(seconds * 1000)
    parts: list[str] = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, milliseconds = divmod(milliseconds, size)
        if count:
            parts.append(f"{count}{unit}")
    if milliseconds:
        parts.append(f"{milliseconds}ms")
    return "".join(parts)


def format_timestamp(epoch_seconds: float | None) -> str:
    """Return an RFC 3339 UTC timestamp, or Alertmanager's zero time for ``None``."""
    if epoch_seconds is None:
        return ZERO_TIME
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Sample:
    """The latest value of one signal series, as handed to :class:`RuleEvaluator`.

    ``labels`` must hold ``model`` and ``signal`` (e.g. ``drift.age.score``, ``accuracy``) and
    may hold ``version``, ``segment`` (``key=value`` pairs joined by ``,``) and ``feature``.
    ``timestamp`` is epoch seconds of the window the value describes. A NaN ``value`` means
    "no usable data" and never satisfies a threshold.
    """

    labels: Labels
    value: float
    timestamp: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _freeze(self.labels))

    @classmethod
    def of(
        cls,
        *,
        model: str,
        signal: str,
        value: float,
        timestamp: float,
        version: str | None = None,
        segment: str | None = None,
    ) -> Sample:
        """Build a sample, adding the ``feature`` label of ``drift.`` and ``quality.`` signals
        (:func:`watchkeeper.signalkey.feature_of`)."""
        labels = {"model": model, "signal": signal}
        if version is not None:
            labels["version"] = version
        if segment:
            labels["segment"] = segment
        feature = feature_of(signal)
        if feature is not None:
            labels["feature"] = feature
        return cls(labels=labels, value=float(value), timestamp=float(timestamp))


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as the evaluator reports it and the dispatcher routes it.

    ``ends_at`` is ``None`` while firing and the resolution time once resolved. ``updated_at``
    is when the evaluator last reported it (the dispatcher resolves alerts that stop being
    reported after ``resolve_timeout``).
    """

    labels: Labels
    annotations: Labels
    state: AlertState
    starts_at: float
    ends_at: float | None
    value: float | None
    updated_at: float
    generator_url: str = ""
    fingerprint: Fingerprint = field(default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _freeze(self.labels))
        object.__setattr__(self, "annotations", _freeze(self.annotations))
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint(self.labels))

    @property
    def name(self) -> str:
        """The ``alertname`` label."""
        return self.labels.get("alertname", "")

    def is_resolved_at(self, now: float) -> bool:
        """Whether the alert has ended by ``now``."""
        return self.ends_at is not None and self.ends_at <= now

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "state": self.state.value,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "value": self.value,
            "updated_at": self.updated_at,
            "generator_url": self.generator_url,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """Rebuild an alert from :meth:`to_dict` output."""
        return cls(
            labels=data["labels"],
            annotations=data["annotations"],
            state=AlertState(data["state"]),
            starts_at=float(data["starts_at"]),
            ends_at=None if data["ends_at"] is None else float(data["ends_at"]),
            value=None if data["value"] is None else float(data["value"]),
            updated_at=float(data["updated_at"]),
            generator_url=str(data.get("generator_url", "")),
            fingerprint=str(data.get("fingerprint", "")),
        )
