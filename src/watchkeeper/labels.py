"""The one canonical form of category and class labels, shared by the batch and the live path.

A category value or a class label is compared as a string, so that the same value read from a
CSV file, a Parquet column, a JSON event or an Arrow batch gets the same name. The rules follow
Python's own equality (``True == 1 == 1.0``):

- booleans are ``"1"`` and ``"0"`` (so a label ``1`` and a prediction ``True`` are one class);
- integers print in decimal; integral floats up to 2**53 (where every integer is exact) print
  as the integer (``2.0`` → ``"2"``);
- other floats print as ``repr`` (``2.5`` → ``"2.5"``, ``1e+300``, ``inf``);
- strings stay as they are (``"true"`` is the string ``"true"``, not a boolean);
- ``None``, NaN and pandas' missing markers are missing (``None``), never a label.

:func:`canonical_label` names one value; :func:`canonical_labels` names a whole column with
NumPy (booleans, integers and floats without a per-row Python call) and agrees with it value
for value (a property test checks that).

>>> canonical_label(True), canonical_label(2.0), canonical_label(2.5), canonical_label("gold")
('1', '2', '2.5', 'gold')
>>> canonical_labels([True, "gold", 0.0, None]).tolist()
['1', 'gold', '0', None]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_EXACT_INTEGER", "canonical_label", "canonical_labels"]

MAX_EXACT_INTEGER = 2.0**53
"""Largest magnitude below which every integral float64 is an exact integer."""


def canonical_label(value: object) -> str | None:
    """The canonical string label of one category or class value; ``None`` when missing."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        if not number.is_integer():
            return repr(number)
        return str(int(number)) if abs(number) <= MAX_EXACT_INTEGER else repr(number)
    if _is_missing_marker(value):
        return None
    return str(value)


def canonical_labels(
    values: Sequence[object] | np.ndarray[Any, Any] | pd.Series | pd.Index,
) -> npt.NDArray[np.object_]:
    """Canonical labels of a column as an object array, ``None`` where a value is missing."""
    import pandas as pd

    if isinstance(values, pd.Series | pd.Index):
        series = pd.Series(values, copy=False)
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype(object)
        array: np.ndarray[Any, Any]
        if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
            missing = series.isna().to_numpy()
            if pd.api.types.is_bool_dtype(series.dtype):
                array = series.to_numpy(dtype=bool, na_value=False)
            elif pd.api.types.is_integer_dtype(series.dtype):
                array = series.to_numpy(dtype=np.int64, na_value=0)
            else:
                array = series.to_numpy(dtype=np.float64, na_value=np.nan)
            labels = _typed_labels(array)
            labels[missing] = None
            return labels
        array = series.to_numpy(dtype=object)
    elif isinstance(values, np.ndarray):
        array = values
    else:
        # NumPy would turn a mixed list into strings ([False, ""] -> ["False", ""]).
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
    if array.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind in "biuf":
        return _typed_labels(array)
    return _object_labels(array.astype(object, copy=False))


def _typed_labels(array: np.ndarray[Any, Any]) -> npt.NDArray[np.object_]:
    if array.dtype.kind == "b":
        return np.where(array, "1", "0").astype(object)
    if array.dtype.kind in "iu":
        return array.astype(str).astype(object)
    numbers = array.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore"):
        integral = (np.floor(numbers) == numbers) & (np.abs(numbers) <= MAX_EXACT_INTEGER)
    labels = np.empty(len(numbers), dtype=object)
    if integral.any():
        labels[integral] = numbers[integral].astype(np.int64).astype(str)
    rest = ~integral
    if rest.any():
        labels[rest] = [None if math.isnan(x) else repr(x) for x in numbers[rest].tolist()]
    return labels


def _object_labels(array: npt.NDArray[np.object_]) -> npt.NDArray[np.object_]:
    import pandas as pd

    # Name each distinct value once: columns repeat their categories many times.
    codes, uniques = pd.factorize(array, use_na_sentinel=True)
    names = np.array([canonical_label(value) for value in uniques] + [None], dtype=object)
    return names[codes]


def _is_missing_marker(value: object) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False
    return value is pd.NA or value is pd.NaT
