"""Import an MLflow registered model's versions and aliases into watchkeeper's registry.

Each MLflow version becomes a watchkeeper version (its artifact mapped to a watchkeeper flavor by
:mod:`.formats`; its run's params and metrics, its tags and description kept), oldest first. The
MLflow source — model name, version and run id — is kept on the version's tags, so a re-import
skips what is already there. The model's aliases are then moved to the imported versions, each
move recorded in the alias history with a reason naming MLflow.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from watchkeeper.errors import ConfigError, WatchkeeperError
from watchkeeper.registry.mlflow.connection import (
    MlflowAdapterError,
    connect,
    mlflow_errors,
    model_versions,
)
from watchkeeper.registry.mlflow.formats import read_model
from watchkeeper.registry.registry import Registry, check_alias
from watchkeeper.store.registry import AliasMoveRecord, RegistryVersionRecord

__all__ = [
    "MIRROR_MODEL",
    "MIRROR_SHA256",
    "MIRROR_VERSION",
    "SOURCE_MODEL",
    "SOURCE_RUN",
    "SOURCE_VERSION",
    "ImportReport",
    "import_from_mlflow",
    "mlflow_source",
]

#: Tags of an imported version naming its MLflow source (the key re-imports are matched by).
SOURCE_MODEL: Final = "watchkeeper.mlflow.model"
SOURCE_VERSION: Final = "watchkeeper.mlflow.version"
SOURCE_RUN: Final = "watchkeeper.mlflow.run_id"
#: Tags of an MLflow version mirrored from watchkeeper (see :mod:`.mirror`).
MIRROR_MODEL: Final = "watchkeeper.model"
MIRROR_VERSION: Final = "watchkeeper.version"
MIRROR_SHA256: Final = "watchkeeper.sha256"
_GIT_COMMIT: Final = "mlflow.source.git.commit"


@dataclass
class ImportReport:
    """What an import did: MLflow version → watchkeeper version, new or already there."""

    model: str
    imported: dict[int, int] = field(default_factory=dict)
    already_imported: dict[int, int] = field(default_factory=dict)
    alias_moves: list[AliasMoveRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def versions(self) -> dict[int, int]:
        """Every MLflow version of the import mapped to its watchkeeper version."""
        return {**self.already_imported, **self.imported}


def mlflow_source(record: RegistryVersionRecord) -> tuple[str, int, str] | None:
    """``(MLflow model, version, run id)`` a version was imported from (None: not imported)."""
    tags = record.tags
    if SOURCE_MODEL not in tags or SOURCE_VERSION not in tags:
        return None
    return str(tags[SOURCE_MODEL]), int(tags[SOURCE_VERSION]), str(tags.get(SOURCE_RUN, ""))


def import_from_mlflow(
    registry: Registry,
    name: str,
    *,
    tracking_uri: str,
    imported_by: str,
    into: str | None = None,
    versions: Sequence[int] | None = None,
    trust: bool = False,
) -> ImportReport:
    """Import the versions (all, or ``versions``) and aliases of MLflow model ``name``.

    ``into`` names the watchkeeper model (default: the same name). ``trust`` allows versions
    whose loading runs code (pickled scikit-learn models, ``python_function``-only models).
    Versions already imported (same MLflow name, version and run id) are skipped.
    """
    target = into or name
    report = ImportReport(model=target)
    client = connect(tracking_uri)
    with mlflow_errors(tracking_uri, name):
        found = model_versions(client, name)
        registered = client.get_registered_model(name)
    known = _imported_versions(registry, target)
    wanted = None if versions is None else {int(number) for number in versions}
    for source in found:
        number = int(source.version)
        if wanted is not None and number not in wanted:
            continue
        key = (name, number, source.run_id or "")
        if key in known:
            report.already_imported[number] = known[key]
            continue
        if (mirrored := _mirrored_from(registry, target, source.tags)) is not None:
            report.already_imported[number] = mirrored
            continue
        if str(source.status) != "READY":
            report.notes.append(f"version {number} is {source.status} in MLflow; not imported")
            continue
        record = _import_version(
            registry, client, source, target, tracking_uri, registered, imported_by, trust
        )
        report.imported[number] = record.version
    if wanted is not None and (missing := wanted - {int(v.version) for v in found}):
        report.notes.append(
            f"MLflow model {name!r} has no version {', '.join(map(str, sorted(missing)))}"
        )
    _import_aliases(registry, report, name, dict(registered.aliases), tracking_uri, imported_by)
    return report


def _imported_versions(registry: Registry, model: str) -> dict[tuple[str, int, str], int]:
    """(MLflow model, version, run id) → watchkeeper version, for versions already imported."""
    try:
        records = registry.versions(model)
    except WatchkeeperError:
        return {}
    return {source: record.version for record in records if (source := mlflow_source(record))}


def _mirrored_from(registry: Registry, model: str, tags: Mapping[str, str]) -> int | None:
    """The watchkeeper version an MLflow version is a mirror of (None: it is not one of ours)."""
    if tags.get(MIRROR_MODEL) != model or not str(tags.get(MIRROR_VERSION, "")).isdigit():
        return None
    try:
        record = registry.version(model, int(tags[MIRROR_VERSION]))
    except WatchkeeperError:
        return None
    return record.version if record.artifact_sha256 == tags.get(MIRROR_SHA256) else None


def _run_metadata(client: Any, run_id: str | None) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """The source run's params, metrics and git commit (empty when the version has no run)."""
    if not run_id:
        return {}, {}, None
    exceptions = importlib.import_module("mlflow.exceptions")
    try:
        run = client.get_run(run_id)
    except exceptions.MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}, {}, None  # the run was deleted; the version outlives it
        raise
    return dict(run.data.params), dict(run.data.metrics), run.data.tags.get(_GIT_COMMIT)


