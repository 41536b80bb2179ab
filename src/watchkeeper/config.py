"""Typed settings of the watchkeeper service, built once and passed down.

Sources, later ones winning: defaults → a YAML config file (``--config FILE``) → environment
variables ``WATCHKEEPER_<FIELD>`` (upper case) → explicit keyword overrides (CLI flags).
Every bad value fails loudly with :class:`~watchkeeper.errors.ConfigError` naming the key and
the value, e.g. ``WATCHKEEPER_PORT: expected an integer, got 'eighty'``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from watchkeeper.errors import ConfigError

__all__ = ["ENV_PREFIX", "Settings", "load_settings"]

ENV_PREFIX = "WATCHKEEPER_"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service needs to start; see ``docs/service.md`` for each field."""

    db: str = "sqlite:///watchkeeper.db"
    host: str = "127.0.0.1"
    port: int = 8000
    auth: bool = False
    admin_token: str | None = field(default=None, repr=False)
    max_body_bytes: int = 32 * 1024 * 1024
    max_admin_body_bytes: int = 1024 * 1024
    max_header_bytes: int = 64 * 1024
    max_batch_events: int = 10_000
    max_event_age_seconds: float = 7 * 86_400.0
    max_event_future_seconds: float = 300.0
    label_grace_seconds: float = 3_600.0
    window_check_seconds: float = 5.0
    retention_check_seconds: float = 3_600.0
    checkpoint_seconds: float = 30.0
    external_url: str = "http://127.0.0.1:8000"
    log_level: str = "info"
    alerts_config: str | None = None
    alerts_interval_seconds: float = 15.0
    alerts_delivery_interval_seconds: float = 5.0
    alerts_history_horizon_seconds: float = 30 * 86_400.0
    sqlite_synchronous: str = "FULL"
    ingest_workers: int | None = None
    ingest_concurrency: int | None = None
    max_versions_per_model: int = 100
    max_segments_per_model: int = 1_000
    artifact_root: str | None = None
    max_artifact_bytes: int = 512 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ConfigError(
                f"sqlite_synchronous: expected FULL (every acknowledged batch survives power "
                f"loss) or NORMAL (survives a crashed or killed process, not power loss), got "
                f"{self.sqlite_synchronous!r}",
                key="sqlite_synchronous",
            )
        if self.ingest_workers is not None and self.ingest_workers < 0:
            raise ConfigError(
                f"ingest_workers: expected 0 (decode in the server process) or more worker "
                f"processes, got {self.ingest_workers}",
                key="ingest_workers",
            )
        if self.ingest_concurrency is not None and self.ingest_concurrency < 1:
            raise ConfigError(
                f"ingest_concurrency: expected at least 1 event batch in progress at a time, "
                f"got {self.ingest_concurrency}",
                key="ingest_concurrency",
            )
        if not 0 < self.port < 65_536:
            raise ConfigError(f"port: expected 1–65535, got {self.port}", key="port")
        for key in (
            "max_body_bytes",
            "max_admin_body_bytes",
            "max_header_bytes",
            "max_batch_events",
            "max_versions_per_model",
            "max_segments_per_model",
            "max_artifact_bytes",
            "alerts_delivery_interval_seconds",
        ):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key}: must be > 0, got {getattr(self, key)}", key=key)
        for key in (
            "max_event_age_seconds",
            "max_event_future_seconds",
            "label_grace_seconds",
            "window_check_seconds",
            "retention_check_seconds",
            "checkpoint_seconds",
            "alerts_interval_seconds",
            "alerts_history_horizon_seconds",
        ):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: must be >= 0, got {getattr(self, key)}", key=key)
        if self.log_level not in ("critical", "error", "warning", "info", "debug"):
            raise ConfigError(
                f"log_level: expected critical|error|warning|info|debug, got {self.log_level!r}",
                key="log_level",
            )

    @property
    def is_loopback(self) -> bool:
        """Whether ``host`` only accepts connections from this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def notify_horizon(self) -> float | None:
        """How old (event time) an alert's window may be and still be sent; None: any age."""
        return self.alerts_history_horizon_seconds or None

    @property
    def artifact_location(self) -> str:
        """Where the model registry keeps artifacts: ``artifact_root``, or by default a
        ``watchkeeper-artifacts`` directory beside a SQLite database file (the working
        directory for PostgreSQL and in-memory SQLite)."""
        if self.artifact_root:
            return self.artifact_root
        prefix = "sqlite:///"
        if self.db.startswith(prefix) and self.db[len(prefix) :] not in ("", ":memory:"):
            database = Path(self.db[len(prefix) :].split("?", 1)[0])
            return str(database.parent / "watchkeeper-artifacts")
        return "watchkeeper-artifacts"

    def check_exposure(self) -> None:
        """Refuse to listen beyond loopback without authentication configured."""
        if not self.is_loopback and not self.auth:
            raise ConfigError(
                f"host: refusing to listen on non-loopback address {self.host!r} without "
                "authentication; set WATCHKEEPER_AUTH=true (and create tokens with "
                "`watchkeeper tokens create`) or bind to 127.0.0.1",
                key="host",
            )

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def _coerce(key: str, raw: Any, annotation: Any, *, source: str) -> Any:
    """Convert ``raw`` (a string from the environment, or a YAML value) to the field's type."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "null")):
            return None
        annotation = options[0]
    label = f"{source}{key.upper() if source == ENV_PREFIX else key}"
    if annotation is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{label}: expected true or false, got {raw!r}", key=key)
    if annotation is int:
        if isinstance(raw, bool):
            raise ConfigError(f"{label}: expected an integer, got {raw!r}", key=key)
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{label}: expected an integer, got {raw!r}", key=key) from None
    if annotation is float:
        try:
            return float(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{label}: expected a number, got {raw!r}", key=key) from None
    if not isinstance(raw, str):
        raise ConfigError(f"{label}: expected a string, got {raw!r}", key=key)
    return raw


def load_settings(
    *,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build :class:`Settings` from defaults, a YAML file, the environment and overrides."""
    environ = os.environ if environ is None else environ
    hints = get_type_hints(Settings)
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}

    if config_file is not None:
        import yaml

        from watchkeeper._yaml import load_yaml

        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path}: no such file", key="config")
        try:
            document = load_yaml(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: not valid YAML ({exc})", key="config") from None
        if not isinstance(document, dict):
            raise ConfigError(f"config file {path}: expected a mapping of settings", key="config")
        for key, raw in document.items():
            if key not in known:
                raise ConfigError(
                    f"config file {path}: unknown setting {key!r} "
                    f"(known: {', '.join(sorted(known))})",
                    key=str(key),
                )
            values[key] = _coerce(key, raw, hints[key], source=f"{path}: ")

    for key in known:
        env_key = ENV_PREFIX + key.upper()
        if env_key in environ:
            values[key] = _coerce(key, environ[env_key], hints[key], source=ENV_PREFIX)

    for key, raw in overrides.items():
        if key not in known:
            raise ConfigError(f"unknown setting {key!r}", key=key)
        if raw is not None:
            values[key] = raw
    return Settings(**values)
