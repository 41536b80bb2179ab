"""The ``duplicate_rows`` check: a permutation test against a same-size sample of the pooled
rows, on a bounded hash sample of them (golden values, false alarms, power, sampling)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from watchkeeper.profiles import ProfileAccumulator, quality_summary
from watchkeeper.profiles.dataset import profile_frame
from watchkeeper.schema import ColumnKind, ResolvedSchema
from watchkeeper.stats.duplicates import (
    RowHashSample,
    column_keys,
    duplicate_p_value,
    duplicate_rows_test,
    frame_row_hashes,
    numeric_keys,
    row_hashes,
)
from watchkeeper.stats.quality import QualityThresholds, dataset_quality, duplicate_rows_check


def exact_null(pooled: list[int], size: int) -> list[int]:
    """Duplicates in every size-subset of the pooled rows (by enumeration)."""
    items = [row for row, count in enumerate(pooled) for _ in range(count)]
    found = []
    for subset in itertools.combinations(range(len(items)), size):
        counts = np.bincount([items[i] for i in subset], minlength=len(pooled))
        found.append(int(np.maximum(counts - 1, 0).sum()))
    return found


def test_one_repeated_row_is_exactly_hypergeometric() -> None:
    pooled = np.r_[15, np.ones(300, dtype=np.int64)]
    current = np.r_[7, np.ones(40, dtype=np.int64), np.zeros(260, dtype=np.int64)]
    p_value, expected = duplicate_p_value(pooled, current)
    # D = s - 1 for s ~ Hypergeom(N = 315, K = 15, n = 47): P(D >= 6) = P(s > 6).
    assert p_value == pytest.approx(stats.hypergeom.sf(6, 315, 15, 47), rel=1e-12)
    assert expected == pytest.approx(
        stats.hypergeom.mean(315, 15, 47) - stats.hypergeom.sf(0, 315, 15, 47), rel=1e-12
    )


@pytest.mark.parametrize(
    ("pooled", "current"),
    [([4, 3, 2, 1, 1], [3, 1, 0, 1, 0]), ([3, 3, 3, 2, 1], [2, 2, 1, 0, 0])],
)
def test_the_monte_carlo_p_value_matches_the_enumerated_null(
    pooled: list[int], current: list[int]
) -> None:
    null = np.array(exact_null(pooled, sum(current)))
    observed = sum(max(count - 1, 0) for count in current)
    p_value, expected = duplicate_p_value(np.array(pooled), np.array(current))
    assert expected == pytest.approx(null.mean(), rel=1e-9)
    exact = float((null >= observed).mean())
    # Besag–Clifford stops at 10 exceedances: a coarse estimate of a large p-value.
    tolerance = 4 * np.sqrt(exact * (1 - exact) / 999) + (0.5 * exact if exact > 0.05 else 0.0)
    assert abs(p_value - exact) <= tolerance
    assert duplicate_p_value(np.array(pooled), np.array(current))[0] == p_value


def test_no_duplicates_and_no_repeats_give_one() -> None:
    assert duplicate_p_value(np.ones(5, np.int64), np.ones(5, np.int64)) == (1.0, 0.0)
    assert duplicate_p_value(np.array([5, 1]), np.array([0, 1]))[0] == 1.0


def test_row_hashes_depend_on_values_only() -> None:
    kinds = {"x": ColumnKind.NUMERIC, "c": ColumnKind.CATEGORICAL}
    first = pd.DataFrame({"x": [0.0, 1.5, np.nan], "c": ["a", 1, None]})
    second = pd.DataFrame({"c": ["zz", "1", "a", None], "x": [9, 1.5, -0.0, float("nan")]})
    left, right = frame_row_hashes(first, kinds), frame_row_hashes(second, kinds)
    assert left[0] == right[2]  # -0.0 == 0.0, the same label in another frame
    assert left[1] == right[1]  # 1 and "1" are one label
    assert left[2] == right[3]  # missing is missing
    assert len(set(left.tolist()) | set(right.tolist())) == 4
    live = row_hashes({"x": np.array([1.5]), "c": np.array([1], dtype=object)}, kinds)
    assert live[0] == left[1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 300), max_size=400),
    st.lists(st.integers(0, 300), max_size=400),
    st.integers(4, 64),
)
def test_a_merged_sample_is_the_sample_of_both(
    first: list[int], second: list[int], limit: int
) -> None:
    spread = np.uint64(0x9E3779B97F4A7C15)
    left = np.array(first, dtype=np.uint64) * spread
    right = np.array(second, dtype=np.uint64) * spread
    merged = RowHashSample.of(left, limit=limit).merge(RowHashSample.of(right, limit=limit))
    direct = RowHashSample.of(np.concatenate((left, right)), limit=limit)
    # The lowest level at which everything fits, however the data came in.
    assert merged.level == direct.level
    at_level = direct
    assert merged.hashes.tolist() == at_level.hashes.tolist()
    assert merged.counts.tolist() == at_level.counts.tolist()
    assert merged.rows == len(first) + len(second)
    assert merged.hashes.size <= limit
    # Every copy of a kept row is kept: its count is its count in all the data.
    everything = RowHashSample.of(np.concatenate((left, right)), limit=10_000)
    counts = dict(zip(everything.hashes.tolist(), everything.counts.tolist(), strict=True))
    assert all(
        counts[h] == c for h, c in zip(merged.hashes.tolist(), merged.counts.tolist(), strict=True)
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 300), max_size=200), max_size=6),
    st.integers(4, 64),
)
def test_adding_batches_equals_merging_their_samples(batches: list[list[int]], limit: int) -> None:
    spread = np.uint64(0x9E3779B97F4A7C15)
    added = merged = RowHashSample.empty(limit=limit)
    for batch in batches:
        hashes = np.array(batch, dtype=np.uint64) * spread
        added = added.add(hashes)
        merged = merged.merge(RowHashSample.of(hashes, limit=limit))
    assert (added.level, added.rows) == (merged.level, merged.rows)
    assert added.hashes.tolist() == merged.hashes.tolist()
    assert added.counts.tolist() == merged.counts.tolist()


def test_block_keys_are_the_column_keys() -> None:
    block = np.array([[1.5, -0.0, np.nan], [0.0, 2.0, -np.nan]])
    keys = numeric_keys(block)
    for row in range(2):
        assert keys[row].tolist() == column_keys(block[row], ColumnKind.NUMERIC).tolist()


def test_sample_state_round_trips() -> None:
    sample = RowHashSample.of(np.arange(50, dtype=np.uint64) * np.uint64(2**58), limit=16)
    again = RowHashSample.from_state(sample.to_state())
    assert (again.hashes == sample.hashes).all()
    assert (again.level, again.rows, again.limit) == (sample.level, 50, 16)


def categorical_rows(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """Four five-level columns: duplicates come naturally, more of them in larger samples."""
    return pd.DataFrame(
        {name: rng.integers(0, 5, rows).astype(str) for name in ("a", "b", "c", "d")}
    )


def duplicates_verdict(reference: pd.DataFrame, current: pd.DataFrame) -> str:
    kinds = dict.fromkeys(reference.columns, ColumnKind.CATEGORICAL)
    checks = dataset_quality(reference, current, reference_kinds=kinds, current_kinds=kinds)
    return str(checks["duplicate_rows"].verdict.value)


@pytest.mark.parametrize(("reference_rows", "current_rows"), [(200, 100), (200, 1000), (2000, 300)])
def test_natural_duplicates_do_not_cry_wolf(reference_rows: int, current_rows: int) -> None:
    """Four five-level columns (625 distinct rows): duplicates come naturally, more of them
    in larger samples. The check, on the rows' hash samples, at the default thresholds."""
    rng = np.random.default_rng(reference_rows + current_rows)
    kinds = dict.fromkeys("abcd", ColumnKind.NUMERIC)
    thresholds = QualityThresholds()

    def sample(rows: int, limit: int) -> RowHashSample:
        columns = {name: rng.integers(0, 5, rows).astype(float) for name in kinds}
        return RowHashSample.of(row_hashes(columns, kinds), limit=limit)

    runs = 200
    fails = sum(
        duplicate_rows_check(
            duplicate_rows_test(sample(reference_rows, 8192), sample(current_rows, 1024)),
            thresholds,
        ).verdict.value
        == "fail"
        for _ in range(runs)
    )
    # Nominal 0.05 plus three standard errors.
    assert fails / runs <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / runs)


