"""The model registry: numbered versions of a named model, aliases with their full history.

>>> import tempfile
>>> from sklearn.linear_model import LinearRegression
>>> from watchkeeper.store import Store
>>> root = tempfile.mkdtemp()
>>> registry = Registry(Store.open(f"sqlite:///{root}/wk.db"), ArtifactStore(root))
>>> model = LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0])
>>> registry.register("demand", model, registered_by="ana").version
1
>>> registry.set_alias("demand", "champion", 1, moved_by="ana", reason="first").to_version
1
>>> registry.resolve("demand@champion").version
1

A version is immutable: its artifact is stored once under its sha256 (verified on every load),
and its metadata (params, metrics, tags, description, input signature, the training data's
reference profile, code revision, who registered it and when) is written with it. Aliases
(``champion``, ``challenger``, any name) are pointers that move; every move is recorded with who
moved it, when and why, so :meth:`Registry.resolve` can answer "which version did ``champion``
point to at time T" and :meth:`Registry.rollback` can move an alias back in one call.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from watchkeeper.errors import ConfigError, NotFoundError, WatchkeeperError
from watchkeeper.ingest.spec import check_model_name
from watchkeeper.registry.artifacts import ArtifactStore
from watchkeeper.registry.flavors import (
    FLAVORS,
    LoadedModel,
    dump_object,
    flavor_from_path,
    load_model,
    model_features,
)
from watchkeeper.store import Store
from watchkeeper.store.registry import AliasMoveRecord, AliasRecord, RegistryVersionRecord

__all__ = ["ModelReference", "Registry", "parse_reference"]

_ALIAS: Final = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,63}")
_LOADED_CACHE: Final = 16


def check_alias(alias: object) -> str:
    """``alias`` if valid: 1-64 letters, digits, ``_`` or ``-``, starting with a letter (so it
    never reads as a version number)."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise ConfigError(
            f"alias: {alias!r} is not a valid alias; use 1-64 letters, digits, '_' or '-', "
            "starting with a letter",
            key="alias",
        )
    return alias


@dataclass(frozen=True)
class ModelReference:
    """``name``, ``name/3`` (a version) or ``name@champion`` (an alias)."""

    model: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.model}/{self.version}"
        return f"{self.model}@{self.alias}" if self.alias else self.model


def parse_reference(text: str) -> ModelReference:
    """Parse ``name``, ``name/N`` or ``name@alias``; errors name the bad part."""
    if "@" in text:
        model, alias = text.split("@", 1)
        return ModelReference(check_model_name(model, key="model"), alias=check_alias(alias))
    if "/" in text:
        model, number = text.split("/", 1)
        if not number.isdigit() or int(number) < 1:
            raise ConfigError(
                f"version: {number!r} in {text!r} is not a version number (1, 2, …)",
                key="version",
            )
        return ModelReference(check_model_name(model, key="model"), version=int(number))
    return ModelReference(check_model_name(text, key="model"))


