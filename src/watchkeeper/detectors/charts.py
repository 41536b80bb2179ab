"""CUSUM and EWMA control charts on streams standardised over a warm-up window.

Both charts run on z-scores ``(x − mean) / sd``. The baseline ``mean``/``sd`` is either given
(for instance from a reference profile) or estimated on the first ``warmup`` values, during
which no alarm is raised. Because thresholds are expressed in standard deviations and
calibrated to a target in-control average run length (see
:mod:`watchkeeper.detectors.calibration`), the default false-alarm rate does not depend on the
scale of the signal: a stream ``1000 + 50·z`` raises exactly the alarms ``z`` raises.

After an alarm the chart statistic restarts from zero. With ``relearn=True`` the baseline is
also estimated again on the next ``warmup`` values, so the chart follows the new level (as
River's detectors do); with the default ``relearn=False`` a persistent shift keeps alarming,
which is what an alert that should stay firing needs.
"""

from __future__ import annotations

import math

from watchkeeper.detectors.base import (
    DEFAULT_TARGET_ARL,
    Detector,
    ParamValue,
    check_bool,
    check_choice,
    check_float,
    check_int,
)
from watchkeeper.detectors.calibration import calibrate_cusum, calibrate_ewma
from watchkeeper.errors import ConfigError

__all__ = ["CUSUM", "EWMA"]

_DIRECTIONS = ("both", "up", "down")
_RELATIVE_SD_FLOOR = 1e-12


def check_baseline(
    *, warmup: int, mean: float | None, sd: float | None, relearn: bool, minimum_warmup: int
) -> None:
    """Validate the baseline parameters shared by the standardised detectors."""
    check_int("warmup", warmup, minimum=0)
    check_bool("relearn", relearn)
    if (mean is None) != (sd is None):
        raise ConfigError(
            "give both mean and sd for a known baseline, or neither to estimate them on the "
            f"warm-up window (got mean={mean!r}, sd={sd!r})",
            key="mean" if mean is None else "sd",
        )
    if mean is not None:
        check_float("mean", mean)
        check_float("sd", sd, above=0.0)
    needs_warmup = mean is None or relearn
    if needs_warmup and warmup < minimum_warmup:
        raise ConfigError(
            f"warmup must be at least {minimum_warmup} to estimate the baseline "
            f"(got {warmup}); give mean and sd to skip the warm-up",
            key="warmup",
        )


class Standardised(Detector):
    """Base for detectors that run on z-scores against a known or warm-up baseline."""

    def __init__(
        self,
        *,
        warmup: int,
        mean: float | None,
        sd: float | None,
        relearn: bool,
        params: dict[str, ParamValue],
    ) -> None:
        super().__init__(**params)
        self._warmup = warmup
        self._known_mean = mean
        self._known_sd = sd
        self._relearn = relearn

    def _reset_baseline(self) -> None:
        self._learned = 0
        self._learn_mean = 0.0
        self._learn_m2 = 0.0
        if self._known_mean is None or self._known_sd is None:
            self._warming = self._warmup > 0
            self._center = 0.0
            self._scale = 1.0
        else:
            self._warming = False
            self._center = self._known_mean
            self._scale = self._known_sd

    def _restart_baseline(self) -> None:
        """Start estimating the baseline again on the next ``warmup`` values."""
        self._learned = 0
        self._learn_mean = 0.0
        self._learn_m2 = 0.0
        self._warming = True

    def _learn(self, x: float) -> None:
        """Absorb one warm-up value (Welford 1962); no alarm is possible meanwhile."""
        self._drift_detected = False
        self._warning_detected = False
        self._learned += 1
        delta = x - self._learn_mean
        self._learn_mean += delta / self._learned
        self._learn_m2 += delta * (x - self._learn_mean)
        if self._learned == self._warmup:
            self._warming = False
            self._center = self._learn_mean
            sd = math.sqrt(self._learn_m2 / (self._learned - 1))
            # A constant warm-up has no spread; any later deviation then counts as huge.
            floor = _RELATIVE_SD_FLOOR * max(abs(self._center), 1.0)
            self._scale = max(sd, floor)

    @property
    def baseline(self) -> tuple[float, float] | None:
        """The ``(mean, sd)`` used to standardise, or None while it is being estimated."""
        return None if self._warming else (self._center, self._scale)


