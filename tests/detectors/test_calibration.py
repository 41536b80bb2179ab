"""Calibration to a target in-control ARL: closed forms against tables and simulation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from river import drift

from watchkeeper.detectors import (
    calibrate_cusum,
    calibrate_ewma,
    calibrate_page_hinkley,
    cusum_arl,
    ewma_arl,
    simulated_arl,
)
from watchkeeper.errors import ConfigError, InputError


@pytest.mark.parametrize(
    ("threshold", "published"),
    # Two-sided tabular CUSUM, k = 0.5 (Montgomery, Introduction to SQC, 6th ed., Table 9.3).
    [(4.0, 168.0), (5.0, 465.0)],
)
def test_siegmund_matches_published_cusum_arls(threshold: float, published: float) -> None:
    assert cusum_arl(threshold, drift_k=0.5) == pytest.approx(published, rel=0.02)


def test_siegmund_one_sided_is_twice_the_two_sided() -> None:
    assert cusum_arl(4.0, direction="up") == pytest.approx(2 * cusum_arl(4.0))
    assert cusum_arl(4.0, direction="down") == cusum_arl(4.0, direction="up")


@pytest.mark.parametrize(
    ("smoothing", "limit_width"),
    # Pairs (λ, L) with in-control ARL 500 (Lucas & Saccucci 1990; Montgomery Table 9.11).
    [(0.05, 2.615), (0.1, 2.814), (0.2, 2.962), (0.4, 3.054)],
)
def test_markov_chain_matches_published_ewma_arls(smoothing: float, limit_width: float) -> None:
    assert ewma_arl(limit_width, smoothing=smoothing) == pytest.approx(500.0, rel=0.02)


@pytest.mark.parametrize("target", [100.0, 370.0, 10_000.0, 1e6])
@pytest.mark.parametrize("direction", ["both", "up"])
def test_calibration_inverts_the_closed_forms(target: float, direction: str) -> None:
    threshold = calibrate_cusum(target, drift_k=0.25, direction=direction)
    assert cusum_arl(threshold, drift_k=0.25, direction=direction) == pytest.approx(target)
    width = calibrate_ewma(target, smoothing=0.2, direction=direction)
    assert ewma_arl(width, smoothing=0.2, direction=direction) == pytest.approx(target)


def test_larger_targets_need_higher_thresholds() -> None:
    thresholds = [calibrate_cusum(target) for target in (100.0, 1000.0, 10_000.0)]
    assert thresholds == sorted(thresholds)
    widths = [calibrate_ewma(target) for target in (100.0, 1000.0, 10_000.0)]
    assert widths == sorted(widths)


@pytest.mark.parametrize(
    ("statistic", "calibrate", "direction"),
    [
        ("cusum", calibrate_cusum, "both"),
        ("cusum", calibrate_cusum, "up"),
        ("ewma", calibrate_ewma, "both"),
        ("ewma", calibrate_ewma, "down"),
    ],
)
def test_simulation_confirms_the_closed_forms(
    statistic: str, calibrate: object, direction: str
) -> None:
    # 1,500 paths: the mean run length has ≈ 2.6% relative standard error; ±10% allows for
    # that and for the ≈ 2% error of the approximations.
    target = 2000.0
    threshold = calibrate(target, direction=direction)  # type: ignore[operator]
    simulated = simulated_arl(
        statistic, threshold, direction=direction, paths=1500, horizon=8000, seed=1
    )
    assert simulated == pytest.approx(target, rel=0.10)


def test_page_hinkley_calibration_holds_for_rivers_own_detector() -> None:
    # River's Page-Hinkley restarts after each drift, so run lengths on one long N(0,1) stream
    # are i.i.d.; 300,000 points give ≈ 600 of them (≈ 4% standard error), hence ±15%.
    target = 500.0
    threshold = calibrate_page_hinkley(target, seed=3)
    detector: Any = drift.PageHinkley(threshold=threshold)
    stream = np.random.default_rng(8).standard_normal(300_000).tolist()
    count = 0
    for value in stream:
        detector.update(value)
        count += detector.drift_detected
    assert len(stream) / count == pytest.approx(target, rel=0.15)


def test_page_hinkley_calibration_is_seeded_and_reproducible() -> None:
    assert calibrate_page_hinkley(300.0, seed=1) == calibrate_page_hinkley(300.0, seed=1)
    assert calibrate_page_hinkley(300.0, seed=1) != calibrate_page_hinkley(300.0, seed=2)


def test_bootstrap_calibration_on_normal_reference_agrees_with_siegmund() -> None:
    reference = np.random.default_rng(0).standard_normal(5000).tolist()
    bootstrap = calibrate_cusum(1000.0, reference=reference, seed=4)
    assert bootstrap == pytest.approx(calibrate_cusum(1000.0), abs=0.4)


def test_bootstrap_calibration_adapts_to_a_skewed_reference() -> None:
    # Right-skewed data push the upper CUSUM up more often than normal data of the same sd,
    # so hitting the same ARL takes a higher threshold; the simulated ARL then meets it.
    reference = np.random.default_rng(0).exponential(1.0, 5000).tolist()
    skewed = calibrate_cusum(1000.0, direction="up", reference=reference, seed=4)
    assert skewed > calibrate_cusum(1000.0, direction="up") + 0.5
    check = simulated_arl(
        "cusum", skewed, direction="up", reference=reference, paths=1500, horizon=5000, seed=9
    )
    assert check == pytest.approx(1000.0, rel=0.10)


def test_invalid_calibration_requests_are_config_errors() -> None:
    with pytest.raises(ConfigError) as raised:
        calibrate_cusum(1.0)
    assert raised.value.key == "target_arl"
    with pytest.raises(ConfigError) as raised:
        calibrate_ewma(500.0, smoothing=0.0)
    assert raised.value.key == "smoothing"
    with pytest.raises(ConfigError) as raised:
        calibrate_page_hinkley(500.0, mode="sideways")
    assert raised.value.key == "mode"
    with pytest.raises(ConfigError) as raised:
        simulated_arl("adwin", 1.0)
    assert raised.value.key == "statistic"


def test_unusable_references_are_input_errors() -> None:
    with pytest.raises(InputError, match="constant"):
        calibrate_cusum(500.0, reference=[3.0] * 50)
    with pytest.raises(InputError, match="at least 10"):
        calibrate_ewma(500.0, reference=[1.0, 2.0])
