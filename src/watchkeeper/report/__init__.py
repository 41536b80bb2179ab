"""Batch reports: drift + quality + performance → JSON (``watchkeeper.report/v1``) and HTML."""

from watchkeeper.report.report import REPORT_SCHEMA, Report, ReportResult

__all__ = ["REPORT_SCHEMA", "Report", "ReportResult"]
