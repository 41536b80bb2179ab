"""MLflow model directories ↔ watchkeeper flavors: one mapping, read for import, written for mirror.

An MLflow model is a directory with an ``MLmodel`` file naming its flavors. Importing picks the
first flavor watchkeeper can load natively, in this order:

==================================================  =====================================
MLflow flavor (``MLmodel``)                         watchkeeper flavor
==================================================  =====================================
``watchkeeper`` (written by :func:`write_model`)    the same flavor, the same bytes
``onnx``                                            ``onnx``
``xgboost`` (``ubj`` / ``json`` file)               ``xgboost``
``lightgbm`` (a native Booster)                     ``lightgbm``
``sklearn`` / ``lightgbm``, ``skops`` format        ``sklearn`` (safe)
``sklearn`` / ``lightgbm``, (cloud)pickle format    ``pickle`` (needs ``trust``)
``python_function`` only                            ``pyfunc``: the zipped directory, loaded
                                                    by ``mlflow.pyfunc`` (needs ``trust``)
==================================================  =====================================

Mirroring writes the reverse: a directory holding the artifact, a ``watchkeeper`` flavor (so a
re-import gives back the same bytes and sha256) and, where MLflow has one, the matching native
flavor and ``python_function`` loader, so ``mlflow.pyfunc.load_model`` works on the mirror too.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from watchkeeper.errors import ConfigError

__all__ = ["PYFUNC_ENTRY_POINT", "MappedModel", "read_model", "write_model"]

#: The factory a ``python_function``-only MLflow model is loaded by (see :mod:`.pyfunc`).
PYFUNC_ENTRY_POINT: Final = "watchkeeper.registry.mlflow.pyfunc:load_model"
_PICKLE_FORMATS: Final = ("pickle", "cloudpickle")
# MLflow column types → watchkeeper column kinds (anything else is numeric for a model input).
_KINDS: Final = {
    "string": "categorical",
    "boolean": "boolean",
    "datetime": "datetime",
    "binary": "text",
}
# watchkeeper flavor → (artifact file name, native MLflow flavor conf or None, pyfunc loader).
_NATIVE: Final[dict[str, tuple[str, str | None, str | None]]] = {
    "sklearn": ("model.skops", "sklearn", "mlflow.sklearn"),
    "onnx": ("model.onnx", "onnx", "mlflow.onnx"),
    "xgboost": ("model.ubj", "xgboost", "mlflow.xgboost"),
    "lightgbm": ("model.lgb", "lightgbm", "mlflow.lightgbm"),
    "pickle": ("model.pkl", None, None),
    "pyfunc": ("model.bin", None, None),
}


@dataclass(frozen=True)
class MappedModel:
    """An MLflow model as a watchkeeper version: flavor, artifact bytes and how it loads."""

    flavor: str
    data: bytes
    source_flavor: str
    needs_trust: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    signature: Mapping[str, Any] | None = None


def _mlmodel(directory: Path) -> dict[str, Any]:
    path = directory / "MLmodel"
    if not path.is_file():
        raise ConfigError(
            f"flavor: {directory.name!r} is not an MLflow model (no MLmodel file)", key="flavor"
        )
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document if isinstance(document, dict) else {}


def _signature(document: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"features": {name: kind}}`` from a column-based MLflow signature (None otherwise)."""
    inputs = (document.get("signature") or {}).get("inputs")
    if not inputs:
        return None
    columns = json.loads(inputs) if isinstance(inputs, str) else inputs
    if not columns or not all(isinstance(c, dict) and c.get("name") for c in columns):
        return None  # a tensor signature names no columns
    return {
        "features": {str(c["name"]): _KINDS.get(str(c.get("type")), "numeric") for c in columns}
    }


def _zip_directory(directory: Path) -> bytes:
    """The directory as a zip, entries sorted and dated alike: the same model, the same bytes."""
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), (1980, 1, 1, 0, 0, 0))
            archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return sink.getvalue()


def _sklearn_like(source: str, conf: Mapping[str, Any], directory: Path, key: str) -> MappedModel:
    """A scikit-learn-API model (``sklearn`` or LightGBM's wrappers): skops, else a pickle."""
    data = (directory / str(conf[key])).read_bytes()
    serialization = str(conf.get("serialization_format") or "cloudpickle")
    if serialization == "skops":
        return MappedModel(
            "sklearn", data, source, needs_trust=bool(conf.get("skops_trusted_types"))
        )
    if serialization in _PICKLE_FORMATS:
        return MappedModel("pickle", data, source, needs_trust=True)
    raise ConfigError(
        f"flavor: the {source} model is saved as {serialization!r}, which watchkeeper cannot "
        "load (skops, pickle or cloudpickle)",
        key="flavor",
    )


