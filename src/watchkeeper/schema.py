"""Column kinds, their inference from data, and user overrides.

A :class:`Schema` is what the user says (all optional): forced kinds, excluded columns and the
roles of the target, prediction and probability columns. :func:`infer_schema` resolves it
against a reference data set into a :class:`ResolvedSchema` that names the kind of every
monitored column.

Inference rules (first match wins; documented in ``docs/schema.md``):

1. A kind given by the user (``Schema.kinds`` / ``--categorical``) is used as is.
2. ``bool`` dtype → ``boolean``.
3. datetime dtypes → ``datetime`` (quality only; calendar time always "drifts").
4. pandas ``category`` dtype → ``categorical``.
5. Numbers whose non-missing values are all 0 or 1 → ``boolean``.
6. Integers with at most ``max_integer_categories`` (default 10) distinct values → ``categorical``.
7. Other numbers → ``numeric``.
8. Strings: a name like ``id`` / ``*_id`` / ``*_uuid`` with all values distinct, or more than
   ``max_text_share`` (default 0.5) of the values distinct and over 100 distinct → ``text``
   (identifiers and free text are not tested for drift); otherwise ``categorical``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from watchkeeper.errors import SchemaError
from watchkeeper.labels import canonical_label

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ColumnKind", "ResolvedSchema", "Schema", "TaskType", "infer_kind", "infer_schema"]

_IDENTIFIER_NAME = re.compile(r"(^|_)(id|uuid|guid|key)$", re.IGNORECASE)


class ColumnKind(StrEnum):
    """What a column holds, which decides how it is tested and checked."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    TEXT = "text"

    @property
    def is_monitored_for_drift(self) -> bool:
        """Numeric, categorical and boolean columns get drift tests; the others do not."""
        return self in (ColumnKind.NUMERIC, ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)


