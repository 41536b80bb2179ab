"""The registry's operations of the CLI backends, for ``models versions``, ``alias``,
``rollback`` and ``history``.

:class:`RegistryServerCalls` calls the registry routes of a server; :class:`RegistryDatabaseCalls`
runs the model registry on the database and builds the same documents the routes answer
(:mod:`watchkeeper.registry.views`). :mod:`watchkeeper.cli.backend` mixes them into its two
backends. On a database, who registered a version or moved an alias is the user running the
command; on a server, the name of the token.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

if TYPE_CHECKING:
    from watchkeeper.alerts.engine import AlertingEngine
    from watchkeeper.config import Settings
    from watchkeeper.monitor.service import MonitorService
    from watchkeeper.registry import Registry
    from watchkeeper.store import Store

__all__ = ["RegistryCalls", "RegistryDatabaseCalls", "RegistryServerCalls"]


class RegistryCalls(Protocol):
    """The registry operations; each answers the JSON document of the matching API route."""

    def register_version(
        self, model: str, path: Path, options: Mapping[str, Any]
    ) -> dict[str, Any]: ...
    def list_versions(self, model: str) -> dict[str, Any]: ...
    def get_version(self, model: str, version: str) -> dict[str, Any]: ...
    def set_alias(self, model: str, alias: str, version: int, reason: str) -> dict[str, Any]: ...
    def rollback(self, model: str, alias: str, reason: str) -> dict[str, Any]: ...
    def alias_history(self, model: str, alias: str, at: str | None) -> dict[str, Any]: ...


def _operator() -> str:
    """Who runs the command: the login name (``cli`` when the system has none for the user)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry nor LOGNAME / USER
        return "cli"


def _path(model: str, *parts: str) -> str:
    return "/".join(
        ["/v1/models", quote(model, safe=""), *(quote(part, safe="") for part in parts)]
    )


class RegistryServerCalls:
    """The registry operations over a server's API (mixed into ``ServerBackend``)."""

    def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover - ServerBackend provides it

    def register_version(
        self, model: str, path: Path, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"filename": path.name}
        for name, value in options.items():
            if value is None or value == {}:
                continue
            if isinstance(value, Mapping):
                query[name] = json.dumps(dict(value))
            elif isinstance(value, bool):
                query[name] = str(value).lower()
            else:
                query[name] = value
        return self._call(
            "POST",
            _path(model, "versions"),
            content=path.read_bytes(),
            params=query,
            headers={"Content-Type": "application/octet-stream"},
        )

    def list_versions(self, model: str) -> dict[str, Any]:
        return self._call("GET", _path(model, "versions"))

    def get_version(self, model: str, version: str) -> dict[str, Any]:
        return self._call("GET", _path(model, "versions", version))

    def set_alias(self, model: str, alias: str, version: int, reason: str) -> dict[str, Any]:
        return self._call(
            "PUT", _path(model, "aliases", alias), json={"version": version, "reason": reason}
        )

    def rollback(self, model: str, alias: str, reason: str) -> dict[str, Any]:
        return self._call(
            "POST", _path(model, "aliases", alias, "rollback"), json={"reason": reason}
        )

    def alias_history(self, model: str, alias: str, at: str | None) -> dict[str, Any]:
        params = {} if at is None else {"at": at}
        return self._call("GET", _path(model, "aliases", alias, "history"), params=params)


class RegistryDatabaseCalls:
    """The registry operations on the database (mixed into ``DatabaseBackend``)."""

    settings: Settings
    store: Store
    _registry: Registry | None = None

    @property
    def service(self) -> MonitorService:
        raise NotImplementedError  # pragma: no cover - DatabaseBackend provides it

    @property
    def alerting(self) -> AlertingEngine:
        raise NotImplementedError  # pragma: no cover - DatabaseBackend provides it

    @property
    def registry(self) -> Registry:
        """The model registry on the store, artifacts where the server keeps them."""
        if self._registry is None:
            from watchkeeper.registry import ArtifactStore, Registry

            self._registry = Registry(self.store, ArtifactStore(self.settings.artifact_location))
        return self._registry

    def _views(self) -> dict[str, Any]:
        return {"registry": self.registry, "monitor": self.service, "alerting": self.alerting}

    def register_version(
        self, model: str, path: Path, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        from watchkeeper.registry.views import version_document

        record = self.registry.register(model, path, registered_by=_operator(), **options)
        return version_document(self.registry, record)

    def list_versions(self, model: str) -> dict[str, Any]:
        from watchkeeper.registry.views import versions_document

        return versions_document(model, **self._views())

    def get_version(self, model: str, version: str) -> dict[str, Any]:
        from watchkeeper.registry.views import version_entry

        return version_entry(model, version, **self._views())

    def set_alias(self, model: str, alias: str, version: int, reason: str) -> dict[str, Any]:
        from watchkeeper.registry.views import alias_document

        move = self.registry.set_alias(model, alias, version, moved_by=_operator(), reason=reason)
        return alias_document(model, alias, move, version)

    def rollback(self, model: str, alias: str, reason: str) -> dict[str, Any]:
        from watchkeeper.registry.views import alias_document

        move = self.registry.rollback(model, alias, moved_by=_operator(), reason=reason)
        return alias_document(model, alias, move, move.to_version)

    def alias_history(self, model: str, alias: str, at: str | None) -> dict[str, Any]:
        from watchkeeper.registry.views import history_document
        from watchkeeper.server.routes.signals import parse_instant

        return history_document(self.registry, model, alias, at=parse_instant(at, name="at"))
