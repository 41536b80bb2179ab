"""Is a candidate model better than the champion on the same rows, by more than noise?

A retrained model is promoted only when it beats the champion on the same holdout rows by a
margin **and** the improvement is significant. Both models predict every row, so the test is
paired, which is far more powerful than comparing two independent scores:

- **accuracy**: McNemar's exact test. Only the rows where exactly one model is right carry
  information. Under "no difference" each such row favours the candidate with probability 1/2,
  so the one-sided p-value is ``P(X >= c)`` for ``X ~ Binomial(b + c, 1/2)``, where ``c`` rows
  favour the candidate and ``b`` the champion.
- **ROC AUC, MAE, RMSE**: a paired bootstrap. Rows are resampled with replacement (the same
  resample for both models), the difference of the metric is computed on each resample, and
  the one-sided p-value is the share of resamples where the candidate is not better, with the
  ``(1 + k) / (1 + B)`` correction so it is never 0.

>>> import numpy as np
>>> truth = np.array([1, 0, 1, 1, 0, 1, 0, 1] * 25)
>>> champion = np.where(np.arange(200) % 4 == 0, 1 - truth, truth)   # 75 % right
>>> candidate = np.where(np.arange(200) % 20 == 0, 1 - truth, truth)  # 95 % right
>>> result = compare_paired(truth, champion, candidate, metric="accuracy")
>>> round(result.champion, 2), round(result.candidate, 2), result.p_value < 1e-6
(0.75, 0.95, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from scipy import special

from watchkeeper.errors import ConfigError, InputError

__all__ = ["METRICS", "PairedComparison", "compare_paired", "mcnemar_p_value"]

Metric = Literal["accuracy", "roc_auc", "mae", "rmse"]
#: The metrics the gate can test, and whether higher is better.
METRICS: Final[dict[str, bool]] = {"accuracy": True, "roc_auc": True, "mae": False, "rmse": False}
_CHUNK: Final = 64


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """Both models' metric on the same rows, the improvement and its significance.

    ``improvement`` is signed so that positive means the candidate is better (for errors:
    champion − candidate). ``p_value`` is one-sided (H0: the candidate is not better) and
    ``interval`` a two-sided ``confidence`` interval of the improvement (bootstrap percentiles,
    or the exact interval of McNemar's discordant share mapped to accuracy).
    """

    metric: str
    test: str
    rows: int
    champion: float
    candidate: float
    improvement: float
    p_value: float
    interval: tuple[float, float]
    details: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "metric": self.metric,
            "test": self.test,
            "rows": self.rows,
            "champion": self.champion,
            "candidate": self.candidate,
            "improvement": self.improvement,
            "p_value": self.p_value,
            "interval": list(self.interval),
            **self.details,
        }


def mcnemar_p_value(champion_only: int, candidate_only: int) -> float:
    """One-sided exact McNemar p-value that the candidate is better.

    ``champion_only`` rows are right only for the champion, ``candidate_only`` only for the
    candidate: ``P(X >= candidate_only)`` for ``X ~ Binomial(total, 1/2)``.
    """
    if champion_only < 0 or candidate_only < 0:
        raise InputError("discordant counts must be >= 0")
    total = champion_only + candidate_only
    if total == 0 or candidate_only == 0:
        return 1.0
    # P(X >= c) = I_{1/2}(c, n - c + 1), the regularised incomplete beta function.
    return float(special.betainc(candidate_only, total - candidate_only + 1, 0.5))


def compare_paired(
    truth: npt.ArrayLike,
    champion: npt.ArrayLike,
    candidate: npt.ArrayLike,
    *,
    metric: Metric | str,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Compare two models' predictions of the same rows (see the module docstring).

    For ``accuracy`` the predictions are labels; for ``roc_auc`` the scores of the positive
    class (``truth`` is 0/1); for ``mae`` and ``rmse`` numbers.
    """
    if metric not in METRICS:
        raise ConfigError(
            f"metric: expected one of {', '.join(METRICS)}, got {metric!r}", key="metric"
        )
    if not 0.0 < confidence < 1.0:
        raise ConfigError(
            f"confidence: expected 0 < confidence < 1, got {confidence}", key="confidence"
        )
    if resamples < 100:
        raise ConfigError(f"resamples: expected at least 100, got {resamples}", key="resamples")
    y, a, b = (np.asarray(values) for values in (truth, champion, candidate))
    if not (y.ndim == a.ndim == b.ndim == 1) or not (len(y) == len(a) == len(b)):
        raise InputError(
            f"truth, champion and candidate must be 1-d and of one length, got "
            f"{y.shape}, {a.shape}, {b.shape}"
        )
    if len(y) < 2:
        raise InputError(f"at least 2 holdout rows are needed, got {len(y)}")
    if metric == "accuracy":
        return _mcnemar(y, a, b, confidence)
    return _bootstrap(y, a, b, metric, resamples, confidence, seed)


def _mcnemar(y: np.ndarray, a: np.ndarray, b: np.ndarray, confidence: float) -> PairedComparison:
    right_a = a == y
    right_b = b == y
    champion_only = int(np.count_nonzero(right_a & ~right_b))
    candidate_only = int(np.count_nonzero(right_b & ~right_a))
    n = len(y)
    discordant = champion_only + candidate_only
    # Exact (Clopper–Pearson) interval of the candidate's share of discordant rows, mapped to
    # the accuracy difference: (c − b) / n = discordant / n × (2 × share − 1).
    tail = (1.0 - confidence) / 2.0
    if discordant:
        low = special.betaincinv(candidate_only, champion_only + 1, tail) if candidate_only else 0.0
        high = (
            special.betaincinv(candidate_only + 1, champion_only, 1.0 - tail)
            if champion_only
            else 1.0
        )
        scale = discordant / n
        interval = (float(scale * (2 * low - 1)), float(scale * (2 * high - 1)))
    else:
        interval = (0.0, 0.0)
    return PairedComparison(
        metric="accuracy",
        test="mcnemar_exact",
        rows=n,
        champion=float(right_a.mean()),
        candidate=float(right_b.mean()),
        improvement=(candidate_only - champion_only) / n,
        p_value=mcnemar_p_value(champion_only, candidate_only),
        interval=interval,
        details={"champion_only": champion_only, "candidate_only": candidate_only},
    )


def _bootstrap(
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    metric: str,
    resamples: int,
    confidence: float,
    seed: int,
) -> PairedComparison:
    y = y.astype(np.float64)
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    if not (np.isfinite(y).all() and np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputError("truth and predictions must be finite numbers")
    if metric == "roc_auc":
        classes = set(np.unique(y).tolist())
        if not classes <= {0.0, 1.0} or len(classes) < 2:
            raise InputError(
                "roc_auc needs 0/1 truth with both classes present in the holdout rows"
            )
    higher = METRICS[metric]
    rng = np.random.default_rng(seed)
    n = len(y)
    base_a = _metric(metric, y, a, np.ones((1, n)))[0]
    base_b = _metric(metric, y, b, np.ones((1, n)))[0]
    improvements = np.empty(resamples)
    for start in range(0, resamples, _CHUNK):
        count = min(_CHUNK, resamples - start)
        # Each resample's count of every row: n draws with replacement, counted per resample.
        draws = rng.integers(0, n, size=(count, n)) + (np.arange(count) * n)[:, None]
        weights = np.bincount(draws.ravel(), minlength=count * n).reshape(count, n)
        weights = weights.astype(np.float64)
        diff = _metric(metric, y, b, weights) - _metric(metric, y, a, weights)
        improvements[start : start + count] = diff if higher else -diff
    improvements = improvements[np.isfinite(improvements)]
    not_better = int(np.count_nonzero(improvements <= 0.0))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(improvements, [tail, 1.0 - tail])
    observed = base_b - base_a
    return PairedComparison(
        metric=metric,
        test="paired_bootstrap",
        rows=n,
        champion=float(base_a),
        candidate=float(base_b),
        improvement=float(observed if higher else -observed),
        p_value=(1.0 + not_better) / (1.0 + len(improvements)),
        interval=(float(low), float(high)),
        details={"resamples": float(len(improvements))},
    )


def _metric(metric: str, y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The metric of ``scores`` for each row of ``weights`` (resample counts per row)."""
    total = weights.sum(axis=1)
    if metric == "mae":
        mae: np.ndarray = (weights @ np.abs(scores - y)) / total
        return mae
    if metric == "rmse":
        rmse: np.ndarray = np.sqrt((weights @ (scores - y) ** 2) / total)
        return rmse
    return _weighted_auc(y, scores, weights)


def _weighted_auc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC (Mann–Whitney, ties count 1/2) with per-resample row weights."""
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    positive = y[order] == 1.0
    w = weights[:, order]
    negative_w = np.where(positive, 0.0, w)
    positive_w = np.where(positive, w, 0.0)
    # Negatives strictly below each score, plus half of those tied with it: the group of equal
    # scores of each row runs from ``first`` to ``last`` in sorted order.
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(s)]))
    first = starts[group]
    last = np.r_[starts[1:], len(s)][group] - 1
    cumulative = np.cumsum(negative_w, axis=1)
    exclusive = cumulative - negative_w
    below = exclusive[:, first]
    tied = cumulative[:, last] - below
    pairs = positive_w.sum(axis=1) * negative_w.sum(axis=1)
    wins = (positive_w * (below + 0.5 * tied)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, wins / pairs, np.nan)
