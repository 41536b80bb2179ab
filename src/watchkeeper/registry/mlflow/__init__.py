"""The MLflow adapter: import versions and aliases from an MLflow registry, mirror ours to one.

See docs/registry.md. Needs MLflow's client (``pip install 'watchkeeper[mlflow]'``).
:func:`import_from_mlflow` brings an MLflow model's versions (artifact, flavor, run params and
metrics, tags, description) and aliases into a :class:`~watchkeeper.registry.Registry`;
:func:`mirror_to_mlflow` registers watchkeeper's versions in MLflow and moves its aliases to
match. Both are idempotent: run them again and only what changed is done.
"""

from watchkeeper.registry.mlflow.connection import MlflowAdapterError
from watchkeeper.registry.mlflow.importer import ImportReport, import_from_mlflow, mlflow_source
from watchkeeper.registry.mlflow.mirror import MirrorReport, mirror_to_mlflow

__all__ = [
    "ImportReport",
    "MirrorReport",
    "MlflowAdapterError",
    "import_from_mlflow",
    "mirror_to_mlflow",
    "mlflow_source",
]
