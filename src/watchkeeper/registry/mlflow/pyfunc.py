"""The factory of ``pyfunc`` versions imported from ``python_function``-only MLflow models.

Such a version's artifact is the MLflow model directory, zipped; this factory unpacks it and
loads it with ``mlflow.pyfunc`` (which unpickles the model's code: the version is imported only
with ``trust``). The object returned has ``predict(frame)``, like every pyfunc version.
"""

from __future__ import annotations

import importlib
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from watchkeeper.errors import ConfigError

__all__ = ["load_model"]


def load_model(path: Path) -> Any:
    """The ``mlflow.pyfunc`` model zipped at ``path``."""
    try:
        pyfunc = importlib.import_module("mlflow.pyfunc")
    except ImportError:
        raise ConfigError(
            "flavor: this pyfunc version is an MLflow model and needs MLflow's client: "
            "pip install 'watchkeeper[mlflow]'",
            key="flavor",
        ) from None
    # The directory outlives the call: a pyfunc model may read its files lazily.
    directory = Path(tempfile.mkdtemp(prefix="watchkeeper-mlflow-"))
    with zipfile.ZipFile(path) as archive:
        archive.extractall(directory)
    return pyfunc.load_model(str(directory))
