"""Model registry: versions with content-addressed artifacts, aliases with their history.

See docs/registry.md. :class:`Registry` is the entry point; artifacts are kept by
:class:`ArtifactStore`, and :func:`load_model` turns a version of any flavor into a
:class:`LoadedModel`.
"""

from watchkeeper.registry.artifacts import ArtifactIntegrityError, ArtifactStore
from watchkeeper.registry.flavors import LoadedModel, load_model
from watchkeeper.registry.registry import Registry

__all__ = ["ArtifactIntegrityError", "ArtifactStore", "LoadedModel", "Registry", "load_model"]
