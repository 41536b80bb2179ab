"""Drift between two profiles, in the same shape and with the same verdicts as the batch core.

Numeric columns are compared on the fine bins that a window profile inherits from its
reference (see :func:`watchkeeper.profiles.fine_edges`):

* KS: ``D`` is the largest gap between the two empirical CDFs at the fine-bin boundaries.
  The exact statistic is a supremum over every point, so the binned ``D`` is never larger and
  its p-value (exact up to 10,000 values a side, else the ``kstwo`` law at
  ``n m / (n + m)``, as :func:`scipy.stats.ks_2samp`) is never smaller: the false-alarm rate
  stays at or below ``alpha`` (Massey 1951; Smirnov 1939).
* Wasserstein-1: ``∫|F_r - F_c| dx`` with both CDFs linear inside each fine bin and the tail
  bins closed at the observed minimum and maximum (Vallender 1974), normalised by the
  reference standard deviation from the exact moments.
* PSI, Jensen–Shannon and Hellinger: on ``config.bins`` groups of fine bins cut where the
  reference CDF is closest to ``k / bins``, i.e. the reference-quantile bins of the batch core.

Categorical and boolean columns call :func:`watchkeeper.stats.drift.categorical_drift` on the
profile counts, so their results equal the batch results exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from watchkeeper.errors import ConfigError, DriftError, SchemaError
from watchkeeper.profiles._binning import FloatArray
from watchkeeper.profiles._cdf import ks_lower_bound
from watchkeeper.profiles._wasserstein import exact_sides, profile_wasserstein
from watchkeeper.profiles.categorical import OTHER_LABEL, BooleanProfile, CategoricalProfile
from watchkeeper.profiles.dataset import ColumnProfile, DatasetProfile
from watchkeeper.profiles.numeric import NumericProfile
from watchkeeper.stats._drift_discrete import (
    hellinger_distance,
    jensen_shannon_distance,
    population_stability_index,
)
from watchkeeper.stats._drift_numeric import ks_p_value
from watchkeeper.stats.drift import (
    ColumnDrift,
    DriftConfig,
    DriftTest,
    Histogram,
    _verdict,
    categorical_drift,
)

__all__ = ["drift_from_profiles", "profile_categorical_drift", "profile_numeric_drift"]

_HISTOGRAM_BINS = 30
_UNAVAILABLE = frozenset({DriftTest.CRAMER_VON_MISES, DriftTest.ANDERSON_DARLING})


def _where(column: str | None) -> str:
    return "" if column is None else f"column {column!r}: "


def _cdf_gaps(reference: FloatArray, current: FloatArray) -> tuple[float, int, int]:
    """KS ``D`` at bin boundaries, computed on integers so it equals the lattice value."""
    n_ref, n_cur = int(reference.sum()), int(current.sum())
    cum_ref = np.cumsum(reference.astype(np.int64))
    cum_cur = np.cumsum(current.astype(np.int64))
    if n_ref * n_cur < 2**62:
        gaps = np.abs(cum_ref * n_cur - cum_cur * n_ref)
        return float(gaps.max()) / (float(n_ref) * float(n_cur)), n_ref, n_cur
    return float(np.abs(cum_ref / n_ref - cum_cur / n_cur).max()), n_ref, n_cur


def _group_bins(reference: FloatArray, bins: int) -> npt.NDArray[np.intp]:
    """Starts of ``bins`` groups of fine bins, cut where the reference CDF nears ``k / bins``."""
    cdf = np.cumsum(reference) / reference.sum()
    targets = np.arange(1, bins, dtype=np.float64) / bins
    cuts = np.abs(cdf[:, None] - targets[None, :]).argmin(axis=0) + 1
    return np.unique(np.concatenate(([0], cuts[cuts < reference.size])))


def _scale(reference: NumericProfile, current: NumericProfile) -> float:
    """Reference std (ddof 0); for a constant reference the pooled std, as the batch core."""
    scale = reference.std(ddof=0)
    if scale > 0.0:
        return scale
    n_ref, n_cur = reference.finite_count, current.finite_count
    gap = current.mean - reference.mean
    pooled = (current.m2 + n_ref * n_cur / (n_ref + n_cur) * gap**2) / (n_ref + n_cur)
    return math.sqrt(pooled)


def profile_numeric_drift(
    reference: NumericProfile,
    current: NumericProfile,
    config: DriftConfig | None = None,
    *,
    column: str | None = None,
) -> ColumnDrift:
    """Drift of a numeric column from two profiles that share fine bin edges.

    Same metrics, verdict policy and result shape as
    :func:`watchkeeper.stats.drift.numeric_drift`; see the module docstring for how each
    statistic is read off the bins. Cramér–von Mises and Anderson–Darling need the raw values
    and raise :class:`ConfigError`. Raises :class:`DriftError` when either side has no finite
    value or the edges differ.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> reference = NumericProfile.of(rng.normal(size=5000))
    >>> window = NumericProfile.of(rng.normal(0.5, 1.0, size=1000), edges=reference.edges)
    >>> result = profile_numeric_drift(reference, window)
    >>> result.test, result.drift
    ('ks', True)
    """
    config = config if config is not None else DriftConfig()
    try:
        test = config.test_for("numeric")
    except ConfigError as error:
        raise ConfigError(f"{_where(column)}{error}", key=error.key) from None
    if test in _UNAVAILABLE:
        raise ConfigError(
            f"{_where(column)}test {test.value!r} needs the raw values and cannot be computed "
            "from profiles; use ks, wasserstein, psi, jensenshannon or hellinger",
            key="test",
        )
    for side, profile in (("reference", reference), ("current", current)):
        if profile.finite_count == 0:
            raise DriftError(
                f"{_where(column)}the {side} profile has no finite values; numeric drift needs "
                "at least one on each side",
                column=column,
            )
    edges = reference.edges
    if edges is None or current.edges is None or not np.array_equal(edges, current.edges):
        raise DriftError(
            f"{_where(column)}the profiles have different fine bin edges; build the current "
            "profile with reference=<this reference profile>",
            column=column,
        )
    ref_counts = reference.bin_counts.astype(np.float64)
    cur_counts = current.bin_counts.astype(np.float64)
    ks, n_ref, n_cur = _cdf_gaps(ref_counts, cur_counts)
    sides = exact_sides(reference, current)
    if sides is not None:
        # Every point of either side, not only the bin edges: still never above the exact D.
        ks = max(ks, ks_lower_bound(*sides))
    ks_result = ks_p_value(ks, n_ref, n_cur)
    low = min(reference.minimum, current.minimum, float(edges[0]))
    high = max(reference.maximum, current.maximum, float(edges[-1]))
    boundaries = np.concatenate(([low], edges, [high]))
    wasserstein = profile_wasserstein(reference, current, ref_counts, cur_counts, boundaries)
    scale = _scale(reference, current)
    starts = _group_bins(ref_counts, config.bins)
    ref_groups = np.add.reduceat(ref_counts, starts)
    cur_groups = np.add.reduceat(cur_counts, starts)
    metrics: dict[str, float] = {
        "ks": ks_result.statistic,
        "ks_p_value": ks_result.p_value,
        "wasserstein": wasserstein,
        "wasserstein_norm": wasserstein / scale if scale > 0.0 else 0.0,
        "wasserstein_scale": scale,
        "psi": population_stability_index(ref_groups, cur_groups),
        "jensenshannon": jensen_shannon_distance(ref_groups, cur_groups),
        "hellinger": hellinger_distance(ref_groups, cur_groups),
    }
    if test is DriftTest.KS:
        statistic, p_value = ks_result.statistic, ks_result.p_value
    else:
        statistic, p_value = metrics[_metric_of(test)], None
    return _verdict(
        kind="numeric",
        test=test,
        config=config,
        statistic=statistic,
        p_value=p_value,
        metrics=metrics,
        counts=(n_ref, n_cur),
        histogram=_numeric_histogram(boundaries, ref_counts, cur_counts, reference, current),
    )


def _metric_of(test: DriftTest) -> str:
    return "wasserstein_norm" if test is DriftTest.WASSERSTEIN else test.value


def _numeric_histogram(
    boundaries: FloatArray,
    ref_counts: FloatArray,
    cur_counts: FloatArray,
    reference: NumericProfile,
    current: NumericProfile,
) -> Histogram:
    """Equal-width shares over both sides' 0.5–99.5 % range, read off the binned CDFs."""
    tails = (0.005, 0.995)
    ref_low, ref_high = reference.quantiles(tails)
    cur_low, cur_high = current.quantiles(tails)
    low, high = min(ref_low, cur_low), max(ref_high, cur_high)
    edges = (
        np.array([low - 0.5, low + 0.5])
        if high <= low
        else np.linspace(low, high, _HISTOGRAM_BINS + 1)
    )

    def shares(counts: FloatArray) -> FloatArray:
        cdf = np.concatenate(([0.0], np.cumsum(counts) / counts.sum()))
        inner = np.interp(edges[1:-1], boundaries, cdf)
        share: FloatArray = np.diff(np.concatenate(([0.0], inner, [1.0])))
        return share

    return Histogram(
        edges=tuple(edges.tolist()),
        labels=None,
        reference=tuple(shares(ref_counts).tolist()),
        current=tuple(shares(cur_counts).tolist()),
    )


