"""What the rollout controller needs from the router: read and set a model's traffic split.

The router (``POST /v1/models/{name}/predict``) owns routing; the controller only moves
weights. :class:`TrafficControl` is that one seam, and :class:`InMemoryTraffic` its in-memory
implementation for tests and for a controller without a router (weights are then advisory).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from watchkeeper.errors import ConfigError

__all__ = ["InMemoryTraffic", "TrafficControl", "check_split"]


@runtime_checkable
class TrafficControl(Protocol):
    """Read and set the share of a model's traffic each version gets (percent, sum 100)."""

    def split(self, model: str) -> dict[str, int]:
        """The current split of ``model`` (empty when it has none)."""
        ...

    def set_split(self, model: str, weights: Mapping[str, int]) -> None:
        """Route ``model``'s traffic by ``weights`` from now on (versions with 0 get none)."""
        ...


def check_split(weights: Mapping[str, int]) -> dict[str, int]:
    """``weights`` as a dict, or :class:`ConfigError` unless integers >= 0 summing to 100."""
    split = dict(weights)
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 0 for w in split.values()):
        raise ConfigError(f"weights: expected integers >= 0, got {split}", key="weights")
    if sum(split.values()) != 100:
        raise ConfigError(f"weights: must sum to 100, got {split}", key="weights")
    return split


class InMemoryTraffic:
    """Splits kept in a dict; ``history`` lists every change, for tests to read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._splits: dict[str, dict[str, int]] = {}
        self.history: list[tuple[str, dict[str, int]]] = []

    def split(self, model: str) -> dict[str, int]:
        """The current split of ``model``."""
        with self._lock:
            return dict(self._splits.get(model, {}))

    def set_split(self, model: str, weights: Mapping[str, int]) -> None:
        """Set the split of ``model``."""
        split = check_split(weights)
        with self._lock:
            self._splits[model] = split
            self.history.append((model, dict(split)))
