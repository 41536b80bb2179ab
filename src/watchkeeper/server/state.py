"""What every route needs, built once by ``create_app`` and kept on ``app.state``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from watchkeeper.config import Settings
from watchkeeper.server.auth import Authenticator
from watchkeeper.server.metrics import IngestMeter
from watchkeeper.server.service_metrics import ModelLoadStatus
from watchkeeper.store import Store

if TYPE_CHECKING:
    from anyio import CapacityLimiter
    from prometheus_client import CollectorRegistry

    from watchkeeper.alerts.engine import AlertingEngine
    from watchkeeper.monitor.service import MonitorService
    from watchkeeper.registry import Registry
    from watchkeeper.retrain.runner import RetrainRunner
    from watchkeeper.rollout.controller import RolloutController
    from watchkeeper.server.workers import IngestWorkers
    from watchkeeper.serving import Serving

__all__ = ["AppState", "app_state"]


@dataclass(slots=True)
class AppState:
    """The service, its store, settings, authenticator and metrics of one app."""

    settings: Settings
    store: Store
    service: MonitorService
    authenticator: Authenticator
    meter: IngestMeter
    registry: CollectorRegistry
    # What serving sets when it loads a model version (``watchkeeper_model_load_status``).
    load_status: ModelLoadStatus
    alerting: AlertingEngine
    # The model registry (versions, aliases, artifacts) on the same store.
    model_registry: Registry
    # Predict through the router, predictions logged to the monitor (watchkeeper.serving).
    serving: Serving | None = None
    # Rollouts of candidate versions, ticked with the windows (watchkeeper.rollout).
    rollouts: RolloutController | None = None
    # Retraining runs: triggers, the worker process, hand-off to rollouts (watchkeeper.retrain).
    retrain: RetrainRunner | None = None
    workers: IngestWorkers | None = None
    ingest_limiter: CapacityLimiter | None = None
    clock: Callable[[], float] = time.time
    # True once the monitor has recovered its open windows (until shutdown begins).
    started: bool = False
    start_error: str | None = None
    stopping: bool = False


def app_state(request: Request) -> AppState:
    """The :class:`AppState` of the app serving ``request``."""
    state: AppState = request.app.state.watchkeeper
    return state
