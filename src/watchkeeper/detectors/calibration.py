"""Thresholds calibrated to a target in-control average run length (ARL0).

A detector fed an unchanged stream still raises false alarms; ARL0 is the mean number of
updates between them. Calibrating the threshold to a target ARL0 on standardised values makes
the default false-alarm rate independent of the scale of the signal.

* CUSUM: Siegmund's closed-form approximation (Siegmund 1985, *Sequential Analysis*, §X.2),
  ``ARL ≈ (exp(2kb) − 2kb − 1) / (2k²)`` with ``b = h + 1.166``, per side.
* EWMA: the Markov-chain method of Brook & Evans (1972, *Biometrika* 59) as used by Lucas &
  Saccucci (1990, *Technometrics* 32) for EWMA charts with asymptotic limits.
* Page-Hinkley (River's recursion, Page 1954): Monte-Carlo simulation.
* Any of them on bootstrap resamples of a reference sample (``reference=``), for signals that
  are far from normal.

The simulations are vectorised over independent paths: each statistic path does not depend on
the threshold until it first crosses it, so one seeded simulation gives the first-passage time
of every threshold and the threshold is found by bisection on those times. Paths still running
at the horizon are treated as censored, with the exponential maximum-likelihood estimate
``ARL = Σ min(T_i, H) / #alarms``.

>>> round(calibrate_cusum(10_000.0, drift_k=0.5), 3)
8.045
>>> round(cusum_arl(8.045, drift_k=0.5))
9996
>>> round(calibrate_ewma(500.0, smoothing=0.1), 2)
2.81
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, signal, special

from watchkeeper.detectors.base import check_choice, check_float, check_int
from watchkeeper.errors import ConfigError, InputError

__all__ = [
    "calibrate_cusum",
    "calibrate_ewma",
    "calibrate_page_hinkley",
    "cusum_arl",
    "ewma_arl",
    "simulated_arl",
]

FloatArray = NDArray[np.float64]

_SIEGMUND_CORRECTION = 1.166
_DIRECTIONS = ("both", "up", "down")
_EWMA_STATES = 201
_SIMULATION_PATHS = 400
_HORIZON_FACTOR = 3.0
_CHUNK_ELEMENTS = 1_000_000


def _check_target(target_arl: float) -> float:
    return check_float("target_arl", target_arl, at_least=2.0, at_most=1e8)


def cusum_arl(threshold: float, *, drift_k: float = 0.5, direction: str = "both") -> float:
    """In-control ARL of a CUSUM on N(0,1) values by Siegmund's approximation (Siegmund 1985).

    ``threshold`` is h and ``drift_k`` the reference value k, both in standard deviations. The
    two-sided ARL combines the sides as ``1/ARL = 1/ARL+ + 1/ARL−`` (Lucas & Crosier 1982).
    """
    check_float("threshold", threshold, at_least=0.0)
    check_float("drift_k", drift_k, at_least=0.0)
    check_choice("direction", direction, _DIRECTIONS)
    b = threshold + _SIEGMUND_CORRECTION
    if drift_k == 0.0:
        one_sided = b * b
    else:
        exponent = 2.0 * drift_k * b
        one_sided = (math.expm1(exponent) - exponent) / (2.0 * drift_k * drift_k)
    return one_sided / 2.0 if direction == "both" else one_sided


@functools.lru_cache(maxsize=256)
def _siegmund_threshold(target_arl: float, drift_k: float, direction: str) -> float:
    def gap(threshold: float) -> float:
        return math.log(cusum_arl(threshold, drift_k=drift_k, direction=direction) / target_arl)

    upper = 1.0
    while gap(upper) < 0.0:
        upper *= 2.0
    if gap(0.0) >= 0.0:
        return 0.0
    return float(optimize.brentq(gap, 0.0, upper, xtol=1e-10))


def calibrate_cusum(
    target_arl: float,
    *,
    drift_k: float = 0.5,
    direction: str = "both",
    reference: Sequence[float] | None = None,
    seed: int = 0,
) -> float:
    """Return the CUSUM threshold h (in sd) whose in-control ARL is ``target_arl``.

    Without ``reference`` this inverts Siegmund's approximation for N(0,1) values (no
    randomness). With ``reference`` it simulates the CUSUM on bootstrap resamples of the
    standardised reference sample (seeded by ``seed``).
    """
    _check_target(target_arl)
    check_float("drift_k", drift_k, at_least=0.0)
    check_choice("direction", direction, _DIRECTIONS)
    if reference is None:
        return _siegmund_threshold(float(target_arl), float(drift_k), direction)
    statistic = _CusumPaths(drift_k=drift_k, direction=direction)
    return _simulate_threshold(statistic, target_arl, _standardised(reference), seed)


def ewma_arl(limit_width: float, *, smoothing: float = 0.1, direction: str = "both") -> float:
    """In-control ARL of an EWMA chart on N(0,1) values by the Markov-chain method.

    Limits are ``±limit_width·σ`` with the asymptotic ``σ = sqrt(λ/(2−λ))`` (Lucas & Saccucci
    1990); the in-control region is cut into 201 states (Brook & Evans 1972). One-sided charts
    lump the far side into the last state, which changes ARL by far less than the 1% accuracy.
    """
    check_float("limit_width", limit_width, above=0.0)
    check_float("smoothing", smoothing, above=0.0, at_most=1.0)
    check_choice("direction", direction, _DIRECTIONS)
    return _ewma_arl(float(limit_width), float(smoothing), direction)


@functools.lru_cache(maxsize=4096)
def _ewma_arl(limit_width: float, smoothing: float, direction: str) -> float:
    sigma = math.sqrt(smoothing / (2.0 - smoothing))
    limit = limit_width * sigma
    # The far side of a one-sided chart only needs to reach where the chart never wanders.
    far = -limit - 6.0 * sigma if direction != "both" else -limit
    low, high = (far, limit) if direction != "down" else (-limit, -far)
    width = (high - low) / _EWMA_STATES
    centres = low + width * (np.arange(_EWMA_STATES) + 0.5)
    edges = low + width * np.arange(_EWMA_STATES + 1)
    carried = (1.0 - smoothing) * centres
    cdf = special.ndtr((edges[None, :] - carried[:, None]) / smoothing)
    transition = np.diff(cdf, axis=1)
    if direction == "up":
        transition[:, 0] += cdf[:, 0]
    elif direction == "down":
        transition[:, -1] += 1.0 - cdf[:, -1]
    system = np.eye(_EWMA_STATES) - transition
    run_lengths = np.linalg.solve(system, np.ones(_EWMA_STATES))
    start = int(np.argmin(np.abs(centres)))
    return float(run_lengths[start])


@functools.lru_cache(maxsize=256)
def _markov_limit_width(target_arl: float, smoothing: float, direction: str) -> float:
    def gap(limit_width: float) -> float:
        return math.log(_ewma_arl(limit_width, smoothing, direction) / target_arl)

    upper = 1.0
    while gap(upper) < 0.0:
        upper *= 2.0
    return float(optimize.brentq(gap, 1e-6, upper, xtol=1e-10))


def calibrate_ewma(
    target_arl: float,
    *,
    smoothing: float = 0.1,
    direction: str = "both",
    reference: Sequence[float] | None = None,
    seed: int = 0,
) -> float:
    """Return the EWMA limit width L (in σ of the EWMA) whose in-control ARL is ``target_arl``.

    Without ``reference`` this inverts the Markov-chain ARL for N(0,1) values (no randomness);
    with ``reference`` it simulates on bootstrap resamples of the standardised sample.
    """
    _check_target(target_arl)
    check_float("smoothing", smoothing, above=0.0, at_most=1.0)
    check_choice("direction", direction, _DIRECTIONS)
    if reference is None:
        return _markov_limit_width(float(target_arl), float(smoothing), direction)
    statistic = _EwmaPaths(smoothing=smoothing, direction=direction)
    return _simulate_threshold(statistic, target_arl, _standardised(reference), seed)


def calibrate_page_hinkley(
    target_arl: float,
    *,
    min_instances: int = 30,
    delta: float = 0.005,
    alpha: float = 1 - 0.0001,
    mode: str = "both",
    reference: Sequence[float] | None = None,
    seed: int = 0,
) -> float:
    """Return the Page-Hinkley threshold λ (on standardised values) for ``target_arl``.

    Simulates River's Page-Hinkley recursion (Page 1954; running mean, forgetting factor
    ``alpha``, tolerance ``delta``) on seeded N(0,1) values, or on bootstrap resamples of the
    standardised ``reference``.
    """
    _check_target(target_arl)
    check_int("min_instances", min_instances, minimum=1)
    check_float("delta", delta, at_least=0.0)
    check_float("alpha", alpha, above=0.0, at_most=1.0)
    check_choice("mode", mode, _DIRECTIONS)
    if reference is None:
        return _normal_page_hinkley_threshold(
            float(target_arl), min_instances, float(delta), float(alpha), mode, seed
        )
    statistic = _PageHinkleyPaths(min_instances=min_instances, delta=delta, alpha=alpha, mode=mode)
    return _simulate_threshold(statistic, target_arl, _standardised(reference), seed)


def simulated_arl(
    statistic: str,
    threshold: float,
    *,
    drift_k: float = 0.5,
    smoothing: float = 0.1,
    direction: str = "both",
    paths: int = _SIMULATION_PATHS,
    horizon: int = 100_000,
    reference: Sequence[float] | None = None,
    seed: int = 0,
) -> float:
    """Estimate the in-control ARL of ``"cusum"`` or ``"ewma"`` at ``threshold`` by simulation.

    Runs ``paths`` seeded paths of at most ``horizon`` N(0,1) values (or bootstrap resamples of
    ``reference``); used to check the closed forms above.
    """
    check_choice("statistic", statistic, ("cusum", "ewma"))
    check_float("threshold", threshold, at_least=0.0)
    paths_statistic: _PathStatistic = (
        _CusumPaths(drift_k=drift_k, direction=direction)
        if statistic == "cusum"
        else _EwmaPaths(smoothing=smoothing, direction=direction)
    )
    passages = _FirstPassages.simulate(
        paths_statistic,
        paths=check_int("paths", paths, minimum=10),
        horizon=check_int("horizon", horizon, minimum=10),
        reference=None if reference is None else _standardised(reference),
        seed=seed,
    )
    return passages.arl(threshold)


def _standardised(reference: Sequence[float]) -> FloatArray:
    values = np.asarray(reference, dtype=np.float64)
    if values.ndim != 1 or values.size < 10 or not np.all(np.isfinite(values)):
        raise InputError(
            "reference must be a one-dimensional sample of at least 10 finite values, "
            f"got shape {values.shape}"
        )
    sd = float(values.std(ddof=1))
    if sd == 0.0:
        raise InputError("reference is constant; calibration needs a sample with some spread")
    standardised: FloatArray = (values - values.mean()) / sd
    return standardised


class _PathStatistic(Protocol):
    """A detector statistic computed on many independent paths, chunk by chunk."""

    def start(self, paths: int) -> None:
        """Prepare the state of ``paths`` fresh paths."""

    def advance(self, noise: FloatArray) -> FloatArray:
        """Return the statistic after each value of ``noise`` (paths × steps), carrying state."""


class _CusumPaths:
    """Two-sided CUSUM via Lindley's recursion: S_t = W_t − min(0, min_s W_s) (Page 1954)."""

    def __init__(self, *, drift_k: float, direction: str) -> None:
        self._drift_k = drift_k
        self._signs = {"both": (1.0, -1.0), "up": (1.0,), "down": (-1.0,)}[direction]

    def start(self, paths: int) -> None:
        self._walks = [np.zeros(paths) for _ in self._signs]
        self._minima = [np.zeros(paths) for _ in self._signs]

    def advance(self, noise: FloatArray) -> FloatArray:
        statistic = np.full(noise.shape, -np.inf)
        for side, sign in enumerate(self._signs):
            walk = np.cumsum(sign * noise - self._drift_k, axis=1) + self._walks[side][:, None]
            minimum = np.minimum(np.minimum.accumulate(walk, axis=1), self._minima[side][:, None])
            np.maximum(statistic, walk - minimum, out=statistic)
            self._walks[side] = walk[:, -1].copy()
            self._minima[side] = minimum[:, -1].copy()
        return statistic


