"""Every supported input turned into one columnar view (a pandas DataFrame).

Accepted inputs: pandas DataFrames, polars DataFrames, pyarrow Tables, NumPy 2-D arrays with
column names, and dicts of equal-length arrays; files in CSV, gzip-compressed CSV and Parquet.
Column values are then read through :func:`numeric_values` (float64 with NaN for missing and a
count of values that were not numbers) and :func:`category_counts` (counts by canonical label,
:mod:`watchkeeper.labels`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from watchkeeper.errors import EmptyDataError, InputError
from watchkeeper.labels import label_counts

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NumericColumn", "as_dataframe", "category_counts", "numeric_values", "read_table"]

_PARQUET_SUFFIXES = (".parquet", ".pq")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")


def as_dataframe(
    data: Any, *, name: str = "data", columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Turn ``data`` into a pandas DataFrame with string column names.

    ``columns`` names the columns of a NumPy 2-D array (required there, ignored elsewhere).
    Raises :class:`InputError` for unsupported types and :class:`EmptyDataError` for no rows.
    """
    import pandas as pd

    frame: pd.DataFrame
    module = type(data).__module__.split(".")[0]
    if isinstance(data, pd.DataFrame):
        frame = data
    elif module in ("polars", "pyarrow") and hasattr(data, "to_pandas"):
        frame = data.to_pandas()
    elif isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise InputError(f"{name}: a NumPy array must be 2-D, got {data.ndim}-D")
        if columns is None:
            raise InputError(f"{name}: a NumPy array needs column names (columns=[...])")
        if len(columns) != data.shape[1]:
            raise InputError(
                f"{name}: {len(columns)} column names for an array with {data.shape[1]} columns"
            )
        frame = pd.DataFrame(data, columns=list(columns))
    elif isinstance(data, Mapping):
        lengths = {str(key): len(value) for key, value in data.items()}
        if len(set(lengths.values())) > 1:
            raise InputError(f"{name}: arrays in the dict have different lengths: {lengths}")
        frame = pd.DataFrame({str(key): value for key, value in data.items()})
    else:
        raise InputError(
            f"{name}: unsupported input type {type(data).__name__}; pass a pandas or polars "
            "DataFrame, a pyarrow Table, a 2-D NumPy array with column names, or a dict of arrays"
        )
    if frame.columns.has_duplicates:
        duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise InputError(f"{name}: duplicated column names: {', '.join(duplicated)}")
    if not all(isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    if len(frame.columns) == 0:
        raise EmptyDataError(f"{name}: no columns")
    if len(frame) == 0:
        raise EmptyDataError(f"{name}: no rows")
    return frame


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, gzip-compressed CSV or Parquet file.

    Raises :class:`InputError` with a one-line reason when the file is missing, of an unknown
    format or unreadable, and :class:`EmptyDataError` when it has no rows.
    """
    import pandas as pd

    path = Path(path)
    label = str(path)
    if not path.exists():
        raise InputError(f"{label}: no such file")
    if path.is_dir():
        raise InputError(f"{label}: is a directory, not a data file")
    lower = path.name.lower()
    try:
        if lower.endswith(_PARQUET_SUFFIXES):
            frame = pd.read_parquet(path)
        elif lower.endswith(_CSV_SUFFIXES):
            separator = "\t" if ".tsv" in lower else ","
            frame = pd.read_csv(path, sep=separator, low_memory=False)
        else:
            raise InputError(f"{label}: unknown file type; use .csv, .csv.gz, .tsv or .parquet")
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise EmptyDataError(f"{label}: the file is empty") from None
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{label}: cannot read the file ({reason})") from None
    except Exception as exc:  # pyarrow raises its own hierarchy for corrupt Parquet
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{label}: cannot read the file ({reason})") from None
    return as_dataframe(frame, name=label)


@dataclass(frozen=True, slots=True)
class NumericColumn:
    """A column read as numbers: float64 values (NaN where missing or not a number)."""

    values: np.ndarray
    missing: int
    non_numeric: int
    infinite: int

    @property
    def finite(self) -> np.ndarray:
        """The values that take part in tests: neither missing nor ±inf."""
        finite: np.ndarray = self.values[np.isfinite(self.values)]
        return finite


def numeric_values(series: pd.Series) -> NumericColumn:
    """Read ``series`` as float64; strings that are not numbers count as ``non_numeric``."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        non_numeric = 0
        missing = int(np.isnan(values).sum())
    else:
        missing_mask = series.isna().to_numpy()
        coerced = pd.to_numeric(series, errors="coerce")
        values = coerced.to_numpy(dtype=np.float64, na_value=np.nan)
        non_numeric = int((np.isnan(values) & ~missing_mask).sum())
        missing = int(missing_mask.sum())
    infinite = int(np.isinf(values).sum())
    return NumericColumn(values=values, missing=missing, non_numeric=non_numeric, infinite=infinite)


def category_counts(series: pd.Series) -> pd.Series:
    """Counts of each non-missing value, keyed by its canonical label, largest first.

    Labels are those of :mod:`watchkeeper.labels`, so that ``1`` read from one file, ``1.0``
    and ``True`` from another and ``"1"`` from a live event are one category. Only labels that
    occur are counted (unused pandas categories are left out).
    """
    import pandas as pd

    labels, counts = label_counts(series)
    by_label = pd.Series(counts, index=pd.Index(labels, dtype=object), dtype=np.int64)
    return by_label.sort_values(ascending=False, kind="stable")
