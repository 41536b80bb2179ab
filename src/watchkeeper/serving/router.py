"""The router: which arm serves a request, and whether its shadow runs too.

Sticky assignment hashes the model, the config's salt and the unit id with SHA-256 to a point in
[0, 1) (:func:`bucket`): the same unit gets the same arm in every process and after every
restart, for as long as the weights stay the same; when they change, only the units whose point
falls in the part of [0, 1) that changed hands move (arms keep their order, so raising a canary
from 5 % to 10 % moves 5 % of the units, all to the canary). Requests without a unit, and all
requests of a non-sticky config, draw their point at random.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from watchkeeper.errors import ConfigError
from watchkeeper.serving.config import Arm, RoutingConfig

__all__ = ["Assignment", "Router", "bucket"]

_SCALE: Final = float(1 << 64)


def bucket(model: str, salt: str, unit: str) -> float:
    """The unit's point in [0, 1): the first 8 bytes of SHA-256 of ``model``, ``salt`` and
    ``unit`` (NUL-separated, UTF-8) as an unsigned integer over 2**64.

    >>> bucket("churn", "", "user-42") == bucket("churn", "", "user-42")
    True
    >>> round(bucket("churn", "", "user-42"), 6)
    0.283373
    """
    digest = hashlib.sha256(f"{model}\x00{salt}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


@dataclass(frozen=True, slots=True)
class Assignment:
    """The arm chosen for one row, and whether the shadow also answers it."""

    arm: Arm
    shadow: bool


class Router:
    """Chooses arms by a config's weights; one per routing config revision, immutable."""

    def __init__(self, model: str, config: RoutingConfig, *, rng: random.Random | None = None):
        self.model = model
        self.config = config
        total = sum(arm.weight for arm in config.arms)
        self._edges = [edge / total for edge in accumulate(arm.weight for arm in config.arms)]
        self._rng = rng if rng is not None else random.Random()

    def _arm_at(self, point: float) -> Arm:
        arms = self.config.arms
        for arm, edge in zip(arms, self._edges, strict=True):
            if point < edge and arm.weight > 0:
                return arm
        # Rounding can leave the last edge a hair under 1: the last arm with weight takes it.
        return next(arm for arm in reversed(arms) if arm.weight > 0)

    def assign(
        self, units: Sequence[str | None], *, override: str | None = None
    ) -> list[Assignment]:
        """One assignment per row (``units``: each row's unit id or None).

        ``override`` (the ``X-Watchkeeper-Arm`` header) names the arm of every row; ConfigError
        when the config does not allow it or has no such arm.
        """
        config = self.config
        if override is not None:
            if not config.override_header:
                raise ConfigError(
                    f"X-Watchkeeper-Arm: the routing of {self.model!r} does not allow choosing "
                    "the arm (override_header is false)",
                    key="X-Watchkeeper-Arm",
                )
            chosen = config.arm(override)
        shadow = config.shadow
        draw = self._rng.random
        assignments = []
        for unit in units:
            if override is not None:
                arm = chosen
            elif config.sticky and unit is not None:
                arm = self._arm_at(bucket(self.model, config.salt, unit))
            else:
                arm = self._arm_at(draw())
            shadowed = shadow is not None and shadow.fraction > 0 and draw() < shadow.fraction
            assignments.append(Assignment(arm, shadowed))
        return assignments
