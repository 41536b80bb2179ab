"""Two-sample drift tests and distances for one column, with a calibrated default verdict.

:func:`numeric_drift` compares two samples of finite numbers; :func:`categorical_drift`
compares category counts (``kind="boolean"`` for 0/1 columns). Both always report significance
(where the test has a p-value), an effect size and every cheap distance, and decide ``drift``
with the policy documented in ``docs/drift.md``:

* numeric: KS p-value < ``alpha`` and Wasserstein distance / reference std >= 0.1;
* categorical: chi-square (2 × k contingency) p-value < ``alpha`` and Jensen–Shannon >= 0.05;
* boolean: pooled two-proportion z-test p-value < ``alpha`` and ``|Cohen's h|`` >= 0.1;
* distance-only tests (wasserstein, psi, jensenshannon, hellinger): distance >= threshold.

Requiring both significance and a minimum effect keeps the false-alarm rate at or below
``alpha`` on identically distributed data at any sample size, and stops negligible shifts in
huge samples from being called drift.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = numeric_drift(rng.normal(size=1000), rng.normal(0.5, 1.0, size=1000))
>>> result.test, result.drift, round(result.effect_size, 2)
('ks', True, 0.55)
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from watchkeeper.errors import ConfigError, DriftError
from watchkeeper.labels import BOOLEAN_LABELS, canonical_label
from watchkeeper.stats._drift_discrete import (
    PSI_FLOOR,
    chi2_two_sample,
    cohen_h,
    hellinger_distance,
    jensen_shannon_distance,
    population_stability_index,
    to_shares,
    two_proportion_z,
)
from watchkeeper.stats._drift_numeric import (
    ks_and_wasserstein,
    ks_p_value,
    plot_histogram,
    reference_quantile_edges,
    right_closed_counts,
    sorted_finite,
)
from watchkeeper.stats.multiple import holm_adjusted

__all__ = [
    "DEFAULT_DISTANCE_THRESHOLDS",
    "DEFAULT_DRIFT_SHARE",
    "DEFAULT_EFFECT_THRESHOLDS",
    "DEFAULT_TESTS",
    "EFFECT_MEASURES",
    "PSI_FLOOR",
    "TESTS_BY_KIND",
    "ColumnDrift",
    "DriftConfig",
    "DriftTest",
    "Histogram",
    "categorical_drift",
    "family_verdicts",
    "hellinger_distance",
    "jensen_shannon_distance",
    "numeric_drift",
    "population_stability_index",
]

FloatArray = npt.NDArray[np.float64]

DEFAULT_DRIFT_SHARE: float = 0.5
"""A data set drifts when at least this share of its tested columns drift."""

_HISTOGRAM_BINS = 30
_HISTOGRAM_CATEGORIES = 30
_OTHER_LABEL = "(other)"
_KINDS = ("numeric", "categorical", "boolean")


class DriftTest(StrEnum):
    """A drift test or distance that decides a column's verdict."""

    KS = "ks"
    WASSERSTEIN = "wasserstein"
    PSI = "psi"
    JENSEN_SHANNON = "jensenshannon"
    HELLINGER = "hellinger"
    CRAMER_VON_MISES = "cramervonmises"
    ANDERSON_DARLING = "anderson"
    CHI2 = "chi2"
    Z = "z"

    @property
    def has_p_value(self) -> bool:
        """True for hypothesis tests (verdict on p-value and effect size), False for distances."""
        return self not in _DISTANCE_TESTS


_RANK_TESTS = frozenset({DriftTest.CRAMER_VON_MISES, DriftTest.ANDERSON_DARLING})
_DISTANCE_TESTS = frozenset(
    {DriftTest.WASSERSTEIN, DriftTest.PSI, DriftTest.JENSEN_SHANNON, DriftTest.HELLINGER}
)

TESTS_BY_KIND: Mapping[str, frozenset[DriftTest]] = MappingProxyType(
    {
        "numeric": frozenset(
            {
                DriftTest.KS,
                DriftTest.WASSERSTEIN,
                DriftTest.PSI,
                DriftTest.JENSEN_SHANNON,
                DriftTest.HELLINGER,
                DriftTest.CRAMER_VON_MISES,
                DriftTest.ANDERSON_DARLING,
            }
        ),
        "categorical": frozenset(
            {DriftTest.CHI2, DriftTest.PSI, DriftTest.JENSEN_SHANNON, DriftTest.HELLINGER}
        ),
        "boolean": frozenset(
            {
                DriftTest.Z,
                DriftTest.CHI2,
                DriftTest.PSI,
                DriftTest.JENSEN_SHANNON,
                DriftTest.HELLINGER,
            }
        ),
    }
)
"""The tests that apply to each column kind."""

