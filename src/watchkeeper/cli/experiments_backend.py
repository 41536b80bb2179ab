"""The experiments' operations of the CLI backends, for ``watchkeeper experiments …``.

:class:`ExperimentServerCalls` calls the experiment routes of a server;
:class:`ExperimentDatabaseCalls` runs :class:`~watchkeeper.rollout.experiments.Experiments` on
the database (routing through the router's stored configs, results from the monitor's stored
windows) and builds the same documents the routes answer. :mod:`watchkeeper.cli.backend` mixes
them into its two backends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from watchkeeper.monitor.service import MonitorService
    from watchkeeper.rollout.experiments import Experiments
    from watchkeeper.serving import Serving
    from watchkeeper.store import Store

__all__ = ["ExperimentCalls", "ExperimentDatabaseCalls", "ExperimentServerCalls"]


class ExperimentCalls(Protocol):
    """The experiment operations; each answers the JSON document of the matching API route."""

    def create_experiment(self, spec: Mapping[str, Any]) -> dict[str, Any]: ...
    def list_experiments(self, model: str | None) -> dict[str, Any]: ...
    def get_experiment(self, experiment_id: int) -> dict[str, Any]: ...
    def experiment_results(self, experiment_id: int) -> dict[str, Any]: ...
    def stop_experiment(self, experiment_id: int, reason: str) -> dict[str, Any]: ...


class ExperimentServerCalls:
    """The experiment operations over a server's API (mixed into ``ServerBackend``)."""

    def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover - ServerBackend provides it

    def create_experiment(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/experiments", json=dict(spec))

    def list_experiments(self, model: str | None) -> dict[str, Any]:
        params = {} if model is None else {"model": model}
        return self._call("GET", "/v1/experiments", params=params)

    def get_experiment(self, experiment_id: int) -> dict[str, Any]:
        return self._call("GET", f"/v1/experiments/{experiment_id}")

    def experiment_results(self, experiment_id: int) -> dict[str, Any]:
        return self._call("GET", f"/v1/experiments/{experiment_id}/results")

    def stop_experiment(self, experiment_id: int, reason: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/experiments/{experiment_id}/stop", json={"reason": reason})


class ExperimentDatabaseCalls:
    """The experiment operations on the database (mixed into ``DatabaseBackend``)."""

    store: Store
    _experiments: Experiments | None = None

    @property
    def service(self) -> MonitorService:
        raise NotImplementedError  # pragma: no cover - DatabaseBackend provides it

    @property
    def serving(self) -> Serving:
        raise NotImplementedError  # pragma: no cover - DatabaseBackend provides it

    @property
    def experiments(self) -> Experiments:
        """Experiments built as the server builds them."""
        if self._experiments is None:
            from watchkeeper.rollout.experiments import Experiments

            self._experiments = Experiments(
                store=self.store, monitor=self.service, serving=self.serving
            )
        return self._experiments

    def create_experiment(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        from watchkeeper.rollout.experiments import describe

        return describe(self.experiments.create(spec, by="cli"))

    def list_experiments(self, model: str | None) -> dict[str, Any]:
        from watchkeeper.rollout.experiments import describe

        return {"experiments": [describe(r) for r in self.experiments.experiments(model=model)]}

    def get_experiment(self, experiment_id: int) -> dict[str, Any]:
        from watchkeeper.rollout.experiments import describe

        return describe(self.experiments.get(experiment_id))

    def experiment_results(self, experiment_id: int) -> dict[str, Any]:
        return self.experiments.results(experiment_id)

    def stop_experiment(self, experiment_id: int, reason: str) -> dict[str, Any]:
        from watchkeeper.rollout.experiments import describe

        return describe(self.experiments.stop(experiment_id, by="cli", reason=reason))
