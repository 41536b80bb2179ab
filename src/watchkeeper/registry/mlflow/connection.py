"""The MLflow client the adapter uses, and MLflow's failures as watchkeeper errors.

MLflow's official client (``mlflow-skinny``, extra ``mlflow``) talks to any tracking server and
reads artifacts from any store it knows (the server's proxy, S3, GCS, …). It retries an
unreachable server for minutes, so :func:`connect` first asks an HTTP server's ``/health`` with a
short timeout and says at once when nothing answers.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import httpx

from watchkeeper.errors import NotFoundError, WatchkeeperError

__all__ = ["MlflowAdapterError", "connect", "mlflow_errors", "model_versions"]

_HEALTH_TIMEOUT: Final = 5.0
_PAGE: Final = 200


class MlflowAdapterError(WatchkeeperError, RuntimeError):
    """The MLflow tracking server is unreachable or refused a request."""

    def __init__(self, message: str, *, tracking_uri: str | None = None) -> None:
        super().__init__(message)
        self.tracking_uri = tracking_uri


def _mlflow() -> Any:
    try:
        return importlib.import_module("mlflow")
    except ImportError:
        raise MlflowAdapterError(
            "the MLflow adapter needs MLflow's client, which is not installed: "
            "pip install 'watchkeeper[mlflow]'"
        ) from None


def connect(tracking_uri: str) -> Any:
    """An ``MlflowClient`` for ``tracking_uri``; MlflowAdapterError when its server does not
    answer."""
    mlflow = _mlflow()
    if tracking_uri.startswith(("http://", "https://")):
        url = tracking_uri.rstrip("/") + "/health"
        try:
            response = httpx.get(url, timeout=_HEALTH_TIMEOUT)
        except httpx.HTTPError as exc:
            raise MlflowAdapterError(
                f"cannot reach the MLflow tracking server at {tracking_uri}: {exc}; check the "
                "URI (--tracking-uri) and that the server runs",
                tracking_uri=tracking_uri,
            ) from None
        # Some proxies put the server under a path without /health: only a 5xx means it is down.
        if response.status_code >= 500:
            raise MlflowAdapterError(
                f"the MLflow tracking server at {tracking_uri} is not healthy "
                f"(GET /health answered {response.status_code})",
                tracking_uri=tracking_uri,
            )
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@contextmanager
def mlflow_errors(tracking_uri: str, model: str) -> Iterator[None]:
    """MLflow's exceptions as watchkeeper's: a missing model is NotFoundError, the rest
    MlflowAdapterError naming the server."""
    exceptions = importlib.import_module("mlflow.exceptions")
    try:
        yield
    except exceptions.MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFoundError(
                f"MLflow at {tracking_uri} has no registered model {model!r} "
                f"({exc.message.splitlines()[0]})",
                kind="mlflow model",
                name=model,
            ) from None
        raise MlflowAdapterError(
            f"MLflow at {tracking_uri} refused a request for {model!r}: "
            f"{exc.message.splitlines()[0]}",
            tracking_uri=tracking_uri,
        ) from None


def model_versions(client: Any, model: str) -> list[Any]:
    """Every version of an MLflow registered model, oldest first (the model must exist)."""
    client.get_registered_model(model)  # a missing model is an error, not an empty list
    found: list[Any] = []
    quote = '"' if "'" in model else "'"
    token = None
    while True:
        page = client.search_model_versions(
            f"name = {quote}{model}{quote}",
            max_results=_PAGE,
            page_token=token,
        )
        found.extend(page)
        token = page.token
        if not token:
            break
    return sorted(found, key=lambda version: int(version.version))