def read_model(directory: Path) -> MappedModel:
    """The watchkeeper version an MLflow model directory maps to; ConfigError naming its flavors
    when none maps."""
    document = _mlmodel(directory)
    flavors: Mapping[str, Any] = document.get("flavors") or {}
    signature = _signature(document)
    mapped = _map_flavors(flavors, directory)
    if mapped is None:
        raise ConfigError(
            f"flavor: the MLflow model's flavors ({', '.join(flavors) or 'none'}) map to no "
            "watchkeeper flavor; supported: onnx, xgboost (ubj/json), lightgbm, sklearn "
            "(skops or pickle), python_function",
            key="flavor",
        )
    if mapped.signature is None and signature is not None:
        return MappedModel(
            mapped.flavor,
            mapped.data,
            mapped.source_flavor,
            mapped.needs_trust,
            mapped.options,
            signature,
        )
    return mapped


def _map_flavors(flavors: Mapping[str, Any], directory: Path) -> MappedModel | None:
    own = flavors.get("watchkeeper")
    if isinstance(own, dict):
        options = {"entry_point": own["entry_point"]} if own.get("entry_point") else {}
        return MappedModel(
            str(own["flavor"]),
            (directory / str(own["artifact"])).read_bytes(),
            "watchkeeper",
            needs_trust=bool(own.get("trusted")),
            options=options,
            signature=own.get("signature"),
        )
    if "onnx" in flavors:
        return MappedModel("onnx", (directory / str(flavors["onnx"]["data"])).read_bytes(), "onnx")
    if "xgboost" in flavors:
        conf = flavors["xgboost"]
        if str(conf.get("model_format", "xgb")) in ("ubj", "json"):
            return MappedModel("xgboost", (directory / str(conf["data"])).read_bytes(), "xgboost")
    if "lightgbm" in flavors:
        conf = flavors["lightgbm"]
        if conf.get("model_class", "lightgbm.basic.Booster") == "lightgbm.basic.Booster":
            return MappedModel("lightgbm", (directory / str(conf["data"])).read_bytes(), "lightgbm")
        return _sklearn_like("lightgbm", conf, directory, "data")
    if "sklearn" in flavors:
        return _sklearn_like("sklearn", flavors["sklearn"], directory, "pickled_model")
    if "python_function" in flavors:
        return MappedModel(
            "pyfunc",
            _zip_directory(directory),
            "python_function",
            needs_trust=True,
            options={"entry_point": PYFUNC_ENTRY_POINT},
        )
    return None


def write_model(
    directory: Path,
    *,
    flavor: str,
    data: bytes,
    trusted: bool,
    signature: Mapping[str, Any],
) -> None:
    """Write a version as an MLflow model directory (``MLmodel`` plus the artifact)."""
    file_name, native, loader = _NATIVE[flavor]
    # UBJSON starts with "{" too; JSON has a quoted key (or blanks) next.
    if flavor == "xgboost" and re.match(rb"\{\s*\"", data):
        file_name = "model.json"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / file_name).write_bytes(data)
    features = dict(signature.get("features") or {})
    own: dict[str, Any] = {
        "flavor": flavor,
        "artifact": file_name,
        "trusted": trusted,
        "signature": {"features": features},
    }
    if signature.get("entry_point"):
        own["entry_point"] = signature["entry_point"]
    flavors: dict[str, Any] = {"watchkeeper": own}
    if native == "sklearn":
        flavors["sklearn"] = {
            "pickled_model": file_name,
            "serialization_format": "skops",
            "skops_trusted_types": None,
        }
    elif native == "onnx":
        flavors["onnx"] = {"data": file_name, "providers": ["CPUExecutionProvider"]}
    elif native == "xgboost":
        flavors["xgboost"] = {
            "data": file_name,
            "model_class": "xgboost.core.Booster",
            "model_format": file_name.rsplit(".", 1)[1],
        }
    elif native == "lightgbm":
        flavors["lightgbm"] = {"data": file_name, "model_class": "lightgbm.basic.Booster"}
    if loader is not None:
        key = "model_path" if native == "sklearn" else "data"
        flavors["python_function"] = {"loader_module": loader, key: file_name}
    document: dict[str, Any] = {"flavors": flavors}
    if features:
        inputs = [
            {"type": _mlflow_type(kind), "name": name, "required": True}
            for name, kind in features.items()
        ]
        document["signature"] = {"inputs": json.dumps(inputs), "outputs": None, "params": None}
    (directory / "MLmodel").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def _mlflow_type(kind: str) -> str:
    """The MLflow column type of a watchkeeper column kind."""
    return {"categorical": "string", "boolean": "boolean", "datetime": "datetime"}.get(
        kind, "string" if kind == "text" else "double"
    )
