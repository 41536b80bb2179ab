"""Batch reports: drift + quality + performance → JSON (``watchkeeper.report/v1``) and HTML."""

from watchkeeper.report.report import Report, ReportResult

__all__ = ["Report", "ReportResult"]