def _import_version(
    registry: Registry,
    client: Any,
    source: Any,
    target: str,
    tracking_uri: str,
    registered: Any,
    imported_by: str,
    trust: bool,
) -> RegistryVersionRecord:
    """Download one MLflow version, map its flavor and register it."""
    label = f"MLflow {source.name}/{source.version}"
    artifacts = importlib.import_module("mlflow.artifacts")
    with mlflow_errors(tracking_uri, source.name), tempfile.TemporaryDirectory() as scratch:
        uri = client.get_model_version_download_uri(source.name, source.version)
        try:
            local = Path(
                artifacts.download_artifacts(
                    artifact_uri=uri, dst_path=scratch, tracking_uri=tracking_uri
                )
            )
        except Exception as exc:  # the artifact store's own error (S3 credentials, a 404…)
            raise MlflowAdapterError(
                f"cannot download the artifacts of {label} from {uri}: {type(exc).__name__}: {exc}",
                tracking_uri=tracking_uri,
            ) from None
        try:
            mapped = read_model(local)
        except ConfigError as exc:
            raise ConfigError(f"{label}: {exc}", key="flavor") from None
        params, metrics, commit = _run_metadata(client, source.run_id)
    if mapped.needs_trust and not trust:
        raise ConfigError(
            f"trust: {label} is a {mapped.source_flavor} model whose loading runs code it "
            f"contains (watchkeeper flavor {mapped.flavor}); import it with trust (--trust) only "
            "if you trust its source",
            key="trust",
        )
    tags: dict[str, Any] = {
        **dict(source.tags),
        SOURCE_MODEL: source.name,
        SOURCE_VERSION: int(source.version),
        SOURCE_RUN: source.run_id or "",
        "watchkeeper.mlflow.tracking_uri": tracking_uri,
        "watchkeeper.mlflow.flavor": mapped.source_flavor,
    }
    try:
        return registry.register(
            target,
            mapped.data,
            flavor=mapped.flavor,
            trust=mapped.needs_trust,
            entry_point=mapped.options.get("entry_point"),
            description=source.description or registered.description or "",
            params=params,
            metrics=metrics,
            tags=tags,
            signature=mapped.signature,
            code_revision=commit,
            registered_by=imported_by,
        )
    except WatchkeeperError:
        raise
    except Exception as exc:  # a runtime's own error (onnxruntime, xgboost…) on a bad artifact
        raise ConfigError(
            f"{label} ({mapped.flavor}) does not load: {type(exc).__name__}: {exc}",
            key="flavor",
        ) from None


def _import_aliases(
    registry: Registry,
    report: ImportReport,
    name: str,
    aliases: Mapping[str, str],
    tracking_uri: str,
    imported_by: str,
) -> None:
    """Move each MLflow alias to its imported version (recorded; no move when already there)."""
    mapped = report.versions
    for alias, version in sorted(aliases.items()):
        number = int(version)
        if number not in mapped:
            report.notes.append(f"alias {alias!r}: MLflow version {number} was not imported")
            continue
        try:
            check_alias(alias)
        except ConfigError as exc:
            report.notes.append(f"alias {alias!r} not imported: {exc}")
            continue
        move = registry.set_alias(
            report.model,
            alias,
            mapped[number],
            moved_by=imported_by,
            reason=f"imported from MLflow ({tracking_uri}): {name}@{alias} is version {number}",
        )
        if move is not None:
            report.alias_moves.append(move)
