"""The watchkeeper Python SDK: log predictions from any serving code without slowing it down.

>>> from watchkeeper.sdk import Client
>>> client = Client("http://localhost:8000", token="...")  # doctest: +SKIP
>>> logger = client.logger("churn", "v3")  # doctest: +SKIP
>>> logger.log({"age": 42, "plan": "gold"}, prediction=1)  # doctest: +SKIP

Pieces: :class:`Client` (service address, labels, feedback), :class:`PredictionLogger` (bounded
queue + background sender), :func:`monitor` (decorator), :class:`PredictionLoggingMiddleware`
(ASGI), and the :class:`Sink` seam with :class:`HttpSink` and the in-process
:class:`~watchkeeper.sdk.local.LocalSink` (imported on demand: it needs the store).
"""

from __future__ import annotations

from watchkeeper.sdk.client import Client, Receipt
from watchkeeper.sdk.decorator import monitor
from watchkeeper.sdk.logger import PredictionLogger
from watchkeeper.sdk.middleware import PredictionLoggingMiddleware
from watchkeeper.sdk.sink import HttpSink, Sink

__all__ = [
    "Client",
    "HttpSink",
    "PredictionLogger",
    "PredictionLoggingMiddleware",
    "Receipt",
    "Sink",
    "monitor",
]
