"""The JSON documents of the registry API, built in one place.

The HTTP routes (:mod:`watchkeeper.server.routes.registry`) answer with these documents, and the
CLI builds the same ones when it works on a database instead of a server, so both print the
same thing.

A model's versions are one list (:func:`versions_document`): the versions registered in the
registry (numbered 1, 2, …) and the versions seen in the monitor's events (any string), joined
by name (events sent with version ``"2"`` are registry version 2). Each entry keeps the fields
the monitor always answered (``version``, ``created_at``, ``metadata``) and adds ``registered``
and ``monitored``, the registration (``registry``) when there is one, and its live health
(``live``: events, newest event, latest closed window's signals, open alerts) when it has had
traffic, so a version's registration metrics sit next to how it does in production.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from watchkeeper.errors import NotFoundError
from watchkeeper.registry.registry import version_dict

if TYPE_CHECKING:
    from watchkeeper.alerts.engine import AlertingEngine
    from watchkeeper.monitor.service import MonitorService
    from watchkeeper.registry.registry import Registry
    from watchkeeper.store.registry import AliasMoveRecord, RegistryVersionRecord

__all__ = [
    "alias_document",
    "aliases_document",
    "history_document",
    "move_document",
    "version_document",
    "versions_document",
]

_OPEN_STATES = ("pending", "firing")


def move_document(move: AliasMoveRecord) -> dict[str, Any]:
    """One alias move: from which version to which, by whom, when and why."""
    return {
        "id": move.id,
        "model": move.model,
        "alias": move.alias,
        "from_version": move.from_version,
        "to_version": move.to_version,
        "moved_by": move.moved_by,
        "moved_at": move.moved_at,
        "reason": move.reason,
    }


def version_document(registry: Registry, record: RegistryVersionRecord) -> dict[str, Any]:
    """A registered version with the aliases that point at it now."""
    aliases = [
        item.alias for item in registry.aliases(record.model) if item.version == record.version
    ]
    return version_dict(record, aliases)


def alias_document(
    model: str, alias: str, move: AliasMoveRecord | None, version: int | None
) -> dict[str, Any]:
    """Where ``model@alias`` points after a change, and the move recorded (None: no change)."""
    return {
        "model": model,
        "alias": alias,
        "version": version,
        "move": None if move is None else move_document(move),
    }


def aliases_document(registry: Registry, model: str) -> dict[str, Any]:
    """Every alias of ``model`` and the version it points to now; 404 for a model without
    registered versions."""
    if not registry.versions(model):
        raise NotFoundError(f"model {model!r} has no registered versions", kind="model", name=model)
    return {
        "model": model,
        "aliases": [
            {"alias": item.alias, "version": item.version, "updated_at": item.updated_at}
            for item in registry.aliases(model)
        ],
    }


def history_document(
    registry: Registry, model: str, alias: str, *, at: float | None = None, limit: int = 1000
) -> dict[str, Any]:
    """Every move of ``model@alias`` (newest first), and the version it points to: now, or at
    ``at`` (None when it pointed nowhere then); 404 when the alias was never set."""
    moves = registry.history(model, alias, limit=limit)
    if not moves:
        known = ", ".join(item.alias for item in registry.aliases(model)) or "none"
        raise NotFoundError(
            f"{model}@{alias} has never been set (aliases of {model!r} now: {known})",
            kind="alias",
            name=f"{model}@{alias}",
        )
    version = (
        moves[0].to_version if at is None else registry.store.alias_version_at(model, alias, at)
    )
    return {
        "model": model,
        "alias": alias,
        "at": at,
        "version": version,
        "history": [move_document(move) for move in moves],
    }


def versions_document(
    model: str,
    *,
    registry: Registry,
    monitor: MonitorService,
    alerting: AlertingEngine | None,
) -> dict[str, Any]:
    """``{"model", "versions"}``: registered and monitored versions in one list, oldest first
    (registered versions from their registration, the others from their first event).

    404 when ``model`` is neither monitored nor has registered versions.
    """
    registered = {str(record.version): record for record in registry.versions(model)}
    try:
        seen = {item["version"]: item for item in monitor.list_versions(model)}
    except NotFoundError:
        if not registered:
            raise NotFoundError(
                f"no model {model!r}: it is not monitored and has no registered versions",
                kind="model",
                name=model,
            ) from None
        seen, health = {}, {}
    else:
        health = monitor.version_health(model)
    aliases: dict[int, list[str]] = {}
    for item in registry.aliases(model) if registered else ():
        aliases.setdefault(item.version, []).append(item.alias)
    alerts = _open_alerts(alerting, model) if seen else {}
    entries = []
    for version in registered.keys() | seen.keys():
        record = registered.get(version)
        monitored = seen.get(version)
        entry: dict[str, Any] = {
            "version": version,
            "created_at": None,
            "metadata": {},
            "registered": record is not None,
            "monitored": monitored is not None,
            "registry": None,
            "live": None,
        }
        if record is not None:
            entry["created_at"] = record.registered_at
            entry["registry"] = version_dict(record, aliases.get(record.version, []))
        if monitored is not None:
            # The monitor's fields as this route always answered them.
            entry["created_at"] = monitored["created_at"]
            entry["metadata"] = dict(monitored["metadata"])
            entry["live"] = {
                **health.get(version, {"events": 0, "last_event": None, "window": None}),
                "alerts": alerts.get(version, []),
            }
        entries.append(entry)
    entries.sort(key=_entry_order)
    return {"model": model, "versions": entries}


def version_entry(
    model: str,
    version: str,
    *,
    registry: Registry,
    monitor: MonitorService,
    alerting: AlertingEngine | None,
) -> dict[str, Any]:
    """The entry of one version as :func:`versions_document` gives it; 404 naming the versions
    there are when ``version`` is neither registered nor seen in events."""
    document = versions_document(model, registry=registry, monitor=monitor, alerting=alerting)
    entries: list[dict[str, Any]] = document["versions"]
    for entry in entries:
        if entry["version"] == version:
            return entry
    names = [entry["version"] for entry in entries]
    raise NotFoundError(
        f"model {model!r} has no version {version!r}; its versions are "
        f"{', '.join(names[:20]) or 'none'}{', …' if len(names) > 20 else ''}",
        kind="version",
        name=f"{model}/{version}",
    )


def _entry_order(entry: Mapping[str, Any]) -> tuple[float, int, str]:
    """Oldest first: a registered version from its registration, another from its first event."""
    registration = entry["registry"]
    if registration is None:
        return (float(entry["created_at"]), 0, entry["version"])
    return (float(registration["registered_at"]), registration["version"], entry["version"])


def _open_alerts(alerting: AlertingEngine | None, model: str) -> dict[str, list[dict[str, Any]]]:
    """The pending and firing alerts of ``model`` by the version their labels name."""
    if alerting is None:
        return {}
    from watchkeeper.alerts.views import alerts_document

    found: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts_document(alerting)["alerts"]:
        labels = alert["labels"]
        if alert["state"] in _OPEN_STATES and labels.get("model") == model and "version" in labels:
            found.setdefault(labels["version"], []).append(alert)
    return found