class _EwmaPaths:
    """EWMA Z_t = (1−λ)Z_{t−1} + λx_t in units of its asymptotic sd (Roberts 1959)."""

    def __init__(self, *, smoothing: float, direction: str) -> None:
        self._smoothing = smoothing
        self._direction = direction
        self._sigma = math.sqrt(smoothing / (2.0 - smoothing))

    def start(self, paths: int) -> None:
        self._last = np.zeros(paths)

    def advance(self, noise: FloatArray) -> FloatArray:
        decay = 1.0 - self._smoothing
        smoothed, _ = signal.lfilter(
            [self._smoothing], [1.0, -decay], noise, axis=1, zi=decay * self._last[:, None]
        )
        self._last = smoothed[:, -1].copy()
        scaled: FloatArray = smoothed / self._sigma
        if self._direction == "both":
            return np.abs(scaled)
        return scaled if self._direction == "up" else -scaled


class _PageHinkleyPaths:
    """River's Page-Hinkley recursion (``river/drift/page_hinkley.py``), vectorised."""

    def __init__(self, *, min_instances: int, delta: float, alpha: float, mode: str) -> None:
        self._min_instances = min_instances
        self._delta = delta
        self._alpha = alpha
        self._mode = mode

    def start(self, paths: int) -> None:
        self._seen = 0
        self._total = np.zeros(paths)
        self._increase = np.zeros(paths)
        self._decrease = np.zeros(paths)
        self._min_increase = np.full(paths, np.inf)
        # River starts the running maximum of the decrease sum at −1, not −inf.
        self._max_decrease = np.full(paths, -1.0)

    def advance(self, noise: FloatArray) -> FloatArray:
        steps = noise.shape[1]
        counts = np.arange(self._seen + 1, self._seen + steps + 1, dtype=np.float64)
        totals = np.cumsum(noise, axis=1) + self._total[:, None]
        deviations = noise - totals / counts
        alpha = self._alpha
        increase, _ = signal.lfilter(
            [1.0],
            [1.0, -alpha],
            deviations - self._delta,
            axis=1,
            zi=alpha * self._increase[:, None],
        )
        decrease, _ = signal.lfilter(
            [1.0],
            [1.0, -alpha],
            deviations + self._delta,
            axis=1,
            zi=alpha * self._decrease[:, None],
        )
        min_increase = np.minimum(
            np.minimum.accumulate(increase, axis=1), self._min_increase[:, None]
        )
        max_decrease = np.maximum(
            np.maximum.accumulate(decrease, axis=1), self._max_decrease[:, None]
        )
        up = increase - min_increase
        down = max_decrease - decrease
        statistic: FloatArray
        if self._mode == "both":
            statistic = np.maximum(up, down)
        else:
            statistic = up if self._mode == "up" else down
        statistic[:, counts < self._min_instances] = -np.inf
        self._seen += steps
        self._total = totals[:, -1].copy()
        self._increase = increase[:, -1].copy()
        self._decrease = decrease[:, -1].copy()
        self._min_increase = min_increase[:, -1].copy()
        self._max_decrease = max_decrease[:, -1].copy()
        return statistic


