"""The one exception tree of watchkeeper.

Every error raised on purpose by watchkeeper derives from :class:`WatchkeeperError`, and also
from the builtin a caller would naturally catch, so existing ``except ValueError`` clauses keep
working::

    WatchkeeperError
     ├── ConfigError(ValueError)            bad setting: names the key and the bad value
     ├── InputError(ValueError)             unusable input data (file, frame, column)
     │    ├── SchemaError                   columns missing, wrong kinds, nothing in common
     │    └── EmptyDataError                no rows, or no usable values in a column
     ├── DriftError(ValueError)             a drift computation cannot be done (``.column``)
     ├── IngestError(ValueError)            a rejected event (``.index``, ``.field``)
     ├── NotFoundError(LookupError)         an unknown model, version, rule, alert ...
     ├── ConflictError(ValueError)          a duplicate name or an impossible state change
     │    └── StaleVersionError             a change made against an outdated version (``.current``)
     ├── AuthError(PermissionError)         missing, unknown or insufficient token
     ├── StoreError(RuntimeError)           the metadata/event store failed (``.backend``)
     └── DeliveryError(RuntimeError)        a notification could not be delivered (``.receiver``)

Domain code raises these; only ``watchkeeper.server.errors`` maps them to HTTP status codes and
only ``watchkeeper.cli`` maps them to exit codes.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "DeliveryError",
    "DriftError",
    "EmptyDataError",
    "IngestError",
    "InputError",
    "NotFoundError",
    "SchemaError",
    "StaleVersionError",
    "StoreError",
    "WatchkeeperError",
]


class WatchkeeperError(Exception):
    """Root of every error that watchkeeper raises on purpose."""


class ConfigError(WatchkeeperError, ValueError):
    """A setting is missing or has a bad value.

    ``key`` names the setting; the message says what was wrong and what to do.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class InputError(WatchkeeperError, ValueError):
    """Input data cannot be used: unreadable file, unsupported type, bad column."""

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class SchemaError(InputError):
    """Columns are missing, unexpected, of the wrong kind, or there is nothing in common."""


class EmptyDataError(InputError):
    """A data set has no rows, or a column has no usable values."""


class DriftError(WatchkeeperError, ValueError):
    """A drift statistic cannot be computed for ``column``."""

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class IngestError(WatchkeeperError, ValueError):
    """An ingested event was rejected: ``index`` in its batch, ``field`` and the reason."""

    def __init__(self, message: str, *, index: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.field = field


class NotFoundError(WatchkeeperError, LookupError):
    """An unknown model, version, rule, alert, token or other named object."""

    def __init__(self, message: str, *, kind: str | None = None, name: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


class ConflictError(WatchkeeperError, ValueError):
    """A duplicate name, or a state change that the current state does not allow."""


class StaleVersionError(ConflictError):
    """A change made against a version of an object that is no longer the current one (an
    ``If-Match`` that does not match); ``current`` is the version now stored."""

    def __init__(self, message: str, *, current: int) -> None:
        super().__init__(message)
        self.current = current


class AuthError(WatchkeeperError, PermissionError):
    """A request had no token, an unknown token, or a token without the needed scope."""


class StoreError(WatchkeeperError, RuntimeError):
    """The store failed; ``backend`` names it (``sqlite``, ``postgresql``, ``memory``)."""

    def __init__(self, message: str, *, backend: str | None = None) -> None:
        super().__init__(message)
        self.backend = backend


class DeliveryError(WatchkeeperError, RuntimeError):
    """A notification could not be delivered to ``receiver`` (it will be retried)."""

    def __init__(self, message: str, *, receiver: str | None = None) -> None:
        super().__init__(message)
        self.receiver = receiver