def _category_table(
    reference: CategoricalProfile, current: CategoricalProfile
) -> tuple[list[str], list[int], list[int]]:
    labels = [label for label, _ in reference.top(len(reference.counts))]
    labels += sorted(set(current.counts) - set(reference.counts))
    ref_counts = [reference.counts.get(label, 0) for label in labels]
    cur_counts = [current.counts.get(label, 0) for label in labels]
    if reference.other or current.other:
        labels.append(OTHER_LABEL)
        ref_counts.append(reference.other)
        cur_counts.append(current.other)
    return labels, ref_counts, cur_counts


def profile_categorical_drift(
    reference: CategoricalProfile | BooleanProfile,
    current: CategoricalProfile | BooleanProfile,
    config: DriftConfig | None = None,
    *,
    column: str | None = None,
) -> ColumnDrift:
    """Drift of a categorical or boolean column from two profiles' counts.

    Calls :func:`watchkeeper.stats.drift.categorical_drift`; labels beyond a profile's cap are
    compared as one ``__other__`` category.
    """
    if isinstance(reference, BooleanProfile) and isinstance(current, BooleanProfile):
        return categorical_drift(
            list(reference.counts),
            list(reference.counts.values()),
            [current.counts[label] for label in reference.counts],
            config,
            kind="boolean",
            column=column,
        )
    if isinstance(reference, CategoricalProfile) and isinstance(current, CategoricalProfile):
        labels, ref_counts, cur_counts = _category_table(reference, current)
        return categorical_drift(
            labels, ref_counts, cur_counts, config, kind="categorical", column=column
        )
    raise SchemaError(
        f"{_where(column)}cannot compare a {reference.kind.value} profile with a "
        f"{current.kind.value} one",
        column=column,
    )


