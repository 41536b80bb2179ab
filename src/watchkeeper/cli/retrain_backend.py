"""The retraining operations of the CLI backends, for ``watchkeeper retrain``.

:class:`RetrainServerCalls` calls the retraining routes of a server; :class:`RetrainDatabaseCalls`
runs a :class:`~watchkeeper.retrain.runner.RetrainRunner` on the database, with the local
worker process, and answers the same run documents. :mod:`watchkeeper.cli.backend` mixes them
into its two backends.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from watchkeeper.cli.registry_backend import _operator

if TYPE_CHECKING:
    from watchkeeper.alerts.engine import AlertingEngine
    from watchkeeper.config import Settings
    from watchkeeper.monitor.service import MonitorService
    from watchkeeper.retrain.runner import RetrainRunner
    from watchkeeper.rollout.controller import RolloutController
    from watchkeeper.store import Store

__all__ = ["RetrainCalls", "RetrainDatabaseCalls", "RetrainServerCalls"]


class RetrainCalls(Protocol):
    """The retraining operations; each answers the JSON document of the matching API route."""

    def start_retrain(self, model: str, reason: str, as_of: float | None) -> dict[str, Any]: ...
    def list_retrain_runs(
        self, model: str | None, status: str | None, limit: int
    ) -> dict[str, Any]: ...
    def retrain_run(self, run_id: int) -> dict[str, Any]: ...
    def approve_retrain_run(self, run_id: int, reason: str) -> dict[str, Any]: ...
    def wait_retrain_run(self, run_id: int, timeout: float) -> dict[str, Any]: ...


class RetrainServerCalls:
    """The retraining operations over a server's API (mixed into ``ServerBackend``)."""

    def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover - ServerBackend provides it

    def start_retrain(self, model: str, reason: str, as_of: float | None) -> dict[str, Any]:
        body: dict[str, Any] = {"reason": reason}
        if as_of is not None:
            body["as_of"] = as_of
        return self._call("POST", f"/v1/models/{quote(model, safe='')}/retrain", json=body)

    def list_retrain_runs(
        self, model: str | None, status: str | None, limit: int
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if model is not None:
            params["model"] = model
        if status is not None:
            params["status"] = status
        return self._call("GET", "/v1/retrain/runs", params=params)

    def retrain_run(self, run_id: int) -> dict[str, Any]:
        return self._call("GET", f"/v1/retrain/runs/{run_id}")

    def approve_retrain_run(self, run_id: int, reason: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/retrain/runs/{run_id}/approve", json={"reason": reason})

    def wait_retrain_run(self, run_id: int, timeout: float) -> dict[str, Any]:
        return _wait(lambda: self.retrain_run(run_id), timeout)


class RetrainDatabaseCalls:
    """The retraining operations on the database (mixed into ``DatabaseBackend``).

    A run started here is executed by this command's own worker process, so ``run`` on a
    database waits for it to end.
    """

    settings: Settings
    store: Store
    _runner: RetrainRunner | None = None

    @property
    def service(self) -> MonitorService:
        raise NotImplementedError  # pragma: no cover - DatabaseBackend provides it

    @property
    def alerting(self) -> AlertingEngine:
        raise NotImplementedError  # pragma: no cover - DatabaseBackend provides it

    @property
    def rollouts(self) -> RolloutController:
        raise NotImplementedError  # pragma: no cover - DatabaseBackend provides it

    @property
    def retrain_runner(self) -> RetrainRunner:
        """The runner, built as the server builds it (local worker, canaries, failure alerts)."""
        if self._runner is None:
            from watchkeeper.registry import ArtifactStore, Registry
            from watchkeeper.retrain.alerting import EngineFailureAlerts
            from watchkeeper.retrain.executor import LocalProcessExecutor
            from watchkeeper.retrain.runner import RetrainRunner

            url = self.store.engine.url.render_as_string(hide_password=False)
            location = self.settings.artifact_location
            self._runner = RetrainRunner(
                store=self.store,
                registry=Registry(self.store, ArtifactStore(location)),
                executors={"local": LocalProcessExecutor(url, location)},
                rollouts=self.rollouts,
                alerts=EngineFailureAlerts(self.alerting, samples=self.service.latest_samples),
            )
        return self._runner

    def close_retrain(self) -> None:
        """Stop the worker process, if one was started."""
        if self._runner is not None:
            self._runner.close()

    def start_retrain(self, model: str, reason: str, as_of: float | None) -> dict[str, Any]:
        trigger = {"kind": "manual", "reason": reason, "by": _operator()}
        run = self.retrain_runner.request(model, trigger, by=_operator(), as_of=as_of)
        return run.to_dict()

    def list_retrain_runs(
        self, model: str | None, status: str | None, limit: int
    ) -> dict[str, Any]:
        statuses = None if status is None else [status]
        runs = self.store.retrain_runs(model=model, statuses=statuses, limit=limit)
        return {"runs": [run.to_dict() for run in runs]}

    def retrain_run(self, run_id: int) -> dict[str, Any]:
        return self.store.retrain_run(run_id).to_dict()

    def approve_retrain_run(self, run_id: int, reason: str) -> dict[str, Any]:
        who = _operator() + (f" ({reason})" if reason else "")
        return self.retrain_runner.approve(run_id, by=who).to_dict()

    def wait_retrain_run(self, run_id: int, timeout: float) -> dict[str, Any]:
        return _wait(lambda: self.retrain_run(run_id), timeout)


def _wait(read: Any, timeout: float) -> dict[str, Any]:
    """Poll the run until it settles or ``timeout`` seconds pass; the last document read."""
    from watchkeeper.retrain.runs import SETTLED_STATUSES

    deadline = time.monotonic() + timeout
    while True:
        document: dict[str, Any] = read()
        if document["status"] in SETTLED_STATUSES or time.monotonic() >= deadline:
            return document
        time.sleep(0.5)
