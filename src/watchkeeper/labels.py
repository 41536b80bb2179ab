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

:func:`canonical_label` names one value; :func:`canonical_labels` names a whole column,
:func:`label_codes` gives its codes into the distinct labels (what confusion matrices need) and
:func:`label_counts` counts each label. All name each distinct value once (booleans, integers
and floats with NumPy, no per-row Python call) and agree with :func:`canonical_label` value for
value (property tests check that).

>>> canonical_label(True), canonical_label(2.0), canonical_label(2.5), canonical_label("gold")
('1', '2', '2.5', 'gold')
>>> canonical_labels([True, "gold", 0.0, None]).tolist()
['1', 'gold', '0', None]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BOOLEAN_LABELS",
    "MAX_EXACT_INTEGER",
    "canonical_label",
    "canonical_labels",
    "label_codes",
    "label_counts",
]

MAX_EXACT_INTEGER = 2.0**53
"""Largest magnitude below which every integral float64 is an exact integer."""

BOOLEAN_LABELS: tuple[str, str] = ("0", "1")
"""The labels of ``False`` and ``True`` (and of ``0`` and ``1``), in that order."""

Column: TypeAlias = "Sequence[object] | np.ndarray[Any, Any] | pd.Series | pd.Index"

# Values of these types that are equal (True == 1 == 1.0) share a label, except integers and
# floats beyond MAX_EXACT_INTEGER; any other type (Decimal, Fraction, ...) is named row by row.
_PLAIN_TYPES = (str, bool, int, float, np.bool_, np.integer, np.floating)
# What pandas' one C pass (infer_dtype) calls arrays of only such numbers; mixes of booleans
# and numbers, or anything else, are checked type by type.
_PLAIN_NUMBERS = frozenset({"boolean", "integer", "floating", "mixed-integer-float"})


def canonical_label(value: object) -> str | None:
    """The canonical string label of one category or class value; ``None`` when missing."""
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool | np.bool_):
        return BOOLEAN_LABELS[1] if value else BOOLEAN_LABELS[0]
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


def canonical_labels(values: Column) -> npt.NDArray[np.object_]:
    """Canonical labels of a column as an object array, ``None`` where a value is missing."""
    codes, labels = label_codes(values)
    names = np.empty(len(labels) + 1, dtype=object)
    names[: len(labels)] = labels
    # Code -1 (missing) picks the trailing None.
    return names[codes]


