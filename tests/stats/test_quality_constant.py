"""The categorical ``constant`` check: calibrated like the rate checks, in batch and live."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from watchkeeper.profiles import quality_summary
from watchkeeper.profiles.dataset import profile_frame
from watchkeeper.schema import infer_schema
from watchkeeper.stats._quality_tests import constant_p_value
from watchkeeper.stats.quality import categorical_column_quality


def test_constant_p_value_is_the_hypergeometric_chance_of_one_label() -> None:
    reference = {"a": 70, "b": 25, "c": 5}
    for label, count in (("a", 12), ("b", 3), ("z", 4)):
        pooled = dict(reference)
        pooled[label] = pooled.get(label, 0) + count
        total = sum(pooled.values())
        expected = sum(stats.hypergeom.pmf(count, total, size, count) for size in pooled.values())
        assert constant_p_value(reference, label, count) == pytest.approx(expected, rel=1e-9)
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
