"""Which version each target names now, and that version loaded, cached.

Versions load once (through the registry: verified against their sha256, a pickle only when
trusted) and stay loaded for as long as the server runs; a request of a loaded version reads
nothing from the store. What an alias points to, and each model's routing config, are
read from the store at most every ``refresh_seconds`` per model: a change made through this
process (:meth:`PredictorCache.forget`) is seen by the next request, one made by another process
(the CLI, another server) within ``refresh_seconds``. A request resolves its targets once, so it
is served by one consistent view even while an alias moves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from watchkeeper.errors import ConfigError, ConflictError, NotFoundError
from watchkeeper.registry import Registry
from watchkeeper.registry.artifacts import ArtifactIntegrityError
from watchkeeper.registry.flavors import LoadedModel
from watchkeeper.serving.config import RoutingConfig, Target, champion_config
from watchkeeper.serving.router import Router
from watchkeeper.store.registry import RegistryVersionRecord

__all__ = ["PredictorCache", "Served"]

DEFAULT_REFRESH_SECONDS: Final = 1.0


@dataclass(frozen=True, slots=True)
class Served:
    """A target resolved: the version record and the loaded model."""

    record: RegistryVersionRecord
    model: LoadedModel

    @property
    def version(self) -> int:
        """The registry version number."""
        return self.record.version


@dataclass(slots=True)
class _View:
    """One model's routing and aliases as read at ``read_at``."""

    router: Router
    revision: int
    aliases: dict[str, int]
    read_at: float


class PredictorCache:
    """Routers, alias targets and loaded versions of the served models."""

    def __init__(
        self,
        registry: Registry,
        *,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        on_load: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.registry = registry
        # Told (model, version, state) as a version loads: loading, then loaded or failed.
        self._on_load = on_load
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._views: dict[str, _View] = {}
        self._lock = threading.Lock()
        # Loaded versions by (model, version, sha256): read without a lock, so a version being
        # loaded (under the registry's load lock) never delays requests of loaded ones.
        self._loaded: dict[tuple[str, int, str], LoadedModel] = {}
        self._records: dict[tuple[str, int], RegistryVersionRecord] = {}

    def _loading(self, model: str, version: int, state: str) -> None:
        if self._on_load is not None:
            self._on_load(model, str(version), state)

    def forget(self, model: str) -> None:
        """Read ``model``'s routing and aliases again at its next request."""
        with self._lock:
            self._views.pop(model, None)

    def view(self, model: str) -> tuple[Router, int, dict[str, int]]:
        """The router of ``model``, its routing revision (0: none, the champion serves) and its
        aliases, as of at most ``refresh_seconds`` ago."""
        now = self._clock()
        with self._lock:
            view = self._views.get(model)
        if view is None or now - view.read_at >= self.refresh_seconds:
            view = self._read(model, now)
            with self._lock:
                self._views[model] = view
        return view.router, view.revision, view.aliases

    def _read(self, model: str, now: float) -> _View:
        store = self.registry.store
        record = store.routing(model)
        aliases = {alias.alias: alias.version for alias in self.registry.aliases(model)}
        with self._lock:
            previous = self._views.get(model)
        revision = 0 if record is None else record.revision
        if previous is not None and previous.revision == revision:
            # The same config: keep its router (and its random stream).
            return _View(previous.router, revision, aliases, now)
        config = champion_config() if record is None else RoutingConfig.from_dict(record.config)
        return _View(Router(model, config), revision, aliases, now)

    def resolve(self, model: str, target: Target, aliases: dict[str, int]) -> Served:
        """The version ``target`` names, loaded (404 when it names none, 409 when it cannot
        be loaded)."""
        if target.alias is not None:
            number = aliases.get(target.alias)
            if number is None:
                if not self.registry.versions(model):
                    raise NotFoundError(
                        f"model {model!r} has no registered versions; register one first",
                        kind="model",
                        name=model,
                    )
                raise ConflictError(
                    f"{model}@{target.alias} points to no version: set it "
                    f"(PUT /v1/models/{model}/aliases/{target.alias}) or give {model!r} a "
                    "routing config"
                )
        else:
            assert target.version is not None
            number = target.version
        record = self._records.get((model, number))
        if record is None:
            # Versions are immutable: one read each.
            record = self._records.setdefault((model, number), self.registry.version(model, number))
        key = (model, number, record.artifact_sha256)
        loaded = self._loaded.get(key)
        if loaded is not None:
            return Served(record, loaded)
        self._loading(model, number, "loading")
        try:
            loaded = self.registry.load(record)
        except (ArtifactIntegrityError, ConfigError) as error:
            self._loading(model, number, "failed")
            raise ConflictError(f"version {number} of {model!r} refuses to load: {error}") from None
        self._loaded[key] = loaded
        self._loading(model, number, "loaded")
        return Served(record, loaded)
