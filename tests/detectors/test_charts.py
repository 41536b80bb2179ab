"""CUSUM and EWMA charts: recursions, warm-up, detection delay and false-alarm run length."""

from __future__ import annotations

import random
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper.detectors import CUSUM, EWMA, Detector, calibrate_cusum, calibrate_ewma
from watchkeeper.errors import ConfigError


def alarms(detector: Detector, stream: list[float]) -> list[int]:
    found = []
    for index, value in enumerate(stream):
        detector.update(value)
        if detector.drift_detected:
            found.append(index)
    return found


def reference_cusum(z: np.ndarray, k: float, h: float) -> list[int]:
    """Textbook two-sided tabular CUSUM (Page 1954; Montgomery §9.1), restarting after alarms."""
    upper = lower = 0.0
    found = []
    for index, value in enumerate(z):
        upper = max(0.0, upper + value - k)
        lower = max(0.0, lower - value - k)
        if upper > h or lower > h:
            found.append(index)
            upper = lower = 0.0
    return found


def reference_ewma(z: np.ndarray, smoothing: float, width: float) -> list[int]:
    """Textbook EWMA chart with asymptotic limits (Roberts 1959), restarting after alarms."""
    limit = width * np.sqrt(smoothing / (2 - smoothing))
    smoothed = 0.0
    found = []
    for index, value in enumerate(z):
        smoothed = (1 - smoothing) * smoothed + smoothing * value
        if abs(smoothed) > limit:
            found.append(index)
            smoothed = 0.0
    return found


def test_cusum_matches_the_textbook_recursion_after_warmup() -> None:
    rng = np.random.default_rng(1)
    stream = np.concatenate([rng.normal(10.0, 2.0, 3000), rng.normal(11.0, 2.0, 1000)])
    warm = stream[:200]
    z = (stream[200:] - warm.mean()) / warm.std(ddof=1)
    cusum = CUSUM(warmup=200, threshold=4.0, drift_k=0.5)
    found = alarms(cusum, stream.tolist())
    expected = [index + 200 for index in reference_cusum(z, 0.5, 4.0)]
    assert found == expected
    assert len(found) > 5
    assert cusum.baseline == pytest.approx((warm.mean(), warm.std(ddof=1)), rel=1e-12)


def test_ewma_matches_the_textbook_recursion_after_warmup() -> None:
    rng = np.random.default_rng(2)
    stream = np.concatenate([rng.normal(-3.0, 0.5, 3000), rng.normal(-2.6, 0.5, 1000)])
    warm = stream[:300]
    z = (stream[300:] - warm.mean()) / warm.std(ddof=1)
    ewma = EWMA(warmup=300, limit_width=2.7, smoothing=0.2)
    found = alarms(ewma, stream.tolist())
    assert found == [index + 300 for index in reference_ewma(z, 0.2, 2.7)]
    assert len(found) > 5


@pytest.mark.parametrize("detector_class", [CUSUM, EWMA])
def test_no_alarm_during_warmup(detector_class: type[CUSUM] | type[EWMA]) -> None:
    detector = detector_class(warmup=100)
    stream = [0.0] * 50 + [1e6] * 49
    assert alarms(detector, stream) == []
    assert detector.baseline is None
    detector.update(1e6)
    assert detector.baseline is not None
    assert not detector.drift_detected


def test_constant_warmup_makes_any_deviation_alarm() -> None:
    cusum = CUSUM(warmup=10)
    assert alarms(cusum, [5.0] * 30 + [5.001]) == [30]


def test_known_baseline_skips_the_warmup() -> None:
    cusum = CUSUM(mean=100.0, sd=5.0, warmup=0, threshold=4.0)
    # z = 2 each time: S+ = 1.5, 3.0, 4.5, so the third shifted value crosses h = 4.
    assert alarms(cusum, [100.0, 110.0, 110.0, 110.0]) == [3]


