"""The rollout controller's :class:`~watchkeeper.rollout.traffic.TrafficControl` over the
router (:class:`watchkeeper.serving.Serving`).

The controller speaks in versions (``{"3": 90, "4": 10}``), the router in arms. Setting a split
gives each version's weight to the first arm that serves it (by number, or by an alias that
points to it now), adds an arm ``v<N>`` for a version no arm serves, and sets every other arm
to 0 (still reachable by the override header); sticky assignment, salt and shadow stay as they
are. The change is one routing revision (``changed_by`` ``rollout``), retried when another
writer got there first, so the routing history shows every step of a rollout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from watchkeeper.errors import ConflictError
from watchkeeper.rollout.traffic import check_split
from watchkeeper.serving import Arm, RoutingConfig, Serving, Target, champion_config

__all__ = ["ServingTraffic"]

_ATTEMPTS: Final = 8


class ServingTraffic:
    """Traffic splits of the router's routing configs, by version."""

    def __init__(self, serving: Serving, *, changed_by: str = "rollout") -> None:
        self._serving = serving
        self._changed_by = changed_by

    def split(self, model: str) -> dict[str, int]:
        """Each served version's share of ``model``'s traffic, in percent (rounded)."""
        config, _ = self._config(model)
        versions = self._versions(model, config)
        total = sum(arm.weight for arm in config.arms)
        shares: dict[str, int] = {}
        for arm in config.arms:
            version = versions.get(arm.name)
            if version is not None:
                share = round(100.0 * arm.weight / total) if total else 0
                shares[version] = shares.get(version, 0) + share
        return shares

    def set_split(self, model: str, weights: Mapping[str, int]) -> None:
        """Route ``model``'s traffic by ``weights`` (versions → percent, summing to 100)."""
        split = check_split(weights)
        for attempt in range(_ATTEMPTS):
            config, revision = self._config(model)
            versions = self._versions(model, config)
            placed: set[str] = set()
            arms: list[Arm] = []
            for arm in config.arms:
                version = versions.get(arm.name)
                if version in split and version not in placed:
                    placed.add(version)
                    arms.append(replace(arm, weight=float(split[version])))
                else:
                    arms.append(replace(arm, weight=0.0))
            names = {arm.name for arm in arms}
            for version, weight in split.items():
                if version not in placed:
                    name = f"v{version}"
                    while name in names:
                        name += "_"
                    names.add(name)
                    arms.append(Arm(name, Target(version=int(version)), float(weight)))
            try:
                self._serving.set_routing(
                    model,
                    replace(config, arms=tuple(arms)),
                    changed_by=self._changed_by,
                    reason=f"rollout split {split}",
                    expected_revision=revision,
                )
                return
            except ConflictError:
                if attempt == _ATTEMPTS - 1:
                    raise

    def _config(self, model: str) -> tuple[RoutingConfig, int]:
        record = self._serving.routing(model)
        if record is None:
            return champion_config(), 0
        return RoutingConfig.from_dict(record.config), record.revision

    def _versions(self, model: str, config: RoutingConfig) -> dict[str, str]:
        """Arm name → the version it serves now (arms whose alias points nowhere are left out)."""
        aliases = {alias.alias: alias.version for alias in self._serving.registry.aliases(model)}
        versions: dict[str, str] = {}
        for arm in config.arms:
            if arm.target.version is not None:
                versions[arm.name] = str(arm.target.version)
            elif arm.target.alias in aliases:
                versions[arm.name] = str(aliases[arm.target.alias])
        return versions
