"""River's streaming drift detectors behind watchkeeper's detector contract.

Each wrapper builds River's own detector from the same keyword parameters (River's defaults),
forwards every update and copies its flags, so the drift indices are exactly River's. The
wrappers add what the contract promises: validated keyword-only parameters, finite (or 0/1)
inputs, ``n_seen``, ``reset()`` by rebuilding, and a JSON spec.

``PageHinkley`` additionally offers what River lacks: with ``warmup > 0`` the stream is
standardised on its first ``warmup`` values and, with ``threshold=None``, the threshold is
calibrated to ``target_arl`` by simulation, so its false-alarm rate no longer depends on the
scale of the signal.
"""

from __future__ import annotations

from typing import Any, ClassVar

from river import drift
from river.drift import binary

from watchkeeper.detectors.base import (
    DEFAULT_TARGET_ARL,
    Detector,
    ParamValue,
    check_bool,
    check_choice,
    check_float,
    check_int,
)
from watchkeeper.detectors.calibration import calibrate_page_hinkley
from watchkeeper.detectors.charts import Standardised
from watchkeeper.errors import ConfigError

__all__ = ["ADWIN", "DDM", "EDDM", "HDDMA", "HDDMW", "KSWIN", "PageHinkley"]

_RIVER_PAGE_HINKLEY: Any = drift.PageHinkley


class _RiverWrapper(Detector):
    """Forward updates to a River detector built from this wrapper's parameters."""

    # River's constructors are untyped; holding them as Any keeps the untyped calls explicit.
    river_class: ClassVar[Any]

    def __init__(self, **params: ParamValue) -> None:
        super().__init__(**params)
        self._reset()

    def _reset(self) -> None:
        self._river: Any = self.river_class(**self._params)

    def _update(self, x: float) -> None:
        river_detector = self._river
        river_detector.update(x)
        self._drift_detected = bool(river_detector.drift_detected)
        self._warning_detected = bool(getattr(river_detector, "warning_detected", False))


