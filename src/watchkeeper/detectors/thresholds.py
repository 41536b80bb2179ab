"""Threshold detectors: a fixed bound, or a band learned from the trailing history."""

from __future__ import annotations

import math
from collections import deque

from watchkeeper.detectors.base import Detector, check_choice, check_float, check_int
from watchkeeper.errors import ConfigError

__all__ = ["DynamicThreshold", "StaticThreshold"]

_DIRECTIONS = ("above", "below")
_BAND_DIRECTIONS = ("both", "above", "below")


class StaticThreshold(Detector):
    """Signal drift when a value crosses a fixed bound (a Shewhart-style limit, Shewhart 1931).

    ``direction="above"`` alarms when ``x > bound``, ``"below"`` when ``x < bound``. An optional
    ``warning_bound`` on the safe side of ``bound`` raises a warning first.

    >>> detector = StaticThreshold(bound=0.2, direction="above", warning_bound=0.1)
    >>> for error_rate in (0.05, 0.15, 0.25):
    ...     detector.update(error_rate)
    ...     print(detector.warning_detected, detector.drift_detected)
    False False
    True False
    False True
    """

    kind = "static_threshold"

    def __init__(
        self, *, bound: float, direction: str = "above", warning_bound: float | None = None
    ) -> None:
        check_float("bound", bound)
        check_choice("direction", direction, _DIRECTIONS)
        if warning_bound is not None:
            check_float("warning_bound", warning_bound)
            if (warning_bound > bound) if direction == "above" else (warning_bound < bound):
                raise ConfigError(
                    f"warning_bound {warning_bound!r} must lie on the safe side of bound "
                    f"{bound!r} for direction {direction!r}",
                    key="warning_bound",
                )
        super().__init__(bound=bound, direction=direction, warning_bound=warning_bound)
        # Flipping the sign turns "below" into "above", so the hot path has one comparison.
        self._sign = 1.0 if direction == "above" else -1.0
        self._bound = self._sign * bound
        self._warning_bound = math.inf if warning_bound is None else self._sign * warning_bound
        self._reset()

    def _reset(self) -> None:
        """Nothing is learned: a static bound has no state besides the flags."""

    def _update(self, x: float) -> None:
        signed = self._sign * x
        self._drift_detected = signed > self._bound
        self._warning_detected = not self._drift_detected and signed > self._warning_bound


class DynamicThreshold(Detector):
    """Signal drift when a value leaves the band ``mean ± k·sd`` of the previous ``window`` values.

    The band comes from the trailing history only (the current value is compared, then added),
    so a spike cannot widen its own band. Mean and variance are kept with Welford's updates and
    their exact reversal when a value leaves the window (Welford 1962), one float operation set
    per update. No alarm is raised before ``min_periods`` values are in the window.

    >>> import random
    >>> rng = random.Random(0)
    >>> detector = DynamicThreshold(window=50, k=4.0)
    >>> for _ in range(200):
    ...     detector.update(rng.gauss(100.0, 5.0))
    >>> detector.update(160.0)
    >>> detector.drift_detected
    True
    """

    kind = "dynamic_threshold"

    def __init__(
        self,
        *,
        window: int = 100,
        k: float = 3.0,
        direction: str = "both",
        warning_k: float | None = None,
        min_periods: int | None = None,
    ) -> None:
        check_int("window", window, minimum=2)
        check_float("k", k, above=0.0)
        check_choice("direction", direction, _BAND_DIRECTIONS)
        if warning_k is not None:
            check_float("warning_k", warning_k, above=0.0, at_most=k)
        if min_periods is not None:
            check_int("min_periods", min_periods, minimum=2)
            if min_periods > window:
                raise ConfigError(
                    f"min_periods {min_periods} cannot exceed window {window}",
                    key="min_periods",
                )
        super().__init__(
            window=window, k=k, direction=direction, warning_k=warning_k, min_periods=min_periods
        )
        self._window = window
        self._k = k
        self._warning_k = math.inf if warning_k is None else warning_k
        self._min_periods = window if min_periods is None else min_periods
        self._check_above = direction in ("both", "above")
        self._check_below = direction in ("both", "below")
        self._reset()

    def _reset(self) -> None:
        self._history: deque[float] = deque()
        self._mean = 0.0
        self._m2 = 0.0
        self._updates_since_refresh = 0

    @property
    def band(self) -> tuple[float, float] | None:
        """The current drift band ``(low, high)``, or None before ``min_periods`` values."""
        count = len(self._history)
        if count < self._min_periods:
            return None
        spread = self._k * math.sqrt(max(self._m2, 0.0) / (count - 1))
        return (self._mean - spread, self._mean + spread)

    def _update(self, x: float) -> None:
        history = self._history
        count = len(history)
        if count >= self._min_periods:
            sd = math.sqrt(max(self._m2, 0.0) / (count - 1))
            deviation = x - self._mean
            if not self._check_above:
                deviation = min(deviation, 0.0)
            elif not self._check_below:
                deviation = max(deviation, 0.0)
            excess = abs(deviation)
            self._drift_detected = excess > self._k * sd
            self._warning_detected = not self._drift_detected and excess > self._warning_k * sd
        else:
            self._drift_detected = False
            self._warning_detected = False
        if count == self._window:
            oldest = history.popleft()
            count -= 1
            if count == 0:
                self._mean = 0.0
                self._m2 = 0.0
            else:
                old_mean = self._mean
                self._mean = (old_mean * (count + 1) - oldest) / count
                self._m2 -= (oldest - old_mean) * (oldest - self._mean)
        history.append(x)
        delta = x - self._mean
        self._mean += delta / (count + 1)
        self._m2 += delta * (x - self._mean)
        self._updates_since_refresh += 1
        if self._updates_since_refresh == self._window:
            # Reversed Welford updates accumulate rounding error over a long stream; an exact
            # recomputation once per window keeps it bounded at O(1) amortised cost.
            self._updates_since_refresh = 0
            self._mean = math.fsum(history) / len(history)
            self._m2 = math.fsum((value - self._mean) ** 2 for value in history)