def _has_values(profile: ColumnProfile) -> bool:
    if isinstance(profile, NumericProfile):
        return profile.finite_count > 0
    if isinstance(profile, BooleanProfile):
        return profile.true_count + profile.false_count > 0
    return profile.present > 0


def drift_from_profiles(
    reference: DatasetProfile,
    current: DatasetProfile,
    *,
    configs: Mapping[str, DriftConfig] | None = None,
    default: DriftConfig | None = None,
) -> dict[str, ColumnDrift]:
    """Drift of every column of ``reference`` in ``current``, in the batch result shape.

    ``configs`` sets the test of single columns, ``default`` that of the others. Columns
    without a usable value on either side (all missing, say) are left out: the quality
    summary reports them. Raises :class:`SchemaError` when ``current`` lacks a column or holds
    it with another kind, and :class:`ConfigError` for configs of unknown columns.

    >>> import numpy as np, pandas as pd
    >>> from watchkeeper.profiles import profile_frame
    >>> from watchkeeper.schema import infer_schema
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"x": rng.normal(size=2000)})
    >>> schema = infer_schema(frame)
    >>> reference = profile_frame(frame, schema)
    >>> window = profile_frame(pd.DataFrame({"x": rng.normal(1.0, 1.0, 500)}), schema,
    ...                        reference=reference)
    >>> drift_from_profiles(reference, window)["x"].drift
    True
    """
    configs = dict(configs or {})
    unknown = sorted(set(configs) - set(reference.columns))
    if unknown:
        raise ConfigError(
            f"drift configs name column(s) that are not profiled: {', '.join(unknown)}",
            key=unknown[0],
        )
    fallback = default if default is not None else DriftConfig()
    results: dict[str, ColumnDrift] = {}
    for name, ref_profile in reference.columns.items():
        cur_profile = current.columns.get(name)
        if cur_profile is None:
            raise SchemaError(f"column {name!r} is not in the current profile", column=name)
        if cur_profile.kind is not ref_profile.kind:
            raise SchemaError(
                f"column {name!r} is {ref_profile.kind.value} in the reference profile but "
                f"{cur_profile.kind.value} in the current one",
                column=name,
            )
        if not (_has_values(ref_profile) and _has_values(cur_profile)):
            continue
        config = configs.get(name, fallback)
        if isinstance(ref_profile, NumericProfile) and isinstance(cur_profile, NumericProfile):
            results[name] = profile_numeric_drift(ref_profile, cur_profile, config, column=name)
        elif not isinstance(ref_profile, NumericProfile) and not isinstance(
            cur_profile, NumericProfile
        ):
            results[name] = profile_categorical_drift(ref_profile, cur_profile, config, column=name)
    return results
