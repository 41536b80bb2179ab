"""Model flavors: how a registered artifact becomes something that predicts.

=================  ======================================  ============================
flavor             artifact                                loading
=================  ======================================  ============================
``sklearn``        skops file (``.skops``)                 safe: only types skops trusts,
                                                           others need ``trust``
``pickle``         joblib / pickle (``.joblib``, ``.pkl``)  only with ``trust`` (loading a
                                                           pickle runs code it contains)
``onnx``           ONNX model (``.onnx``)                  onnxruntime, CPU
``xgboost``        XGBoost model (``.ubj``, ``.json``)     native Booster
``lightgbm``       LightGBM model text (``.txt``)          native Booster
``pyfunc``         any file, plus ``entry_point``          ``package.module:factory``
                                                           called with the file's path
=================  ======================================  ============================

Every flavor gives a :class:`LoadedModel`: ``predict(frame)`` and, for classifiers,
``predict_proba(frame)`` with the class labels in canonical form (:mod:`watchkeeper.labels`),
the features taken from the frame in the version's signature order.
"""

from __future__ import annotations

import importlib
import io
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from watchkeeper.entrypoints import load_entry_point
from watchkeeper.errors import ConfigError, InputError
from watchkeeper.labels import canonical_label

__all__ = [
    "FLAVORS",
    "LoadedModel",
    "dump_object",
    "flavor_from_path",
    "load_model",
    "model_features",
]

FLAVORS: Final = ("sklearn", "pickle", "onnx", "xgboost", "lightgbm", "pyfunc")
_SUFFIXES: Final = {
    ".skops": "sklearn",
    ".joblib": "pickle",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".onnx": "onnx",
    ".ubj": "xgboost",
    ".json": "xgboost",
    ".txt": "lightgbm",
}


def _require(module: str, extra: str) -> Any:
    """Import a flavor's runtime, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"flavor: this flavor needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'watchkeeper[{extra}]'",
            key="flavor",
        ) from None


def _check_flavor(flavor: str) -> str:
    if flavor not in FLAVORS:
        raise ConfigError(
            f"flavor: unknown flavor {flavor!r}; choose one of {', '.join(FLAVORS)}", key="flavor"
        )
    return flavor


def flavor_from_path(path: str | Path, flavor: str | None = None) -> str:
    """The flavor of a model file: ``flavor`` when given, else from its suffix."""
    if flavor is not None:
        return _check_flavor(flavor)
    suffix = Path(path).suffix.lower()
    found = _SUFFIXES.get(suffix)
    if found is None:
        known = ", ".join(f"{ext} ({name})" for ext, name in _SUFFIXES.items())
        raise ConfigError(
            f"flavor: cannot tell the flavor of {Path(path).name!r} from its suffix; give it "
            f"(one of {', '.join(FLAVORS)}) — known suffixes: {known}",
            key="flavor",
        )
    return found


def dump_object(model: object) -> tuple[str, bytes]:
    """``(flavor, artifact bytes)`` of a Python model object, without pickling it."""
    module = type(model).__module__.split(".")[0]
    if module == "sklearn" or (module != "xgboost" and hasattr(model, "get_params")):
        skops_io = _require("skops.io", "sklearn")

        return "sklearn", skops_io.dumps(model)
    native: Any = model
    if module == "xgboost":
        booster = native.get_booster() if hasattr(native, "get_booster") else native
        return "xgboost", bytes(booster.save_raw(raw_format="ubj"))
    if module == "lightgbm":
        booster = native.booster_ if hasattr(native, "booster_") else native
        return "lightgbm", str(booster.model_to_string()).encode()
    if module == "onnx" and hasattr(model, "SerializeToString"):
        return "onnx", model.SerializeToString()
    raise ConfigError(
        f"model: cannot store a {type(model).__qualname__} object; register a scikit-learn, "
        "XGBoost, LightGBM or ONNX model, or a file with its flavor (pyfunc with an "
        "entry point for anything else)",
        key="model",
    )


@dataclass(frozen=True)
class LoadedModel:
    """A version ready to predict, whatever its flavor."""

    flavor: str
    features: tuple[str, ...]
    _predict: Callable[[pd.DataFrame], npt.NDArray[Any]]
    _proba: Callable[[pd.DataFrame], tuple[list[str], npt.NDArray[np.float64]]] | None = None
    # A classifier predicts class labels (with or without probabilities), else numbers.
    is_classifier: bool = False

    def __post_init__(self) -> None:
        if self._proba is not None:
            object.__setattr__(self, "is_classifier", True)

    def _inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self.features:
            return frame
        missing = [name for name in self.features if name not in frame.columns]
        if missing:
            raise InputError(
                f"features: missing {', '.join(map(repr, missing))}; the model expects "
                f"{', '.join(self.features)}",
                column=missing[0],
            )
        return frame[list(self.features)]

    def predict(self, frame: pd.DataFrame) -> list[Any]:
        """One prediction per row: class labels (canonical strings) or numbers."""
        values = self._predict(self._inputs(frame))
        if self.is_classifier:
            return [canonical_label(value) for value in np.asarray(values).ravel()]
        return [float(value) for value in np.asarray(values, dtype=np.float64).ravel()]

    def predict_proba(self, frame: pd.DataFrame) -> tuple[list[str], npt.NDArray[np.float64]]:
        """``(classes, probabilities)``: one row per input row, one column per class."""
        if self._proba is None:
            raise InputError(
                f"this {self.flavor} model gives no class probabilities", column="proba"
            )
        return self._proba(self._inputs(frame))


def _classes(values: Sequence[Any]) -> list[str]:
    return [str(canonical_label(value)) for value in values]


def _binary_or_matrix(
    scores: npt.NDArray[Any], classes: Sequence[str] | None = None
) -> tuple[list[str], npt.NDArray[np.float64]]:
    """Probabilities as a matrix: a 1-D array is the positive class of a binary model."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = np.column_stack([1.0 - scores, scores])
    names = list(classes) if classes is not None else [str(i) for i in range(scores.shape[1])]
    return names, scores


