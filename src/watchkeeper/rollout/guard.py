"""The post-promotion guard: an alert rule with ``action: rollback`` on the champion moves the
``champion`` alias back to the version it held before.

When such an alert starts firing on the version the ``champion`` alias points to now, the alias
goes back one move (:meth:`~watchkeeper.registry.Registry.rollback`), recorded in its history
with the alert that caused it, so "which version served at T, and why" keeps an answer. An
alert on another version (the previous champion, a canary) moves nothing, and an alert that
keeps firing acts once: only the start of firing does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from watchkeeper.alerts.transitions import AlertTransition
from watchkeeper.errors import NotFoundError
from watchkeeper.registry import Registry

__all__ = ["champion_guard"]

logger = logging.getLogger("watchkeeper.rollout")


def champion_guard(registry: Registry) -> Callable[[AlertTransition], None]:
    """The ``rollback`` action for the alerting engine, over ``registry``."""

    def rollback(change: AlertTransition) -> None:
        model = change.labels.get("model", "")
        version = change.labels.get("version", "")
        try:
            champion = registry.alias_version(model, "champion")
        except NotFoundError:
            return  # no champion: nothing to guard
        if version != str(champion):
            return
        value = "" if change.value is None else f" = {change.value:g}"
        signal = change.labels.get("signal", "")
        move = registry.rollback(
            model,
            "champion",
            moved_by="alerting",
            reason=f"alert {change.rule} fired on version {version}: {signal}{value}",
        )
        logger.warning(
            "%s@champion rolled back from version %s to %s: alert %s fired",
            model,
            move.from_version,
            move.to_version,
            change.rule,
        )

    return rollback
