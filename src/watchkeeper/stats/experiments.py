"""Two-arm comparisons from per-arm summaries: the fixed-horizon statistics of A/B tests.

Every function takes the summaries of a candidate arm and a baseline arm — count, mean and
variance (:class:`MeanSummary`) or successes out of trials (:class:`ProportionSummary`) — so the
live service compares arms from the moments it keeps per window, without raw values:

- :func:`compare`: the difference candidate − baseline with its confidence interval and
  two-sided p-value (Welch's t-test for means, the pooled two-proportion z-test for rates) and
  the relative lift with its delta-method interval;
- :func:`margin_contrast` / :func:`margin_test`: "the candidate is not worse than a threshold,
  or than the baseline by more than an absolute or relative margin", one-sided, for metrics
  where higher or lower is better (non-inferiority).

and the sample-ratio-mismatch check to run before any of them is in
:mod:`watchkeeper.stats.srm`.

The statistics and their defaults are described in ``docs/experiments.md``; the always-valid
versions for repeated looks are in :mod:`watchkeeper.stats.sequential`.

>>> candidate = MeanSummary(count=400, mean=10.4, variance=4.0)
>>> baseline = MeanSummary(count=500, mean=10.0, variance=9.0)
>>> result = compare(candidate, baseline)
>>> round(result.difference, 2), round(result.p_value, 4), round(result.lift, 3)
(0.4, 0.017, 0.04)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import special

from watchkeeper.errors import ConfigError, InputError

__all__ = [
    "ArmSummary",
    "Comparison",
    "Contrast",
    "Direction",
    "MarginKind",
    "MarginTest",
    "MeanSummary",
    "ProportionSummary",
    "compare",
    "difference_contrast",
    "margin_contrast",
    "margin_test",
]


class Direction(StrEnum):
    """Which way a metric is better: accuracy and conversion up, error rate and latency down."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"

    @property
    def sign(self) -> float:
        """+1 when higher is better, −1 when lower is: multiplies an effect into "gain"."""
        return 1.0 if self is Direction.HIGHER_IS_BETTER else -1.0


class MarginKind(StrEnum):
    """What a margin is measured against.

    ``threshold``: the candidate's metric against a fixed value (the baseline is not used);
    ``difference``: candidate − baseline, in the metric's units; ``relative``: candidate /
    baseline − 1, as a fraction (0.05 is 5 %).
    """

    THRESHOLD = "threshold"
    DIFFERENCE = "difference"
    RELATIVE = "relative"


@dataclass(frozen=True, slots=True)
class MeanSummary:
    """One arm of a numeric metric: the number of values, their mean and sample variance.

    ``variance`` is the unbiased sample variance (``ddof=1``), what the window moments give.
    """

    count: int
    mean: float
    variance: float

    def __post_init__(self) -> None:
        if self.count < 0:
            raise InputError(f"count must be >= 0, got {self.count}", column="count")
        if not math.isfinite(self.mean) and self.count > 0:
            raise InputError(f"mean must be a finite number, got {self.mean}", column="mean")
        if not self.variance >= 0.0 or math.isinf(self.variance):
            raise InputError(
                f"variance must be a finite number >= 0, got {self.variance}", column="variance"
            )

    @classmethod
    def from_values(cls, values: npt.ArrayLike) -> MeanSummary:
        """The summary of raw values (NaN is dropped); the variance of one value is 0."""
        array = np.asarray(values, dtype=np.float64).ravel()
        array = array[~np.isnan(array)]
        if array.size == 0:
            return cls(count=0, mean=0.0, variance=0.0)
        variance = float(array.var(ddof=1)) if array.size > 1 else 0.0
        return cls(count=int(array.size), mean=float(array.mean()), variance=variance)

    @property
    def mean_variance(self) -> float:
        """The variance of the mean, ``variance / count``."""
        return self.variance / self.count


@dataclass(frozen=True, slots=True)
class ProportionSummary:
    """One arm of a binary metric: ``successes`` out of ``trials`` (errors, clicks, correct)."""

    successes: int
    trials: int

    def __post_init__(self) -> None:
        if self.trials < 0:
            raise InputError(f"trials must be >= 0, got {self.trials}", column="trials")
        if not 0 <= self.successes <= self.trials:
            raise InputError(
                f"successes must be between 0 and trials ({self.trials}), got {self.successes}",
                column="successes",
            )

    @property
    def count(self) -> int:
        """The number of trials (the arm's sample size)."""
        return self.trials

    @property
    def mean(self) -> float:
        """The observed rate ``successes / trials``."""
        return self.successes / self.trials

    @property
    def mean_variance(self) -> float:
        """The (unpooled) variance of the observed rate, ``p (1 − p) / trials``."""
        rate = self.mean
        return rate * (1.0 - rate) / self.trials