def test_the_floor_alone_failed_a_larger_current_sample() -> None:
    """A share comparison fails a 1,000-row sample against a 200-row reference of one
    population (about 50 % duplicates against 14 %); the test does not."""
    rng = np.random.default_rng(1)
    reference, current = categorical_rows(rng, 200), categorical_rows(rng, 1000)
    kinds = dict.fromkeys(reference.columns, ColumnKind.CATEGORICAL)
    check = dataset_quality(reference, current, reference_kinds=kinds, current_kinds=kinds)[
        "duplicate_rows"
    ]
    assert check.current - check.reference > 0.3
    assert check.verdict.value == "ok"
    assert check.details["expected_share"] == pytest.approx(check.current, abs=0.05)


def test_copied_rows_fail() -> None:
    rng = np.random.default_rng(2)
    reference = categorical_rows(rng, 2000)
    current = categorical_rows(rng, 300)
    doubled = pd.concat([current, current.iloc[:60]], ignore_index=True)
    assert duplicates_verdict(reference, doubled) == "fail"
    numbers = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    window = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300)})
    kinds = {"x": ColumnKind.NUMERIC, "y": ColumnKind.NUMERIC}
    copied = pd.concat([window, window.iloc[:30]], ignore_index=True)
    check = dataset_quality(numbers, copied, reference_kinds=kinds, current_kinds=kinds)
    assert check["duplicate_rows"].verdict.value == "fail"
    few = pd.concat([window, window.iloc[:3]], ignore_index=True)
    check = dataset_quality(numbers, few, reference_kinds=kinds, current_kinds=kinds)
    assert check["duplicate_rows"].verdict.value == "warning"  # real copies, under the floor