class _FirstPassages:
    """First-passage times of every threshold, from the record values of simulated paths."""

    def __init__(
        self,
        paths: int,
        horizon: int,
        rows: NDArray[np.intp],
        times: FloatArray,
        values: FloatArray,
    ) -> None:
        order = np.lexsort((times, rows))
        self._paths = paths
        self._horizon = horizon
        self._rows = rows[order]
        self._times = times[order]
        self._values = values[order]

    @classmethod
    def simulate(
        cls,
        statistic: _PathStatistic,
        *,
        paths: int,
        horizon: int,
        reference: FloatArray | None,
        seed: int,
    ) -> _FirstPassages:
        """Run ``paths`` seeded paths for ``horizon`` steps and keep each path's records."""
        rng = np.random.default_rng(seed)
        statistic.start(paths)
        running_max = np.full(paths, -np.inf)
        chunk = max(1, _CHUNK_ELEMENTS // paths)
        rows: list[NDArray[np.intp]] = []
        times: list[FloatArray] = []
        values: list[FloatArray] = []
        for offset in range(0, horizon, chunk):
            steps = min(chunk, horizon - offset)
            noise = (
                rng.standard_normal((paths, steps))
                if reference is None
                else rng.choice(reference, size=(paths, steps))
            )
            maxima = np.maximum.accumulate(
                np.concatenate([running_max[:, None], statistic.advance(noise)], axis=1), axis=1
            )
            record_rows, record_cols = np.nonzero(maxima[:, 1:] > maxima[:, :-1])
            rows.append(record_rows)
            times.append((offset + record_cols + 1).astype(np.float64))
            values.append(maxima[record_rows, record_cols + 1])
            running_max = maxima[:, -1]
        return cls(
            paths, horizon, np.concatenate(rows), np.concatenate(times), np.concatenate(values)
        )

    def arl(self, threshold: float) -> float:
        """Censored exponential estimate of the mean run length at ``threshold``."""
        crossing = self._values > threshold
        alarm_rows, first = np.unique(self._rows[crossing], return_index=True)
        alarms = alarm_rows.size
        if alarms == 0:
            return math.inf
        total = float(self._times[crossing][first].sum()) + (self._paths - alarms) * self._horizon
        return total / alarms

    def threshold_for(self, target_arl: float) -> float:
        """Smallest threshold (to bisection precision) whose ARL reaches ``target_arl``."""
        low = 0.0
        high = float(self._values.max()) if self._values.size else 1.0
        if self.arl(low) >= target_arl:
            return low
        if self.arl(high) < target_arl:
            raise ConfigError(
                f"target_arl {target_arl} is beyond what the simulation can resolve; "
                "use a smaller target",
                key="target_arl",
            )
        for _ in range(60):
            middle = 0.5 * (low + high)
            if self.arl(middle) >= target_arl:
                high = middle
            else:
                low = middle
        return high


def _simulate_threshold(
    statistic: _PathStatistic, target_arl: float, reference: FloatArray | None, seed: int
) -> float:
    passages = _FirstPassages.simulate(
        statistic,
        paths=_SIMULATION_PATHS,
        horizon=math.ceil(_HORIZON_FACTOR * target_arl),
        reference=reference,
        seed=seed,
    )
    return passages.threshold_for(target_arl)


@functools.lru_cache(maxsize=64)
def _normal_page_hinkley_threshold(
    target_arl: float, min_instances: int, delta: float, alpha: float, mode: str, seed: int
) -> float:
    statistic = _PageHinkleyPaths(min_instances=min_instances, delta=delta, alpha=alpha, mode=mode)
    return _simulate_threshold(statistic, target_arl, None, seed)
