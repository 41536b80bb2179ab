"""Business outcomes in a window: mergeable moments per outcome name, and their signals.

An outcome (a click, a conversion, revenue; ``POST /v1/models/{name}/outcomes``) joins the
window of its prediction, like a label: the prediction's version, segment and event time. Each
window keeps, per declared outcome, the count, sum and sum of squared deviations of the values
(binary outcomes as 1 / 0), merged exactly across windows (Chan, Golub & LeVeque, "Updating
formulae and a pairwise algorithm for computing sample variances", 1979), so a day's moments
are those of its hours and the signals of any span are exact.

Signals (``outcome.<name>.<stat>``): ``count`` (outcomes joined), ``per_prediction`` (their sum
per prediction of the window: a prediction without an outcome counts 0, so this is the
click-through or revenue per prediction), ``rate`` (binary: the share of true among the
outcomes sent), and for numeric outcomes ``mean``, ``sum`` and ``std`` (sample standard
deviation, n - 1).

>>> moments = OutcomeMoments.of([1.0, 0.0, 1.0, 1.0])
>>> moments.count, moments.mean, round(moments.merge(OutcomeMoments.of([0.0])).mean, 2)
(4, 0.75, 0.6)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from watchkeeper.ingest.spec import OutcomeKind
from watchkeeper.signalkey import SignalKey

__all__ = ["OutcomeMoments", "outcome_signal_names", "outcome_signals"]

_BINARY_STATS = ("count", "rate", "per_prediction")
_NUMERIC_STATS = ("count", "mean", "sum", "std", "per_prediction")


@dataclass(frozen=True, slots=True)
class OutcomeMoments:
    """Count, sum (``total``) and sum of squared deviations from the mean (``m2``) of an
    outcome's values; the sum is kept (not the mean) so that rates and sums are exact."""

    count: int = 0
    total: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, values: Iterable[float]) -> OutcomeMoments:
        """The moments of ``values`` (two passes, exactly rounded sums)."""
        found = list(values)
        if not found:
            return cls()
        total = math.fsum(found)
        mean = total / len(found)
        return cls(len(found), total, math.fsum((value - mean) ** 2 for value in found))

    def merge(self, other: OutcomeMoments) -> OutcomeMoments:
        """The moments of both samples together (Chan et al.'s pairwise formula)."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / count
        return OutcomeMoments(count, self.total + other.total, m2)

    @property
    def mean(self) -> float:
        """The mean of the values (0 without values)."""
        return self.total / self.count if self.count else 0.0

    @property
    def std(self) -> float | None:
        """The sample standard deviation (n - 1); None below two values."""
        if self.count < 2:
            return None
        return math.sqrt(max(self.m2, 0.0) / (self.count - 1))

    def to_state(self) -> list[float]:
        """``[count, total, m2]``, as stored in a window profile."""
        return [self.count, self.total, self.m2]

    @classmethod
    def from_state(cls, state: list[float]) -> OutcomeMoments:
        """Read :meth:`to_state` output."""
        count, total, m2 = state
        return cls(int(count), float(total), float(m2))


def _name(outcome: str, stat: str) -> str:
    return SignalKey(stat, "outcome", outcome).format()


def outcome_signal_names(outcomes: Mapping[str, OutcomeKind]) -> list[str]:
    """The signals of the declared ``outcomes``, in declaration order."""
    return [
        _name(outcome, stat)
        for outcome, kind in outcomes.items()
        for stat in (_BINARY_STATS if kind is OutcomeKind.BINARY else _NUMERIC_STATS)
    ]


def outcome_signals(
    moments: Mapping[str, OutcomeMoments],
    outcomes: Mapping[str, OutcomeKind],
    *,
    events: int,
) -> dict[str, float | None]:
    """The signals of a window's outcome ``moments`` (a window of ``events`` predictions);
    a statistic without data is None, a count is 0."""
    signals: dict[str, float | None] = {}
    for outcome, kind in outcomes.items():
        found = moments.get(outcome, OutcomeMoments())
        signals[_name(outcome, "count")] = float(found.count)
        signals[_name(outcome, "per_prediction")] = found.total / events if events else None
        mean = found.mean if found.count else None
        if kind is OutcomeKind.BINARY:
            signals[_name(outcome, "rate")] = mean
        else:
            signals[_name(outcome, "mean")] = mean
            signals[_name(outcome, "sum")] = found.total
            signals[_name(outcome, "std")] = found.std
    return signals
