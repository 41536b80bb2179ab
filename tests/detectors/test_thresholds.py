"""Static and dynamic threshold detectors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper.detectors import DynamicThreshold, StaticThreshold
from watchkeeper.errors import ConfigError


def flags(detector: StaticThreshold | DynamicThreshold, stream: list[float]) -> list[str]:
    out = []
    for value in stream:
        detector.update(value)
        out.append("D" if detector.drift_detected else "W" if detector.warning_detected else ".")
    return out


def test_static_above_with_warning() -> None:
    detector = StaticThreshold(bound=10.0, warning_bound=8.0)
    assert flags(detector, [7.0, 8.5, 10.0, 10.5, 3.0]) == [".", "W", "W", "D", "."]


def test_static_below() -> None:
    detector = StaticThreshold(bound=0.9, direction="below", warning_bound=0.95)
    assert flags(detector, [0.99, 0.93, 0.85, 0.97]) == [".", "W", "D", "."]


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"bound": 1.0, "warning_bound": 2.0}, "warning_bound"),
        ({"bound": 1.0, "direction": "below", "warning_bound": 0.5}, "warning_bound"),
        ({"bound": math.inf}, "bound"),
        ({"bound": 1.0, "direction": "up"}, "direction"),
    ],
)
def test_static_parameters_are_validated(params: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        StaticThreshold(**params)  # type: ignore[arg-type]
    assert raised.value.key == key


def test_dynamic_excludes_the_current_point_and_waits_for_min_periods() -> None:
    detector = DynamicThreshold(window=4, k=2.0)
    # The first four values build the band 10 ± 2·sd(9, 11, 9, 11) = 10 ± 2.31, so 12 passes;
    # then (11, 9, 11, 12) give 10.75 ± 2.52, so 13.5 alarms.
    assert flags(detector, [9.0, 11.0, 9.0, 11.0, 12.0, 13.5]) == [".", ".", ".", ".", ".", "D"]
    assert detector.band is not None


def test_dynamic_direction_limits_the_side() -> None:
    stream = [0.0, 1.0] * 10
    assert flags(DynamicThreshold(window=10, direction="above"), [*stream, -50.0])[-1] == "."
    assert flags(DynamicThreshold(window=10, direction="below"), [*stream, -50.0])[-1] == "D"
    assert flags(DynamicThreshold(window=10, direction="below"), [*stream, 50.0])[-1] == "."


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"window": 1}, "window"),
        ({"k": 0.0}, "k"),
        ({"k": 2.0, "warning_k": 3.0}, "warning_k"),
        ({"window": 10, "min_periods": 20}, "min_periods"),
        ({"direction": "up"}, "direction"),
    ],
)
def test_dynamic_parameters_are_validated(params: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        DynamicThreshold(**params)  # type: ignore[arg-type]
    assert raised.value.key == key


@settings(max_examples=60, deadline=None)
@given(
    window=st.integers(min_value=2, max_value=40),
    offset=st.sampled_from([0.0, 1e6, -3e8]),
    scale=st.floats(min_value=1e-3, max_value=1e3),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_dynamic_band_matches_numpy_on_the_trailing_window(
    window: int, offset: float, scale: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    stream = offset + scale * rng.standard_t(3, size=5 * window + 7)
    detector = DynamicThreshold(window=window, k=2.5, min_periods=2)
    for index, value in enumerate(stream):
        history = stream[max(0, index - window) : index]
        band = detector.band
        if history.size < 2:
            assert band is None
        else:
            mean, sd = history.mean(), history.std(ddof=1)
            assert band is not None
            tolerance = 1e-7 * (abs(offset) + scale)
            assert band[0] == pytest.approx(mean - 2.5 * sd, abs=tolerance)
            assert band[1] == pytest.approx(mean + 2.5 * sd, abs=tolerance)
            expected = abs(value - mean) > 2.5 * sd
            if abs(abs(value - mean) - 2.5 * sd) > tolerance:
                detector.update(float(value))
                assert detector.drift_detected == bool(expected)
                continue
        detector.update(float(value))
