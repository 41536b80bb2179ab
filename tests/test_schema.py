from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from watchkeeper.errors import SchemaError
from watchkeeper.schema import ColumnKind, Schema, TaskType, infer_kind, infer_schema

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (RNG.normal(size=200), ColumnKind.NUMERIC),
        (RNG.integers(0, 1000, size=200), ColumnKind.NUMERIC),
        (RNG.integers(0, 5, size=200), ColumnKind.CATEGORICAL),
        (RNG.integers(0, 2, size=200), ColumnKind.BOOLEAN),
        (np.array([0.0, 1.0, np.nan, 1.0]), ColumnKind.BOOLEAN),
        (RNG.random(200) > 0.5, ColumnKind.BOOLEAN),
        (pd.date_range("2024-01-01", periods=200, freq="h"), ColumnKind.DATETIME),
        (pd.Categorical(["a", "b"] * 100), ColumnKind.CATEGORICAL),
        (np.array(["red", "green", "blue"] * 70), ColumnKind.CATEGORICAL),
        (np.array([f"free text {i}" for i in range(300)]), ColumnKind.TEXT),
    ],
    ids=[
        "float",
        "many-ints",
        "few-ints",
        "zero-one",
        "zero-one-float",
        "bool",
        "datetime",
        "pandas-category",
        "strings",
        "text",
    ],
)
def test_inference_rules(values: object, kind: ColumnKind) -> None:
    assert infer_kind(pd.Series(values, name="column")) is kind


def test_identifier_names_with_unique_values_are_text() -> None:
    ids = pd.Series([f"u{i}" for i in range(50)], name="user_id")
    assert infer_kind(ids) is ColumnKind.TEXT
    repeated = pd.Series(["a", "b"] * 25, name="user_id")
    assert infer_kind(repeated) is ColumnKind.CATEGORICAL


def test_overrides_win_and_exclusions_drop() -> None:
    frame = pd.DataFrame(
        {
            "zip": RNG.integers(10000, 99999, 100),
            "x": RNG.normal(size=100),
            "y": RNG.integers(0, 2, 100),
            "pred": RNG.integers(0, 2, 100),
            "noise": RNG.normal(size=100),
        }
    )
    schema = Schema.from_options(
        categorical=["zip"], exclude=["noise"], target="y", prediction="pred"
    )
    resolved = infer_schema(frame, schema)
    assert resolved.features == {"zip": ColumnKind.CATEGORICAL, "x": ColumnKind.NUMERIC}
    assert resolved.outputs == {"pred": ColumnKind.BOOLEAN}
    assert resolved.task is TaskType.CLASSIFICATION
    assert resolved.to_dict()["target_kind"] == "boolean"


def test_regression_task_inferred_from_numeric_target() -> None:
    frame = pd.DataFrame(
        {"x": RNG.normal(size=50), "y": RNG.normal(size=50), "yhat": RNG.normal(size=50)}
    )
    resolved = infer_schema(frame, Schema(target="y", prediction="yhat"))
    assert resolved.task is TaskType.REGRESSION


def test_missing_role_columns_are_named() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(SchemaError, match="target column 'label' is not in the reference"):
        infer_schema(frame, Schema(target="label"))
    with pytest.raises(SchemaError, match="probability column 'p'"):
        infer_schema(frame, Schema(proba="p"))
    with pytest.raises(SchemaError, match="given a kind are not in the reference data: nope"):
        infer_schema(frame, Schema(kinds={"nope": ColumnKind.NUMERIC}))


def test_schema_validates_parameters() -> None:
    with pytest.raises(SchemaError, match="max_text_share"):
        Schema(max_text_share=0.0)
    with pytest.raises(ValueError, match="not-a-kind"):
        Schema(kinds={"x": "not-a-kind"})  # type: ignore[dict-item]


def test_multiclass_proba_mapping() -> None:
    schema = Schema(proba={"a": "p_a", "b": "p_b"})
    assert schema.proba_columns == {"a": "p_a", "b": "p_b"}
    assert schema.role_columns == ["p_a", "p_b"]


def test_proba_class_labels_are_canonical() -> None:
    # A boolean target's classes are "0" and "1" (watchkeeper.labels), so are their columns.
    schema = Schema(proba={False: "p_no", True: "p_yes"})
    assert schema.proba == schema.proba_columns == {"0": "p_no", "1": "p_yes"}
    assert Schema(proba={0.0: "p0", 2.0: "p2"}).proba_columns == {"0": "p0", "2": "p2"}
    with pytest.raises(SchemaError, match="proba: the class label None is missing"):
        Schema(proba={None: "p"})
    with pytest.raises(SchemaError, match="proba: class labels '1' and 1 are both '1'"):
        Schema(proba={"1": "p_text", 1: "p_number"})
