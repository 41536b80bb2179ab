"""Lost events are logged: rate-limited warnings with counts, against real sockets."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from tests.sdk.conftest import RecordingServer, free_port
from watchkeeper.sdk import Client, PredictionLogger

FAST_RETRIES: dict[str, Any] = {"backoff_initial": 0.02, "backoff_max": 0.1}


def make_logger(url: str, **options: Any) -> PredictionLogger:
    return Client(url).logger("churn", "v1", **{**FAST_RETRIES, **options})


def warnings_about(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "watchkeeper.sdk"
        and record.levelno == logging.WARNING
        and words in record.getMessage()
    ]


def test_drops_and_failures_with_the_service_unreachable_are_logged_once_per_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed_port = free_port()  # nothing listens there
    logger = make_logger(
        f"http://127.0.0.1:{closed_port}", batch_size=10, capacity=100, flush_interval=60.0
    )
    with caplog.at_level(logging.WARNING, logger="watchkeeper.sdk"):
        for age in range(5_000):
            logger.log({"age": age})
        dropped = warnings_about(caplog, "dropped")
        assert len(dropped) == 1
        assert "dropped 1 events of model 'churn' since the last warning (1 in total)" in dropped[0]
        assert "queue full at 100 events" in dropped[0]
        assert "capacity=" in dropped[0]
        deadline = time.monotonic() + 10
        while not warnings_about(caplog, "reach the service") and time.monotonic() < deadline:
            time.sleep(0.01)
        (unreachable,) = warnings_about(caplog, "reach the service")
        assert "ConnectError" in unreachable
        assert "nothing is lost until it is full" in unreachable
        logger.close(timeout=0.2)
    stats = logger.stats
    assert stats.dropped >= 4_890
    assert stats.failed > 0
    assert stats.dropped + stats.failed == 5_000
    dropped = warnings_about(caplog, "dropped")
    assert len(dropped) == 2  # the rest is reported when the logger closes
    assert f"dropped {stats.dropped - 1} events" in dropped[1]
    assert f"({stats.dropped} in total)" in dropped[1]
    # The batch in flight when close() gave up, then (at close) the queue it left.
    failed = warnings_about(caplog, "could not deliver")
    assert len(failed) == 2
    assert "the logger closed while retrying the batch (ConnectError" in failed[0]
    assert f"({stats.failed} in total)" in failed[1]
    assert len(warnings_about(caplog, "reach the service")) == 1


def test_warnings_repeat_after_the_interval_with_the_count_since_the_last(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = make_logger(
        f"http://127.0.0.1:{free_port()}",
        batch_size=5,
        capacity=5,
        flush_interval=60.0,
        warning_interval=0.3,
    )
    for age in range(5):
        logger.log({"age": age})
    deadline = time.monotonic() + 10
    while logger.stats.retries < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    for age in range(5):  # the sender retries the first five: these fill the queue
        logger.log({"age": age})
    with caplog.at_level(logging.WARNING, logger="watchkeeper.sdk"):
        for _ in range(3):
            for age in range(100):  # 100 drops per round, within one interval
                logger.log({"age": age})
            time.sleep(0.35)
        dropped = warnings_about(caplog, "dropped")
        logger.close(timeout=0.1)
    assert len(dropped) == 3
    assert "dropped 1 events" in dropped[0]
    # Each later warning carries the drops suppressed since the one before.
    assert all("dropped 100 events" in message for message in dropped[1:])
    totals = [int(message.split("(")[1].split(" in total")[0]) for message in dropped]
    assert totals == [1, 101, 201]


def test_failed_batches_are_logged_with_the_reason_and_rate_limited(
    server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script.extend([(400, {})] * 3)
    logger = make_logger(server.url, batch_size=2)
    with caplog.at_level(logging.WARNING, logger="watchkeeper.sdk"):
        for age in range(6):
            logger.log({"age": age})
        assert logger.flush(timeout=10)
        failed = warnings_about(caplog, "could not deliver")
        assert len(failed) == 1
        assert "could not deliver 2 events" in failed[0]
        assert "refused the batch, not retried (HTTP 400: " in failed[0]
        logger.close()
    assert logger.stats.failed == 6
    failed = warnings_about(caplog, "could not deliver")
    assert len(failed) == 2
    assert (
        "could not deliver 4 events of model 'churn' since the last warning (6 in total)"
        in (failed[1])
    )


def test_events_the_service_rejects_are_logged_with_the_first_reason(
    server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    logger = make_logger(server.url, batch_size=3)
    with caplog.at_level(logging.WARNING, logger="watchkeeper.sdk"):
        for round_ in range(4):
            logger.log({"age": round_})
            logger.log({"reject": True})
            logger.log({"reject": True})
            assert logger.flush(timeout=10)
        rejected = warnings_about(caplog, "rejected")
        assert len(rejected) == 1
        assert (
            "rejected 2 events of model 'churn' since the last warning (2 in total)"
            in (rejected[0])
        )
        assert "first reason: features.reject: no (2 of a batch of 3)" in rejected[0]
        logger.close()
    assert (logger.stats.sent, logger.stats.rejected) == (4, 8)
    rejected = warnings_about(caplog, "rejected")
    assert len(rejected) == 2
    assert "rejected 6 events" in rejected[1]
    assert "(8 in total)" in rejected[1]


def test_a_healthy_logger_logs_nothing(
    server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    logger = make_logger(server.url)
    with caplog.at_level(logging.WARNING, logger="watchkeeper.sdk"):
        for age in range(50):
            logger.log({"age": age})
        logger.close()
    assert logger.stats.sent == 50
    assert caplog.records == []