def _from_estimator(flavor: str, model: Any, features: Sequence[str]) -> LoadedModel:
    if not hasattr(model, "predict"):
        raise ConfigError(f"the {flavor} artifact holds a {type(model).__name__} with no predict")
    proba = None
    if hasattr(model, "predict_proba"):
        classes = _classes(getattr(model, "classes_", ()))

        def proba(frame: pd.DataFrame) -> tuple[list[str], npt.NDArray[np.float64]]:
            matrix = np.asarray(model.predict_proba(frame), dtype=np.float64)
            names = classes or [str(i) for i in range(matrix.shape[1])]
            return names, matrix

    classifier = proba is not None or hasattr(model, "classes_")
    return LoadedModel(flavor, tuple(features), model.predict, proba, classifier)


def _load_sklearn(data: bytes, trust: bool) -> Any:
    skops_io = _require("skops.io", "sklearn")

    untrusted = skops_io.get_untrusted_types(data=data)
    if untrusted and not trust:
        raise ConfigError(
            "trust: the skops file holds types skops does not trust by default "
            f"({', '.join(untrusted)}); register it with trust only if you trust its source",
            key="trust",
        )
    return skops_io.loads(data, trusted=untrusted or None)


def _load_pickle(data: bytes, trust: bool) -> Any:
    if not trust:
        raise ConfigError(
            "trust: a pickle or joblib file runs code it contains when it is loaded; register "
            "it with trust (--trust) only if you trust its source, or save the model with skops",
            key="trust",
        )
    joblib = _require("joblib", "sklearn")

    return joblib.load(io.BytesIO(data))


def _onnx(data: bytes, features: Sequence[str]) -> LoadedModel:
    onnxruntime = _require("onnxruntime", "onnx")

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    inputs = [item.name for item in session.get_inputs()]
    outputs = [item.name for item in session.get_outputs()]

    def feed(frame: pd.DataFrame) -> dict[str, Any]:
        if len(inputs) == 1:
            return {inputs[0]: frame.to_numpy(dtype=np.float32)}
        return {name: frame[[name]].to_numpy(dtype=np.float32) for name in inputs}

    def predict(frame: pd.DataFrame) -> npt.NDArray[Any]:
        return np.asarray(session.run(outputs[:1], feed(frame))[0])

    def proba(frame: pd.DataFrame) -> tuple[list[str], npt.NDArray[np.float64]]:
        scores = session.run(outputs[1:2], feed(frame))[0]
        if isinstance(scores, list):  # a ZipMap output: one {class: probability} per row
            names = list(scores[0]) if scores else []
            matrix = np.array([[row[name] for name in names] for row in scores], dtype=np.float64)
            return _classes(names), matrix
        return _binary_or_matrix(scores)

    return LoadedModel("onnx", tuple(features), predict, proba if len(outputs) > 1 else None)