DEFAULT_TESTS: Mapping[str, DriftTest] = MappingProxyType(
    {"numeric": DriftTest.KS, "categorical": DriftTest.CHI2, "boolean": DriftTest.Z}
)
"""The test used when :attr:`DriftConfig.test` is None."""

EFFECT_MEASURES: Mapping[str, str] = MappingProxyType(
    {"numeric": "wasserstein_norm", "categorical": "jensenshannon", "boolean": "cohen_h"}
)
"""The effect size that a hypothesis test's verdict also requires, by column kind."""

DEFAULT_EFFECT_THRESHOLDS: Mapping[str, float] = MappingProxyType(
    {"numeric": 0.1, "categorical": 0.05, "boolean": 0.1}
)
"""Minimum effect size for a significant test to count as drift, by column kind."""

DEFAULT_DISTANCE_THRESHOLDS: Mapping[DriftTest, float] = MappingProxyType(
    {
        DriftTest.WASSERSTEIN: 0.1,
        DriftTest.PSI: 0.2,
        DriftTest.JENSEN_SHANNON: 0.1,
        DriftTest.HELLINGER: 0.1,
    }
)
"""Distance at or above which a distance-only test calls drift."""

_DISTANCE_METRIC = {
    DriftTest.WASSERSTEIN: "wasserstein_norm",
    DriftTest.PSI: "psi",
    DriftTest.JENSEN_SHANNON: "jensenshannon",
    DriftTest.HELLINGER: "hellinger",
}


def _finite_number(value: object, *, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} must be a number, got {value!r}", key=key)
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{key} must be finite, got {value!r}", key=key)
    return number


