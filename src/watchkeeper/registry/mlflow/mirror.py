"""Mirror a watchkeeper model's versions and aliases to an MLflow registry.

Each watchkeeper version missing from the MLflow model is logged to a run (experiment
``watchkeeper-mirror`` by default: the artifact as an MLflow model directory written by
:mod:`.formats`, the version's params and metrics) and registered from it, tagged with its
watchkeeper model, version and sha256. A version that was imported from that very MLflow model
is matched to its source instead of registered twice. Then every alias watchkeeper has is set
in MLflow to the matching version, and an MLflow alias watchkeeper removed is deleted there;
aliases watchkeeper never had are left alone. MLflow keeps no alias history: watchkeeper's stays
the record of who moved what, when and why.
"""

from __future__ import annotations

import importlib
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from watchkeeper.registry.mlflow.connection import connect, mlflow_errors, model_versions
from watchkeeper.registry.mlflow.formats import write_model
from watchkeeper.registry.mlflow.importer import (
    MIRROR_MODEL,
    MIRROR_SHA256,
    MIRROR_VERSION,
    mlflow_source,
)
from watchkeeper.registry.registry import Registry, check_alias
from watchkeeper.store.registry import RegistryVersionRecord

__all__ = ["MirrorReport", "mirror_to_mlflow"]

_EXPERIMENT: Final = "watchkeeper-mirror"
# MLflow's limits on a tag or param value; longer values are cut, the artifact keeps everything.
_MAX_VALUE: Final = 5000


@dataclass
class MirrorReport:
    """What a mirror did: watchkeeper version → MLflow version, aliases set and deleted."""

    model: str
    registered: dict[int, int] = field(default_factory=dict)
    already_there: dict[int, int] = field(default_factory=dict)
    aliases_set: dict[str, int] = field(default_factory=dict)
    aliases_deleted: list[str] = field(default_factory=list)

    @property
    def versions(self) -> dict[int, int]:
        """Every watchkeeper version mapped to its MLflow version."""
        return {**self.already_there, **self.registered}


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:_MAX_VALUE]


def mirror_to_mlflow(
    registry: Registry,
    model: str,
    *,
    tracking_uri: str,
    into: str | None = None,
    experiment: str = _EXPERIMENT,
) -> MirrorReport:
    """Register ``model``'s versions missing from MLflow model ``into`` (default: the same name)
    and set or delete MLflow aliases to match watchkeeper's."""
    target = into or model
    records = registry.versions(model)
    report = MirrorReport(model=target)
    client = connect(tracking_uri)
    exceptions = importlib.import_module("mlflow.exceptions")
    with mlflow_errors(tracking_uri, target):
        try:
            client.get_registered_model(target)
        except exceptions.MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            client.create_registered_model(target, tags={MIRROR_MODEL: model})
        existing = _existing(records, model, target, model_versions(client, target))
        for record in records:
            if record.version in existing:
                report.already_there[record.version] = existing[record.version]
            else:
                report.registered[record.version] = _register(
                    registry, client, record, target, experiment
                )
        _mirror_aliases(registry, client, report, model, target)
    return report


def _existing(
    records: list[RegistryVersionRecord], model: str, target: str, found: list[Any]
) -> dict[int, int]:
    """watchkeeper version → MLflow version, for versions already in the MLflow model."""
    mapping: dict[int, int] = {}
    by_source = {(v.name, int(v.version), v.run_id or ""): int(v.version) for v in found}
    digests = {record.version: record.artifact_sha256 for record in records}
    for version in found:
        tags = version.tags
        number = str(tags.get(MIRROR_VERSION, ""))
        if (
            tags.get(MIRROR_MODEL) == model
            and number.isdigit()
            and digests.get(int(number)) == tags.get(MIRROR_SHA256)
        ):
            mapping[int(number)] = int(version.version)
    for record in records:
        source = mlflow_source(record)
        if source is not None and source[0] == target and source in by_source:
            mapping.setdefault(record.version, by_source[source])
    return mapping


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    return str(experiment.experiment_id if experiment else client.create_experiment(name))


def _register(
    registry: Registry, client: Any, record: RegistryVersionRecord, target: str, experiment: str
) -> int:
    """Log one version to a run and register it in MLflow; its MLflow version number."""
    entities = importlib.import_module("mlflow.entities")
    label = f"{record.model}/{record.version}"
    run = client.create_run(
        _experiment_id(client, experiment),
        run_name=label,
        tags={MIRROR_MODEL: record.model, MIRROR_VERSION: str(record.version)},
    )
    run_id = run.info.run_id
    params = [entities.Param(str(k), _text(v)) for k, v in record.params.items()]
    metrics = [
        entities.Metric(str(k), float(v), int(record.registered_at * 1000), 0)
        for k, v in record.metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]
    client.log_batch(run_id, metrics=metrics, params=params)
    with tempfile.TemporaryDirectory() as scratch:
        write_model(
            Path(scratch) / "model",
            flavor=record.flavor,
            data=registry.artifacts.get(record.artifact_sha256),
            trusted=record.trusted,
            signature=record.signature,
        )
        client.log_artifacts(run_id, str(Path(scratch) / "model"), "model")
    client.set_terminated(run_id)
    tags = {str(k): _text(v) for k, v in record.tags.items()}
    tags.update(
        {
            MIRROR_MODEL: record.model,
            MIRROR_VERSION: str(record.version),
            MIRROR_SHA256: record.artifact_sha256,
            "watchkeeper.flavor": record.flavor,
            "watchkeeper.registered_by": record.registered_by,
        }
    )
    created = client.create_model_version(
        target,
        f"{run.info.artifact_uri}/model",
        run_id=run_id,
        tags=tags,
        description=record.description or None,
    )
    return int(created.version)


def _mirror_aliases(
    registry: Registry, client: Any, report: MirrorReport, model: str, target: str
) -> None:
    """Set MLflow's aliases to watchkeeper's; delete those watchkeeper removed."""
    theirs = {alias: int(v) for alias, v in client.get_registered_model(target).aliases.items()}
    ours = {record.alias: record.version for record in registry.aliases(model)}
    mapping = report.versions
    for alias, version in sorted(ours.items()):
        wanted = mapping[version]
        if theirs.get(alias) != wanted:
            client.set_registered_model_alias(target, alias, str(wanted))
            report.aliases_set[alias] = wanted
    for alias in sorted(set(theirs) - set(ours)):
        try:
            check_alias(alias)
        except ValueError:
            continue  # not a name watchkeeper can hold, so not one it removed
        moves = registry.history(model, alias, limit=1)
        if moves and moves[0].to_version is None:
            client.delete_registered_model_alias(target, alias)
            report.aliases_deleted.append(alias)