class CUSUM(Standardised):
    """Two-sided tabular CUSUM chart on standardised values (Page 1954).

    ``S⁺ = max(0, S⁺ + z − k)`` and ``S⁻ = max(0, S⁻ − z − k)``; drift when either exceeds
    ``threshold`` h. ``drift_k`` (k) is half the shift, in sd, the chart is tuned to catch
    fastest. With ``threshold=None`` h is calibrated so that the in-control ARL is
    ``target_arl`` (default 10,000) by Siegmund's approximation (Siegmund 1985). ``direction``
    ``"up"``/``"down"`` keeps one side.

    >>> import random
    >>> rng = random.Random(7)
    >>> cusum = CUSUM(warmup=200)
    >>> stream = [rng.gauss(1000.0, 50.0) for _ in range(1200)]
    >>> stream += [rng.gauss(1050.0, 50.0) for _ in range(300)]
    >>> alarms = []
    >>> for index, value in enumerate(stream):
    ...     cusum.update(value)
    ...     if cusum.drift_detected:
    ...         alarms.append(index)
    >>> alarms[0] >= 1200
    True
    """

    kind = "cusum"

    def __init__(
        self,
        *,
        drift_k: float = 0.5,
        threshold: float | None = None,
        target_arl: float | None = None,
        direction: str = "both",
        warmup: int = 500,
        mean: float | None = None,
        sd: float | None = None,
        relearn: bool = False,
    ) -> None:
        check_float("drift_k", drift_k, at_least=0.0)
        check_choice("direction", direction, _DIRECTIONS)
        check_baseline(warmup=warmup, mean=mean, sd=sd, relearn=relearn, minimum_warmup=2)
        if threshold is not None and target_arl is not None:
            raise ConfigError(
                "give threshold or target_arl, not both (threshold fixes h directly)",
                key="target_arl",
            )
        if threshold is None:
            resolved = calibrate_cusum(
                DEFAULT_TARGET_ARL if target_arl is None else target_arl,
                drift_k=drift_k,
                direction=direction,
            )
        else:
            resolved = check_float("threshold", threshold, above=0.0)
        super().__init__(
            warmup=warmup,
            mean=mean,
            sd=sd,
            relearn=relearn,
            params={
                "drift_k": drift_k,
                "threshold": threshold,
                "target_arl": target_arl,
                "direction": direction,
                "warmup": warmup,
                "mean": mean,
                "sd": sd,
                "relearn": relearn,
            },
        )
        self._drift_k = drift_k
        self._threshold = resolved
        self._watch_up = direction != "down"
        self._watch_down = direction != "up"
        self._reset()

    @property
    def resolved_threshold(self) -> float:
        """The threshold h in use, in standard deviations (calibrated or given)."""
        return self._threshold

    @property
    def statistic(self) -> float:
        """The larger of the upper and lower CUSUM sums after the latest update."""
        return max(self._upper, self._lower)

    def _reset(self) -> None:
        self._reset_baseline()
        self._upper = 0.0
        self._lower = 0.0

    def _update(self, x: float) -> None:
        if self._warming:
            self._learn(x)
            return
        z = (x - self._center) / self._scale
        k = self._drift_k
        upper = self._upper + z - k if self._watch_up else 0.0
        lower = self._lower - z - k if self._watch_down else 0.0
        upper = upper if upper > 0.0 else 0.0
        lower = lower if lower > 0.0 else 0.0
        if upper > self._threshold or lower > self._threshold:
            self._drift_detected = True
            self._upper = 0.0
            self._lower = 0.0
            if self._relearn:
                self._restart_baseline()
        else:
            self._drift_detected = False
            self._upper = upper
            self._lower = lower