def _check_kind(kind: str) -> str:
    if kind not in _KINDS:
        raise ConfigError(
            f"kind must be one of {', '.join(_KINDS)}, got {kind!r}; datetime and text "
            "columns are not tested for drift",
            key="kind",
        )
    return str(kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftConfig:
    """How one column (or every column of a kind) is tested for drift.

    Parameters
    ----------
    test:
        The deciding test; None uses :data:`DEFAULT_TESTS` for the column kind.
    alpha:
        Significance level of tests with a p-value, in (0, 1).
    threshold:
        Distance-only tests: drift when the distance is at least this (None uses
        :data:`DEFAULT_DISTANCE_THRESHOLDS`). Not allowed with hypothesis tests.
    effect_threshold:
        Hypothesis tests: the minimum effect size (:data:`EFFECT_MEASURES`) for a significant
        result to count as drift (None uses :data:`DEFAULT_EFFECT_THRESHOLDS`; 0 decides on the
        p-value alone). Not allowed with distance-only tests.
    bins:
        Number of reference-quantile bins for numeric PSI, Jensen–Shannon and Hellinger.

    >>> DriftConfig(test=DriftTest.PSI, threshold=0.25).threshold_for("numeric")
    0.25
    """

    test: DriftTest | None = None
    alpha: float = 0.05
    threshold: float | None = None
    effect_threshold: float | None = None
    bins: int = 10

    def __post_init__(self) -> None:
        if self.test is not None:
            try:
                object.__setattr__(self, "test", DriftTest(self.test))
            except ValueError:
                valid = ", ".join(t.value for t in DriftTest)
                raise ConfigError(
                    f"test must be one of {valid}, got {self.test!r}", key="test"
                ) from None
        alpha = _finite_number(self.alpha, key="alpha")
        if not 0.0 < alpha < 1.0:
            raise ConfigError(
                f"alpha must be in (0, 1), e.g. 0.05; got {self.alpha!r}", key="alpha"
            )
        object.__setattr__(self, "alpha", alpha)
        if self.threshold is not None:
            threshold = _finite_number(self.threshold, key="threshold")
            if threshold <= 0.0:
                raise ConfigError(
                    f"threshold must be > 0 (a distance is never negative), got {self.threshold!r}",
                    key="threshold",
                )
            if self.test is None or self.test.has_p_value:
                raise ConfigError(
                    "threshold applies to distance-only tests (wasserstein, psi, jensenshannon, "
                    "hellinger); for a hypothesis test set effect_threshold instead",
                    key="threshold",
                )
            object.__setattr__(self, "threshold", threshold)
        if self.effect_threshold is not None:
            effect = _finite_number(self.effect_threshold, key="effect_threshold")
            if effect < 0.0:
                raise ConfigError(
                    f"effect_threshold must be >= 0, got {self.effect_threshold!r}",
                    key="effect_threshold",
                )
            if self.test is not None and not self.test.has_p_value:
                raise ConfigError(
                    f"effect_threshold applies to hypothesis tests; test {self.test.value!r} is "
                    "a distance, so set threshold instead",
                    key="effect_threshold",
                )
            object.__setattr__(self, "effect_threshold", effect)
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 2:
            raise ConfigError(f"bins must be an integer >= 2, got {self.bins!r}", key="bins")

    def validate_for(self, kind: str) -> None:
        """Raise ConfigError if ``kind`` is unknown or the chosen test does not apply to it."""
        kind = _check_kind(kind)
        if self.test is not None and self.test not in TESTS_BY_KIND[kind]:
            valid = ", ".join(sorted(t.value for t in TESTS_BY_KIND[kind]))
            raise ConfigError(
                f"test {self.test.value!r} does not apply to {kind} columns; choose one of {valid}",
                key="test",
            )

    def test_for(self, kind: str) -> DriftTest:
        """The test used for ``kind``: the configured one or the kind's default."""
        self.validate_for(kind)
        return self.test if self.test is not None else DEFAULT_TESTS[kind]

    def threshold_for(self, kind: str) -> float:
        """The value the deciding quantity is compared with for ``kind``."""
        test = self.test_for(kind)
        if test.has_p_value:
            if self.effect_threshold is not None:
                return self.effect_threshold
            return DEFAULT_EFFECT_THRESHOLDS[kind]
        return self.threshold if self.threshold is not None else DEFAULT_DISTANCE_THRESHOLDS[test]


def _json_number(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Histogram:
    """Binned shares of both samples for plots (never raw rows).

    Numeric columns have ``edges`` (``len(reference) + 1`` values); categorical and boolean
    columns have ``labels``. Shares of each sample sum to 1.
    """

    edges: tuple[float, ...] | None
    labels: tuple[str, ...] | None
    reference: tuple[float, ...]
    current: tuple[float, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form; non-finite numbers become None."""
        return {
            "edges": None if self.edges is None else [_json_number(e) for e in self.edges],
            "labels": None if self.labels is None else list(self.labels),
            "reference": [_json_number(s) for s in self.reference],
            "current": [_json_number(s) for s in self.current],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnDrift:
    """The drift result of one column: test, significance, effect size, verdict, histogram."""

    kind: str
    test: str
    statistic: float
    p_value: float | None
    effect_size: float
    effect_measure: str
    psi: float
    drift: bool
    alpha: float | None
    threshold: float
    metrics: Mapping[str, float]
    reference_count: int
    current_count: int
    histogram: Histogram

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form; NaN and ±inf become None."""
        return {
            "kind": self.kind,
            "test": self.test,
            "statistic": _json_number(self.statistic),
            "p_value": _json_number(self.p_value),
            "effect_size": _json_number(self.effect_size),
            "effect_measure": self.effect_measure,
            "psi": _json_number(self.psi),
            "drift": self.drift,
            "alpha": self.alpha,
            "threshold": _json_number(self.threshold),
            "metrics": {name: _json_number(value) for name, value in self.metrics.items()},
            "reference_count": self.reference_count,
            "current_count": self.current_count,
            "histogram": self.histogram.to_dict(),
        }


def _verdict(
    *,
    kind: str,
    test: DriftTest,
    config: DriftConfig,
    statistic: float,
    p_value: float | None,
    metrics: dict[str, float],
    counts: tuple[int, int],
    histogram: Histogram,
) -> ColumnDrift:
    threshold = config.threshold_for(kind)
    if test.has_p_value:
        if p_value is None:
            raise AssertionError(f"hypothesis test {test.value} produced no p-value")
        measure = EFFECT_MEASURES[kind]
        effect = metrics[measure]
        drift = p_value < config.alpha and effect >= threshold
        alpha: float | None = config.alpha
    else:
        measure = _DISTANCE_METRIC[test]
        effect = metrics[measure]
        drift = effect >= threshold
        alpha = None
        p_value = None
    return ColumnDrift(
        kind=kind,
        test=test.value,
        statistic=statistic,
        p_value=p_value,
        effect_size=effect,
        effect_measure=measure,
        psi=metrics["psi"],
        drift=bool(drift),
        alpha=alpha,
        threshold=threshold,
        metrics=MappingProxyType(metrics),
        reference_count=counts[0],
        current_count=counts[1],
        histogram=histogram,
    )


def family_verdicts(results: Mapping[str, ColumnDrift]) -> dict[str, ColumnDrift]:
    """The verdicts of a family of columns tested together (the features of one window),
    with Holm's correction for testing them all at once.

    Each hypothesis test's p-value is replaced by its Holm-adjusted value over the family's
    p-values (:func:`~watchkeeper.stats.multiple.holm_adjusted`, also kept as
    ``metrics["holm_p_value"]``), and the verdict is taken again with the column's own policy:
    adjusted p-value < ``alpha`` *and* effect size >= its floor. The chance that any column of
    the family is flagged on identically distributed data is then at most ``alpha`` however many
    columns there are. Columns decided by a distance alone have no p-value and keep their
    verdict; ``p_value`` stays the column's own, unadjusted value.

    >>> flagged = categorical_drift(["0", "1"], [500, 500], [450, 550], kind="boolean")
    >>> calm = categorical_drift(["0", "1"], [500, 500], [500, 500], kind="boolean")
    >>> round(flagged.p_value, 3), flagged.drift
    (0.025, True)
    >>> family_verdicts({"a": flagged, "b": calm})["a"].drift
    False
    """
    tested = [name for name, result in results.items() if result.p_value is not None]
    adjusted = dict(
        zip(tested, holm_adjusted([results[name].p_value or 0.0 for name in tested]), strict=True)
    )
    corrected: dict[str, ColumnDrift] = {}
    for name, result in results.items():
        holm = adjusted.get(name)
        if holm is None or result.alpha is None:
            corrected[name] = result
            continue
        drift = holm < result.alpha and result.effect_size >= result.threshold
        corrected[name] = dataclasses.replace(
            result,
            drift=bool(drift),
            metrics=MappingProxyType({**result.metrics, "holm_p_value": holm}),
        )
    return corrected


def _wasserstein_scale(reference: FloatArray, current: FloatArray) -> float:
    """Reference std (ddof 0); for a constant reference the std of both samples pooled."""
    scale = float(np.std(reference))
    if scale > 0.0:
        return scale
    # A constant reference has no spread to measure a shift against; the pooled spread makes
    # any change a finite, comparable effect (identical constants give W = 0 and effect 0).
    n_ref, n_cur = reference.size, current.size
    mean_cur = float(np.mean(current))
    gap = mean_cur - float(reference[0])
    pooled_variance = (
        n_cur * float(np.var(current)) + n_ref * n_cur / (n_ref + n_cur) * gap**2
    ) / (n_ref + n_cur)
    return math.sqrt(pooled_variance)


def numeric_drift(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    config: DriftConfig | None = None,
    *,
    column: str | None = None,
    overwrite_input: bool = False,
) -> ColumnDrift:
    """Test two samples of a numeric column for drift.

    ``reference`` and ``current`` are finite float64 values in any order: callers remove NaN
    and ±inf first (data-quality checks count them), otherwise :class:`DriftError` is raised,
    as for an empty sample. ``column`` only names the column in error messages. With
    ``overwrite_input`` float64 arrays are sorted in place (for callers that own a copy).

    Each sample is sorted once; KS (Massey 1951), Wasserstein-1 (Vallender 1974) and the
    reference-quantile bins for PSI, Jensen–Shannon (Lin 1991) and Hellinger come from the
    sorted arrays. Cramér–von Mises (Anderson 1962) and Anderson–Darling (Scholz & Stephens
    1987) are computed only when chosen.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> same = numeric_drift(rng.normal(size=1000), rng.normal(size=1000))
    >>> same.drift, same.p_value > 0.05
    (False, True)
    """
    config = config if config is not None else DriftConfig()
    test = _test_for(config, "numeric", column)
    ref = sorted_finite(reference, name="reference", column=column, overwrite=overwrite_input)
    cur = sorted_finite(current, name="current", column=column, overwrite=overwrite_input)
    ks, wasserstein = ks_and_wasserstein(ref, cur)
    ks_result = ks_p_value(ks, ref.size, cur.size)
    scale = _wasserstein_scale(ref, cur)
    interior = reference_quantile_edges(ref, config.bins)
    ref_bins = right_closed_counts(ref, interior)
    cur_bins = right_closed_counts(cur, interior)
    metrics: dict[str, float] = {
        "ks": ks_result.statistic,
        "ks_p_value": ks_result.p_value,
        "wasserstein": wasserstein,
        "wasserstein_norm": wasserstein / scale if scale > 0.0 else 0.0,
        "wasserstein_scale": scale,
        "psi": population_stability_index(ref_bins, cur_bins),
        "jensenshannon": jensen_shannon_distance(ref_bins, cur_bins),
        "hellinger": hellinger_distance(ref_bins, cur_bins),
    }
    statistic, p_value = ks_result.statistic, ks_result.p_value
    if test in _RANK_TESTS and (min(ref.size, cur.size) < 2 or ref.size + cur.size < 4):
        where = f"column {column!r}: " if column is not None else ""
        raise DriftError(
            f"{where}{test.value} needs at least 2 values in each sample and 4 in total, got "
            f"{ref.size} and {cur.size}; use the ks test for such small samples",
            column=column,
        )
    if test is DriftTest.CRAMER_VON_MISES:
        from scipy import stats  # only when chosen: its import is half a report's run time

        cvm = stats.cramervonmises_2samp(ref, cur)
        statistic, p_value = float(cvm.statistic), float(cvm.pvalue)
        metrics["cramervonmises"], metrics["cramervonmises_p_value"] = statistic, p_value
    elif test is DriftTest.ANDERSON_DARLING:
        statistic, p_value = _anderson_darling(ref, cur)
        metrics["anderson"], metrics["anderson_p_value"] = statistic, p_value
    elif not test.has_p_value:
        statistic = metrics[_DISTANCE_METRIC[test]]
    edges, ref_shares, cur_shares = plot_histogram(ref, cur, _HISTOGRAM_BINS)
    histogram = Histogram(
        edges=tuple(edges.tolist()),
        labels=None,
        reference=tuple(ref_shares.tolist()),
        current=tuple(cur_shares.tolist()),
    )
    return _verdict(
        kind="numeric",
        test=test,
        config=config,
        statistic=statistic,
        p_value=p_value,
        metrics=metrics,
        counts=(ref.size, cur.size),
        histogram=histogram,
    )


def _anderson_darling(reference: FloatArray, current: FloatArray) -> tuple[float, float]:
    """k-sample Anderson–Darling, midrank variant (Scholz & Stephens 1987) via SciPy."""
    if reference[0] == reference[-1] == current[0] == current[-1]:
        # One distinct value in both samples: nothing to rank, and no evidence of change.
        return 0.0, 1.0
    from scipy import stats

    with warnings.catch_warnings():
        # SciPy warns whenever its tabulated p-value is floored at 0.001 or capped at 0.25.
        warnings.simplefilter("ignore", UserWarning)
        result = stats.anderson_ksamp([reference, current], variant="midrank")
    return float(result.statistic), float(result.pvalue)


def _test_for(config: DriftConfig, kind: str, column: str | None) -> DriftTest:
    try:
        return config.test_for(kind)
    except ConfigError as error:
        if column is None:
            raise
        raise ConfigError(f"column {column!r}: {error}", key=error.key) from None


def _counts(values: npt.ArrayLike, *, name: str, size: int, column: str | None) -> FloatArray:
    where = f"column {column!r}: " if column is not None else ""
    counts = np.asarray(values, dtype=np.float64)
    if counts.shape != (size,):
        raise DriftError(
            f"{where}{name} counts have shape {counts.shape} but there are {size} labels; "
            "pass one count per label, in label order",
            column=column,
        )
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise DriftError(f"{where}{name} counts must be finite and >= 0", column=column)
    if counts.sum() <= 0:
        raise DriftError(
            f"{where}{name} has no values; categorical drift needs at least one counted value "
            "in each sample",
            column=column,
        )
    return counts


def _label(value: object, column: str | None) -> str:
    label = canonical_label(value)
    if label is None:
        where = f"column {column!r}: " if column is not None else ""
        raise DriftError(f"{where}a category label is missing ({value!r})", column=column)
    return label


def _positive_index(labels: tuple[str, ...], column: str | None) -> int | None:
    if len(labels) > 2 or not set(labels) <= set(BOOLEAN_LABELS):
        where = f"column {column!r}: " if column is not None else ""
        false_label, true_label = BOOLEAN_LABELS
        raise DriftError(
            f"{where}boolean columns are counted under the labels {false_label!r} (false) and "
            f"{true_label!r} (true), see watchkeeper.labels; got {list(labels)}; test it as "
            "kind='categorical' instead",
            column=column,
        )
    return labels.index(BOOLEAN_LABELS[1]) if BOOLEAN_LABELS[1] in labels else None


def _category_histogram(
    labels: tuple[str, ...], ref_shares: FloatArray, cur_shares: FloatArray
) -> Histogram:
    if len(labels) <= _HISTOGRAM_CATEGORIES:
        return Histogram(
            edges=None,
            labels=labels,
            reference=tuple(ref_shares.tolist()),
            current=tuple(cur_shares.tolist()),
        )
    keep = _HISTOGRAM_CATEGORIES - 1
    top = np.argsort(-(ref_shares + cur_shares), kind="stable")[:keep]
    rest = np.ones(len(labels), dtype=np.bool_)
    rest[top] = False
    return Histogram(
        edges=None,
        labels=(*(labels[i] for i in top.tolist()), _OTHER_LABEL),
        reference=(*ref_shares[top].tolist(), float(ref_shares[rest].sum())),
        current=(*cur_shares[top].tolist(), float(cur_shares[rest].sum())),
    )


def categorical_drift(
    labels: Sequence[object],
    reference_counts: npt.ArrayLike,
    current_counts: npt.ArrayLike,
    config: DriftConfig | None = None,
    *,
    kind: str = "categorical",
    column: str | None = None,
) -> ColumnDrift:
    """Test category counts of a categorical (or boolean) column for drift.

    ``reference_counts`` and ``current_counts`` hold one non-negative count per label, in the
    order of ``labels``. Every category enters the chi-square test, those absent from the
    reference ("unseen") included, and categories with expected counts below 5 are pooled (see
    :func:`~watchkeeper.stats._drift_discrete.chi2_two_sample`); the unseen share of the current
    sample is reported as ``metrics["unseen_share"]``; the distances (PSI, Jensen–Shannon,
    Hellinger) cover every category too. Labels are named by
    :func:`watchkeeper.labels.canonical_label` (``1.0`` is ``"1"``). With ``kind="boolean"`` the
    labels are '0'/'1' (those of ``False``/``True``) and
    the default test is the pooled two-proportion z-test, whose effect size is Cohen's h.

    >>> result = categorical_drift(["a", "b", "c"], [500, 300, 200], [200, 300, 500])
    >>> result.test, result.drift, round(result.effect_size, 3)
    ('chi2', True, 0.31)
    """
    config = config if config is not None else DriftConfig()
    kind = _check_kind(kind)
    if kind == "numeric":
        raise ConfigError("categorical_drift takes kind='categorical' or 'boolean'", key="kind")
    test = _test_for(config, kind, column)
    label_tuple = tuple(_label(label, column) for label in labels)
    if len(set(label_tuple)) != len(label_tuple):
        where = f"column {column!r}: " if column is not None else ""
        raise DriftError(f"{where}labels must be distinct, got {list(label_tuple)}", column=column)
    ref = _counts(reference_counts, name="reference", size=len(label_tuple), column=column)
    cur = _counts(current_counts, name="current", size=len(label_tuple), column=column)
    ref_total, cur_total = float(ref.sum()), float(cur.sum())
    seen = ref > 0
    metrics: dict[str, float] = {
        "psi": population_stability_index(ref, cur),
        "jensenshannon": jensen_shannon_distance(ref, cur),
        "hellinger": hellinger_distance(ref, cur),
        "unseen_share": float(cur[~seen].sum()) / cur_total,
    }
    if kind == "boolean":
        positive = _positive_index(label_tuple, column)
        ref_positive = 0.0 if positive is None else float(ref[positive])
        cur_positive = 0.0 if positive is None else float(cur[positive])
        metrics["cohen_h"] = cohen_h(ref_positive / ref_total, cur_positive / cur_total)
        ztest = two_proportion_z(ref_positive, ref_total, cur_positive, cur_total)
        metrics["z"], metrics["z_p_value"] = ztest.statistic, ztest.p_value
    chi2 = chi2_two_sample(ref, cur)
    metrics["chi2"], metrics["chi2_p_value"] = chi2.statistic, chi2.p_value
    if test is DriftTest.Z:
        statistic, p_value = metrics["z"], metrics["z_p_value"]
    elif test is DriftTest.CHI2:
        statistic, p_value = chi2.statistic, chi2.p_value
    else:
        statistic, p_value = metrics[_DISTANCE_METRIC[test]], None
    return _verdict(
        kind=kind,
        test=test,
        config=config,
        statistic=statistic,
        p_value=p_value,
        metrics=metrics,
        counts=(round(ref_total), round(cur_total)),
        histogram=_category_histogram(label_tuple, to_shares(ref), to_shares(cur)),
    )
