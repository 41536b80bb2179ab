"""Sample-ratio mismatch: are the arms' counts what the configured traffic split predicts?

When units are assigned 50/50 but 52/48 arrive, assignment or logging is broken (a redirect
drops users of one arm, a bot hits one version, a crash loses events), and every comparison of
those arms is biased in an unknown direction. Check this before any verdict.

>>> check = sample_ratio_mismatch([10_400, 9_600], [0.5, 0.5])
>>> check.mismatch, f"{check.p_value:.1e}"
(True, '1.5e-08')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from watchkeeper.errors import ConfigError, InputError

__all__ = ["SampleRatioCheck", "sample_ratio_mismatch"]


@dataclass(frozen=True, slots=True)
class SampleRatioCheck:
    """Observed arm counts against the configured split: Pearson's chi-square and its verdict.

    ``mismatch`` is true when ``p_value < alpha``: the assignment or the logging is broken and no
    comparison of these arms can be trusted.
    """

    counts: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float
    df: int
    p_value: float
    alpha: float
    mismatch: bool

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "counts": list(self.counts),
            "expected": list(self.expected),
            "statistic": self.statistic,
            "df": self.df,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "mismatch": self.mismatch,
        }


def sample_ratio_mismatch(
    counts: Sequence[int], weights: Sequence[float], *, alpha: float = 0.001
) -> SampleRatioCheck:
    """Chi-square goodness of fit of the arms' counts against the configured traffic split.

    ``weights`` are the configured shares (any positive scale: ``[95, 5]`` or ``[0.5, 0.5]``).
    The statistic is ``Σ (nᵢ − N wᵢ)² / (N wᵢ)`` on ``k − 1`` degrees of freedom (Pearson 1900;
    Fabijan et al. 2019, "Diagnosing sample ratio mismatch in online controlled experiments",
    KDD, for the p < 0.001 convention: at that level a healthy experiment is stopped once in a
    thousand checks). Arms with weight 0 must have no units; any unit there is a mismatch. With
    no units at all there is nothing to check (p-value 1).
    """
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}", key="alpha")
    observed = np.asarray(counts, dtype=np.float64)
    shares = np.asarray(weights, dtype=np.float64)
    if observed.ndim != 1 or observed.shape != shares.shape or observed.size < 2:
        raise InputError(
            "counts and weights must be two flat sequences of the same length >= 2 (one per arm)",
            column="counts",
        )
    if (observed < 0).any() or not np.isfinite(observed).all():
        raise InputError("counts must be finite numbers >= 0", column="counts")
    if (shares < 0).any() or not np.isfinite(shares).all() or shares.sum() <= 0.0:
        raise ConfigError("weights must be finite, >= 0 and not all 0", key="weights")
    total = float(observed.sum())
    expected = total * shares / shares.sum()
    live = shares > 0
    df = int(live.sum()) - 1
    if total == 0.0:
        statistic, p_value = 0.0, 1.0
    elif (observed[~live] > 0).any():
        statistic, p_value = math.inf, 0.0
    elif df == 0:
        statistic, p_value = 0.0, 1.0
    else:
        statistic = float((((observed - expected) ** 2)[live] / expected[live]).sum())
        p_value = float(special.chdtrc(df, statistic))
    return SampleRatioCheck(
        counts=tuple(int(count) for count in observed),
        expected=tuple(float(value) for value in expected),
        statistic=statistic,
        df=max(df, 0),
        p_value=p_value,
        alpha=alpha,
        mismatch=p_value < alpha,
    )
