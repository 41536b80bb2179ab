"""watchkeeper keeps machine learning models healthy in production.

The public API is listed in ``__all__``; heavy modules (pandas, SciPy, the service) are imported
only when a name that needs them is first used, so ``import watchkeeper`` stays fast.
"""

from __future__ import annotations

import importlib
import typing

from watchkeeper.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    DeliveryError,
    DriftError,
    EmptyDataError,
    IngestError,
    InputError,
    NotFoundError,
    SchemaError,
    StaleVersionError,
    StoreError,
    WatchkeeperError,
)

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "ColumnKind": "watchkeeper.schema",
    "Schema": "watchkeeper.schema",
    "TaskType": "watchkeeper.schema",
    "infer_schema": "watchkeeper.schema",
    "read_table": "watchkeeper.frame",
    "as_dataframe": "watchkeeper.frame",
    "Report": "watchkeeper.report.report",
    "ReportResult": "watchkeeper.report.report",
    "DriftConfig": "watchkeeper.stats.drift",
    "DriftTest": "watchkeeper.stats.drift",
    "QualityThresholds": "watchkeeper.stats.quality",
}

__all__ = [
    "AuthError",
    "ColumnKind",
    "ConfigError",
    "ConflictError",
    "DeliveryError",
    "DriftConfig",
    "DriftError",
    "DriftTest",
    "EmptyDataError",
    "IngestError",
    "InputError",
    "NotFoundError",
    "QualityThresholds",
    "Report",
    "ReportResult",
    "Schema",
    "SchemaError",
    "StaleVersionError",
    "StoreError",
    "TaskType",
    "WatchkeeperError",
    "__version__",
    "as_dataframe",
    "infer_schema",
    "read_table",
]

if typing.TYPE_CHECKING:
    from watchkeeper.frame import as_dataframe, read_table
    from watchkeeper.report.report import Report, ReportResult
    from watchkeeper.schema import ColumnKind, Schema, TaskType, infer_schema
    from watchkeeper.stats.drift import DriftConfig, DriftTest
    from watchkeeper.stats.quality import QualityThresholds


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'watchkeeper' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