class ADWIN(_RiverWrapper):
    """Adaptive windowing (Bifet & Gavaldà 2007), River's Rust implementation.

    Drift when two sub-windows of the adaptive window have means that differ by more than a
    Hoeffding-style bound at confidence ``delta``; checked every ``clock`` values.
    """

    kind = "adwin"
    river_class = drift.ADWIN

    def __init__(
        self,
        *,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        super().__init__(
            delta=check_float("delta", delta, above=0.0, below=1.0),
            clock=check_int("clock", clock, minimum=1),
            max_buckets=check_int("max_buckets", max_buckets, minimum=1),
            min_window_length=check_int("min_window_length", min_window_length, minimum=1),
            grace_period=check_int("grace_period", grace_period, minimum=1),
        )


class KSWIN(_RiverWrapper):
    """Kolmogorov–Smirnov windowing (Raab, Heusinger & Schleif 2020).

    Drift when the last ``stat_size`` values and ``stat_size`` values sampled from the rest of
    a ``window_size`` window differ by a KS test at level ``alpha``. ``seed`` fixes the
    sampling, so runs are reproducible (River's default ``seed=None`` is not).
    """

    kind = "kswin"
    river_class = drift.KSWIN

    def __init__(
        self, *, alpha: float = 0.005, window_size: int = 100, stat_size: int = 30, seed: int = 0
    ) -> None:
        check_float("alpha", alpha, above=0.0, below=1.0)
        check_int("stat_size", stat_size, minimum=1)
        check_int("window_size", window_size, minimum=2 * stat_size)
        check_int("seed", seed, minimum=0)
        super().__init__(alpha=alpha, window_size=window_size, stat_size=stat_size, seed=seed)


class DDM(_RiverWrapper):
    """Drift Detection Method on a 0/1 error stream (Gama et al. 2004).

    Warning when ``p + s ≥ p_min + warning_threshold·s_min``, drift at ``drift_threshold``.
    """

    kind = "ddm"
    river_class = binary.DDM
    binary_input = True

    def __init__(
        self, *, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0
    ) -> None:
        check_int("warm_start", warm_start, minimum=0)
        check_float("warning_threshold", warning_threshold, above=0.0)
        check_float("drift_threshold", drift_threshold, at_least=warning_threshold)
        super().__init__(
            warm_start=warm_start,
            warning_threshold=warning_threshold,
            drift_threshold=drift_threshold,
        )


class EDDM(_RiverWrapper):
    """Early Drift Detection Method on a 0/1 error stream (Baena-García et al. 2006).

    Watches the distance between errors; warning when ``(p' + 2s')/max < alpha``, drift when
    it falls below ``beta``.
    """

    kind = "eddm"
    river_class = binary.EDDM
    binary_input = True

    def __init__(self, *, warm_start: int = 30, alpha: float = 0.95, beta: float = 0.9) -> None:
        check_int("warm_start", warm_start, minimum=0)
        check_float("alpha", alpha, above=0.0, below=1.0)
        check_float("beta", beta, above=0.0, at_most=alpha)
        super().__init__(warm_start=warm_start, alpha=alpha, beta=beta)


class HDDMA(_RiverWrapper):
    """HDDM_A: Hoeffding-bound test on averages of a 0/1 stream (Frías-Blanco et al. 2015)."""

    kind = "hddm_a"
    river_class = binary.HDDMA
    binary_input = True

    def __init__(
        self,
        *,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        two_sided_test: bool = False,
    ) -> None:
        check_float("drift_confidence", drift_confidence, above=0.0, below=1.0)
        check_float("warning_confidence", warning_confidence, at_least=drift_confidence, below=1.0)
        check_bool("two_sided_test", two_sided_test)
        super().__init__(
            drift_confidence=drift_confidence,
            warning_confidence=warning_confidence,
            two_sided_test=two_sided_test,
        )


class HDDMW(_RiverWrapper):
    """HDDM_W: McDiarmid-bound test on EWMAs of a 0/1 stream (Frías-Blanco et al. 2015)."""

    kind = "hddm_w"
    river_class = binary.HDDMW
    binary_input = True

    def __init__(
        self,
        *,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        lambda_val: float = 0.05,
        two_sided_test: bool = False,
    ) -> None:
        check_float("drift_confidence", drift_confidence, above=0.0, below=1.0)
        check_float("warning_confidence", warning_confidence, at_least=drift_confidence, below=1.0)
        check_float("lambda_val", lambda_val, above=0.0, at_most=1.0)
        check_bool("two_sided_test", two_sided_test)
        super().__init__(
            drift_confidence=drift_confidence,
            warning_confidence=warning_confidence,
            lambda_val=lambda_val,
            two_sided_test=two_sided_test,
        )


class PageHinkley(Standardised):
    """Page-Hinkley test (Page 1954), River's implementation, optionally standardised.

    With ``warmup=0`` (and no ``mean``/``sd``) values go to River's detector unchanged, and
    ``threshold`` must be given (River's default is 50). With ``warmup > 0`` the first
    ``warmup`` values estimate mean and sd, later values are fed as z-scores, and
    ``threshold=None`` calibrates λ to ``target_arl`` (default 10,000) by a seeded simulation
    of the same recursion on N(0,1) values (``seed``).
    """

    kind = "page_hinkley"

    def __init__(
        self,
        *,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float | None = None,
        target_arl: float | None = None,
        alpha: float = 1 - 0.0001,
        mode: str = "both",
        warmup: int = 500,
        mean: float | None = None,
        sd: float | None = None,
        seed: int = 0,
    ) -> None:
        check_int("min_instances", min_instances, minimum=1)
        check_float("delta", delta, at_least=0.0)
        check_float("alpha", alpha, above=0.0, at_most=1.0)
        check_choice("mode", mode, ("both", "up", "down"))
        check_int("seed", seed, minimum=0)
        _check_raw_or_baseline(warmup=warmup, mean=mean, sd=sd)
        if threshold is not None and target_arl is not None:
            raise ConfigError(
                "give threshold or target_arl, not both (threshold fixes λ directly)",
                key="target_arl",
            )
        standardised = warmup > 0 or mean is not None
        if threshold is None:
            if not standardised:
                raise ConfigError(
                    "a calibrated threshold needs a standardised stream: set warmup > 0 (or "
                    "mean and sd), or give threshold explicitly as River does",
                    key="threshold",
                )
            resolved = calibrate_page_hinkley(
                DEFAULT_TARGET_ARL if target_arl is None else target_arl,
                min_instances=min_instances,
                delta=delta,
                alpha=alpha,
                mode=mode,
                seed=seed,
            )
        else:
            resolved = check_float("threshold", threshold, above=0.0)
        # No relearn: River's Page-Hinkley restarts its own running mean after a drift.
        super().__init__(
            warmup=warmup,
            mean=mean,
            sd=sd,
            relearn=False,
            params={
                "min_instances": min_instances,
                "delta": delta,
                "threshold": threshold,
                "target_arl": target_arl,
                "alpha": alpha,
                "mode": mode,
                "warmup": warmup,
                "mean": mean,
                "sd": sd,
                "seed": seed,
            },
        )
        self._river_params = {
            "min_instances": min_instances,
            "delta": delta,
            "threshold": resolved,
            "alpha": alpha,
            "mode": mode,
        }
        self._resolved_threshold = resolved
        self._reset()

    @property
    def resolved_threshold(self) -> float:
        """The threshold λ in use (calibrated or given), in the units fed to River."""
        return self._resolved_threshold

    def _reset(self) -> None:
        self._reset_baseline()
        self._river: Any = _RIVER_PAGE_HINKLEY(**self._river_params)

    def _update(self, x: float) -> None:
        if self._warming:
            self._learn(x)
            return
        river_detector: Any = self._river
        river_detector.update((x - self._center) / self._scale)
        self._drift_detected = bool(river_detector.drift_detected)


def _check_raw_or_baseline(*, warmup: int, mean: float | None, sd: float | None) -> None:
    """Validate Page-Hinkley's baseline: warm-up, a known mean and sd, or neither (raw values)."""
    check_int("warmup", warmup, minimum=0)
    if (mean is None) != (sd is None):
        raise ConfigError(
            f"give both mean and sd, or neither (got mean={mean!r}, sd={sd!r})",
            key="mean" if mean is None else "sd",
        )
    if mean is not None:
        check_float("mean", mean)
        check_float("sd", sd, above=0.0)
    if warmup == 1:
        raise ConfigError(
            "warmup must be 0 (raw values) or at least 2 to estimate an sd, got 1", key="warmup"
        )
