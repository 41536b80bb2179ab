"""Drift from profiles: agreement with the batch core and calibration by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from watchkeeper.errors import ConfigError, DriftError, SchemaError
from watchkeeper.profiles import (
    BooleanProfile,
    CategoricalProfile,
    DatasetProfile,
    NumericProfile,
    drift_from_profiles,
    profile_frame,
)
from watchkeeper.profiles.drift import profile_categorical_drift, profile_numeric_drift
from watchkeeper.schema import infer_schema
from watchkeeper.stats.drift import DriftConfig, DriftTest, categorical_drift, numeric_drift


def numeric_pair(
    reference: np.ndarray, current: np.ndarray
) -> tuple[NumericProfile, NumericProfile]:
    profile = NumericProfile.of(reference)
    return profile, NumericProfile.of(current, edges=profile.edges)


@pytest.mark.parametrize(
    ("rows", "shift", "distribution"),
    [
        (1000, 0.0, "normal"),
        (1000, 0.5, "normal"),
        (20_000, 0.1, "normal"),
        (20_000, 0.0, "lognormal"),
        (20_000, 0.3, "lognormal"),
        (5000, 0.2, "uniform"),
    ],
)
def test_binned_statistics_close_to_exact_batch_values(
    rows: int, shift: float, distribution: str
) -> None:
    rng = np.random.default_rng(rows + int(shift * 10))
    draw = getattr(rng, distribution)
    reference, current = draw(size=rows), draw(size=rows) + shift
    exact = numeric_drift(reference, current)
    binned = profile_numeric_drift(*numeric_pair(reference, current))
    # Binned KS looks only at bin boundaries: never above the exact D, at most one fine
    # bin's share (about 1/100 of a sample) below it.
    assert binned.metrics["ks"] <= exact.metrics["ks"] + 1e-12
    assert binned.metrics["ks"] >= exact.metrics["ks"] - 0.015
    assert binned.metrics["ks_p_value"] >= exact.metrics["ks_p_value"] - 1e-12
    # Wasserstein with CDFs linear inside fine bins: within 10 % or 0.01 reference sd.
    assert binned.metrics["wasserstein_norm"] == pytest.approx(
        exact.metrics["wasserstein_norm"], rel=0.1, abs=0.01
    )
    assert binned.metrics["wasserstein_scale"] == pytest.approx(
        exact.metrics["wasserstein_scale"], rel=1e-9
    )
    # PSI / JS / Hellinger on grouped fine bins versus exact reference deciles.
    for name, tolerance in (("psi", 0.01), ("jensenshannon", 0.01), ("hellinger", 0.01)):
        assert binned.metrics[name] == pytest.approx(exact.metrics[name], abs=tolerance), name
    assert binned.drift == exact.drift
    assert set(binned.to_dict()) == set(exact.to_dict())


def test_categorical_and_boolean_equal_batch_results() -> None:
    rng = np.random.default_rng(7)
    reference = rng.choice(list("abcde"), size=1000)
    current = rng.choice(list("abcdef"), size=1000, p=[0.3, 0.25, 0.2, 0.15, 0.05, 0.05])
    result = profile_categorical_drift(
        CategoricalProfile.of(reference), CategoricalProfile.of(current)
    )
    labels = ["a", "b", "c", "d", "e", "f"]
    expected = categorical_drift(
        labels,
        [int((reference == label).sum()) for label in labels],
        [int((current == label).sum()) for label in labels],
    )
    assert result.metrics == pytest.approx(dict(expected.metrics))
    assert (result.drift, result.p_value) == (expected.drift, expected.p_value)
    flags = profile_categorical_drift(
        BooleanProfile.of(rng.random(1000) < 0.3), BooleanProfile.of(rng.random(1000) < 0.5)
    )
    assert (flags.kind, flags.test, flags.drift) == ("boolean", "z", True)


def test_capped_labels_compare_as_other() -> None:
    reference = CategoricalProfile.of(np.repeat(list("abcdef"), 100), max_labels=3)
    current = CategoricalProfile.of(np.repeat(list("abcdef"), 100), max_labels=3)
    result = profile_categorical_drift(reference, current)
    assert result.histogram.labels is not None
    assert "__other__" in result.histogram.labels
    assert not result.drift


def false_alarm_rates(rows: int, trials: int, seed: int) -> tuple[float, float]:
    """Alarm rates of the default policy and of the binned KS p-value alone."""
    rng = np.random.default_rng(seed)
    ks_only = DriftConfig(effect_threshold=0.0)
    default_alarms = ks_alarms = 0
    for _ in range(trials):
        reference, current = numeric_pair(rng.normal(size=rows), rng.normal(size=rows))
        default_alarms += profile_numeric_drift(reference, current).drift
        ks_alarms += profile_numeric_drift(reference, current, ks_only).drift
    return default_alarms / trials, ks_alarms / trials


@pytest.mark.parametrize(("rows", "trials"), [(1000, 500), (100_000, 120)])
def test_false_alarm_rate_at_most_six_percent(rows: int, trials: int) -> None:
    default_rate, ks_rate = false_alarm_rates(rows, trials, seed=rows)
    assert default_rate <= 0.06
    # The binned KS p-value alone (no effect floor) is conservative as well.
    assert ks_rate <= 0.06


def test_half_sd_shift_detected_at_1000_rows() -> None:
    rng = np.random.default_rng(11)
    detected = 0
    trials = 300
    for _ in range(trials):
        reference, current = numeric_pair(rng.normal(size=1000), rng.normal(0.5, 1.0, 1000))
        detected += profile_numeric_drift(reference, current).drift
    assert detected / trials >= 0.99


def test_tiny_shift_in_a_million_rows_is_not_drift() -> None:
    rng = np.random.default_rng(12)
    reference, current = numeric_pair(rng.normal(size=1_000_000), rng.normal(0.02, 1.0, 1_000_000))
    result = profile_numeric_drift(reference, current)
    assert result.p_value is not None
    assert result.p_value < 0.05
    assert result.effect_size == pytest.approx(0.02, abs=0.005)
    assert not result.drift


def test_drift_from_profiles_covers_every_kind_and_config() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=3000),
            "c": rng.choice(list("abc"), 3000),
            "b": rng.random(3000) < 0.5,
        }
    )
    schema = infer_schema(frame)
    reference = profile_frame(frame, schema)
    shifted = frame.assign(x=frame["x"] + 1.0)
    window = profile_frame(shifted, schema, reference=reference)
    results = drift_from_profiles(
        reference, window, configs={"c": DriftConfig(test=DriftTest.PSI, threshold=0.2)}
    )
    assert set(results) == {"x", "c", "b"}
    assert results["x"].drift
    assert not results["c"].drift
    assert not results["b"].drift
    assert results["c"].test == "psi"
    assert results["c"].p_value is None
    by_distance = drift_from_profiles(
        reference, window, configs={"x": DriftConfig(test=DriftTest.WASSERSTEIN)}
    )
    assert by_distance["x"].test == "wasserstein"
    assert by_distance["x"].statistic > 0.9
    with pytest.raises(ConfigError, match="does not apply to categorical"):
        drift_from_profiles(reference, window, default=DriftConfig(test=DriftTest.WASSERSTEIN))


def test_drift_from_profiles_errors() -> None:
    rng = np.random.default_rng(6)
    reference = DatasetProfile(rows=100, columns={"x": NumericProfile.of(rng.normal(size=100))})
    foreign = DatasetProfile(rows=100, columns={"x": NumericProfile.of(rng.normal(size=100))})
    with pytest.raises(DriftError, match="different fine bin edges"):
        drift_from_profiles(reference, foreign)
    with pytest.raises(ConfigError, match="not profiled"):
        drift_from_profiles(reference, reference, configs={"nope": DriftConfig()})
    with pytest.raises(ConfigError, match="raw values"):
        drift_from_profiles(
            reference, reference, default=DriftConfig(test=DriftTest.ANDERSON_DARLING)
        )
    with pytest.raises(SchemaError, match="not in the current"):
        drift_from_profiles(reference, DatasetProfile(rows=0, columns={}))
    empty = DatasetProfile(rows=1, columns={"x": NumericProfile.of(np.array([np.nan]))})
    assert drift_from_profiles(reference, empty) == {}


def test_reference_outlier_does_not_inflate_wasserstein(rainfall: pd.DataFrame) -> None:
    # The rainfall reference holds two sea-level-pressure readings of 94 among values below
    # 0.7, so the top reference-quantile bin spans [0.39, 94]. Spreading the current values of
    # that bin evenly over it once gave W/std = 17 where the exact value is 0.45.
    column = "sea_level_pressure"
    reference = rainfall[column].to_numpy()[:6000]
    current = rainfall[column].to_numpy()[12000:15000]
    exact = numeric_drift(reference, current)
    reference_profile = NumericProfile.of(reference)
    current_profile = NumericProfile.of(current, edges=reference_profile.edges)
    from_profiles = profile_numeric_drift(reference_profile, current_profile)
    assert from_profiles.effect_size == pytest.approx(exact.effect_size, abs=0.03)
    assert from_profiles.drift == exact.drift