ArmSummary: TypeAlias = MeanSummary | ProportionSummary


@dataclass(frozen=True, slots=True)
class Comparison:
    """Candidate against baseline at a fixed horizon.

    ``difference`` is candidate − baseline with its two-sided ``confidence`` interval
    (``ci_low``, ``ci_high``) and the two-sided ``p_value`` of "no difference"; ``lift`` is
    candidate / baseline − 1 with its delta-method interval (``None`` when the baseline's mean
    is 0). ``test`` names the test: ``"welch"`` or ``"two_proportion_z"``; ``df`` is Welch's
    degrees of freedom (``inf`` for the z-test).
    """

    test: str
    candidate_count: int
    baseline_count: int
    candidate_mean: float
    baseline_mean: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    statistic: float
    df: float
    lift: float | None
    lift_ci_low: float | None
    lift_ci_high: float | None
    confidence: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (infinite numbers, such as a normal test's df, as ``None``)."""
        numbers = {
            "candidate_mean": self.candidate_mean,
            "baseline_mean": self.baseline_mean,
            "difference": self.difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "statistic": self.statistic,
            "df": self.df,
            "lift": self.lift,
            "lift_ci_low": self.lift_ci_low,
            "lift_ci_high": self.lift_ci_high,
            "confidence": self.confidence,
        }
        return {
            "test": self.test,
            "candidate_count": self.candidate_count,
            "baseline_count": self.baseline_count,
            **{
                name: value if value is None or math.isfinite(value) else None
                for name, value in numbers.items()
            },
        }


def compare(candidate: ArmSummary, baseline: ArmSummary, *, confidence: float = 0.95) -> Comparison:
    """Compare two arms: difference, confidence interval, p-value and relative lift.

    Means (:class:`MeanSummary`): Welch's t-test (Welch 1947, "The generalization of Student's
    problem when several different population variances are involved", Biometrika 34:28–35),
    ``t = (m₁ − m₀) / √(s₁²/n₁ + s₀²/n₀)`` with the Welch–Satterthwaite degrees of freedom
    ``df = (s₁²/n₁ + s₀²/n₀)² / [(s₁²/n₁)²/(n₁−1) + (s₀²/n₀)²/(n₀−1)]`` and the interval
    ``m₁ − m₀ ± t_{df, 1−a/2} √(s₁²/n₁ + s₀²/n₀)``, as ``scipy.stats.ttest_ind(equal_var=
    False)``. Rates (two :class:`ProportionSummary`): the pooled two-proportion z-test
    (Agresti 2013, *Categorical Data Analysis*, §3.1.2; its square is the Pearson chi-square of
    the 2×2 table), with the Wald interval ``p₁ − p₀ ± z √(p₁q₁/n₁ + p₀q₀/n₀)``.

    The lift ``L = m₁/m₀ − 1`` has the delta-method standard error
    ``√(V₁/m₀² + m₁² V₀/m₀⁴)`` with ``Vᵢ`` the variance of arm i's mean (Deng, Knoblich & Lu
    2018, "Applying the delta method in metric analytics", KDD), and a normal interval.

    Each arm needs at least two values (one for a rate); a difference with zero variance on both
    sides has p-value 1 when the means are equal and 0 otherwise.
    """
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}", key="confidence")
    unpooled = difference_contrast(candidate, baseline)
    difference, variance, df = unpooled.estimate, unpooled.variance, unpooled.df
    if isinstance(candidate, ProportionSummary) and isinstance(baseline, ProportionSummary):
        test = "two_proportion_z"
        pooled = (candidate.successes + baseline.successes) / (candidate.trials + baseline.trials)
        null_variance = pooled * (1.0 - pooled) * (1.0 / candidate.trials + 1.0 / baseline.trials)
        statistic = _ratio(difference, math.sqrt(null_variance))
    else:
        test = "welch"
        statistic = _ratio(difference, math.sqrt(variance))
    p_value = _two_sided_p(statistic, df)
    half_width = _quantile(0.5 + confidence / 2.0, df) * math.sqrt(variance)
    lift, lift_low, lift_high = _lift(candidate, baseline, confidence)
    return Comparison(
        test=test,
        candidate_count=candidate.count,
        baseline_count=baseline.count,
        candidate_mean=candidate.mean,
        baseline_mean=baseline.mean,
        difference=difference,
        ci_low=difference - half_width,
        ci_high=difference + half_width,
        p_value=p_value,
        statistic=statistic,
        df=df,
        lift=lift,
        lift_ci_low=lift_low,
        lift_ci_high=lift_high,
        confidence=confidence,
    )