def test_a_sampled_test_still_sees_copies() -> None:
    """Past the limit only a hash range of the rows is tested; copies are still found."""
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"x": rng.normal(size=20_000)})
    window = pd.DataFrame({"x": rng.normal(size=20_000)})
    copies = pd.concat([window, window.iloc[:2000]], ignore_index=True)
    kinds = {"x": ColumnKind.NUMERIC}
    reference = RowHashSample.of(frame_row_hashes(frame, kinds), limit=1024)
    current = RowHashSample.of(frame_row_hashes(copies, kinds), limit=1024)
    test = duplicate_rows_test(reference, current)
    assert test.level > 0
    assert test.p_value <= 0.001
    assert test.current_share == pytest.approx(2000 / 22_000, abs=0.03)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(20, 400),
    st.integers(5, 400),
    st.integers(0, 4),
    st.integers(0, 60),
)
def test_batch_and_live_agree(
    seed: int, reference_rows: int, current_rows: int, levels: int, copies: int
) -> None:
    check_batch_and_live(seed, reference_rows, current_rows, levels, copies)


def test_batch_and_live_agree_past_the_limit() -> None:
    """Sampled rows: the same level and the same kept rows, batch and live."""
    assert check_batch_and_live(3, 3000, 5000, 0, 1000) == "fail"


def check_batch_and_live(
    seed: int, reference_rows: int, current_rows: int, levels: int, copies: int
) -> str:
    """The report's check and the live window's (folded in batches, then merged) are one."""
    rng = np.random.default_rng(seed)

    def frame(rows: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                # levels = 0: a continuous column.
                "x": rng.integers(0, levels + 1, rows).astype(float)
                if levels
                else rng.normal(size=rows),
                "c": rng.choice(["a", "b", "c"][: max(levels - 1, 1)], rows),
                "f": rng.random(rows) < 0.5,
            }
        )

    reference = frame(reference_rows)
    current = frame(current_rows)
    current = pd.concat([current, current.iloc[: min(copies, current_rows)]], ignore_index=True)
    kinds = {"x": ColumnKind.NUMERIC, "c": ColumnKind.CATEGORICAL, "f": ColumnKind.BOOLEAN}
    batch = dataset_quality(reference, current, reference_kinds=kinds, current_kinds=kinds)[
        "duplicate_rows"
    ]

    schema = ResolvedSchema(
        features=kinds,
        outputs={},
        target=None,
        target_kind=None,
        prediction=None,
        proba={},
        task=None,
    )
    reference_profile = profile_frame(reference, schema)
    halves = []
    step = max(7, len(current) // 20)
    for part in (current.iloc[: len(current) // 2], current.iloc[len(current) // 2 :]):
        accumulator = ProfileAccumulator(kinds=kinds, reference=reference_profile)
        for start in range(0, len(part), step):
            chunk = part.iloc[start : start + step]
            accumulator.update({name: chunk[name].to_numpy() for name in kinds})
        halves.append(accumulator.profile())
    window = halves[0].merge(halves[1])
    live = quality_summary(reference_profile, window)["dataset"]["duplicate_rows"]
    assert live["verdict"] == batch.verdict.value
    assert live["details"]["p_value"] == batch.details["p_value"]
    # The report states the exact share; the window the share of its kept rows.
    assert live["current"] == pytest.approx(
        batch.current, abs=0 if batch.details["exact"] else 0.02
    )
    assert live["details"]["expected_share"] == pytest.approx(batch.details["expected_share"])
    assert live["details"]["sample_level"] == batch.details["sample_level"]
    return str(batch.verdict.value)
