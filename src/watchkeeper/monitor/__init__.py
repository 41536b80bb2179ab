"""Live monitoring: windows of mergeable profiles per model · version · segment, their signals,
delayed-label and feedback joins, recovery from raw events, and range reports.

See ``docs/monitoring.md``.
"""

from __future__ import annotations

from watchkeeper.monitor.performance import (
    AUC_BINS,
    ClassificationAccumulator,
    RegressionAccumulator,
)
from watchkeeper.monitor.service import IngestOutcome, MonitorService
from watchkeeper.monitor.signals import signal_names, window_signals
from watchkeeper.monitor.windows import ColumnPlan, EventBatch, WindowKey, WindowProfile

__all__ = [
    "AUC_BINS",
    "ClassificationAccumulator",
    "ColumnPlan",
    "EventBatch",
    "IngestOutcome",
    "MonitorService",
    "RegressionAccumulator",
    "WindowKey",
    "WindowProfile",
    "signal_names",
    "window_signals",
]
