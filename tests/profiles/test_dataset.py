"""DatasetProfile: building from frames and batches, merging, bytes and summaries."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper.errors import InputError, SchemaError
from watchkeeper.profiles import (
    CategoricalProfile,
    DatasetProfile,
    NumericProfile,
    ProfileAccumulator,
    profile_frame,
)
from watchkeeper.profiles.dataset import PROFILE_FORMAT_VERSION
from watchkeeper.schema import ColumnKind, Schema, infer_schema


def make_frame(seed: int, rows: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=rows)
    numbers[rng.random(rows) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "x": numbers,
            "y": rng.exponential(size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows),
            "flag": rng.random(rows) < 0.3,
            "when": pd.date_range("2024-01-01", periods=rows, freq="min"),
        }
    )


@pytest.fixture(scope="module")
def reference() -> DatasetProfile:
    frame = make_frame(0)
    return profile_frame(frame, infer_schema(frame))


def test_profile_frame_kinds_and_counts(reference: DatasetProfile) -> None:
    assert reference.rows == 2000
    assert reference.kinds == {
        "x": ColumnKind.NUMERIC,
        "y": ColumnKind.NUMERIC,
        "colour": ColumnKind.CATEGORICAL,
        "flag": ColumnKind.BOOLEAN,
    }
    x = reference.columns["x"]
    assert isinstance(x, NumericProfile)
    assert x.count == 2000
    assert x.missing == int(make_frame(0)["x"].isna().sum())
    assert set(reference.edges) == {"x", "y"}


def test_windows_inherit_edges_and_merge_to_concatenation(reference: DatasetProfile) -> None:
    schema = infer_schema(make_frame(0))
    first, second = make_frame(1, 700), make_frame(2, 1300)
    a = profile_frame(first, schema, reference=reference)
    b = profile_frame(second, schema, reference=reference)
    whole = profile_frame(
        pd.concat([first, second], ignore_index=True), schema, reference=reference
    )
    merged = a.merge(b)
    assert merged.rows == whole.rows == 2000
    for name in ("x", "y"):
        left, right = merged.columns[name], whole.columns[name]
        assert isinstance(left, NumericProfile)
        assert isinstance(right, NumericProfile)
        assert left.edges is reference.edges[name]
        np.testing.assert_array_equal(left.bin_counts, right.bin_counts)
        assert left.mean == pytest.approx(right.mean, rel=1e-12)
        assert left.m2 == pytest.approx(right.m2, rel=1e-12)
    colour = merged.columns["colour"]
    assert isinstance(colour, CategoricalProfile)
    assert colour.counts == whole.columns["colour"].counts  # type: ignore[union-attr]


def test_accumulator_equals_profile_frame(reference: DatasetProfile) -> None:
    frame = make_frame(5, 3000)
    schema = infer_schema(make_frame(0))
    expected = profile_frame(frame, schema, reference=reference)
    accumulator = ProfileAccumulator(reference=reference)
    for start in range(0, 3000, 1000):
        batch = frame.iloc[start : start + 1000]
        accumulator.update(
            {
                "x": batch["x"].to_numpy(),
                "y": batch["y"].to_numpy(),
                "colour": batch["colour"].to_numpy(dtype=object),
                "flag": batch["flag"].to_numpy(),
                "unmonitored": np.zeros(len(batch)),
            }
        )
    snapshot = accumulator.profile()
    accumulator.update({name: np.array([], dtype=float) for name in ("x", "y", "colour", "flag")})
    assert snapshot.rows == accumulator.rows == 3000
    for name in ("x", "y"):
        np.testing.assert_array_equal(
            snapshot.columns[name].bin_counts,  # type: ignore[union-attr]
            expected.columns[name].bin_counts,  # type: ignore[union-attr]
        )
    assert snapshot.columns["flag"].to_dict() == expected.columns["flag"].to_dict()


def test_accumulator_rejects_bad_batches(reference: DatasetProfile) -> None:
    accumulator = ProfileAccumulator(reference=reference)
    with pytest.raises(SchemaError, match="lacks column"):
        accumulator.update({"x": np.zeros(2)})
    with pytest.raises(InputError, match="one length"):
        accumulator.update(
            {"x": np.zeros(2), "y": np.zeros(3), "colour": np.zeros(2), "flag": np.zeros(2)}
        )
    with pytest.raises(InputError, match="kinds="):
        ProfileAccumulator()


def test_window_must_match_reference_kinds(reference: DatasetProfile) -> None:
    frame = make_frame(1)
    schema = infer_schema(frame, Schema(kinds={"x": ColumnKind.CATEGORICAL}))
    with pytest.raises(SchemaError, match="'x' is categorical here but numeric"):
        profile_frame(frame, schema, reference=reference)
    with pytest.raises(SchemaError, match="not in the data"):
        profile_frame(frame.drop(columns="y"), infer_schema(frame), reference=reference)


def test_bytes_round_trip(reference: DatasetProfile) -> None:
    data = reference.to_bytes()
    restored = DatasetProfile.from_bytes(data)
    assert restored.to_dict() == reference.to_dict()
    # Sketch bytes may differ in internal flags (KLL level-0 sort state), never in answers.
    assert abs(len(restored.to_bytes()) - len(data)) < 64
    for name in ("x", "y"):
        left, right = reference.columns[name], restored.columns[name]
        assert isinstance(left, NumericProfile)
        assert isinstance(right, NumericProfile)
        np.testing.assert_array_equal(left.bin_counts, right.bin_counts)
        np.testing.assert_array_equal(
            left.quantiles([0.1, 0.5, 0.9]), right.quantiles([0.1, 0.5, 0.9])
        )
    for name, edges in reference.edges.items():
        np.testing.assert_array_equal(restored.edges[name], edges)


def test_round_trip_keeps_empty_and_non_finite_columns() -> None:
    profile = DatasetProfile(
        rows=2,
        columns={
            "empty": NumericProfile.of(np.array([np.nan, np.inf])),
            "labels": CategoricalProfile.of(np.array([None, None], dtype=object)),
        },
    )
    restored = DatasetProfile.from_bytes(profile.to_bytes())
    assert restored.to_dict() == profile.to_dict()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda data: b"PK\x03\x04" + data[4:],
        lambda data: data[:10] + b"{",
        lambda data: data[:8] + (PROFILE_FORMAT_VERSION + 1).to_bytes(2, "little") + data[10:],
        lambda data: data[:-40],
        lambda data: b"",
    ],
    ids=["foreign-magic", "bad-json", "future-version", "truncated", "empty"],
)
def test_corrupt_bytes_raise_input_error(reference: DatasetProfile, mutate: object) -> None:
    data = reference.to_bytes()
    with pytest.raises(InputError):
        DatasetProfile.from_bytes(mutate(data))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("field", "value"),
    [("kll", "AAAA"), ("bin_counts", [1, 2]), ("count", -1), ("kind", "text"), ("edges", "!!")],
)
def test_tampered_documents_raise_input_error(
    reference: DatasetProfile, field: str, value: object
) -> None:
    data = reference.to_bytes()
    document = orjson.loads(data[10:])
    document["columns"][0][field] = value
    with pytest.raises(InputError, match="corrupt"):
        DatasetProfile.from_bytes(data[:10] + orjson.dumps(document))


def test_to_dict_is_json_ready(reference: DatasetProfile) -> None:
    summary = reference.to_dict()
    text = orjson.dumps(summary)
    assert b"p99" in text
    assert b"top" in text
    x = summary["columns"]["x"]  # type: ignore[index]
    assert set(x) >= {"count", "missing", "mean", "std", "min", "max", "quantiles"}


def test_merge_rejects_different_columns(reference: DatasetProfile) -> None:
    other = DatasetProfile(rows=1, columns={"x": NumericProfile.of(np.array([1.0]))})
    with pytest.raises(SchemaError, match="different columns"):
        reference.merge(other)
    own_edges = profile_frame(make_frame(3), infer_schema(make_frame(3)))
    with pytest.raises(InputError, match="column 'x'"):
        reference.merge(own_edges)


SMALL_PROFILE = DatasetProfile(
    rows=50,
    columns={
        "x": NumericProfile.of(np.linspace(0.0, 1.0, 50)),
        "c": CategoricalProfile.of(np.array(list("ab") * 25, dtype=object)),
    },
).to_bytes()


@settings(max_examples=200, deadline=None)
@given(position=st.integers(0, len(SMALL_PROFILE) - 1), byte=st.integers(0, 255))
def test_flipped_bytes_give_a_profile_or_input_error(position: int, byte: int) -> None:
    data = bytearray(SMALL_PROFILE)
    data[position] = byte
    try:
        restored = DatasetProfile.from_bytes(bytes(data))
    except InputError:
        return
    # A flip that still parses (a digit in a float, say) must give a self-consistent profile.
    assert all(profile.count == restored.rows for profile in restored.columns.values())


def test_numeric_columns_fold_as_one_block_exactly_as_one_by_one() -> None:
    """The block fold (all columns binned, all values finite) equals the per-column fold bit
    for bit; a batch with a missing value takes the per-column path in the same accumulator."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=4000),
            "b": rng.exponential(size=4000) * 1e3,
            "c": rng.uniform(size=4000),
        }
    )
    reference = profile_frame(frame, infer_schema(frame))
    block = ProfileAccumulator(reference=reference)
    empty = profile_frame(frame.iloc[:0], infer_schema(frame), reference=reference)
    single = {name: empty.columns[name] for name in frame}
    batches = [
        {name: rng.normal(loc=0.2, size=700) * (1e3 if name == "b" else 1.0) for name in frame}
        for _ in range(4)
    ]
    batches[2]["a"][5] = np.nan
    for batch in batches:
        block.update(batch)
        for name, profile in single.items():
            profile.update(batch[name])
    assert block._block is not None
    folded = block.profile()
    for name, expected in single.items():
        got = folded.columns[name]
        assert isinstance(got, NumericProfile)
        assert isinstance(expected, NumericProfile)
        assert (got.count, got.missing, got.mean, got.m2, got.minimum, got.maximum) == (
            expected.count,
            expected.missing,
            expected.mean,
            expected.m2,
            expected.minimum,
            expected.maximum,
        )
        np.testing.assert_array_equal(got.bin_counts, expected.bin_counts)
        # KLL compactions flip coins, so two sketches of the same data differ; same input:
        assert got._sketch.n == expected._sketch.n
        assert (got._sketch.get_min_value(), got._sketch.get_max_value()) == (
            expected._sketch.get_min_value(),
            expected._sketch.get_max_value(),
        )
