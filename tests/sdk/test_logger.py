"""The non-blocking logger against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from tests.sdk.conftest import RecordingServer
from watchkeeper.errors import ConfigError
from watchkeeper.sdk import Client, LoggerStats, PredictionLogger

FAST_RETRIES: dict[str, Any] = {"backoff_initial": 0.02, "backoff_max": 0.1}


def make_logger(url: str, **options: Any) -> PredictionLogger:
    return Client(url, token="secret").logger("churn", "v1", **{**FAST_RETRIES, **options})


def test_full_batches_are_sent_at_once_and_the_rest_on_flush(server: RecordingServer) -> None:
    logger = make_logger(server.url, batch_size=10, flush_interval=60.0)
    ids = [logger.log({"age": age}, prediction=age % 2) for age in range(25)]
    server.wait_for(20)
    assert server.batch_sizes() == [10, 10]
    assert logger.flush(timeout=10)
    assert server.batch_sizes() == [10, 10, 5]
    events = server.delivered()
    assert [event["id"] for event in events] == ids
    assert events[3]["features"] == {"age": 3}
    assert events[3]["prediction"] == 1
    assert events[3]["version"] == "v1"
    assert isinstance(events[3]["timestamp"], float)
    request = server.requests[0]
    assert request.path == "/v1/models/churn/events"
    assert request.authorization == "Bearer secret"
    assert logger.stats == LoggerStats(
        sent=25, rejected=0, dropped=0, failed=0, queued=0, retries=0, batches=3
    )
    logger.close()


def test_a_partial_batch_is_sent_after_the_flush_interval(server: RecordingServer) -> None:
    logger = make_logger(server.url, batch_size=500, flush_interval=0.1)
    for age in range(3):
        logger.log({"age": age})
    assert len(server.wait_for(3)) == 3
    assert server.batch_sizes() == [3]
    logger.close()


def test_optional_fields_travel_as_json(server: RecordingServer) -> None:
    logger = make_logger(server.url)
    moment = datetime(2025, 1, 2, 3, 4, 5)
    logger.log(
        {"age": np.int64(7), "score": np.float32(0.5), "missing": float("nan")},
        prediction=np.int64(1),
        proba={"0": 0.1, "1": 0.9},
        id="given",
        latency_ms=1.5,
        error=True,
        segment={"region": "eu"},
        timestamp=moment,
        unit="user-42",
        arm="canary",
    )
    logger.flush()
    (event,) = server.delivered()
    assert event == {
        "id": "given",
        "timestamp": "2025-01-02T03:04:05+00:00",
        "version": "v1",
        "features": {"age": 7, "score": 0.5, "missing": None},
        "prediction": 1,
        "proba": {"0": 0.1, "1": 0.9},
        "latency_ms": 1.5,
        "error": True,
        "segment": {"region": "eu"},
        "unit": "user-42",
        "arm": "canary",
    }
    assert datetime.fromisoformat(event["timestamp"]) == moment.replace(tzinfo=UTC)
    logger.close()


def test_features_are_copied_when_logged(server: RecordingServer) -> None:
    logger = make_logger(server.url)
    features = {"age": 1}
    logger.log(features)
    features["age"] = 2
    logger.flush()
    assert server.delivered()[0]["features"] == {"age": 1}
    logger.close()


def test_503_then_200_is_retried_honouring_retry_after(server: RecordingServer) -> None:
    server.script.extend([(503, {"retry-after": "0.05"}), (429, {"retry-after": "0"})])
    # Backoff alone would wait at least 15 s, past the flush timeout below.
    logger = make_logger(server.url, backoff_initial=30.0, backoff_max=30.0)
    ids = [logger.log({"age": age}) for age in range(4)]
    assert logger.flush(timeout=10)
    assert [request.status for request in server.requests] == [503, 429, 200]
    assert [event["id"] for event in server.delivered()] == ids
    stats = logger.stats
    assert (stats.sent, stats.retries, stats.failed) == (4, 2, 0)
    logger.close()


def test_other_4xx_are_not_retried_and_count_as_failed(server: RecordingServer) -> None:
    server.script.append((400, {}))
    logger = make_logger(server.url)
    for age in range(3):
        logger.log({"age": age})
    assert logger.flush(timeout=10)
    assert len(server.requests) == 1
    assert (logger.stats.failed, logger.stats.retries, logger.stats.sent) == (3, 0, 0)
    logger.close()


def test_transient_failures_give_up_after_max_retries(server: RecordingServer) -> None:
    server.script.extend([(500, {})] * 3)
    logger = make_logger(server.url, max_retries=2)
    logger.log({"age": 1})
    assert logger.flush(timeout=10)
    assert [request.status for request in server.requests] == [500, 500, 500]
    assert (logger.stats.failed, logger.stats.retries) == (1, 2)
    logger.close()


def test_events_rejected_one_by_one_are_counted(server: RecordingServer) -> None:
    logger = make_logger(server.url)
    logger.log({"age": 1})
    logger.log({"reject": True})
    logger.log({"age": 3})
    assert logger.flush(timeout=10)
    assert (logger.stats.sent, logger.stats.rejected) == (2, 1)
    logger.close()


def test_server_down_then_up_loses_nothing_within_capacity(
    stopped_server: RecordingServer,
) -> None:
    logger = make_logger(stopped_server.url, batch_size=20, capacity=200)
    ids = [logger.log({"age": age}) for age in range(150)]
    deadline = time.monotonic() + 10
    while logger.stats.retries < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert logger.stats.retries >= 2
    assert logger.stats.queued == 150
    stopped_server.start()
    assert logger.flush(timeout=20)
    assert sorted(event["id"] for event in stopped_server.delivered()) == sorted(ids)
    assert logger.stats.sent == 150
    assert (logger.stats.dropped, logger.stats.failed) == (0, 0)
    logger.close()


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_overflow_policy_drops_and_counts(stopped_server: RecordingServer, policy: str) -> None:
    logger = make_logger(
        stopped_server.url, batch_size=5, capacity=10, on_full=policy, flush_interval=60.0
    )
    ids = [logger.log({"age": age}) for age in range(100)]
    stats = logger.stats
    assert stats.dropped + stats.queued == 100
    assert stats.queued <= 15  # the queue plus the one batch in flight
    stopped_server.start()
    assert logger.flush(timeout=20)
    received = {event["id"] for event in stopped_server.delivered()}
    assert len(received) == logger.stats.sent == 100 - logger.stats.dropped
    if policy == "drop_oldest":
        assert set(ids[-10:]) <= received
    else:
        assert ids[-1] not in received
        assert set(ids[:5]) <= received
    logger.close()


def test_close_flushes_and_later_logs_are_dropped(server: RecordingServer) -> None:
    logger = make_logger(server.url, flush_interval=60.0)
    for age in range(7):
        logger.log({"age": age})
    logger.close()
    assert len(server.delivered()) == 7
    assert isinstance(logger.log({"age": 8}), str)
    assert (logger.stats.sent, logger.stats.dropped, logger.stats.queued) == (7, 1, 0)
    logger.close()


def test_close_gives_up_on_an_unreachable_server_in_time(
    stopped_server: RecordingServer,
) -> None:
    logger = make_logger(stopped_server.url)
    for age in range(5):
        logger.log({"age": age})
    logger.close(timeout=0.3)
    assert (logger.stats.failed, logger.stats.queued) == (5, 0)


def test_retries_are_idempotent_because_ids_are_fixed(server: RecordingServer) -> None:
    logger = make_logger(server.url)
    event_id = logger.log({"age": 1})
    logger.log({"age": 1}, id=event_id)
    assert logger.flush(timeout=10)
    assert logger.stats.sent == 2
    assert len(server.seen_ids) == 1
    logger.close()


def test_generated_ids_are_unique() -> None:
    logger = make_logger("http://127.0.0.1:9", flush_interval=60.0, capacity=20_000)
    ids = {logger.log({}) for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(event_id) == 32 for event_id in ids)
    logger.close(timeout=0.1)


def test_a_forked_child_starts_empty_with_its_own_ids(stopped_server: RecordingServer) -> None:
    logger = make_logger(stopped_server.url, flush_interval=60.0)
    parent_id = logger.log({"age": 1})
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        child_id = logger.log({"age": 2})
        os.write(writer, f"{logger.stats.queued} {child_id}".encode())
        os._exit(0)
    os.waitpid(child, 0)
    queued, child_id = os.read(reader, 200).decode().split()
    os.close(reader)
    os.close(writer)
    assert queued == "1"
    assert child_id[:16] != parent_id[:16]
    assert logger.stats.queued == 1
    logger.close(timeout=0.1)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"on_full": "block"}, "on_full"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 100, "capacity": 10}, "capacity"),
        ({"flush_interval": 0}, "flush_interval"),
        ({"max_retries": -1}, "max_retries"),
        ({"backoff_max": -1.0}, "backoff_max"),
    ],
)
def test_bad_options_raise_config_errors(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Client("http://127.0.0.1:9").logger("churn", "v1", **options)
    assert caught.value.key == key


def test_bad_client_arguments_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="not an http"):
        Client("localhost:8000")
    with pytest.raises(ConfigError, match="version"):
        Client("http://127.0.0.1:9").logger("churn", "")