class EWMA(Standardised):
    """EWMA control chart on standardised values (Roberts 1959).

    ``Z = (1 − λ)·Z + λ·z`` from ``Z = 0``; drift when ``|Z|`` exceeds ``L·sqrt(λ/(2 − λ))``
    (asymptotic limits, Lucas & Saccucci 1990). ``smoothing`` is λ; small λ catches small
    persistent shifts, λ = 1 is a Shewhart chart. With ``limit_width=None`` L is calibrated to
    ``target_arl`` (default 10,000) by the Markov-chain method (Brook & Evans 1972).

    >>> import random
    >>> rng = random.Random(4)
    >>> ewma = EWMA(smoothing=0.1, warmup=300)
    >>> stream = [rng.gauss(0.0, 1.0) for _ in range(1000)]
    >>> stream += [rng.gauss(1.0, 1.0) for _ in range(200)]
    >>> alarms = []
    >>> for index, value in enumerate(stream):
    ...     ewma.update(value)
    ...     if ewma.drift_detected:
    ...         alarms.append(index)
    >>> 1000 <= alarms[0] < 1100
    True
    """

    kind = "ewma"

    def __init__(
        self,
        *,
        smoothing: float = 0.1,
        limit_width: float | None = None,
        target_arl: float | None = None,
        direction: str = "both",
        warmup: int = 500,
        mean: float | None = None,
        sd: float | None = None,
        relearn: bool = False,
    ) -> None:
        check_float("smoothing", smoothing, above=0.0, at_most=1.0)
        check_choice("direction", direction, _DIRECTIONS)
        check_baseline(warmup=warmup, mean=mean, sd=sd, relearn=relearn, minimum_warmup=2)
        if limit_width is not None and target_arl is not None:
            raise ConfigError(
                "give limit_width or target_arl, not both (limit_width fixes L directly)",
                key="target_arl",
            )
        if limit_width is None:
            resolved = calibrate_ewma(
                DEFAULT_TARGET_ARL if target_arl is None else target_arl,
                smoothing=smoothing,
                direction=direction,
            )
        else:
            resolved = check_float("limit_width", limit_width, above=0.0)
        super().__init__(
            warmup=warmup,
            mean=mean,
            sd=sd,
            relearn=relearn,
            params={
                "smoothing": smoothing,
                "limit_width": limit_width,
                "target_arl": target_arl,
                "direction": direction,
                "warmup": warmup,
                "mean": mean,
                "sd": sd,
                "relearn": relearn,
            },
        )
        self._smoothing = smoothing
        self._decay = 1.0 - smoothing
        self._limit_width = resolved
        self._limit = resolved * math.sqrt(smoothing / (2.0 - smoothing))
        self._watch_up = direction != "down"
        self._watch_down = direction != "up"
        self._reset()

    @property
    def resolved_limit_width(self) -> float:
        """The control-limit width L in use, in sd of the EWMA (calibrated or given)."""
        return self._limit_width

    @property
    def statistic(self) -> float:
        """The EWMA of the z-scores after the latest update."""
        return self._smoothed

    def _reset(self) -> None:
        self._reset_baseline()
        self._smoothed = 0.0

    def _update(self, x: float) -> None:
        if self._warming:
            self._learn(x)
            return
        z = (x - self._center) / self._scale
        smoothed = self._decay * self._smoothed + self._smoothing * z
        if (self._watch_up and smoothed > self._limit) or (
            self._watch_down and smoothed < -self._limit
        ):
            self._drift_detected = True
            self._smoothed = 0.0
            if self._relearn:
                self._restart_baseline()
        else:
            self._drift_detected = False
            self._smoothed = smoothed
