"""What the alerting engine reads from the monitoring service: samples and changed windows.

``MonitorService.latest_samples()`` and ``changed_windows()`` return plain dicts (they cross
the HTTP API and the SDK's local mode as JSON); these functions turn them into the typed
:class:`Sample` and :class:`WindowSamples` the rule evaluator consumes, with an
:class:`InputError` naming the entry and field for anything malformed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from watchkeeper.alerts.model import Sample
from watchkeeper.errors import ConfigError, InputError
from watchkeeper.signalkey import feature_of

__all__ = ["WindowSamples", "sample_from_dict", "window_from_dict"]


@dataclass(frozen=True)
class WindowSamples:
    """The samples of one window, ``[start, end)``, evaluated as one step in event time."""

    start: float
    end: float
    samples: Sequence[Sample]

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end) and self.start < self.end):
            raise ConfigError(
                f"window: expected finite start < end, got start={self.start!r}, end={self.end!r}",
                key="window",
            )


def sample_from_dict(data: Mapping[str, Any], *, index: int = 0) -> Sample:
    """Convert one ``MonitorService.latest_samples()`` entry into a :class:`Sample`.

    Empty or null label values are dropped, and so is ``segment: "*"`` (all segments, the
    same as no segment label); a missing ``feature`` label is derived from ``drift.`` and
    ``quality.`` signal names (:func:`~watchkeeper.signalkey.feature_of`), and a null value
    becomes NaN ("no usable data").
    """
    labels = data.get("labels") if isinstance(data, Mapping) else None
    if not isinstance(labels, Mapping) or not labels.get("model") or not labels.get("signal"):
        raise InputError(
            f"samples[{index}].labels: expected a mapping with model and signal, got {labels!r}",
            column="labels",
        )
    raw_value, raw_timestamp = data.get("value"), data.get("timestamp")
    try:
        value = math.nan if raw_value is None else float(raw_value)
        timestamp = float(raw_timestamp)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(
            f"samples[{index}]: value and timestamp must be numbers, got "
            f"{raw_value!r} and {raw_timestamp!r}",
            column="value",
        ) from None
    clean = {
        str(name): str(text)
        for name, text in labels.items()
        if text is not None and text != "" and not (name == "segment" and text == "*")
    }
    signal = clean["signal"]
    feature = feature_of(signal)
    if "feature" not in clean and feature is not None:
        clean["feature"] = feature
    return Sample(labels=clean, value=value, timestamp=timestamp)


def window_from_dict(data: Mapping[str, Any] | WindowSamples, *, index: int = 0) -> WindowSamples:
    """Convert one ``MonitorService.changed_windows()`` entry (``start``, ``end``,
    ``samples``) into :class:`WindowSamples`."""
    if isinstance(data, WindowSamples):
        return data
    if not isinstance(data, Mapping) or not isinstance(data.get("samples"), Sequence):
        raise InputError(
            f"windows[{index}]: expected a mapping with start, end and samples, got {data!r}",
            column="windows",
        )
    try:
        start, end = float(data["start"]), float(data["end"])
    except (KeyError, TypeError, ValueError):
        raise InputError(
            f"windows[{index}]: start and end must be numbers, got {data.get('start')!r} and "
            f"{data.get('end')!r}",
            column="windows",
        ) from None
    samples = [
        sample if isinstance(sample, Sample) else sample_from_dict(sample, index=position)
        for position, sample in enumerate(data["samples"])
    ]
    try:
        return WindowSamples(start=start, end=end, samples=samples)
    except ConfigError as error:
        raise InputError(f"windows[{index}]: {error}", column="windows") from None