def _booster_model(
    flavor: str,
    features: Sequence[str],
    raw: Callable[[pd.DataFrame], npt.NDArray[Any]],
    *,
    classifier: bool,
) -> LoadedModel:
    """A native booster: raw scores are values, or probabilities whose argmax is the class."""
    if not classifier:
        return LoadedModel(flavor, tuple(features), raw)

    def proba(frame: pd.DataFrame) -> tuple[list[str], npt.NDArray[np.float64]]:
        return _binary_or_matrix(raw(frame))

    def predict(frame: pd.DataFrame) -> npt.NDArray[Any]:
        classes: npt.NDArray[Any] = np.argmax(proba(frame)[1], axis=1)
        return classes

    return LoadedModel(flavor, tuple(features), predict, proba)


def _xgboost(data: bytes, features: Sequence[str]) -> LoadedModel:
    xgboost = _require("xgboost", "xgboost")

    booster = xgboost.Booster()
    booster.load_model(bytearray(data))
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]

    def raw(frame: pd.DataFrame) -> npt.NDArray[Any]:
        scores: npt.NDArray[Any] = np.asarray(booster.predict(xgboost.DMatrix(frame)))
        return scores

    classifier = objective.startswith(("binary:", "multi:softprob"))
    return _booster_model("xgboost", features, raw, classifier=classifier)


def _lightgbm(data: bytes, features: Sequence[str]) -> LoadedModel:
    lightgbm = _require("lightgbm", "lightgbm")

    booster = lightgbm.Booster(model_str=data.decode())
    objective = str(booster.dump_model(num_iteration=0).get("objective", ""))

    def raw(frame: pd.DataFrame) -> npt.NDArray[Any]:
        scores: npt.NDArray[Any] = np.asarray(booster.predict(frame))
        return scores

    classifier = objective.startswith(("binary", "multiclass"))
    return _booster_model("lightgbm", features, raw, classifier=classifier)


def _pyfunc(data: bytes, options: Mapping[str, Any], features: Sequence[str]) -> LoadedModel:
    factory = load_entry_point(options.get("entry_point"), key="entry_point", what="a factory")
    # The factory gets a path: most loaders read files. The file outlives the call, since a
    # factory may map it lazily.
    with tempfile.NamedTemporaryFile(prefix="watchkeeper-pyfunc-", delete=False) as sink:
        sink.write(data)
    return _from_estimator("pyfunc", factory(Path(sink.name)), features)


def load_model(
    flavor: str,
    data: bytes,
    *,
    trust: bool = False,
    features: Sequence[str] = (),
    options: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """A :class:`LoadedModel` from an artifact's verified bytes."""
    _check_flavor(flavor)
    if flavor == "sklearn":
        return _from_estimator(flavor, _load_sklearn(data, trust), features)
    if flavor == "pickle":
        return _from_estimator(flavor, _load_pickle(data, trust), features)
    if flavor == "onnx":
        return _onnx(data, features)
    if flavor == "xgboost":
        return _xgboost(data, features)
    if flavor == "lightgbm":
        return _lightgbm(data, features)
    return _pyfunc(data, options or {}, features)


def model_features(flavor: str, data: bytes, *, trust: bool = False) -> list[str]:
    """The feature names a model carries itself (empty when it does not say)."""
    if flavor in ("sklearn", "pickle"):
        model = _load_sklearn(data, trust) if flavor == "sklearn" else _load_pickle(data, trust)
        return [str(name) for name in getattr(model, "feature_names_in_", ())]
    if flavor == "xgboost":
        xgboost = _require("xgboost", "xgboost")

        booster = xgboost.Booster()
        booster.load_model(bytearray(data))
        return list(booster.feature_names or ())
    if flavor == "lightgbm":
        lightgbm = _require("lightgbm", "lightgbm")

        names = lightgbm.Booster(model_str=data.decode()).feature_name()
        # LightGBM names unnamed columns Column_0, Column_1…: that says nothing.
        return [] if all(name.startswith("Column_") for name in names) else list(names)
    return []