class TaskType(StrEnum):
    """The learning task, which decides the performance metrics."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass(frozen=True, slots=True)
class Schema:
    """What the user says about the data; every field is optional.

    Parameters
    ----------
    kinds:
        Forced kinds by column name, e.g. ``{"zip_code": ColumnKind.CATEGORICAL}``.
    exclude:
        Columns to ignore entirely.
    target, prediction:
        Names of the true label and the model output columns (not features).
    proba:
        Probability columns. For a binary task one column with the positive-class
        probability; for more classes a mapping ``class label → column``, whose labels are
        kept in their canonical form (:mod:`watchkeeper.labels`: ``True`` → ``"1"``).
    task:
        Classification or regression; inferred from the target when omitted.
    max_integer_categories, max_text_share:
        Thresholds of the inference rules in the module docstring.
    """

    kinds: Mapping[str, ColumnKind] = field(default_factory=dict)
    exclude: frozenset[str] = frozenset()
    target: str | None = None
    prediction: str | None = None
    proba: str | Mapping[Any, str] | None = None
    task: TaskType | None = None
    max_integer_categories: int = 10
    max_text_share: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "exclude", frozenset(self.exclude))
        if self.proba is not None and not isinstance(self.proba, str):
            object.__setattr__(self, "proba", _canonical_proba(self.proba))
        object.__setattr__(
            self, "kinds", {name: ColumnKind(kind) for name, kind in dict(self.kinds).items()}
        )
        if self.task is not None:
            object.__setattr__(self, "task", TaskType(self.task))
        if self.max_integer_categories < 0:
            raise SchemaError(
                f"max_integer_categories must be >= 0, got {self.max_integer_categories}"
            )
        if not 0.0 < self.max_text_share <= 1.0:
            raise SchemaError(f"max_text_share must be in (0, 1], got {self.max_text_share}")

    @classmethod
    def from_options(
        cls,
        *,
        categorical: Iterable[str] = (),
        numeric: Iterable[str] = (),
        exclude: Iterable[str] = (),
        target: str | None = None,
        prediction: str | None = None,
        proba: str | Mapping[str, str] | None = None,
    ) -> Schema:
        """Build a schema from the CLI-style lists of column names."""
        kinds: dict[str, ColumnKind] = dict.fromkeys(numeric, ColumnKind.NUMERIC)
        kinds.update(dict.fromkeys(categorical, ColumnKind.CATEGORICAL))
        return cls(
            kinds=kinds,
            exclude=frozenset(exclude),
            target=target,
            prediction=prediction,
            proba=proba,
        )

    @property
    def proba_columns(self) -> dict[str, str]:
        """Probability columns as ``class label → column`` (binary: ``{"1": column}``)."""
        if self.proba is None:
            return {}
        if isinstance(self.proba, str):
            return {"1": self.proba}
        return dict(self.proba)

    @property
    def role_columns(self) -> list[str]:
        """Target, prediction and probability columns, in that order."""
        roles = [c for c in (self.target, self.prediction) if c is not None]
        return roles + [c for c in self.proba_columns.values() if c not in roles]


def _canonical_proba(proba: Mapping[Any, str]) -> dict[str, str]:
    columns: dict[str, str] = {}
    given: dict[str, object] = {}
    for value, column in proba.items():
        label = canonical_label(value)
        if label is None:
            raise SchemaError(f"proba: the class label {value!r} is missing; name every class")
        if label in columns:
            raise SchemaError(
                f"proba: class labels {given[label]!r} and {value!r} are both {label!r} "
                "(watchkeeper.labels); give each class one probability column"
            )
        columns[label], given[label] = column, value
    return columns


@dataclass(frozen=True, slots=True)
class ResolvedSchema:
    """The kinds of every monitored column, resolved against reference data.

    ``features`` are the input columns; ``outputs`` the prediction and probability columns
    (tested for prediction drift the same way). ``target`` is never drift-tested as a feature
    but its drift is reported as label drift when present in both data sets.
    """

    features: Mapping[str, ColumnKind]
    outputs: Mapping[str, ColumnKind]
    target: str | None
    target_kind: ColumnKind | None
    prediction: str | None
    proba: Mapping[str, str]
    task: TaskType | None

    @property
    def kinds(self) -> dict[str, ColumnKind]:
        """Every column with a kind: features, outputs and target."""
        kinds = dict(self.features) | dict(self.outputs)
        if self.target is not None and self.target_kind is not None:
            kinds[self.target] = self.target_kind
        return kinds

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "features": {name: kind.value for name, kind in self.features.items()},
            "outputs": {name: kind.value for name, kind in self.outputs.items()},
            "target": self.target,
            "target_kind": None if self.target_kind is None else self.target_kind.value,
            "prediction": self.prediction,
            "proba": dict(self.proba),
            "task": None if self.task is None else self.task.value,
        }


def infer_kind(series: pd.Series, *, schema: Schema | None = None) -> ColumnKind:
    """Infer the kind of one column by the rules in the module docstring."""
    import pandas as pd

    schema = schema or Schema()
    name = str(series.name)
    if name in schema.kinds:
        return schema.kinds[name]
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return ColumnKind.BOOLEAN
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return ColumnKind.DATETIME
    if isinstance(dtype, pd.CategoricalDtype):
        return ColumnKind.CATEGORICAL
    if pd.api.types.is_numeric_dtype(dtype):
        return _numeric_kind(series, schema)
    non_missing = series.dropna()
    if len(non_missing) == 0:
        return ColumnKind.CATEGORICAL
    distinct_count = int(non_missing.nunique())
    if _IDENTIFIER_NAME.search(name) and distinct_count == len(non_missing):
        return ColumnKind.TEXT
    if distinct_count > 100 and distinct_count > schema.max_text_share * len(non_missing):
        return ColumnKind.TEXT
    return ColumnKind.CATEGORICAL


def _numeric_kind(series: pd.Series, schema: Schema) -> ColumnKind:
    """Rules 5–7 in O(n) vectorised passes: 0/1 values, few distinct integers, else numeric."""
    import numpy as np
    import pandas as pd

    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    is_integer = pd.api.types.is_integer_dtype(series.dtype)
    # A value other than 0/1 among the first rows settles rule 5 without a full pass, and
    # for floats the kind with it.
    head = values[:1024]
    head = head[~np.isnan(head)]
    if head.size and not bool(np.all((head == 0.0) | (head == 1.0))):
        if not is_integer:
            return ColumnKind.NUMERIC
        present = values[~np.isnan(values)]
    else:
        present = values[~np.isnan(values)]
        if present.size == 0:
            return ColumnKind.NUMERIC
        if bool(np.all((present == 0.0) | (present == 1.0))):
            return ColumnKind.BOOLEAN
        if not is_integer:
            return ColumnKind.NUMERIC
    limit = schema.max_integer_categories
    # A prefix with too many distinct values settles it without touching the whole column.
    if np.unique(present[:10_000]).size > limit:
        return ColumnKind.NUMERIC
    return ColumnKind.CATEGORICAL if np.unique(present).size <= limit else ColumnKind.NUMERIC


def infer_schema(reference: pd.DataFrame, schema: Schema | None = None) -> ResolvedSchema:
    """Resolve ``schema`` against the reference data: the kind of every column.

    Raises :class:`SchemaError` when a named role column (target, prediction, probability),
    a forced kind or an excluded column names a column that the reference data does not have:
    a typo must not pass silently.
    """
    schema = schema or Schema()
    columns = [str(c) for c in reference.columns]
    present = set(columns)
    for role, column in (("target", schema.target), ("prediction", schema.prediction)):
        if column is not None and column not in present:
            raise SchemaError(
                f"{role} column {column!r} is not in the reference data "
                f"(columns: {', '.join(columns[:20])})",
                column=column,
            )
    for column in schema.proba_columns.values():
        if column not in present:
            raise SchemaError(
                f"probability column {column!r} is not in the reference data", column=column
            )
    for what, named in (("given a kind", schema.kinds), ("excluded", schema.exclude)):
        unknown = sorted(set(named) - present)
        if unknown:
            raise SchemaError(
                f"column(s) {what} are not in the reference data: {', '.join(unknown)} "
                f"(columns: {', '.join(columns[:20])}{', …' if len(columns) > 20 else ''})",
                column=unknown[0],
            )

    roles = set(schema.role_columns)
    features = {
        name: infer_kind(reference[name], schema=schema)
        for name in columns
        if name not in roles and name not in schema.exclude
    }
    outputs: dict[str, ColumnKind] = {}
    if schema.prediction is not None:
        outputs[schema.prediction] = infer_kind(reference[schema.prediction], schema=schema)
    for column in schema.proba_columns.values():
        outputs[column] = ColumnKind.NUMERIC
    target_kind = (
        None if schema.target is None else infer_kind(reference[schema.target], schema=schema)
    )
    task = schema.task
    if task is None and schema.target is not None:
        task = TaskType.REGRESSION if target_kind is ColumnKind.NUMERIC else TaskType.CLASSIFICATION
    return ResolvedSchema(
        features=features,
        outputs=outputs,
        target=schema.target,
        target_kind=target_kind,
        prediction=schema.prediction,
        proba=schema.proba_columns,
        task=task,
    )