@dataclass(frozen=True, slots=True)
class Contrast:
    """A margin condition as one number that is positive when the condition holds.

    ``estimate`` is the observed gain over the margin (in the metric's units), ``variance`` its
    variance where the condition's boundary holds (what a test of "gain = 0" divides by),
    ``df`` the degrees of freedom of its t distribution (``inf``: normal) and ``size`` the
    samples per arm that drive it (the candidate's count, or the mean of both arms' counts).
    """

    estimate: float
    variance: float
    df: float
    size: float

    def half_width(self, confidence: float) -> float:
        """Half-width of the two-sided ``confidence`` interval of the estimate (t or normal)."""
        return _quantile(0.5 + confidence / 2.0, self.df) * math.sqrt(self.variance)


def difference_contrast(candidate: ArmSummary, baseline: ArmSummary) -> Contrast:
    """Candidate − baseline with its unpooled variance ``s₁²/n₁ + s₀²/n₀`` (``p q / n`` for
    rates) and Welch–Satterthwaite degrees of freedom (``inf`` for two rates)."""
    _require_samples(candidate, "candidate")
    _require_samples(baseline, "baseline")
    size = (candidate.count + baseline.count) / 2.0
    estimate = candidate.mean - baseline.mean
    if isinstance(candidate, ProportionSummary) and isinstance(baseline, ProportionSummary):
        return Contrast(estimate, candidate.mean_variance + baseline.mean_variance, math.inf, size)
    candidate_means, baseline_means = _mean_arms(candidate, baseline)
    variance, df = _welch_variance_df([(1.0, candidate_means), (1.0, baseline_means)])
    return Contrast(estimate, variance, df, size)


def margin_contrast(
    candidate: ArmSummary,
    baseline: ArmSummary | None,
    *,
    direction: Direction,
    kind: MarginKind,
    margin: float,
) -> Contrast:
    """The gain of the candidate over a margin condition (positive: the condition holds).

    With ``s`` = +1 when higher is better and −1 when lower is (means m, the candidate's m₁):

    - ``threshold`` T: the gain is ``s (m₁ − T)``;
    - ``difference`` δ ≥ 0: "not worse than the baseline by more than δ": ``s (m₁ − m₀) + δ``;
    - ``relative`` r ≥ 0: "not worse by more than r × 100 %": ``s (m₁ − (1 − s r) m₀)``, a
      linear contrast (the Fieller form of a ratio test, which avoids dividing by m₀; it assumes
      a positive metric, such as an error rate, a latency or an accuracy).

    Means: the contrast ``a m₁ + b m₀`` has variance ``a² s₁²/n₁ + b² s₀²/n₀`` and Welch–
    Satterthwaite degrees of freedom. Rates: the variance is the score test's, taken at the
    restricted maximum-likelihood rates on the boundary of the condition (Farrington & Manning
    1990, "Test statistics and sample size formulae for comparative binomial trials with null
    hypothesis of non-zero risk difference or non-unity relative risk", Stat. Med. 9:1447–1454);
    with a zero margin it is the pooled two-proportion z-test, and against a threshold the
    one-sample score test, so no rate (0 errors out of 20) has a spuriously zero variance.
    """
    if not math.isfinite(margin) or (kind is not MarginKind.THRESHOLD and margin < 0.0):
        raise ConfigError(
            f"margin must be a finite number (>= 0 for {kind.value} margins), got {margin}",
            key="margin",
        )
    _require_samples(candidate, "candidate")
    sign = direction.sign
    if kind is MarginKind.THRESHOLD:
        estimate = sign * (candidate.mean - margin)
        if isinstance(candidate, ProportionSummary):
            if not 0.0 < margin < 1.0:
                raise ConfigError(
                    f"a threshold on a rate must be in (0, 1), got {margin}", key="margin"
                )
            variance = margin * (1.0 - margin) / candidate.trials
            return Contrast(estimate, variance, math.inf, candidate.trials)
        variance, df = _welch_variance_df([(1.0, candidate)])
        return Contrast(estimate, variance, df, candidate.count)
    if baseline is None:
        raise InputError(f"a {kind.value} margin needs the baseline arm", column="baseline")
    _require_samples(baseline, "baseline")
    if kind is MarginKind.DIFFERENCE:
        baseline_weight, offset = 1.0, -sign * margin
    else:
        if baseline.mean < 0.0:
            raise InputError(
                f"a relative margin needs a metric >= 0; the baseline's mean is {baseline.mean}",
                column="baseline",
            )
        if direction is Direction.HIGHER_IS_BETTER and margin >= 1.0:
            raise ConfigError(
                f"a relative margin must be < 1 when higher is better, got {margin}", key="margin"
            )
        baseline_weight, offset = 1.0 - sign * margin, 0.0
    # Gain = s * (m1 - w * m0 - offset): zero exactly on the boundary of the condition.
    estimate = sign * (candidate.mean - baseline_weight * baseline.mean - offset)
    size = (candidate.count + baseline.count) / 2.0
    if isinstance(candidate, ProportionSummary) and isinstance(baseline, ProportionSummary):
        rate_1, rate_0 = _restricted_rates(candidate, baseline, baseline_weight, offset)
        variance = (
            rate_1 * (1.0 - rate_1) / candidate.trials
            + baseline_weight**2 * rate_0 * (1.0 - rate_0) / baseline.trials
        )
        return Contrast(estimate, variance, math.inf, size)
    candidate_means, baseline_means = _mean_arms(candidate, baseline)
    variance, df = _welch_variance_df([(1.0, candidate_means), (baseline_weight, baseline_means)])
    return Contrast(estimate, variance, df, size)


