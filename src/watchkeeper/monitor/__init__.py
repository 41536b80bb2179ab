"""Live monitoring: windows of mergeable profiles per model · version · segment, their signals,
delayed-label and feedback joins, recovery from raw events, and range reports.

See ``docs/monitoring.md``.
"""

from __future__ import annotations

from watchkeeper.monitor.service import MonitorService
from watchkeeper.monitor.windows import EventBatch

__all__ = ["EventBatch", "MonitorService"]
