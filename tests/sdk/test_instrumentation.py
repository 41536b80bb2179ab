"""The decorator and the ASGI middleware, logging to a real HTTP server."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from fastapi import FastAPI, HTTPException

from tests.sdk.conftest import RecordingServer, free_port
from watchkeeper.errors import ConfigError
from watchkeeper.sdk import Client, PredictionLogger, PredictionLoggingMiddleware, monitor

NAMES = ["sepal_length", "sepal_width"]


@pytest.fixture
def logger(server: RecordingServer) -> PredictionLogger:
    return Client(server.url).logger("iris", "v1", flush_interval=60.0)


def test_decorator_logs_numpy_rows_with_names_and_latency(
    server: RecordingServer, logger: PredictionLogger
) -> None:
    @logger.monitor(feature_names=NAMES)
    def predict(row: np.ndarray) -> np.int64:
        return np.int64(row.sum() > 5)

    assert predict(np.array([5.1, 3.5])) == 1
    assert predict.__name__ == "predict"
    logger.flush()
    (event,) = server.delivered()
    assert event["features"] == {"sepal_length": 5.1, "sepal_width": 3.5}
    assert event["prediction"] == 1
    assert event["latency_ms"] >= 0
    assert "error" not in event
    logger.close()


def test_decorator_logs_each_row_of_a_frame_and_methods_skip_self(
    server: RecordingServer, logger: PredictionLogger
) -> None:
    class Model:
        @logger.monitor
        def predict(self, frame: pd.DataFrame) -> np.ndarray:
            return np.asarray(frame["sepal_length"] > 5, dtype=int)

    frame = pd.DataFrame({"sepal_length": [4.9, 5.5, 6.0], "sepal_width": [3.0, 2.5, 3.1]})
    assert Model().predict(frame).tolist() == [0, 1, 1]

    @monitor(logger)
    def classify(row: pd.Series) -> str:
        return "setosa"

    classify(frame.iloc[0])
    logger.flush()
    events = server.delivered()
    assert [event["prediction"] for event in events] == [0, 1, 1, "setosa"]
    assert events[1]["features"] == {"sepal_length": 5.5, "sepal_width": 2.5}
    assert events[3]["features"] == {"sepal_length": 4.9, "sepal_width": 3.0}
    logger.close()


def test_decorator_records_exceptions_as_error_events_and_reraises(
    server: RecordingServer, logger: PredictionLogger
) -> None:
    @logger.monitor(argument="features")
    def predict(model_name: str, features: dict[str, float]) -> int:
        raise ValueError("model exploded")

    with pytest.raises(ValueError, match="model exploded"):
        predict("m", features={"sepal_length": 1.0})
    logger.flush()
    (event,) = server.delivered()
    assert event["error"] is True
    assert event["features"] == {"sepal_length": 1.0}
    assert "prediction" not in event
    logger.close()


def test_decorator_on_async_functions_and_output_mapping(
    server: RecordingServer, logger: PredictionLogger
) -> None:
    @logger.monitor(output=lambda answer: answer["label"])
    async def predict(features: dict[str, float]) -> dict[str, str]:
        return {"label": "virginica"}

    assert asyncio.run(predict({"petal_width": 2.0})) == {"label": "virginica"}
    logger.flush()
    assert server.delivered()[0]["prediction"] == "virginica"
    logger.close()


def test_unreadable_inputs_never_break_the_prediction(
    server: RecordingServer, logger: PredictionLogger, caplog: pytest.LogCaptureFixture
) -> None:
    @logger.monitor
    def predict(row: np.ndarray) -> int:
        return 3

    with caplog.at_level(logging.WARNING, logger="watchkeeper.sdk"):
        assert predict(np.array([1.0, 2.0])) == 3
        assert predict(np.array([1.0, 2.0])) == 3
    assert logger.flush()
    assert server.delivered() == []
    assert [record.message for record in caplog.records] == [
        "watchkeeper cannot log calls of "
        "test_unreadable_inputs_never_break_the_prediction.<locals>.predict: "
        "an array input needs feature_names=[...] on the decorator"
    ]
    logger.close()


def test_decorator_rejects_an_unknown_argument_name(logger: PredictionLogger) -> None:
    with pytest.raises(ConfigError, match="no parameter 'x'"):
        logger.monitor(argument="x")(lambda row: row)
    logger.close()


@contextmanager
def serving(app: FastAPI) -> Iterator[httpx.Client]:
    """Run ``app`` under uvicorn on 127.0.0.1 in a thread; yield a client for it."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not runner.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield client
    finally:
        runner.should_exit = True
        thread.join(10)


def make_app(logger: PredictionLogger) -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, Any]:
        if body["features"].get("sepal_length", 0) < 0:
            raise HTTPException(status_code=500, detail="negative")
        return {"label": "setosa", "proba": 0.9}

    @app.post("/explain")
    def explain(body: dict[str, Any]) -> dict[str, str]:
        return {"why": "because"}

    @app.post("/crash")
    def crash(body: dict[str, Any]) -> dict[str, str]:
        raise RuntimeError("boom")

    app.add_middleware(
        PredictionLoggingMiddleware,
        logger=logger,
        extract=lambda request, response: (
            request["features"],
            None if response is None else response["label"],
        ),
        paths={"/predict", "/crash"},
    )
    return app


def test_middleware_logs_predictions_and_errors(
    server: RecordingServer, logger: PredictionLogger
) -> None:
    with serving(make_app(logger)) as client:
        answer = client.post("/predict", json={"features": {"sepal_length": 5.1}})
        assert answer.json() == {"label": "setosa", "proba": 0.9}
        explained = client.post("/explain", json={"features": {"sepal_length": 5.1}})
        assert explained.status_code == 200
        assert client.get("/predict").status_code == 405
        refused = client.post("/predict", json={"features": {"sepal_length": -1}})
        assert refused.status_code == 500
        assert client.post("/crash", json={"features": {"sepal_length": 2.0}}).status_code == 500
    logger.flush()
    first, failed, crashed = server.delivered()
    assert first["features"] == {"sepal_length": 5.1}
    assert first["prediction"] == "setosa"
    assert first["latency_ms"] >= 0
    assert (failed["error"], "prediction" in failed) == (True, False)
    assert (crashed["error"], crashed["features"]) == (True, {"sepal_length": 2.0})
    logger.close()


def test_middleware_survives_a_failing_extract(
    server: RecordingServer, logger: PredictionLogger
) -> None:
    app = FastAPI()

    @app.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, str]:
        return {"label": "x"}

    def extract(request: Any, response: Any) -> tuple[dict[str, Any], Any]:
        raise KeyError("features")

    app.add_middleware(PredictionLoggingMiddleware, logger=logger, extract=extract)
    with serving(app) as client:
        assert client.post("/predict", json={}).json() == {"label": "x"}
    logger.flush()
    assert server.delivered() == []
    logger.close()
