"""The mapping from detector kind to class, and building a detector from a kind and params."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from types import MappingProxyType

from watchkeeper.detectors.base import Detector, ParamValue
from watchkeeper.detectors.charts import CUSUM, EWMA
from watchkeeper.detectors.river_wrappers import ADWIN, DDM, EDDM, HDDMA, HDDMW, KSWIN, PageHinkley
from watchkeeper.detectors.thresholds import DynamicThreshold, StaticThreshold
from watchkeeper.errors import ConfigError

__all__ = ["DETECTOR_KINDS", "build_detector", "detector_class"]

DETECTOR_KINDS: Mapping[str, type[Detector]] = MappingProxyType(
    {
        detector.kind: detector
        for detector in (
            StaticThreshold,
            DynamicThreshold,
            CUSUM,
            EWMA,
            PageHinkley,
            ADWIN,
            KSWIN,
            DDM,
            EDDM,
            HDDMA,
            HDDMW,
        )
    }
)
"""Every built-in detector kind, read-only (a spec names its detector by one of these keys)."""


def detector_class(kind: str) -> type[Detector]:
    """Return the detector class registered under ``kind``; ConfigError if there is none."""
    try:
        return DETECTOR_KINDS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown detector kind {kind!r}; choose one of {sorted(DETECTOR_KINDS)}",
            key="kind",
        ) from None


@functools.cache
def _parameter_names(detector: type[Detector]) -> tuple[str, ...]:
    return tuple(inspect.signature(detector).parameters)


def build_detector(kind: str, params: Mapping[str, ParamValue]) -> Detector:
    """Build a fresh detector of ``kind``; unknown or bad parameters raise ConfigError."""
    detector = detector_class(kind)
    accepted = _parameter_names(detector)
    for name in params:
        if name not in accepted:
            raise ConfigError(
                f"unknown parameter {name!r} for detector kind {kind!r}; "
                f"accepted: {list(accepted)}",
                key=name,
            )
    return detector(**params)