class Registry:
    """Versions, aliases and artifacts of models, over one store and one artifact store."""

    def __init__(
        self,
        store: Store,
        artifacts: ArtifactStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self._clock = clock
        self._loaded: OrderedDict[tuple[str, int, str], LoadedModel] = OrderedDict()
        self._loading = threading.Lock()

    # ------------------------------------------------------------------ versions

    def register(
        self,
        model: str,
        source: str | Path | bytes | object,
        *,
        flavor: str | None = None,
        trust: bool = False,
        entry_point: str | None = None,
        description: str = "",
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        signature: Mapping[str, Any] | None = None,
        reference: pd.DataFrame | None = None,
        code_revision: str | None = None,
        registered_by: str,
    ) -> RegistryVersionRecord:
        """Register a new version of ``model`` from a file path, artifact bytes or a model object.

        The artifact must load (with ``trust`` for pickles and untrusted skops types) before
        anything is stored. The input signature is ``signature`` when given, else the
        monitored model's features, else the reference data's columns, else the names the model
        carries itself.
        """
        check_model_name(model, key="model")
        data, flavor = self._artifact(source, flavor)
        options = {"entry_point": entry_point} if entry_point is not None else {}
        if flavor == "pyfunc" and entry_point is None:
            raise ConfigError("entry_point: a pyfunc version needs one", key="entry_point")
        # Load it once now: a version that cannot predict is refused before it is stored.
        try:
            features = self._signature(model, flavor, data, trust, signature, reference)
            load_model(flavor, data, trust=trust, features=list(features), options=options)
        except WatchkeeperError:
            raise
        except Exception as exc:
            # The runtimes raise their own types (BadZipFile, InvalidProtobuf, XGBoostError…).
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ConfigError(
                f"artifact: the file does not load with the {flavor} flavor ({reason}); check the "
                f"file and its flavor (one of {', '.join(FLAVORS)})",
                key="artifact",
            ) from None
        digest = self.artifacts.put(data)
        return self.store.add_registry_version(
            model,
            {
                "flavor": flavor,
                "artifact_sha256": digest,
                "artifact_bytes": len(data),
                "trusted": trust,
                "description": description,
                "params": dict(params or {}),
                "metrics": dict(metrics or {}),
                "tags": dict(tags or {}),
                "signature": {"features": features, **options},
                "reference_profile": _reference_profile(reference, features),
                "code_revision": code_revision,
                "registered_by": registered_by,
            },
            now=self._clock(),
        )

    def _artifact(
        self, source: str | Path | bytes | object, flavor: str | None
    ) -> tuple[bytes, str]:
        if isinstance(source, str | Path):
            path = Path(source)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise NotFoundError(
                    f"cannot read the model file {str(path)!r}: {exc.strerror or exc}",
                    kind="file",
                    name=str(path),
                ) from None
            return data, flavor_from_path(path, flavor)
        if isinstance(source, bytes):
            if flavor is None:
                raise ConfigError("flavor: artifact bytes need their flavor", key="flavor")
            return source, flavor_from_path("artifact", flavor)
        found, data = dump_object(source)
        return data, found

    def _signature(
        self,
        model: str,
        flavor: str,
        data: bytes,
        trust: bool,
        signature: Mapping[str, Any] | None,
        reference: pd.DataFrame | None,
    ) -> dict[str, str]:
        if signature is not None:
            features = signature.get("features")
            if not isinstance(features, Mapping) or not all(
                isinstance(name, str) and isinstance(kind, str) for name, kind in features.items()
            ):
                raise ConfigError(
                    "signature.features: expected a mapping of feature name to kind",
                    key="signature.features",
                )
            return dict(features)
        try:
            spec_features = self.store.get_model(model).config.get("features")
        except NotFoundError:
            spec_features = None
        if isinstance(spec_features, Mapping) and spec_features:
            return {str(name): str(kind) for name, kind in spec_features.items()}
        if reference is not None:
            from watchkeeper.schema import infer_schema

            names = model_features(flavor, data, trust=trust) or [
                str(column) for column in reference.columns
            ]
            kinds = infer_schema(reference[names]).kinds
            return {name: kinds[name].value for name in names}
        return dict.fromkeys(model_features(flavor, data, trust=trust), "numeric")

    def version(self, model: str, version: int) -> RegistryVersionRecord:
        """Version ``version`` of ``model``."""
        return self.store.registry_version(model, version)

    def versions(self, model: str) -> list[RegistryVersionRecord]:
        """Every version of ``model``, oldest first."""
        return self.store.registry_versions(model)

    def resolve(
        self, reference: str | ModelReference, *, at: float | None = None
    ) -> RegistryVersionRecord:
        """The version ``reference`` names (``name``: the newest; ``name@alias`` as of ``at``)."""
        ref = parse_reference(reference) if isinstance(reference, str) else reference
        if ref.version is not None:
            return self.version(ref.model, ref.version)
        if ref.alias is not None:
            number = self.alias_version(ref.model, ref.alias, at=at)
            return self.version(ref.model, number)
        versions = self.versions(ref.model)
        if not versions:
            raise NotFoundError(
                f"model {ref.model!r} has no registered versions", kind="model", name=ref.model
            )
        return versions[-1]

    def load(self, reference: str | ModelReference | RegistryVersionRecord) -> LoadedModel:
        """A version ready to predict; loaded once and cached (verified against its sha256)."""
        record = (
            reference if isinstance(reference, RegistryVersionRecord) else self.resolve(reference)
        )
        key = (record.model, record.version, record.artifact_sha256)
        with self._loading:
            cached = self._loaded.get(key)
            if cached is not None:
                self._loaded.move_to_end(key)
                return cached
            features = record.signature.get("features", {})
            options = {k: v for k, v in record.signature.items() if k != "features"}
            loaded = load_model(
                record.flavor,
                self.artifacts.get(record.artifact_sha256),
                trust=record.trusted,
                features=list(features),
                options=options,
            )
            self._loaded[key] = loaded
            while len(self._loaded) > _LOADED_CACHE:
                self._loaded.popitem(last=False)
        return loaded

    # ------------------------------------------------------------------ aliases

    def set_alias(
        self, model: str, alias: str, version: int, *, moved_by: str, reason: str = ""
    ) -> AliasMoveRecord | None:
        """Point ``model@alias`` at ``version``; None when it already points there."""
        check_model_name(model, key="model")
        return self.store.move_alias(
            model, check_alias(alias), version, moved_by=moved_by, reason=reason, now=self._clock()
        )

    def remove_alias(self, model: str, alias: str, *, moved_by: str, reason: str = "") -> None:
        """Unset ``model@alias`` (recorded in its history like any move)."""
        self.store.move_alias(
            model, check_alias(alias), None, moved_by=moved_by, reason=reason, now=self._clock()
        )

    def rollback(
        self, model: str, alias: str = "champion", *, moved_by: str, reason: str = ""
    ) -> AliasMoveRecord:
        """Move ``alias`` back to the version it pointed to before its latest move.

        Like ``kubectl rollout undo``: a second rollback undoes the first. The move is recorded
        with ``reason`` (``rollback`` when empty).
        """
        moves = self.store.alias_moves(model, check_alias(alias), limit=1)
        if not moves:
            raise NotFoundError(
                f"{model}@{alias} has never been set; nothing to roll back to",
                kind="alias",
                name=f"{model}@{alias}",
            )
        previous = moves[0].from_version
        if previous is None:
            raise ConfigError(
                f"{model}@{alias} pointed nowhere before version {moves[0].to_version}; "
                "set it to a version instead",
                key="alias",
            )
        move = self.store.move_alias(
            model,
            alias,
            previous,
            moved_by=moved_by,
            reason=reason or f"rollback from version {moves[0].to_version}",
            now=self._clock(),
        )
        assert move is not None  # the alias pointed elsewhere, so it moved
        return move

    def aliases(self, model: str) -> list[AliasRecord]:
        """Where each alias of ``model`` points now."""
        return self.store.aliases(model)

    def alias_version(self, model: str, alias: str, *, at: float | None = None) -> int:
        """The version ``model@alias`` points to now, or pointed to at ``at``."""
        check_alias(alias)
        if at is None:
            current = {record.alias: record.version for record in self.aliases(model)}
            number = current.get(alias)
        else:
            number = self.store.alias_version_at(model, alias, at)
        if number is None:
            when = "now" if at is None else f"at {at}"
            raise NotFoundError(
                f"{model}@{alias} points to no version {when}",
                kind="alias",
                name=f"{model}@{alias}",
            )
        return number

    def history(self, model: str, alias: str, *, limit: int = 1000) -> list[AliasMoveRecord]:
        """Every move of ``model@alias``, newest first."""
        return self.store.alias_moves(model, check_alias(alias), limit=limit)


def _reference_profile(reference: pd.DataFrame | None, features: Mapping[str, str]) -> bytes | None:
    """The training data's profile over the signature's features (None without reference)."""
    if reference is None:
        return None
    from watchkeeper.profiles.dataset import profile_frame
    from watchkeeper.schema import ColumnKind, Schema, infer_schema

    present = [name for name in features if name in reference.columns]
    schema = Schema(kinds={name: ColumnKind(features[name]) for name in present})
    resolved = infer_schema(reference[present], schema)
    return profile_frame(reference[present], resolved).to_bytes()


def version_dict(record: RegistryVersionRecord, aliases: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON-ready view of a version (without its reference profile's bytes)."""
    return {
        "model": record.model,
        "version": record.version,
        "flavor": record.flavor,
        "artifact": {"sha256": record.artifact_sha256, "bytes": record.artifact_bytes},
        "trusted": record.trusted,
        "description": record.description,
        "params": dict(record.params),
        "metrics": dict(record.metrics),
        "tags": dict(record.tags),
        "signature": dict(record.signature),
        "has_reference_profile": record.reference_profile is not None,
        "code_revision": record.code_revision,
        "registered_by": record.registered_by,
        "registered_at": record.registered_at,
        "aliases": list(aliases),
    }