@dataclass(frozen=True, slots=True)
class MarginTest:
    """The two one-sided p-values of a margin condition.

    ``p_holds`` is the p-value of "the condition is violated" (small: evidence that it holds);
    ``p_violated`` the p-value of "the condition holds" (small: evidence that it is violated).
    """

    contrast: Contrast
    statistic: float
    p_holds: float
    p_violated: float


def margin_test(contrast: Contrast) -> MarginTest:
    """One-sided t (or z) tests of a :class:`Contrast` against zero, in both directions.

    "Not worse by more than the margin" is shown when ``p_holds < alpha`` (a non-inferiority
    test: Wellek 2010, *Testing Statistical Hypotheses of Equivalence and Noninferiority*,
    ch. 2); "worse by more than the margin" when ``p_violated < alpha``.
    """
    statistic = _ratio(contrast.estimate, math.sqrt(contrast.variance))
    p_holds = _upper_tail(statistic, contrast.df)
    return MarginTest(contrast, statistic, p_holds, _upper_tail(-statistic, contrast.df))


def _require_samples(arm: ArmSummary, name: str) -> None:
    """Refuse an arm too small for a variance: fewer than 2 values (1 trial for a rate)."""
    needed = 1 if isinstance(arm, ProportionSummary) else 2
    if arm.count < needed:
        raise InputError(
            f"the {name} arm has {arm.count} samples; a comparison needs at least {needed}",
            column=name,
        )


def _mean_arms(candidate: ArmSummary, baseline: ArmSummary) -> tuple[MeanSummary, MeanSummary]:
    """Both arms as means; a rate against a mean is a caller's mix-up, refused."""
    if isinstance(candidate, MeanSummary) and isinstance(baseline, MeanSummary):
        return candidate, baseline
    raise InputError(
        f"the arms must be of one kind (two MeanSummary or two ProportionSummary), got "
        f"{type(candidate).__name__} and {type(baseline).__name__}",
        column="baseline",
    )


def _welch_variance_df(terms: Sequence[tuple[float, MeanSummary]]) -> tuple[float, float]:
    """Variance and Welch–Satterthwaite degrees of freedom of ``Σ aᵢ meanᵢ``."""
    parts = [weight**2 * arm.mean_variance for weight, arm in terms]
    variance = sum(parts)
    denominator = sum(
        part**2 / (arm.count - 1) for part, (_, arm) in zip(parts, terms, strict=True) if part > 0.0
    )
    # Zero variance everywhere: df is irrelevant (the statistic is 0 or infinite).
    df = variance**2 / denominator if denominator > 0.0 else math.inf
    return variance, df


