"""A model's routing config: arms, their weights, sticky assignment and shadow traffic.

A :class:`RoutingConfig` is a spec: plain data, stored as JSON (``serving_routes``), sent over
the API and checked by one parser (:meth:`RoutingConfig.from_dict`) whose errors name the key::

    {"arms": [{"name": "champion", "alias": "champion", "weight": 95},
              {"name": "canary", "version": 4, "weight": 5}],
     "sticky": true, "salt": "exp-7",
     "shadow": {"version": 5, "fraction": 0.1},
     "override_header": true}

- an **arm** serves one registry version, named by number (``version``) or by alias (``alias``,
  resolved when the request is served, so moving the alias moves the arm); its ``weight`` is its
  share of traffic (any non-negative numbers, at least one positive; ``0`` keeps an arm
  reachable by the override header only);
- ``sticky`` (A/B): a request with a unit id always gets the same arm for the same weights, by a
  hash of model, ``salt`` and unit (:func:`watchkeeper.serving.router.bucket`); without a unit,
  or with ``sticky`` false (a canary), each request draws its arm at random;
- ``shadow``: that fraction of requests is also sent to a version whose answers are logged to the
  monitor but never returned;
- ``override_header``: whether ``X-Watchkeeper-Arm: NAME`` may choose the arm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from watchkeeper.errors import ConfigError
from watchkeeper.ingest.rules import ARM_PATTERN, ARM_RULE, MAX_ID_LENGTH

__all__ = ["Arm", "RoutingConfig", "Shadow", "Target", "champion_config"]

_ARM_KEYS: Final = frozenset({"name", "version", "alias", "weight"})
_SHADOW_KEYS: Final = frozenset({"version", "alias", "fraction", "name"})
_KEYS: Final = frozenset({"arms", "sticky", "salt", "shadow", "override_header"})


@dataclass(frozen=True, slots=True)
class Target:
    """A registry version by number, or the version an alias points to when served."""

    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return f"@{self.alias}" if self.alias is not None else f"/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """``{"version": N}`` or ``{"alias": NAME}``."""
        return {"alias": self.alias} if self.alias is not None else {"version": self.version}


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm of the router: its name (logged with every prediction), target and weight."""

    name: str
    target: Target
    weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the arm."""
        return {"name": self.name, **self.target.to_dict(), "weight": self.weight}


@dataclass(frozen=True, slots=True)
class Shadow:
    """A version that also answers ``fraction`` of requests, logged under arm ``name`` only."""

    target: Target
    fraction: float
    name: str = "shadow"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the shadow."""
        return {"name": self.name, **self.target.to_dict(), "fraction": self.fraction}


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """How a model's predict requests are routed (see the module docstring)."""

    arms: tuple[Arm, ...]
    sticky: bool = True
    salt: str = ""
    shadow: Shadow | None = None
    override_header: bool = True
    arm_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.arms:
            raise ConfigError("arms: give at least one arm", key="arms")
        names = [arm.name for arm in self.arms]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ConfigError(
                f"arms: arm names must differ; repeated: {', '.join(repeated)}", key="arms"
            )
        if self.shadow is not None and self.shadow.name in names:
            raise ConfigError(
                f"shadow.name: {self.shadow.name!r} is also an arm; give the shadow another name",
                key="shadow.name",
            )
        if not any(arm.weight > 0 for arm in self.arms):
            raise ConfigError("arms: at least one arm needs a positive weight", key="arms")
        object.__setattr__(self, "arm_names", frozenset(names))

    def arm(self, name: str) -> Arm:
        """The arm called ``name``; ConfigError naming the arms when there is none."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise ConfigError(
            f"arm: no arm {name!r}; the arms are {', '.join(sorted(self.arm_names))}", key="arm"
        )

    def with_weights(self, weights: Mapping[str, float]) -> RoutingConfig:
        """The same config with new weights for the arms named (the others keep theirs)."""
        unknown = sorted(set(weights) - self.arm_names)
        if unknown:
            raise ConfigError(
                f"weights: no arm {', '.join(map(repr, unknown))}; the arms are "
                f"{', '.join(sorted(self.arm_names))}",
                key="weights",
            )
        arms = tuple(
            replace(arm, weight=_weight(weights[arm.name], f"weights.{arm.name}"))
            if arm.name in weights
            else arm
            for arm in self.arms
        )
        return replace(self, arms=arms)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, which :meth:`from_dict` reads back."""
        return {
            "arms": [arm.to_dict() for arm in self.arms],
            "sticky": self.sticky,
            "salt": self.salt,
            "shadow": None if self.shadow is None else self.shadow.to_dict(),
            "override_header": self.override_header,
        }

    @classmethod
    def from_dict(cls, data: object) -> RoutingConfig:
        """Parse the JSON form; ConfigError names the first bad key and says what is valid."""
        if not isinstance(data, Mapping):
            raise ConfigError("routing: expected an object with 'arms'", key="routing")
        _no_unknown(data, _KEYS, "routing")
        arms = data.get("arms")
        if not isinstance(arms, Sequence) or isinstance(arms, str) or not arms:
            raise ConfigError("arms: expected a non-empty list of arms", key="arms")
        shadow = data.get("shadow")
        salt = data.get("salt", "")
        if not isinstance(salt, str) or len(salt) > MAX_ID_LENGTH:
            raise ConfigError(
                f"salt: expected a string of at most {MAX_ID_LENGTH} characters", key="salt"
            )
        return cls(
            arms=tuple(_arm(item, f"arms[{index}]") for index, item in enumerate(arms)),
            sticky=_flag(data.get("sticky", True), "sticky"),
            salt=salt,
            shadow=None if shadow is None else _shadow(shadow),
            override_header=_flag(data.get("override_header", True), "override_header"),
        )


