"""The HTTP routes of the service, one router per area."""

from __future__ import annotations

from fastapi import APIRouter

from watchkeeper.server.routes import (
    health,
    ingest,
    models,
    registry,
    retrain,
    rollouts,
    serving,
    signals,
    tokens,
)

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    models.router,
    registry.router,
    ingest.router,
    signals.router,
    serving.router,
    rollouts.router,
    retrain.router,
    tokens.router,
)
