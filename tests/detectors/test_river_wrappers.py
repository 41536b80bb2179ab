"""The River wrappers raise exactly River's drift (and warning) flags on the same streams."""

from __future__ import annotations

import random
from typing import Any

import pytest
from river import drift as river_drift
from river.drift import binary as river_binary

from watchkeeper.detectors import (
    ADWIN,
    DDM,
    EDDM,
    HDDMA,
    HDDMW,
    KSWIN,
    Detector,
    DetectorSpec,
    PageHinkley,
)
from watchkeeper.errors import ConfigError, InputError

# River's constructors are untyped; Any keeps the comparisons free of per-call ignores.
drift: Any = river_drift
binary: Any = river_binary


def numeric_stream(seed: int) -> list[float]:
    rng = random.Random(seed)
    return (
        [rng.gauss(0.0, 1.0) for _ in range(1500)]
        + [rng.gauss(0.8, 1.0) for _ in range(1000)]
        + [rng.gauss(0.8, 3.0) for _ in range(1000)]
    )


def binary_stream(seed: int) -> list[float]:
    rng = random.Random(seed)
    rates = [0.2] * 1500 + [0.35] * 1000 + [0.1] * 1000
    return [float(rng.random() < rate) for rate in rates]


def flags(detector: Any, stream: list[float]) -> tuple[list[int], list[int]]:
    drifts, warnings = [], []
    for index, value in enumerate(stream):
        detector.update(value)
        if detector.drift_detected:
            drifts.append(index)
        if getattr(detector, "warning_detected", False):
            warnings.append(index)
    return drifts, warnings


# (our detector, River's detector) with identical parameters; defaults first.
PAIRS: list[tuple[str, Any, Any]] = [
    ("adwin-default", lambda: ADWIN(), lambda: drift.ADWIN()),
    ("adwin-tuned", lambda: ADWIN(delta=0.05, clock=4), lambda: drift.ADWIN(delta=0.05, clock=4)),
    ("kswin", lambda: KSWIN(seed=7), lambda: drift.KSWIN(seed=7)),
    ("kswin-tuned", lambda: KSWIN(alpha=0.001, seed=1), lambda: drift.KSWIN(alpha=0.001, seed=1)),
    (
        "page-hinkley-river-defaults",
        lambda: PageHinkley(warmup=0, threshold=50.0),
        lambda: drift.PageHinkley(),
    ),
    (
        "page-hinkley-up",
        lambda: PageHinkley(warmup=0, threshold=20.0, mode="up", delta=0.01),
        lambda: drift.PageHinkley(threshold=20.0, mode="up", delta=0.01),
    ),
]
BINARY_PAIRS: list[tuple[str, Any, Any]] = [
    ("ddm", lambda: DDM(), lambda: binary.DDM()),
    (
        "ddm-tuned",
        lambda: DDM(warm_start=100, drift_threshold=2.5),
        lambda: binary.DDM(warm_start=100, drift_threshold=2.5),
    ),
    ("eddm", lambda: EDDM(), lambda: binary.EDDM()),
    ("hddm-a", lambda: HDDMA(), lambda: binary.HDDMA()),
    (
        "hddm-a-two-sided",
        lambda: HDDMA(two_sided_test=True),
        lambda: binary.HDDMA(two_sided_test=True),
    ),
    ("hddm-w", lambda: HDDMW(), lambda: binary.HDDMW()),
    (
        "hddm-w-two-sided",
        lambda: HDDMW(two_sided_test=True, lambda_val=0.1),
        lambda: binary.HDDMW(two_sided_test=True, lambda_val=0.1),
    ),
]


@pytest.mark.parametrize(("name", "ours", "theirs"), PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize("seed", [1, 2])
def test_numeric_wrappers_match_river_exactly(name: str, ours: Any, theirs: Any, seed: int) -> None:
    stream = numeric_stream(seed)
    our_flags = flags(ours(), stream)
    assert our_flags == flags(theirs(), stream)
    assert our_flags[0], f"{name} raised no drift, so the comparison proves nothing"


@pytest.mark.parametrize(("name", "ours", "theirs"), BINARY_PAIRS, ids=[p[0] for p in BINARY_PAIRS])
@pytest.mark.parametrize("seed", [1, 2])
def test_binary_wrappers_match_river_exactly(name: str, ours: Any, theirs: Any, seed: int) -> None:
    stream = binary_stream(seed)
    our_flags = flags(ours(), stream)
    assert our_flags == flags(theirs(), stream)
    assert our_flags[0], f"{name} raised no drift, so the comparison proves nothing"


def test_page_hinkley_defaults_are_standardised_and_scale_free() -> None:
    rng = random.Random(4)
    z = [rng.gauss(0.0, 1.0) for _ in range(20_000)]
    scaled = [1000.0 + 50.0 * value for value in z]
    ours, ours_scaled = PageHinkley(), PageHinkley()
    assert flags(ours, z)[0] == flags(ours_scaled, scaled)[0]
    # River at its defaults on the scaled stream alarms again and again (threshold 50 is in
    # the signal's own units); the calibrated default (target ARL 10,000) stays quiet.
    assert len(flags(drift.PageHinkley(), scaled)[0]) > 50
    assert len(flags(PageHinkley(), scaled)[0]) <= 3


def test_page_hinkley_calibrated_threshold_needs_a_standardised_stream() -> None:
    with pytest.raises(ConfigError) as raised:
        PageHinkley(warmup=0)
    assert raised.value.key == "threshold"
    with pytest.raises(ConfigError) as raised:
        PageHinkley(threshold=30.0, target_arl=1000.0)
    assert raised.value.key == "target_arl"


def test_page_hinkley_standardises_with_a_known_baseline() -> None:
    rng = random.Random(9)
    stream = [rng.gauss(200.0, 10.0) for _ in range(1500)]
    stream += [rng.gauss(215.0, 10.0) for _ in range(500)]
    known = PageHinkley(warmup=0, mean=200.0, sd=10.0, threshold=40.0)
    river_detector = drift.PageHinkley(threshold=40.0)
    our_flags = flags(known, stream)
    assert our_flags == flags(river_detector, [(x - 200.0) / 10.0 for x in stream])
    assert our_flags[0]


@pytest.mark.parametrize(
    ("kind", "params", "key"),
    [
        ("adwin", {"delta": 1.5}, "delta"),
        ("adwin", {"clock": 0}, "clock"),
        ("kswin", {"window_size": 40, "stat_size": 30}, "window_size"),
        ("kswin", {"alpha": 0.0}, "alpha"),
        ("ddm", {"warning_threshold": 3.0, "drift_threshold": 2.0}, "drift_threshold"),
        ("eddm", {"alpha": 0.8, "beta": 0.9}, "beta"),
        ("hddm_a", {"two_sided_test": 1}, "two_sided_test"),
        ("hddm_w", {"lambda_val": 0.0}, "lambda_val"),
        ("page_hinkley", {"mode": "sideways"}, "mode"),
        ("page_hinkley", {"warmup": 1}, "warmup"),
    ],
)
def test_bad_parameters_raise_config_error_naming_them(
    kind: str, params: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        DetectorSpec(kind=kind, params=params).build()
    assert raised.value.key == key


@pytest.mark.parametrize("detector", [DDM(), EDDM(), HDDMA(), HDDMW()], ids=repr)
def test_binary_detectors_reject_values_other_than_zero_and_one(detector: Detector) -> None:
    detector.update(True)
    detector.update(0)
    with pytest.raises(InputError, match="feed 0 or 1"):
        detector.update(0.5)
    assert detector.n_seen == 2
