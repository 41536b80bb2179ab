from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from watchkeeper.errors import EmptyDataError, InputError
from watchkeeper.frame import as_dataframe, category_counts, numeric_values, read_table

EXPECTED = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "x"]})


@pytest.mark.parametrize(
    "data",
    [
        EXPECTED,
        pl.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "x"]}),
        pa.table({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "x"]}),
        {"a": np.array([1.0, 2.0, 3.0]), "b": ["x", "y", "x"]},
    ],
    ids=["pandas", "polars", "pyarrow", "dict"],
)
def test_every_input_type_gives_the_same_frame(data: object) -> None:
    frame = as_dataframe(data)
    assert list(frame.columns) == ["a", "b"]
    np.testing.assert_array_equal(numeric_values(frame["a"]).values, [1.0, 2.0, 3.0])
    assert category_counts(frame["b"]).to_dict() == {"x": 2, "y": 1}


def test_numpy_array_needs_names() -> None:
    array = np.arange(6, dtype=float).reshape(3, 2)
    frame = as_dataframe(array, columns=["p", "q"])
    assert list(frame.columns) == ["p", "q"]
    with pytest.raises(InputError, match="needs column names"):
        as_dataframe(array)
    with pytest.raises(InputError, match="2 column names"):
        as_dataframe(np.zeros((2, 3)), columns=["p", "q"])
    with pytest.raises(InputError, match="must be 2-D"):
        as_dataframe(np.zeros(3), columns=["p"])


def test_bad_inputs_are_named() -> None:
    with pytest.raises(InputError, match="unsupported input type list"):
        as_dataframe([1, 2, 3], name="reference")
    with pytest.raises(EmptyDataError, match="current: no rows"):
        as_dataframe(pd.DataFrame({"a": []}), name="current")
    with pytest.raises(InputError, match="different lengths"):
        as_dataframe({"a": [1, 2], "b": [1]})
    with pytest.raises(InputError, match="duplicated column names: a"):
        as_dataframe(pd.DataFrame([[1, 2]], columns=["a", "a"]))


def test_integer_column_names_become_strings() -> None:
    frame = as_dataframe(pd.DataFrame({0: [1.0], 1: [2.0]}))
    assert list(frame.columns) == ["0", "1"]


def test_numeric_values_counts_missing_non_numeric_and_infinite() -> None:
    column = numeric_values(pd.Series(["1.5", "oops", None, "inf", "-2"], dtype=object))
    assert column.missing == 1
    assert column.non_numeric == 1
    assert column.infinite == 1
    np.testing.assert_array_equal(column.finite, [1.5, -2.0])


def test_category_labels_match_across_int_float_and_str() -> None:
    as_float = category_counts(pd.Series([1.0, 2.0, np.nan, 1.0]))
    as_str = category_counts(pd.Series(["1", "2", None, "1"]))
    as_bool = category_counts(pd.Series([True, False, True]))
    assert as_float.to_dict() == as_str.to_dict() == {"1": 2, "2": 1}
    assert as_bool.to_dict() == {"1": 2, "0": 1}


def test_read_table_formats(tmp_path: Path) -> None:
    csv = tmp_path / "data.csv"
    EXPECTED.to_csv(csv, index=False)
    gz = tmp_path / "data.csv.gz"
    with gzip.open(gz, "wt") as handle:
        EXPECTED.to_csv(handle, index=False)
    parquet = tmp_path / "data.parquet"
    EXPECTED.to_parquet(parquet)
    for path in (csv, gz, parquet):
        frame = read_table(path)
        assert list(frame.columns) == ["a", "b"]
        assert len(frame) == 3


def test_read_table_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="is a directory"):
        read_table(tmp_path)
    (tmp_path / "data.txt").write_text("a\n1\n")
    with pytest.raises(InputError, match="unknown file type"):
        read_table(tmp_path / "data.txt")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(EmptyDataError, match="empty"):
        read_table(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b\n")
    with pytest.raises(EmptyDataError, match="no rows"):
        read_table(header_only)
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="cannot read the file") as info:
        read_table(corrupt)
    assert "\n" not in str(info.value)
    bad_gzip = tmp_path / "bad.csv.gz"
    bad_gzip.write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="cannot read the file"):
        read_table(bad_gzip)


def test_boolean_labels_with_missing_values_match_complete_ones() -> None:
    with_missing = category_counts(pd.Series([True, None, False, True], dtype=object))
    mixed = category_counts(pd.Series([1.0, "x", 2], dtype=object))
    assert with_missing.to_dict() == {"1": 2, "0": 1}
    assert mixed.to_dict() == {"1": 1, "x": 1, "2": 1}