def _restricted_rates(
    candidate: ProportionSummary, baseline: ProportionSummary, weight: float, offset: float
) -> tuple[float, float]:
    """Maximum-likelihood rates (p₁, p₀) under ``p₁ = w p₀ + c`` (Farrington & Manning 1990).

    Along the boundary line the two binomial log-likelihoods are concave in p₀; their stationary
    point solves the cubic ``w (x₁ − n₁ p₁) p₀ (1 − p₀) + (x₀ − n₀ p₀) p₁ (1 − p₁) = 0`` (the
    cubic Farrington and Manning solve in closed form for ``w = 1``). The best of its real roots
    in the feasible segment (both rates in [0, 1]) and the segment's ends is the maximum.
    """
    x1, n1, x0, n0 = candidate.successes, candidate.trials, baseline.successes, baseline.trials
    # The cubic's coefficients, expanded with p₁ = c + w p₀ (ascending powers of p₀).
    a0, a1 = x1 - n1 * offset, -n1 * weight
    b0, b1, b2 = offset * (1.0 - offset), weight * (1.0 - 2.0 * offset), -(weight**2)
    coefficients = [
        -weight * a1 - n0 * b2,
        weight * (a1 - a0) + x0 * b2 - n0 * b1,
        weight * a0 + x0 * b1 - n0 * b0,
        x0 * b0,
    ]
    low = max(0.0, -offset / weight)
    high = min(1.0, (1.0 - offset) / weight)
    candidates = [low, high]
    for root in np.roots(coefficients):
        if abs(root.imag) < 1e-12 and low <= root.real <= high:
            candidates.append(float(root.real))

    def log_likelihood(rate_0: float) -> float:
        rate_1 = weight * rate_0 + offset
        return _binomial_log_likelihood(x1, n1, rate_1) + _binomial_log_likelihood(x0, n0, rate_0)

    rate_0 = max(candidates, key=log_likelihood)
    return min(max(weight * rate_0 + offset, 0.0), 1.0), rate_0


def _binomial_log_likelihood(successes: int, trials: int, rate: float) -> float:
    """``x log p + (n − x) log(1 − p)``, with ``0 log 0 = 0`` and −inf outside the support."""
    total = 0.0
    for count, probability in ((successes, rate), (trials - successes, 1.0 - rate)):
        if count > 0:
            total += count * math.log(probability) if probability > 0.0 else -math.inf
    return total


def _lift(
    candidate: ArmSummary, baseline: ArmSummary, confidence: float
) -> tuple[float | None, float | None, float | None]:
    """Relative lift with its delta-method interval; ``None`` when the baseline mean is 0."""
    if baseline.mean == 0.0:
        return None, None, None
    ratio = candidate.mean / baseline.mean
    scale = abs(baseline.mean)
    # √(V₁/m₀² + m₁² V₀/m₀⁴) as a hypotenuse: m₀² underflows for tiny baseline means.
    standard_error = math.hypot(
        math.sqrt(candidate.mean_variance) / scale,
        ratio * math.sqrt(baseline.mean_variance) / scale,
    )
    lift = ratio - 1.0
    half_width = _quantile(0.5 + confidence / 2.0, math.inf) * standard_error
    return lift, lift - half_width, lift + half_width


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` where 0/0 is 0 and x/0 is ±inf."""
    if denominator > 0.0:
        return numerator / denominator
    return 0.0 if numerator == 0.0 else math.copysign(math.inf, numerator)


def _upper_tail(statistic: float, df: float) -> float:
    """P(T > statistic) for Student's t with ``df`` degrees of freedom (normal when infinite)."""
    if math.isinf(df):
        return float(special.ndtr(-statistic))
    return float(special.stdtr(df, -statistic))


def _two_sided_p(statistic: float, df: float) -> float:
    """Two-sided p-value of a t (or z) statistic."""
    return min(1.0, 2.0 * _upper_tail(abs(statistic), df))


def _quantile(level: float, df: float) -> float:
    """The ``level`` quantile of Student's t (normal when ``df`` is infinite)."""
    if math.isinf(df):
        return float(special.ndtri(level))
    return float(special.stdtrit(df, level))