def champion_config() -> RoutingConfig:
    """What a model without a routing config serves: its ``champion`` alias, to everyone."""
    return RoutingConfig(arms=(Arm("champion", Target(alias="champion"), 1.0),))


def check_arm_name(value: object, key: str) -> str:
    """``value`` if it is a valid arm name (the ingest rule of the event field ``arm``)."""
    if not isinstance(value, str) or not ARM_PATTERN.fullmatch(value):
        raise ConfigError(f"{key}: {ARM_RULE}, got {value!r}", key=key)
    return value


def _no_unknown(data: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: unknown key; the keys are {', '.join(sorted(known))}",
            key=f"{where}.{unknown[0]}",
        )


def _flag(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}", key=key)
    return value


def _weight(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number >= 0, got {value!r}", key=key)
    if value < 0:
        raise ConfigError(f"{key}: a weight cannot be negative, got {value!r}", key=key)
    return float(value)


def _target(data: Mapping[str, Any], where: str) -> Target:
    version, alias = data.get("version"), data.get("alias")
    if (version is None) == (alias is None):
        raise ConfigError(
            f"{where}: give exactly one of 'version' (a number) or 'alias' (a name)", key=where
        )
    if alias is not None:
        return Target(alias=check_arm_name(alias, f"{where}.alias"))
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(
            f"{where}.version: expected a version number (1, 2, …), got {version!r}",
            key=f"{where}.version",
        )
    return Target(version=version)


def _arm(data: object, where: str) -> Arm:
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{where}: expected an object with name, version or alias, weight", key=where
        )
    _no_unknown(data, _ARM_KEYS, where)
    return Arm(
        name=check_arm_name(data.get("name"), f"{where}.name"),
        target=_target(data, where),
        weight=_weight(data.get("weight", 1.0), f"{where}.weight"),
    )


def _shadow(data: object) -> Shadow:
    if not isinstance(data, Mapping):
        raise ConfigError(
            "shadow: expected an object with version or alias, fraction", key="shadow"
        )
    _no_unknown(data, _SHADOW_KEYS, "shadow")
    fraction = data.get("fraction")
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float)
        or not 0.0 <= fraction <= 1.0
    ):
        raise ConfigError(
            f"shadow.fraction: expected a number in [0, 1], got {fraction!r}",
            key="shadow.fraction",
        )
    return Shadow(
        target=_target(data, "shadow"),
        fraction=float(fraction),
        name=check_arm_name(data.get("name", "shadow"), "shadow.name"),
    )
