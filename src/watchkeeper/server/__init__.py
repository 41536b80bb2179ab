"""The HTTP service: FastAPI app factory, routes, auth, error mapping, Prometheus exposition.

Loaded on first use, so that :mod:`watchkeeper.server.boot` starts without importing the
service.
"""

from __future__ import annotations

import typing

if typing.TYPE_CHECKING:
    from watchkeeper.server.app import app_from_environment, create_app

__all__ = ["app_from_environment", "create_app"]


def __getattr__(name: str) -> typing.Any:
    if name in __all__:
        from watchkeeper.server import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
