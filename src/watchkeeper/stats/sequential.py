"""Always-valid inference for two-arm comparisons: results you may look at after every window.

A fixed-horizon test (:func:`watchkeeper.stats.experiments.compare`) is valid when it is looked
at once, at a sample size fixed in advance. An experiment checked daily and stopped at the first
significant look gives false positives far above ``alpha`` (38 % at α = 0.05 with 100
looks under no effect, tests/stats/test_sequential.py). The mixture sequential probability ratio
test (mSPRT) of Johari, Pekelis & Walsh (2017, "Always valid inference: continuous monitoring
of A/B tests", Operations Research 70(3):1806–1821, 2022; arXiv:1512.04922) and its dual, the
normal-mixture confidence sequence of Howard, Ramdas, McAuliffe & Sekhon (2021, "Time-uniform,
nonparametric, nonasymptotic confidence sequences", Ann. Statist. 49(2):1055–1080), keep the
chance of *ever* rejecting a true null, over any number of looks, at or below ``alpha``.

The boundary. Let θ̂ be the estimated difference with variance V (so ``z = (θ̂ − θ₀)/√V``), and
mix the likelihood ratio over alternatives θ ~ N(θ₀, τ²). With ``r = τ² / V`` the mixture
likelihood ratio (Johari et al., §3) is::

    Λ = √(V / (V + τ²)) · exp( τ² (θ̂ − θ₀)² / (2 V (V + τ²)) )
      = (1 + r)^(−1/2) · exp( r z² / (2 (1 + r)) )

a non-negative martingale under θ₀, so by Ville's inequality P(∃ look: Λ ≥ 1/α) ≤ α. The
always-valid p-value is the running minimum ``p_n = min(p_{n−1}, 1/Λ_n)`` and the confidence
sequence is the set of θ₀ not rejected — Howard et al.'s two-sided normal-mixture boundary
``|S_t| < √((V_t + ρ) log((V_t + ρ) / (ρ α²)))`` (their eq. (14)) written for an estimate::

    θ̂ ± √( V (1 + r) / r · log((1 + r) / α²) )

intersected with the previous looks' intervals (an intersection of confidence sequences is one).
Howard et al. (§3.5) choose ρ so that the boundary is tightest at a planned intrinsic time m:
``ρ = m / (2 log(1/α) + log(1 + 2 log(1/α)))``; here that is ``r* = 2 log(1/α) + log(1 +
2 log(1/α))`` reached at a *tuning sample size* n* per arm (default 5,000, as GrowthBook's), and
``r = r* · n / n*`` at n samples per arm. V uses the arms' observed variances, which makes the
guarantee asymptotic (Waudby-Smith et al. 2024, "Time-uniform central limit theory and
asymptotic confidence sequences", Ann. Statist.); the simulations in the tests check it.

>>> from watchkeeper.stats.experiments import ProportionSummary
>>> look = sequential_compare(ProportionSummary(560, 5000), ProportionSummary(500, 5000))
>>> round(look.difference, 3), round(look.p_value, 3), look.ci_low < 0.0 < look.ci_high
(0.012, 0.553, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from watchkeeper.errors import ConfigError
from watchkeeper.stats.experiments import ArmSummary, Contrast, difference_contrast

__all__ = [
    "DEFAULT_TUNING_SAMPLES",
    "SequentialComparison",
    "confidence_half_width",
    "contrast_p_value",
    "mixture_log_likelihood_ratio",
    "mixture_ratio",
    "optimal_mixture_ratio",
    "sequential_compare",
]

#: The sample size per arm at which the confidence sequence is tightest (GrowthBook's default).
DEFAULT_TUNING_SAMPLES = 5_000


def optimal_mixture_ratio(alpha: float) -> float:
    """``r* = τ²/V`` that makes the normal-mixture boundary nearly tightest at one look.

    Howard et al. (2021, §3.5) give this closed form ``2 log(1/α) + log(1 + 2 log(1/α))``, one
    fixed-point step of the exact optimum; the boundary it gives is within 1 % of the tightest.

    >>> round(optimal_mixture_ratio(0.05), 3)
    7.936
    """
    _check_alpha(alpha)
    two_log = 2.0 * math.log(1.0 / alpha)
    return two_log + math.log1p(two_log)


def mixture_ratio(samples_per_arm: float, *, alpha: float, tuning_samples: float) -> float:
    """``r = τ²/V`` at ``samples_per_arm``: ``r*`` at the tuning sample size, growing with n."""
    if not tuning_samples > 0:
        raise ConfigError(f"tuning_samples must be > 0, got {tuning_samples}", key="tuning_samples")
    return optimal_mixture_ratio(alpha) * samples_per_arm / tuning_samples


def mixture_log_likelihood_ratio(z: npt.ArrayLike, ratio: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``log Λ = −½ log(1 + r) + r z² / (2 (1 + r))``, element-wise (Johari et al. 2017, §3).

    ``z`` is the standardised distance of the estimate from the null value and ``ratio`` is
    ``r = τ²/V``. An infinite ``z`` (zero variance, different means) gives ``inf``.
    """
    z_array = np.asarray(z, dtype=np.float64)
    r_array = np.asarray(ratio, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        log_lr = -0.5 * np.log1p(r_array) + r_array * z_array**2 / (2.0 * (1.0 + r_array))
    return np.asarray(np.where(np.isinf(z_array), np.inf, log_lr), dtype=np.float64)


def confidence_half_width(
    variance: npt.ArrayLike, ratio: npt.ArrayLike, alpha: float
) -> npt.NDArray[np.float64]:
    """Half-width ``√(V (1 + r)/r · log((1 + r)/α²))`` of the normal-mixture sequence."""
    _check_alpha(alpha)
    v_array = np.asarray(variance, dtype=np.float64)
    r_array = np.asarray(ratio, dtype=np.float64)
    with np.errstate(divide="ignore"):
        squared = v_array * (1.0 + r_array) / r_array * np.log((1.0 + r_array) / alpha**2)
    return np.asarray(np.sqrt(squared), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class SequentialComparison:
    """One look at an always-valid comparison of candidate − baseline.

    ``ci_low`` / ``ci_high`` bound the difference at every look at once with probability
    ``1 − alpha`` (intersected with the previous looks'); ``p_value`` is the always-valid
    p-value of "no difference", never larger than at the previous look; ``reject`` is
    ``p_value < alpha``. ``looks`` counts the looks so far.
    """

    candidate_count: int
    baseline_count: int
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    log_likelihood_ratio: float
    alpha: float
    tuning_samples: float
    looks: int

    @property
    def reject(self) -> bool:
        """Whether the always-valid test rejects "no difference" at this look."""
        return self.p_value < self.alpha

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (an unbounded end of the interval as ``None``)."""
        return {
            "candidate_count": self.candidate_count,
            "baseline_count": self.baseline_count,
            "difference": self.difference,
            "ci_low": self.ci_low if math.isfinite(self.ci_low) else None,
            "ci_high": self.ci_high if math.isfinite(self.ci_high) else None,
            "p_value": self.p_value,
            "log_likelihood_ratio": self.log_likelihood_ratio,
            "alpha": self.alpha,
            "tuning_samples": self.tuning_samples,
            "looks": self.looks,
            "reject": self.reject,
        }


def sequential_compare(
    candidate: ArmSummary,
    baseline: ArmSummary,
    *,
    alpha: float = 0.05,
    tuning_samples: float = DEFAULT_TUNING_SAMPLES,
    previous: SequentialComparison | None = None,
) -> SequentialComparison:
    """Always-valid difference of means (or of rates), its confidence sequence and p-value.

    The summaries are cumulative (everything since the experiment started). The variance of the
    difference is the unpooled ``s₁²/n₁ + s₀²/n₀`` (``p(1 − p)/n`` for rates), so the interval
    and the p-value agree: the interval excludes 0 exactly when ``p < alpha`` at this look.
    Pass the previous look's result as ``previous`` (with the same ``alpha`` and
    ``tuning_samples``) to keep the p-value monotone and intersect the intervals.
    """
    _check_alpha(alpha)
    if previous is not None and (
        previous.alpha != alpha or previous.tuning_samples != tuning_samples
    ):
        raise ConfigError(
            "previous was computed with another alpha or tuning_samples; a sequence keeps both",
            key="previous",
        )
    unpooled = difference_contrast(candidate, baseline)
    difference, variance = unpooled.estimate, unpooled.variance
    ratio = mixture_ratio(unpooled.size, alpha=alpha, tuning_samples=tuning_samples)
    z = _standardise(difference, variance)
    log_lr = float(mixture_log_likelihood_ratio(z, ratio))
    p_value = min(1.0, math.exp(-log_lr))
    if variance > 0.0:
        half_width = float(confidence_half_width(variance, ratio, alpha))
    else:
        half_width = 0.0 if math.isinf(z) else math.inf
    ci_low, ci_high = difference - half_width, difference + half_width
    looks = 1
    if previous is not None:
        p_value = min(p_value, previous.p_value)
        ci_low, ci_high = max(ci_low, previous.ci_low), min(ci_high, previous.ci_high)
        looks = previous.looks + 1
    return SequentialComparison(
        candidate_count=candidate.count,
        baseline_count=baseline.count,
        difference=difference,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        log_likelihood_ratio=log_lr,
        alpha=alpha,
        tuning_samples=tuning_samples,
        looks=looks,
    )


def contrast_p_value(
    contrast: Contrast, *, alpha: float, tuning_samples: float = DEFAULT_TUNING_SAMPLES
) -> float:
    """Always-valid p-value of "the contrast is 0" at this look (``1/Λ``, capped at 1).

    A rollout's verdict rejects the boundary of its condition when this (or its running
    minimum) falls below ``alpha``; the sign of ``contrast.estimate`` says which side.
    """
    ratio = mixture_ratio(contrast.size, alpha=alpha, tuning_samples=tuning_samples)
    z = _standardise(contrast.estimate, contrast.variance)
    return min(1.0, math.exp(-float(mixture_log_likelihood_ratio(z, ratio))))


def _standardise(estimate: float, variance: float) -> float:
    """``estimate / √variance`` where 0/0 is 0 and x/0 is ±inf."""
    if variance > 0.0:
        return estimate / math.sqrt(variance)
    return 0.0 if estimate == 0.0 else math.copysign(math.inf, estimate)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}", key="alpha")
