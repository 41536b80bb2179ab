"""Drift statistics: golden values against SciPy, the verdict policy, validation, properties."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from watchkeeper.errors import ConfigError, DriftError
from watchkeeper.stats._drift_discrete import contingency_table
from watchkeeper.stats._drift_numeric import ks_p_value, smirnov_sf
from watchkeeper.stats.drift import (
    DEFAULT_DRIFT_SHARE,
    PSI_FLOOR,
    ColumnDrift,
    DriftConfig,
    DriftTest,
    categorical_drift,
    hellinger_distance,
    jensen_shannon_distance,
    numeric_drift,
    population_stability_index,
)

SIZES = [(1, 1), (3, 5), (5, 7), (10, 10), (25, 40), (100, 80), (1000, 1000), (3000, 7000)]


def _samples(seed: int, n_ref: int, n_cur: int, *, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if ties:
        return (
            rng.integers(0, 6, n_ref).astype(np.float64),
            rng.integers(0, 7, n_cur).astype(np.float64),
        )
    return rng.normal(size=n_ref), rng.normal(0.2, 1.3, size=n_cur)


def _reference_decile_counts(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, ...]:
    """Bin counts on reference deciles, computed independently with np.quantile + np.digitize."""
    edges = np.unique(np.quantile(reference, np.arange(1, 10) / 10))
    ref_counts = np.bincount(np.digitize(reference, edges, right=True), minlength=edges.size + 1)
    cur_counts = np.bincount(np.digitize(current, edges, right=True), minlength=edges.size + 1)
    return ref_counts.astype(float), cur_counts.astype(float)


# --- golden values: numeric ---------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("n_ref", "n_cur"), SIZES)
def test_ks_matches_scipy_auto(n_ref: int, n_cur: int, ties: bool) -> None:
    reference, current = _samples(n_ref * 7 + n_cur, n_ref, n_cur, ties=ties)
    expected = stats.ks_2samp(reference, current, method="auto")
    result = numeric_drift(reference, current)
    assert result.test == "ks"
    assert result.statistic == pytest.approx(float(expected.statistic), abs=1e-15)
    assert result.p_value == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(
    ("n_ref", "n_cur", "shift"),
    [(20_000, 30_000, 0.0), (200_000, 100_000, 0.01), (50_000, 50_000, 0.05)],
)
def test_ks_matches_scipy_asymptotic(n_ref: int, n_cur: int, shift: float) -> None:
    rng = np.random.default_rng(n_ref + n_cur)
    reference, current = rng.normal(size=n_ref), rng.normal(shift, size=n_cur)
    expected = stats.ks_2samp(reference, current, method="auto")
    result = numeric_drift(reference, current)
    assert result.statistic == pytest.approx(float(expected.statistic), abs=1e-15)
    assert result.p_value == pytest.approx(float(expected.pvalue), rel=1e-7, abs=1e-300)


def test_ks_exact_mode_is_used_up_to_ten_thousand_values() -> None:
    assert ks_p_value(0.05, 10_000, 9_999).exact
    assert not ks_p_value(0.05, 10_001, 500).exact


@pytest.mark.parametrize("n", [141, 1_000, 10_000, 100_000])
@pytest.mark.parametrize("n_x_squared", [2.2, 5.0, 20.0, 100.0, 300.0])
def test_smirnov_sum_matches_scipy(n: int, n_x_squared: float) -> None:
    x = math.sqrt(n_x_squared / n)
    if x >= 0.5:
        x = 0.45
    assert smirnov_sf(n, x) == pytest.approx(float(special.smirnov(n, x)), rel=1e-6)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("n_ref", "n_cur"), SIZES)
def test_wasserstein_matches_scipy(n_ref: int, n_cur: int, ties: bool) -> None:
    reference, current = _samples(n_ref + 3 * n_cur, n_ref, n_cur, ties=ties)
    result = numeric_drift(reference, current)
    expected = stats.wasserstein_distance(reference, current)
    assert result.metrics["wasserstein"] == pytest.approx(expected, rel=1e-10, abs=1e-12)
    if np.std(reference) > 0:
        assert result.metrics["wasserstein_norm"] == pytest.approx(
            expected / np.std(reference), rel=1e-10, abs=1e-12
        )


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("n_ref", "n_cur"), [(50, 60), (1000, 1000), (5000, 2000)])
def test_binned_distances_match_independent_computation(n_ref: int, n_cur: int, ties: bool) -> None:
    reference, current = _samples(n_ref + 2 * n_cur, n_ref, n_cur, ties=ties)
    ref_counts, cur_counts = _reference_decile_counts(reference, current)
    result = numeric_drift(reference, current)
    assert result.metrics["jensenshannon"] == pytest.approx(
        jensenshannon(ref_counts, cur_counts, base=2), rel=1e-9, abs=1e-12
    )
    ref_share = np.maximum(ref_counts / n_ref, PSI_FLOOR)
    cur_share = np.maximum(cur_counts / n_cur, PSI_FLOOR)
    assert result.psi == pytest.approx(
        np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)), rel=1e-12
    )
    hellinger = np.linalg.norm(np.sqrt(ref_counts / n_ref) - np.sqrt(cur_counts / n_cur))
    assert result.metrics["hellinger"] == pytest.approx(hellinger / math.sqrt(2), rel=1e-9)


@pytest.mark.parametrize(("n_ref", "n_cur"), [(5, 6), (15, 12), (300, 200)])
def test_cramer_von_mises_matches_scipy(n_ref: int, n_cur: int) -> None:
    reference, current = _samples(n_ref, n_ref, n_cur, ties=False)
    expected = stats.cramervonmises_2samp(reference, current)
    result = numeric_drift(reference, current, DriftConfig(test=DriftTest.CRAMER_VON_MISES))
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert result.metrics["cramervonmises"] == result.statistic


@pytest.mark.parametrize("ties", [False, True])
def test_anderson_darling_matches_scipy(ties: bool) -> None:
    reference, current = _samples(11, 400, 300, ties=ties)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # SciPy's note that p is floored/capped
        expected = stats.anderson_ksamp([reference, current], variant="midrank")
    result = numeric_drift(reference, current, DriftConfig(test=DriftTest("anderson")))
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue)


@pytest.mark.parametrize("test", [DriftTest.CRAMER_VON_MISES, DriftTest.ANDERSON_DARLING])
def test_rank_tests_reject_tiny_samples(test: DriftTest) -> None:
    with pytest.raises(DriftError, match="at least 2 values"):
        numeric_drift(np.array([1.0]), np.array([2.0, 3.0]), DriftConfig(test=test), column="x")


def test_cramer_von_mises_and_anderson_only_when_selected() -> None:
    reference, current = _samples(2, 100, 100, ties=False)
    assert "cramervonmises" not in numeric_drift(reference, current).metrics
    assert "anderson" not in numeric_drift(reference, current).metrics


# --- golden values: categorical and boolean -----------------------------------------------


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        ([200, 200, 200, 200, 200], [180, 230, 190, 210, 190]),
        ([50, 30, 20], [20, 30, 50]),
        ([500, 500], [450, 550]),
        ([10, 0, 7, 3], [9, 0, 6, 5]),
    ],
)
def test_chi2_is_the_contingency_test(reference: list[int], current: list[int]) -> None:
    labels = [f"c{i}" for i in range(len(reference))]
    result = categorical_drift(labels, np.array(reference), np.array(current))
    table = np.array([reference, current])
    expected = stats.chi2_contingency(table[:, table.sum(axis=0) > 0])
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert result.metrics["jensenshannon"] == pytest.approx(
        jensenshannon(reference, current, base=2), rel=1e-12, abs=1e-15
    )


def test_chi2_is_not_goodness_of_fit_against_scaled_reference() -> None:
    reference, current = np.array([200, 200, 200, 200, 200]), np.array([170, 230, 185, 220, 195])
    goodness_of_fit = stats.chisquare(current, reference * current.sum() / reference.sum())
    result = categorical_drift(list("abcde"), reference, current)
    assert result.p_value != pytest.approx(goodness_of_fit.pvalue, rel=1e-3)
    assert result.p_value > goodness_of_fit.pvalue


def test_unseen_categories_are_part_of_the_test() -> None:
    result = categorical_drift(
        ["a", "b", "new", "newer"], np.array([60, 40, 0, 0]), np.array([50, 30, 12, 8])
    )
    expected = stats.chi2_contingency(np.array([[60, 40, 0, 0], [50, 30, 12, 8]]))
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert result.drift
    assert result.metrics["unseen_share"] == pytest.approx(0.2)
    assert result.metrics["jensenshannon"] == pytest.approx(
        jensenshannon([60, 40, 0, 0], [50, 30, 12, 8], base=2), rel=1e-12
    )


def test_sparse_cells_are_pooled_before_the_test() -> None:
    reference = np.array([400, 300, 2, 1, 3, 0])
    current = np.array([380, 320, 1, 3, 0, 2])
    table = contingency_table(reference.astype(float), current.astype(float))
    # The four rare levels ("f" unseen by the reference among them) become one cell.
    assert table.tolist() == [[400.0, 300.0, 6.0], [380.0, 320.0, 6.0]]
    result = categorical_drift(list("abcdef"), reference, current)
    assert result.p_value == pytest.approx(stats.chi2_contingency(table).pvalue, rel=1e-12)


def test_a_new_category_next_to_a_single_seen_one_is_evidence() -> None:
    result = categorical_drift(["a", "b"], np.array([100, 0]), np.array([90, 10]))
    expected = stats.chi2_contingency(np.array([[100, 0], [90, 10]]))
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert result.p_value < 0.01
    assert result.metrics["unseen_share"] == pytest.approx(0.1)


def test_one_category_in_both_samples_gives_no_evidence() -> None:
    result = categorical_drift(["a", "b"], np.array([100, 0]), np.array([90, 0]))
    assert (result.statistic, result.p_value, result.drift) == (0.0, 1.0, False)


def test_a_current_sample_of_unseen_categories_only_is_drift() -> None:
    # Every live value renamed upstream ("true" where the reference has "1"): the table covers
    # both samples' categories, so this is the clearest drift there is, not an error.
    result = categorical_drift(["0", "1", "false", "true"], [70, 30, 0, 0], [0, 0, 65, 35])
    assert result.p_value is not None
    assert result.p_value < 1e-40
    assert result.drift
    assert result.metrics["unseen_share"] == 1.0
    assert result.metrics["jensenshannon"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("reference", "current"), [((700, 300), (650, 350)), ((90, 10), (80, 20)), ((5, 995), (9, 991))]
)
def test_two_proportion_z_test_by_hand(
    reference: tuple[int, int], current: tuple[int, int]
) -> None:
    result = categorical_drift(["0", "1"], np.array(reference), np.array(current), kind="boolean")
    n_ref, n_cur = sum(reference), sum(current)
    p_ref, p_cur = reference[1] / n_ref, current[1] / n_cur
    pooled = (reference[1] + current[1]) / (n_ref + n_cur)
    z = (p_cur - p_ref) / math.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    assert result.test == "z"
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)
    cohen_h = abs(2 * math.asin(math.sqrt(p_cur)) - 2 * math.asin(math.sqrt(p_ref)))
    assert result.effect_size == pytest.approx(cohen_h, rel=1e-12)
    assert result.effect_measure == "cohen_h"


def test_boolean_takes_booleans_as_labels_and_constant_columns() -> None:
    as_booleans = categorical_drift([True, False], [300, 700], [250, 750], kind="boolean")
    as_labels = categorical_drift(["1", "0"], [300, 700], [250, 750], kind="boolean")
    assert as_booleans == as_labels
    assert as_booleans.histogram is not None
    assert as_booleans.histogram.labels == ("1", "0")
    constant = categorical_drift(["0"], [100], [50], kind="boolean")
    assert (constant.statistic, constant.p_value, constant.drift) == (0.0, 1.0, False)


def test_categorical_labels_are_canonical_and_never_missing() -> None:
    as_numbers = categorical_drift([1.0, 2, "x"], [5, 3, 2], [4, 4, 2])
    as_labels = categorical_drift(["1", "2", "x"], [5, 3, 2], [4, 4, 2])
    assert as_numbers == as_labels
    with pytest.raises(DriftError, match="labels must be distinct"):
        categorical_drift([1, "1"], [1, 2], [2, 1])
    with pytest.raises(DriftError, match="column 'c': a category label is missing"):
        categorical_drift(["a", None], [1, 2], [2, 1], column="c")


@pytest.mark.parametrize("labels", [["yes", "no"], ["False", "True"], ["false", "true"]])
def test_boolean_rejects_labels_that_are_not_canonical_booleans(labels: list[str]) -> None:
    # The strings "true"/"false" are strings (watchkeeper.labels); booleans are "1"/"0".
    with pytest.raises(DriftError, match="counted under the labels '0' \\(false\\) and '1'"):
        categorical_drift(labels, [1, 2], [2, 1], kind="boolean", column="flag")


# --- verdict policy -----------------------------------------------------------------------


def test_verdict_requires_significance_and_effect() -> None:
    rng = np.random.default_rng(5)
    reference = rng.normal(size=1_000_000)
    result = numeric_drift(reference, rng.normal(0.02, 1.0, size=1_000_000))
    assert result.p_value is not None
    assert result.p_value < 1e-10
    assert result.effect_size < 0.1
    assert not result.drift
    assert numeric_drift(reference, rng.normal(0.5, 1.0, size=1000)).drift


def test_effect_threshold_zero_decides_on_p_value_alone() -> None:
    rng = np.random.default_rng(6)
    reference, current = rng.normal(size=200_000), rng.normal(0.02, 1.0, size=200_000)
    assert numeric_drift(reference, current, DriftConfig(effect_threshold=0.0)).drift


@pytest.mark.parametrize("test", ["wasserstein", "psi", "jensenshannon", "hellinger"])
def test_distance_tests_compare_the_distance_with_the_threshold(test: str) -> None:
    rng = np.random.default_rng(7)
    reference, current = rng.normal(size=5000), rng.normal(0.6, 1.0, size=5000)
    result = numeric_drift(reference, current, DriftConfig(test=DriftTest(test)))
    assert result.p_value is None
    assert result.alpha is None
    assert result.statistic == result.effect_size
    assert result.drift == (result.effect_size >= result.threshold)
    assert result.drift
    high = numeric_drift(reference, current, DriftConfig(test=DriftTest(test), threshold=0.99))
    assert not high.drift
    assert high.threshold == 0.99


def test_default_thresholds_are_reported() -> None:
    rng = np.random.default_rng(8)
    reference, current = rng.normal(size=500), rng.normal(size=500)
    assert numeric_drift(reference, current).threshold == 0.1
    assert numeric_drift(reference, current, DriftConfig(test=DriftTest("psi"))).threshold == 0.2
    assert categorical_drift(["a", "b"], [5, 5], [5, 5]).threshold == 0.05
    assert categorical_drift(["0", "1"], [5, 5], [5, 5], kind="boolean").threshold == 0.1
    assert DEFAULT_DRIFT_SHARE == 0.5


def test_categorical_policy_ignores_negligible_shifts_at_huge_n() -> None:
    reference = np.array([200_000, 200_000, 200_000, 200_000, 200_000])
    current = np.array([206_000, 194_000, 200_000, 200_000, 200_000])
    result = categorical_drift(list("abcde"), reference, current)
    assert result.p_value is not None
    assert result.p_value < 1e-10
    assert not result.drift
    shifted = categorical_drift(list("abcde"), [200] * 5, [300, 250, 200, 150, 100])
    assert shifted.drift


# --- constant reference, errors, configuration --------------------------------------------


def test_constant_reference_uses_pooled_spread() -> None:
    reference = np.full(1000, 5.0)
    same = numeric_drift(reference, np.full(800, 5.0))
    assert (same.effect_size, same.drift, same.metrics["wasserstein"]) == (0.0, False, 0.0)
    moved = numeric_drift(reference, np.full(800, 6.0))
    assert math.isfinite(moved.effect_size)
    assert moved.effect_size > 1.0
    assert moved.drift


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_raise_drift_error(bad: float) -> None:
    with pytest.raises(DriftError, match="non-finite") as raised:
        numeric_drift(np.array([1.0, bad, 2.0]), np.array([1.0, 2.0]), column="age")
    assert raised.value.column == "age"
    assert "age" in str(raised.value)


def test_empty_samples_raise_drift_error() -> None:
    with pytest.raises(DriftError, match="no values"):
        numeric_drift(np.array([1.0]), np.array([]), column="x")
    with pytest.raises(DriftError, match="no values"):
        categorical_drift(["a"], [0], [3], column="c")


def test_bad_counts_raise_drift_error() -> None:
    with pytest.raises(DriftError, match="shape"):
        categorical_drift(["a", "b"], [1, 2, 3], [1, 2])
    with pytest.raises(DriftError, match=">= 0"):
        categorical_drift(["a", "b"], [1, -2], [1, 2])
    with pytest.raises(DriftError, match="distinct"):
        categorical_drift(["a", "a"], [1, 2], [1, 2])


def test_inputs_are_not_modified() -> None:
    reference = np.array([3.0, 1.0, 2.0])
    numeric_drift(reference, np.array([2.0, 1.0]))
    assert reference.tolist() == [3.0, 1.0, 2.0]


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"test": "t-test"}, "test"),
        ({"test": "psi", "threshold": 0.0}, "threshold"),
        ({"test": "ks", "threshold": 0.2}, "threshold"),
        ({"threshold": 0.2}, "threshold"),
        ({"test": "psi", "effect_threshold": 0.1}, "effect_threshold"),
        ({"effect_threshold": -0.1}, "effect_threshold"),
        ({"bins": 1}, "bins"),
    ],
)
def test_config_validation_names_the_field(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        DriftConfig(**kwargs)  # type: ignore[arg-type]
    assert raised.value.key == key


@pytest.mark.parametrize(
    ("test", "kind"),
    [("ks", "categorical"), ("chi2", "numeric"), ("z", "categorical"), ("anderson", "boolean")],
)
def test_config_rejects_tests_that_do_not_apply(test: str, kind: str) -> None:
    with pytest.raises(ConfigError, match="does not apply"):
        DriftConfig(test=DriftTest(test)).validate_for(kind)


def test_config_rejects_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="kind"):
        DriftConfig().validate_for("datetime")


def test_wrong_test_for_column_names_the_column() -> None:
    with pytest.raises(ConfigError, match="'city'"):
        categorical_drift(["a"], [1], [1], DriftConfig(test=DriftTest("ks")), column="city")


def test_bins_choose_the_reference_quantiles() -> None:
    rng = np.random.default_rng(9)
    reference, current = rng.normal(size=3000), rng.normal(0.3, size=3000)
    five = numeric_drift(reference, current, DriftConfig(test=DriftTest("psi"), bins=5))
    ten = numeric_drift(reference, current, DriftConfig(test=DriftTest("psi")))
    assert five.psi != ten.psi


# --- histogram and serialisation ----------------------------------------------------------


def test_numeric_histogram_is_binned_and_sums_to_one() -> None:
    rng = np.random.default_rng(10)
    result = numeric_drift(rng.normal(size=2000), rng.normal(1.0, size=1500))
    histogram = result.histogram
    assert histogram.labels is None
    assert histogram.edges is not None
    assert len(histogram.edges) == 31
    assert len(histogram.reference) == len(histogram.current) == 30
    assert sum(histogram.reference) == pytest.approx(1.0)
    assert sum(histogram.current) == pytest.approx(1.0)
    assert list(histogram.edges) == sorted(histogram.edges)


def test_categorical_histogram_caps_categories() -> None:
    labels = [f"c{i}" for i in range(40)]
    counts = np.arange(40, 0, -1)
    histogram = categorical_drift(labels, counts, counts[::-1]).histogram
    assert histogram.labels is not None
    assert len(histogram.labels) == 30
    assert histogram.labels[-1] == "(other)"
    assert sum(histogram.reference) == pytest.approx(1.0)
    assert sum(histogram.current) == pytest.approx(1.0)


def test_to_dict_is_json_ready() -> None:
    rng = np.random.default_rng(11)
    result = numeric_drift(rng.normal(size=300), rng.normal(size=300))
    payload = result.to_dict()
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload
    assert set(payload) >= {"drift", "kind", "test", "statistic", "p_value", "effect_size", "psi"}
    assert isinstance(result, ColumnDrift)
    changed = dataclasses.replace(result, statistic=math.nan, p_value=math.inf)
    assert changed.to_dict()["statistic"] is None
    assert changed.to_dict()["p_value"] is None


# --- Hypothesis properties ----------------------------------------------------------------

finite_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(finite_floats, min_size=1, max_size=40)
count_vectors = st.lists(st.integers(min_value=0, max_value=1000), min_size=2, max_size=8)


@settings(max_examples=150, deadline=None)
@given(reference=samples, current=samples)
def test_numeric_properties(reference: list[float], current: list[float]) -> None:
    forward = numeric_drift(np.array(reference), np.array(current))
    backward = numeric_drift(np.array(current), np.array(reference))
    assert forward.metrics["ks"] == backward.metrics["ks"]
    assert 0.0 <= forward.metrics["ks"] <= 1.0
    assert forward.p_value is not None
    assert 0.0 <= forward.p_value <= 1.0
    assert forward.metrics["wasserstein"] == pytest.approx(
        backward.metrics["wasserstein"], rel=1e-9, abs=1e-6
    )
    assert forward.metrics["wasserstein"] == pytest.approx(
        stats.wasserstein_distance(reference, current), rel=1e-9, abs=1e-6
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # SciPy's exact-to-asymptotic fallback
        expected_ks = float(stats.ks_2samp(reference, current).statistic)
    assert forward.metrics["ks"] == pytest.approx(expected_ks, abs=1e-12)
    assert 0.0 <= forward.metrics["jensenshannon"] <= 1.0
    assert 0.0 <= forward.metrics["hellinger"] <= 1.0
    assert forward.psi >= 0.0
    assert math.isfinite(forward.effect_size)
    assert forward.effect_size >= 0.0


@settings(max_examples=100, deadline=None)
@given(values=samples)
def test_identical_numeric_samples_have_zero_distance(values: list[float]) -> None:
    result = numeric_drift(np.array(values), np.array(values[::-1]))
    assert result.metrics["ks"] == 0.0
    assert result.metrics["wasserstein"] == 0.0
    assert result.psi == 0.0
    assert result.metrics["jensenshannon"] == 0.0
    assert result.metrics["hellinger"] == 0.0
    assert not result.drift


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_distance_properties_on_counts(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=2, max_value=8))
    vector = st.lists(st.integers(min_value=0, max_value=1000), min_size=size, max_size=size)
    reference = np.array(data.draw(vector.filter(lambda v: sum(v) > 0)), dtype=float)
    current = np.array(data.draw(vector.filter(lambda v: sum(v) > 0)), dtype=float)
    js = jensen_shannon_distance(reference, current)
    hellinger = hellinger_distance(reference, current)
    assert js == pytest.approx(jensen_shannon_distance(current, reference), abs=1e-12)
    assert hellinger == pytest.approx(hellinger_distance(current, reference), abs=1e-12)
    assert 0.0 <= js <= 1.0
    assert 0.0 <= hellinger <= 1.0
    assert js == pytest.approx(float(jensenshannon(reference, current, base=2)), abs=1e-7)
    assert population_stability_index(reference, current) >= 0.0
    assert jensen_shannon_distance(reference, 3 * reference) == pytest.approx(0.0, abs=1e-7)
    assert hellinger_distance(reference, 3 * reference) == pytest.approx(0.0, abs=1e-7)
    assert population_stability_index(reference, 3 * reference) == pytest.approx(0.0, abs=1e-12)
    labels = [f"c{i}" for i in range(size)]
    result = categorical_drift(labels, reference, current)
    assert result.p_value is not None
    assert 0.0 <= result.p_value <= 1.0
    assert 0.0 <= result.metrics["unseen_share"] <= 1.0


def test_overwrite_input_sorts_in_place_and_gives_the_same_result() -> None:
    rng = np.random.default_rng(5)
    reference, current = rng.normal(size=3000), rng.normal(0.2, 1.0, 3000)
    expected = numeric_drift(reference.copy(), current.copy())
    owned_reference, owned_current = reference.copy(), current.copy()
    result = numeric_drift(owned_reference, owned_current, overwrite_input=True)
    assert result.to_dict() == expected.to_dict()
    assert np.all(np.diff(owned_reference) >= 0)
    untouched = reference.copy()
    numeric_drift(untouched, current.copy())
    np.testing.assert_array_equal(untouched, reference)