def test_relearn_follows_a_new_level() -> None:
    rng = random.Random(3)
    stream = [rng.gauss(0.0, 1.0) for _ in range(1000)] + [rng.gauss(5.0, 1.0) for _ in range(3000)]
    sticky = alarms(CUSUM(warmup=200), stream)
    relearning = alarms(CUSUM(warmup=200, relearn=True), stream)
    assert len(sticky) > 500  # a persistent shift keeps alarming against the old baseline
    assert 1 <= len(relearning) <= 3  # one alarm, then the new level becomes the baseline
    assert relearning[0] == sticky[0]


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"threshold": 4.0, "target_arl": 100.0}, "target_arl"),
        ({"threshold": -1.0}, "threshold"),
        ({"drift_k": -0.1}, "drift_k"),
        ({"warmup": 1}, "warmup"),
        ({"warmup": 0}, "warmup"),
        ({"mean": 1.0}, "sd"),
        ({"mean": 1.0, "sd": 0.0, "warmup": 0}, "sd"),
        ({"mean": 1.0, "sd": 2.0, "warmup": 0, "relearn": True}, "warmup"),
        ({"direction": "left"}, "direction"),
        ({"target_arl": 1.0}, "target_arl"),
        ({"warmup": 10.0}, "warmup"),
        ({"relearn": "yes"}, "relearn"),
    ],
)
def test_cusum_parameters_are_validated(params: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        CUSUM(**params)  # type: ignore[arg-type]
    assert raised.value.key == key


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"limit_width": 3.0, "target_arl": 100.0}, "target_arl"),
        ({"smoothing": 0.0}, "smoothing"),
        ({"smoothing": 1.5}, "smoothing"),
        ({"limit_width": 0.0}, "limit_width"),
    ],
)
def test_ewma_parameters_are_validated(params: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        EWMA(**params)  # type: ignore[arg-type]
    assert raised.value.key == key


def test_resolved_thresholds_follow_the_calibration() -> None:
    assert CUSUM().resolved_threshold == calibrate_cusum(10_000.0)
    assert CUSUM(target_arl=500.0, direction="up").resolved_threshold == calibrate_cusum(
        500.0, direction="up"
    )
    assert CUSUM(threshold=3.0).resolved_threshold == 3.0
    assert EWMA(smoothing=0.05).resolved_limit_width == calibrate_ewma(10_000.0, smoothing=0.05)


@pytest.mark.parametrize(
    ("detector_class", "max_mean_delay"),
    # Siegmund's ARL1 for a 1-sd shift at h = 8.05, k = 0.5 is 16.4; Lucas & Saccucci's tables
    # give ≈ 14 for λ = 0.1 at ARL0 10,000. The bounds leave room for sampling variation.
    [(CUSUM, 22.0), (EWMA, 22.0)],
)
def test_detects_a_one_sd_shift_within_a_bounded_delay(
    detector_class: type[CUSUM] | type[EWMA], max_mean_delay: float
) -> None:
    delays = []
    for seed in range(40):
        rng = random.Random(seed)
        detector = detector_class(mean=0.0, sd=1.0, warmup=0)
        stream = [rng.gauss(1.0, 1.0) for _ in range(200)]
        delays.append(alarms(detector, stream)[0] + 1)
    assert 8.0 <= statistics.mean(delays) <= max_mean_delay
    assert max(delays) <= 100


@pytest.mark.parametrize("detector_class", [CUSUM, EWMA])
def test_run_length_with_known_baseline_is_near_the_target(
    detector_class: type[CUSUM] | type[EWMA],
) -> None:
    # With a known baseline the chart restarts from zero after each alarm, so run lengths are
    # i.i.d. and 400,000 points give ≈ 800 of them: the relative standard error of their mean is
    # ≈ 1/sqrt(800) = 3.5%. ±15% covers four standard errors plus the ≈ 2% error of the
    # closed-form approximations.
    target = 500.0
    rng = np.random.default_rng(12)
    detector = detector_class(mean=0.0, sd=1.0, warmup=0, target_arl=target)
    stream = rng.standard_normal(400_000).tolist()
    found = alarms(detector, stream)
    mean_run_length = len(stream) / len(found)
    assert 0.85 * target <= mean_run_length <= 1.15 * target


@pytest.mark.parametrize("detector_class", [CUSUM, EWMA])
def test_false_alarm_run_length_is_scale_free_and_near_the_target(
    detector_class: type[CUSUM] | type[EWMA],
) -> None:
    # Each stream warms up on its own 500 points, so the estimated baseline varies. Estimating
    # mean and sd shortens the run length: simulation of 1,000 warm-ups gives ≈ 0.86 × target
    # at warmup = 500. With 300 streams the mean run length has ≈ 7% standard error, so the
    # window 0.6–1.2 × target is about ±4 standard errors around 0.86.
    target = 400.0
    horizon = 4000
    run_lengths: list[int] = []
    scaled_run_lengths: list[int] = []
    for seed in range(300):
        z = np.random.default_rng(seed).standard_normal(500 + horizon)
        for values, sink in ((z, run_lengths), (1000.0 + 50.0 * z, scaled_run_lengths)):
            found = alarms(detector_class(warmup=500, target_arl=target), values.tolist())
            sink.append(found[0] - 499 if found else horizon)
    assert run_lengths == scaled_run_lengths
    assert 0.6 * target <= statistics.mean(run_lengths) <= 1.2 * target


@settings(max_examples=40, deadline=None)
@given(
    scale=st.floats(min_value=1e-3, max_value=1e4),
    shift=st.floats(min_value=-1e6, max_value=1e6),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_alarms_do_not_depend_on_the_units_of_the_signal(
    scale: float, shift: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    z = np.concatenate([rng.standard_normal(300), rng.normal(1.5, 1.0, 100)])
    expected = alarms(CUSUM(warmup=100, target_arl=200.0), z.tolist())
    assert alarms(CUSUM(warmup=100, target_arl=200.0), (shift + scale * z).tolist()) == expected
