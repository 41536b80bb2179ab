"""Every flavor registers, loads and predicts exactly like the model it came from."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from tests.registry.test_registry import training
from watchkeeper.errors import ConfigError
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.store import Store


class Threshold(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A custom estimator: skops does not trust its type by default."""

    def fit(self, frame: pd.DataFrame, target: np.ndarray) -> Threshold:
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array(frame.columns)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return (frame["age"].to_numpy() > 40).astype(int)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """Flavors do not depend on the backend: one SQLite file is enough here."""
    with Store.open(f"sqlite:///{tmp_path / 'wk.db'}") as store:
        yield Registry(store, ArtifactStore(tmp_path / "artifacts"))


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    return training()


def test_skops_loads_known_types_and_asks_trust_for_others(
    registry: Registry, data: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    frame, target = data
    custom = tmp_path / "custom.skops"
    skops.io.dump(Threshold().fit(frame, target), custom)
    with pytest.raises(ConfigError, match=r"trust: .*test_flavors.Threshold"):
        registry.register("churn", custom, registered_by="ana")
    assert registry.versions("churn") == []
    record = registry.register("churn", custom, trust=True, registered_by="ana")
    assert record.trusted
    assert registry.load(record).predict(frame[:3]) == [
        str(v) for v in (frame["age"][:3] > 40).astype(int)
    ]


def test_pickles_need_trust(
    registry: Registry, data: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    frame, target = data
    path = tmp_path / "model.pkl"
    model = LogisticRegression().fit(frame, target)
    path.write_bytes(pickle.dumps(model))
    with pytest.raises(ConfigError, match="runs code it contains when it is loaded"):
        registry.register("churn", path, registered_by="ana")
    record = registry.register("churn", path, trust=True, registered_by="ana")
    assert record.flavor == "pickle"
    np.testing.assert_allclose(
        registry.load("churn/1").predict_proba(frame)[1], model.predict_proba(frame)
    )


def test_onnx_with_and_without_zipmap(
    registry: Registry, data: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    from skl2onnx import to_onnx

    frame, target = data
    model = LogisticRegression().fit(frame.to_numpy(np.float32), target)
    for zipmap in (True, False):
        onnx = to_onnx(model, frame.to_numpy(np.float32)[:1], options={"zipmap": zipmap})
        path = tmp_path / f"model-{zipmap}.onnx"
        path.write_bytes(onnx.SerializeToString())
        record = registry.register(
            "churn",
            path,
            signature={"features": {"age": "numeric", "income": "numeric"}},
            registered_by="ana",
        )
        loaded = registry.load(record)
        assert loaded.predict(frame) == [str(v) for v in model.predict(frame.to_numpy(np.float32))]
        classes, matrix = loaded.predict_proba(frame)
        assert classes == ["0", "1"]
        np.testing.assert_allclose(matrix, model.predict_proba(frame.to_numpy()), atol=1e-5)


def test_xgboost_and_lightgbm_native_files(
    registry: Registry, data: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    import lightgbm
    import xgboost

    frame, target = data
    xgb = xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(frame, target)
    xgb.save_model(tmp_path / "model.ubj")
    record = registry.register("churn", tmp_path / "model.ubj", registered_by="ana")
    assert record.signature["features"] == {"age": "numeric", "income": "numeric"}
    loaded = registry.load(record)
    np.testing.assert_allclose(loaded.predict_proba(frame)[1], xgb.predict_proba(frame), rtol=1e-6)
    assert loaded.predict(frame) == [str(v) for v in xgb.predict(frame)]

    lgbm = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(frame, target)
    lgbm.booster_.save_model(tmp_path / "model.txt")
    record = registry.register("churn", tmp_path / "model.txt", registered_by="ana")
    loaded = registry.load(record)
    np.testing.assert_allclose(loaded.predict_proba(frame)[1], lgbm.predict_proba(frame), rtol=1e-6)

    reg = xgboost.XGBRegressor(n_estimators=10).fit(frame, frame["age"] * 2)
    record = registry.register("demand", reg, registered_by="ana")
    assert record.flavor == "xgboost"
    np.testing.assert_allclose(registry.load(record).predict(frame), reg.predict(frame), rtol=1e-6)


def test_pyfunc_builds_from_an_entry_point(
    registry: Registry, data: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    frame, _ = data
    path = tmp_path / "weights.json"
    path.write_text(json.dumps({"weights": {"age": 2.0, "income": -1.0}, "bias": 3.0}))
    with pytest.raises(ConfigError, match="entry_point: a pyfunc version needs one"):
        registry.register("score", path, flavor="pyfunc", registered_by="ana")
    with pytest.raises(ConfigError, match=r"cannot import 'nowhere\.module:build'"):
        registry.register(
            "score", path, flavor="pyfunc", entry_point="nowhere.module:build", registered_by="ana"
        )
    record = registry.register(
        "score",
        path,
        flavor="pyfunc",
        entry_point="tests.registry.pyfunc_model:build",
        signature={"features": {"age": "numeric", "income": "numeric"}},
        registered_by="ana",
    )
    expected = frame["age"] * 2.0 - frame["income"] + 3.0
    np.testing.assert_allclose(registry.load(record).predict(frame), expected)


def test_flavor_errors_name_the_choices(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x00")
    with pytest.raises(
        ConfigError, match=r"cannot tell the flavor of 'model.bin'.*sklearn, pickle"
    ):
        registry.register("churn", path, registered_by="ana")
    with pytest.raises(ConfigError, match="unknown flavor 'tensorflow'"):
        registry.register("churn", path, flavor="tensorflow", registered_by="ana")
    with pytest.raises(Exception, match="cannot read the model file"):
        registry.register("churn", tmp_path / "missing.skops", registered_by="ana")
    with pytest.raises(ConfigError, match="cannot store a object object"):
        registry.register("churn", object(), registered_by="ana")
