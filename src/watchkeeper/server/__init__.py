"""The HTTP service: FastAPI app factory, routes, auth, error mapping, Prometheus exposition."""

from __future__ import annotations

from watchkeeper.server.app import app_from_environment, create_app

__all__ = ["app_from_environment", "create_app"]
