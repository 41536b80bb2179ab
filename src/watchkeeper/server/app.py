"""The FastAPI application factory of the watchkeeper service.

>>> from watchkeeper.config import Settings
>>> app = create_app(Settings(db="sqlite:///:memory:"))
>>> sorted(path for path in app.openapi()["paths"] if path.startswith("/v1/tokens"))
['/v1/tokens', '/v1/tokens/{name}']
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import watchkeeper
from watchkeeper.config import Settings, load_settings
from watchkeeper.dashboard import dashboard_router
from watchkeeper.server.alerts_routes import alerts_router
from watchkeeper.server.auth import Authenticator
from watchkeeper.server.docs import docs_router
from watchkeeper.server.errors import install_error_handlers
from watchkeeper.server.lifecycle import RefuseWhileRecovering, lifespan
from watchkeeper.server.metrics import IngestMeter, build_registry
from watchkeeper.server.routes import ROUTERS
from watchkeeper.server.routes.rollouts import ROLLOUT_MODELS
from watchkeeper.server.routes.serving import SERVING_MODELS
from watchkeeper.server.schemas import DOCUMENTED_MODELS, ERROR_DESCRIPTIONS
from watchkeeper.server.service_metrics import ModelLoadStatus, RequestMetrics
from watchkeeper.server.state import AppState
from watchkeeper.server.wire import CloseUnreadBodies, JsonResponse
from watchkeeper.server.workers import IngestWorkers, default_worker_count
from watchkeeper.store import Store

if TYPE_CHECKING:
    from watchkeeper.monitor.outcome import IngestOutcome
    from watchkeeper.monitor.service import MonitorService
    from watchkeeper.registry import Registry
    from watchkeeper.retrain.runner import RetrainRunner
    from watchkeeper.rollout.controller import RolloutController
    from watchkeeper.serving import Serving

__all__ = ["app_from_environment", "create_app"]

_DESCRIPTION = (
    "Monitor ML models in production: ingest predictions, labels and feedback; read drift, "
    "quality and performance signals and reports. Authenticate with `Authorization: Bearer "
    "<token>` when the server runs with authentication."
)


def create_app(
    settings: Settings,
    *,
    service: MonitorService | None = None,
    store: Store | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """Build the app: routes, error mapping, auth, a per-app metrics registry and lifecycle.

    ``store`` defaults to ``Store.open(settings.db)`` (closed on shutdown); ``service`` to a
    :class:`~watchkeeper.monitor.service.MonitorService` on that store. The app starts the
    service on startup and closes it on shutdown. A service passed in must use ``store``.
    """
    owns_store = store is None
    if store is None:
        store = Store.open(
            settings.db,
            sqlite_synchronous="NORMAL" if settings.sqlite_synchronous == "NORMAL" else "FULL",
        )
    try:
        if service is None:
            from watchkeeper.monitor.service import MonitorService

            service = MonitorService(store, settings=settings, clock=clock)
        from watchkeeper.alerts.engine import AlertingEngine

        meter = IngestMeter()
        alerting = AlertingEngine(
            db=store.engine,
            config=settings.alerts_config,
            clock=clock,
            external_url=settings.external_url,
            signal_catalog=service.signal_catalog,
            notify_horizon=settings.notify_horizon,
        )
        from watchkeeper.registry import ArtifactStore, Registry

        model_registry = Registry(store, ArtifactStore(settings.artifact_location), clock=clock)
        load_status = ModelLoadStatus()
        serving = _serving(model_registry, service, meter, clock, load_status)
        workers = _ingest_workers(settings)
        state = AppState(
            settings=settings,
            store=store,
            service=service,
            authenticator=Authenticator(settings=settings, store=store),
            meter=meter,
            registry=build_registry(service, meter, load_status=load_status, alerting=alerting),
            load_status=load_status,
            alerting=alerting,
            model_registry=model_registry,
            serving=serving,
            workers=workers,
            clock=clock,
        )
        state.rollouts = _rollouts(state)
        from watchkeeper.rollout.guard import champion_guard

        # Rules with `action: rollback` move the champion back when they start firing.
        alerting.on_action("rollback", champion_guard(model_registry))
        state.retrain = _retrain(state)
        # Rules with `action: retrain` start a retraining run of the model.
        alerting.on_action("retrain", state.retrain.on_alert)
    except BaseException:
        if owns_store:
            store.close()
        raise

    app = FastAPI(
        title="watchkeeper",
        version=watchkeeper.__version__,
        description=_DESCRIPTION,
        default_response_class=JsonResponse,
        lifespan=lifespan,
        # Served from the package by docs_router: the defaults load their assets from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.watchkeeper = state
    app.state.owns_store = owns_store
    install_error_handlers(app)
    app.add_middleware(RefuseWhileRecovering)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(alerts_router(state.alerting, max_body_bytes=settings.max_admin_body_bytes))
    app.include_router(docs_router(app))
    app.include_router(dashboard_router())
    app.add_middleware(CloseUnreadBodies)
    # Outermost: it counts the answers of the middleware above too (503 while recovering).
    app.add_middleware(RequestMetrics, registry=state.registry)
    _document_bodies(app)
    return app


def _serving(
    model_registry: Registry,
    service: MonitorService,
    meter: IngestMeter,
    clock: Callable[[], float],
    load_status: ModelLoadStatus,
) -> Serving:
    """Serving on the app's registry and monitor; its logged predictions are counted in
    /metrics like ingested events, and the versions it loads in the load status."""
    import numpy as np

    from watchkeeper.serving import PredictionLog, Serving

    def count(model: str, outcome: IngestOutcome) -> None:
        stored = outcome.stored
        if stored is not None and len(stored):
            meter.record_events(
                model,
                versions=np.asarray(stored.versions, dtype=object),
                errors=stored.errors,
                latency_ms=stored.latency,
            )

    log = PredictionLog(service, on_stored=count)
    return Serving(
        registry=model_registry, monitor=service, log=log, clock=clock, on_load=load_status.set
    )


def _rollouts(state: AppState) -> RolloutController:
    """The rollout controller: traffic through the router, rollbacks counted in the app's
    registry and alerted through its engine."""
    from watchkeeper.rollout.alerting import EngineAlerts
    from watchkeeper.rollout.controller import RolloutController
    from watchkeeper.rollout.router import ServingTraffic

    assert state.serving is not None
    return RolloutController(
        store=state.store,
        monitor=state.service,
        traffic=ServingTraffic(state.serving),
        clock=state.clock,
        alerts=EngineAlerts(state.alerting, samples=state.service.latest_samples),
        registry=state.registry,
    )


def _retrain(state: AppState) -> RetrainRunner:
    """Retraining runs: the local worker process (when the database is one another process
    can open), canaries through the rollout controller, failures alerted through the engine."""
    from watchkeeper.retrain.alerting import EngineFailureAlerts
    from watchkeeper.retrain.executor import Executor, LocalProcessExecutor
    from watchkeeper.retrain.runner import RetrainRunner

    url = state.store.engine.url
    executors: dict[str, Executor] = {}
    if url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:"):
        executors["local"] = LocalProcessExecutor(
            url.render_as_string(hide_password=False), state.settings.artifact_location
        )
    return RetrainRunner(
        store=state.store,
        registry=state.model_registry,
        executors=executors,
        rollouts=state.rollouts,
        alerts=EngineFailureAlerts(state.alerting, samples=state.service.latest_samples),
        clock=state.clock,
    )


def _ingest_workers(settings: Settings) -> IngestWorkers | None:
    """The worker processes ``settings`` ask for (None: decode in the server process)."""
    count = settings.ingest_workers
    if count is None:
        count = default_worker_count()
    return IngestWorkers(count) if count > 0 else None


def _document_bodies(app: FastAPI) -> None:
    """Add the hand-parsed request bodies and the answers every route shares to the OpenAPI."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (*DOCUMENTED_MODELS, *SERVING_MODELS, *ROLLOUT_MODELS):
                document = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(document.pop("$defs", {}))
                components[model.__name__] = document
            _document_shared_answers(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_shared_answers(schema: dict[str, Any]) -> None:
    """Every route may answer 431 (the request head is bounded before routing); routes that
    need a token answer 401 and 403; validation errors use the shared error body."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path_item in schema["paths"].values():
        for operation in path_item.values():
            responses = operation["responses"]
            shared = (401, 403, 431) if operation.get("security") else (431,)
            for status in shared:
                responses.setdefault(
                    str(status), {"description": ERROR_DESCRIPTIONS[status], "content": error}
                )
            if "422" in responses:
                responses["422"] = {"description": ERROR_DESCRIPTIONS[422], "content": error}
    for unused in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(unused, None)


def app_from_environment() -> FastAPI:
    """The app from ``WATCHKEEPER_*`` variables, for ``uvicorn --factory``.

    Refuses (ConfigError) when ``WATCHKEEPER_HOST`` is not loopback and auth is off; the
    uvicorn ``--host`` flag is not visible here, so keep it equal to ``WATCHKEEPER_HOST``.
    """
    settings = load_settings()
    settings.check_exposure()
    return create_app(settings)
