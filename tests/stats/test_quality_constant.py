"""The ``constant`` check: calibrated like the rate checks, in batch and live."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from watchkeeper.frame import numeric_values
from watchkeeper.profiles import quality_summary
from watchkeeper.profiles.dataset import profile_frame
from watchkeeper.schema import ColumnKind, Schema, infer_schema
from watchkeeper.stats._quality_tests import ValueMasses, constant_p_value
from watchkeeper.stats.quality import categorical_column_quality, numeric_column_quality


def test_constant_p_value_is_the_hypergeometric_chance_of_one_label() -> None:
    reference = {"a": 70, "b": 25, "c": 5}
    for label, count in (("a", 12), ("b", 3), ("z", 4)):
        pooled = dict(reference)
        pooled[label] = pooled.get(label, 0) + count
        total = sum(pooled.values())
        expected = sum(
            stats.hypergeom.pmf(count, total, size, count)
            for size in pooled.values()
            if size <= pooled[label]
        )
        assert constant_p_value(reference, label, count) == pytest.approx(expected, rel=1e-9)
    # Stuck on the rare label: the common one's chance does not count.
    assert constant_p_value(reference, "c", 3) == pytest.approx(
        stats.hypergeom.pmf(3, 103, 8, 3) + 0.0, rel=1e-9
    )
    assert constant_p_value(reference, "a", 1) == 1.0


def verdict(reference: np.ndarray, current: np.ndarray) -> str:
    ref_counts = pd.Series(reference).value_counts()
    cur_counts = pd.Series(current).value_counts()
    checks = categorical_column_quality(
        ref_counts,
        cur_counts,
        reference_rows=len(reference),
        current_rows=len(current),
        reference_missing=0,
        current_missing=0,
    )
    return str(checks["constant"].verdict.value)


@pytest.mark.parametrize("size", [10, 30, 100])
def test_small_windows_of_a_dominated_label_do_not_cry_wolf(size: int) -> None:
    rng = np.random.default_rng(size)
    labels = np.array(["yes", "no"])
    fails = 0
    runs = 1000
    for _ in range(runs):
        reference = rng.choice(labels, size=2000, p=[0.95, 0.05])
        current = rng.choice(labels, size=size, p=[0.95, 0.05])
        fails += verdict(reference, current) == "fail"
    # Without the test, a single-valued window failed: 0.95**10 = 60 % of 10-row windows.
    assert fails / runs <= 0.05 + 0.02


def test_a_column_that_stopped_varying_still_fails() -> None:
    rng = np.random.default_rng(7)
    reference = rng.choice(["a", "b", "c"], size=2000, p=[0.5, 0.3, 0.2])
    assert verdict(reference, np.array(["a"] * 60)) == "fail"
    assert verdict(reference, np.array(["a"] * 3)) == "ok"


def test_batch_and_live_give_the_same_constant_verdict() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"flag": rng.choice(["y", "n"], size=3000, p=[0.9, 0.1])})
    for current in (pd.DataFrame({"flag": ["y"] * 20}), pd.DataFrame({"flag": ["y"] * 200})):
        schema = infer_schema(reference)
        live = quality_summary(
            profile_frame(reference, schema),
            profile_frame(current, schema, reference=profile_frame(reference, schema)),
        )["columns"]["flag"]["checks"]["constant"]
        batch = verdict(reference["flag"].to_numpy(), current["flag"].to_numpy())
        assert live["verdict"] == batch


# --- numeric columns ------------------------------------------------------------------------


def numeric_constant(reference: np.ndarray, current: np.ndarray) -> tuple[str, str]:
    """The batch and the live ``constant`` verdicts of one numeric column."""
    batch = numeric_column_quality(
        numeric_values(pd.Series(reference)), numeric_values(pd.Series(current))
    )["constant"]
    frames = pd.DataFrame({"x": reference}), pd.DataFrame({"x": current})
    schema = infer_schema(frames[0], Schema(kinds={"x": ColumnKind.NUMERIC}))
    reference_profile = profile_frame(frames[0], schema)
    live = quality_summary(
        reference_profile, profile_frame(frames[1], schema, reference=reference_profile)
    )["columns"]["x"]["checks"]["constant"]
    assert live["details"].get("p_value", 1.0) >= batch.details.get("p_value", 1.0) - 1e-12
    return str(batch.verdict.value), str(live["verdict"])


def test_numeric_constant_p_value_is_the_hypergeometric_chance_of_one_value() -> None:
    rng = np.random.default_rng(11)
    reference = np.r_[np.zeros(700), np.ones(200), rng.normal(size=100)]
    masses = ValueMasses.of(reference)
    assert masses.counts == {0.0: 700, 1.0: 200}
    assert masses.total == 1000
    for value, count in ((0.0, 8), (1.0, 3), (0.5, 4)):
        # An unlisted value is taken to occur once in the reference (an upper bound).
        pooled = {0.0: 700, 1.0: 200, 0.5: 1}
        pooled[value] += count
        total = 1000 + count
        expected = sum(
            stats.hypergeom.pmf(count, total, size, count)
            for size in pooled.values()
            if size <= pooled[value]
        )
        assert masses.p_value(value, count) == pytest.approx(expected, rel=1e-9)


def test_unlisted_values_add_their_worst_case_bound() -> None:
    # 900 values in all, 300 listed zeros, the other 600 at most 4 times each.
    p_value = constant_p_value({0.0: 300}, 7.0, 3, reference_total=900, unlisted_max=4)
    total = 903
    bound = stats.hypergeom.pmf(3, total, 4 + 3, 3) + (600 - 4) / 4 * stats.hypergeom.pmf(
        3, total, 4, 3
    )
    assert p_value == pytest.approx(bound, rel=1e-9)


@pytest.mark.parametrize("size", [10, 30, 100])
def test_small_windows_of_a_point_mass_do_not_cry_wolf(size: int) -> None:
    """A sparse feature (85 % zeros): 20 % of 10-row windows are all zeros by chance."""
    rng = np.random.default_rng(size + 1)
    runs = 300

    def sparse(rows: int) -> np.ndarray:
        return np.where(rng.random(rows) < 0.85, 0.0, rng.lognormal(size=rows))

    reference = sparse(3000)
    fails = np.zeros(2)
    constant = 0
    for _ in range(runs):
        current = sparse(size)
        constant += bool(np.ptp(current) == 0.0)
        fails += np.array(numeric_constant(reference, current)) == "fail"
    if size == 10:
        assert constant / runs > 0.12  # every one of them failed before
    assert (fails / runs <= 0.05 + 0.04).all()


def test_a_continuous_column_that_stopped_varying_still_fails() -> None:
    rng = np.random.default_rng(5)
    reference = rng.normal(size=5000)
    for rows in (2, 3, 20, 500):
        assert numeric_constant(reference, np.full(rows, reference[0])) == ("fail", "fail")
    # A point mass is no excuse for a window stuck on another value.
    sparse = np.where(rng.random(5000) < 0.85, 0.0, rng.lognormal(size=5000))
    assert numeric_constant(sparse, np.full(15, 0.0)) == ("ok", "ok")  # 0.85**15 = 0.09
    assert numeric_constant(sparse, np.full(15, 3.25)) == ("fail", "fail")


def test_batch_and_live_give_the_same_numeric_constant_p_value() -> None:
    """Within its outline points a reference lists every repeated value: the same inputs."""
    rng = np.random.default_rng(9)
    reference = rng.choice([0.0, 1.0, 2.5], size=200, p=[0.9, 0.05, 0.05])
    frame = pd.DataFrame({"x": reference})
    schema = infer_schema(frame, Schema(kinds={"x": ColumnKind.NUMERIC}))
    profile = profile_frame(frame, schema)
    for current in (np.zeros(12), np.zeros(40), np.full(3, 2.5), np.full(4, 7.0)):
        batch = numeric_column_quality(
            numeric_values(frame["x"]), numeric_values(pd.Series(current))
        )["constant"]
        live = quality_summary(
            profile, profile_frame(pd.DataFrame({"x": current}), schema, reference=profile)
        )["columns"]["x"]["checks"]["constant"]
        assert live["details"]["p_value"] == pytest.approx(batch.details["p_value"], rel=1e-12)
        assert live["verdict"] == batch.verdict.value