def label_codes(values: Column) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Codes of a column's values into its distinct canonical labels; ``-1`` where missing.

    The labels are distinct and in order of first appearance, so ``labels[codes[i]]`` is
    ``canonical_label(values[i])`` for every value that is not missing.

    >>> codes, labels = label_codes([True, 1.0, "gold", None, 0])
    >>> codes.tolist(), labels
    ([0, 0, 1, -1, 2], ['1', 'gold', '0'])
    """
    import pandas as pd

    column: Any
    if isinstance(values, pd.Series | pd.Index) and isinstance(values.dtype, np.dtype):
        # NumPy-backed: factorizing the array skips pandas' Series overhead (~25 %).
        column = values.to_numpy()
    elif isinstance(values, pd.Series | pd.Index | np.ndarray):
        column = values
    else:
        # NumPy would turn a mixed list into strings ([False, ""] -> ["False", ""]).
        column = np.empty(len(values), dtype=object)
        column[:] = list(values)
    if column.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {column.shape}")
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    codes = codes.astype(np.intp, copy=False)
    typed = uniques.to_numpy() if isinstance(uniques, pd.Index) else np.asarray(uniques)
    if typed.dtype.kind in "biuf":
        # Distinct numbers of one dtype have distinct labels (factorize already joins -0.0
        # and 0.0), so there is nothing to merge.
        return codes, _typed_labels(typed).tolist()
    unique_values = list(uniques)
    names = [canonical_label(value) for value in unique_values]
    if pd.api.types.is_object_dtype(column.dtype):
        codes, names = _split_ambiguous(np.asarray(column), codes, unique_values, names)
    return _merge_equal_labels(codes, names)


def label_counts(values: Column) -> tuple[list[str], npt.NDArray[np.int64]]:
    """The distinct canonical labels of a column and how many values have each label.

    Missing values are not counted; labels come in order of first appearance. Counting runs in
    pandas' C loop and only the distinct values are named, except in columns that mix strings
    with other types, which go through :func:`label_codes`.

    >>> labels, counts = label_counts([True, "gold", 1.0, None, False])
    >>> labels, counts.tolist()
    (['1', 'gold', '0'], [2, 1, 1])
    """
    import pandas as pd

    if isinstance(values, pd.Series):
        series = values
    else:
        # As objects: NumPy would read [True, "gold"] as the strings ["True", "gold"].
        array = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
        if array.ndim != 1:
            raise ValueError(f"labels must be one-dimensional, got shape {array.shape}")
        series = pd.Series(array, copy=False)
    counted = series.value_counts(dropna=True, sort=False)
    # Unused categories of a pandas categorical are counted as 0; they are not labels.
    counts = np.asarray(counted, dtype=np.int64)
    present = counts > 0
    uniques = counted.index[present]
    typed = uniques.to_numpy()
    if typed.dtype.kind in "biuf":
        # Distinct numbers of one dtype have distinct labels (see label_codes).
        return _typed_labels(typed).tolist(), counts[present]
    if pd.api.types.infer_dtype(uniques, skipna=False) == "string":
        # Equal strings were counted together and a string is its own label.
        return [str(value) for value in uniques], counts[present]
    codes, labels = label_codes(series)
    return labels, np.bincount(codes[codes >= 0], minlength=len(labels)).astype(np.int64)


def _typed_labels(array: np.ndarray[Any, Any]) -> npt.NDArray[np.object_]:
    if array.dtype.kind == "b":
        return np.where(array, BOOLEAN_LABELS[1], BOOLEAN_LABELS[0]).astype(object)
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


def _split_ambiguous(
    column: npt.NDArray[np.object_],
    codes: npt.NDArray[np.intp],
    unique_values: list[object],
    names: list[str | None],
) -> tuple[npt.NDArray[np.intp], list[str | None]]:
    """Name row by row the values that factorize grouped with an equal value of another label.

    ``pd.factorize`` groups values by Python equality, so ``2**60`` and ``2.0**60`` (or ``1.0``
    and ``Decimal("1.0")``) share a code although their labels differ; strings only ever equal
    strings, and plain numbers up to :data:`MAX_EXACT_INTEGER` that are equal share a label.
    """
    import pandas as pd

    not_string = np.array([not isinstance(value, str) for value in unique_values] + [False])
    if not not_string.any():
        return codes, names
    # A group's first value is one of its rows, so the rows' types cover the representatives.
    numbers = column[not_string[codes]]
    if pd.api.types.infer_dtype(numbers, skipna=False) in _PLAIN_NUMBERS or all(
        issubclass(kind, _PLAIN_TYPES) for kind in set(map(type, numbers))
    ):
        large = [_beyond_exact(value) for value in unique_values]
        if not any(large):
            return codes, names
        ambiguous = np.array([*large, False])[codes]
    else:
        ambiguous = not_string[codes]
    per_row = np.array([*names, None], dtype=object)[codes]
    per_row[ambiguous] = [canonical_label(value) for value in column[ambiguous]]
    row_codes, labels = pd.factorize(per_row, use_na_sentinel=True)
    return row_codes.astype(np.intp, copy=False), list(labels)


def _beyond_exact(value: object) -> bool:
    if isinstance(value, int | np.integer):
        return abs(int(value)) > MAX_EXACT_INTEGER
    return isinstance(value, float | np.floating) and abs(float(value)) > MAX_EXACT_INTEGER


def _merge_equal_labels(
    codes: npt.NDArray[np.intp], names: list[str | None]
) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Codes into distinct labels when equal labels (``1`` and ``"1"``) had codes of their own."""
    distinct = list(dict.fromkeys(name for name in names if name is not None))
    if len(distinct) == len(names):
        return codes, distinct
    position = {label: index for index, label in enumerate(distinct)}
    remap = [-1 if name is None else position[name] for name in names]
    return np.array([*remap, -1], dtype=np.intp)[codes], distinct


def _is_missing_marker(value: object) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False
    return value is pd.NA or value is pd.NaT
