"""Streaming change detectors with one contract, and thresholds calibrated to a target ARL0.

Every detector takes one value per ``update(x)`` and exposes read-only ``drift_detected`` and
``warning_detected`` flags for that update, ``reset()``, ``n_seen`` and a JSON-safe ``spec``.
Build any of them from a spec: ``DetectorSpec(kind="cusum", params={}).build()``. The kinds are
listed in :data:`DETECTOR_KINDS` and documented in ``docs/detectors.md``. Pure numerics, no I/O.
"""

from __future__ import annotations

from watchkeeper.detectors.base import Detector, DetectorSpec
from watchkeeper.detectors.calibration import (
    calibrate_cusum,
    calibrate_ewma,
    calibrate_page_hinkley,
    cusum_arl,
    ewma_arl,
    simulated_arl,
)
from watchkeeper.detectors.charts import CUSUM, EWMA
from watchkeeper.detectors.registry import DETECTOR_KINDS
from watchkeeper.detectors.river_wrappers import ADWIN, DDM, EDDM, HDDMA, HDDMW, KSWIN, PageHinkley
from watchkeeper.detectors.thresholds import DynamicThreshold, StaticThreshold

__all__ = [
    "ADWIN",
    "CUSUM",
    "DDM",
    "DETECTOR_KINDS",
    "EDDM",
    "EWMA",
    "HDDMA",
    "HDDMW",
    "KSWIN",
    "Detector",
    "DetectorSpec",
    "DynamicThreshold",
    "PageHinkley",
    "StaticThreshold",
    "calibrate_cusum",
    "calibrate_ewma",
    "calibrate_page_hinkley",
    "cusum_arl",
    "ewma_arl",
    "simulated_arl",
]
