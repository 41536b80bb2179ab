"""One bad value rejects its own event only, on a real server with SQLite and with PostgreSQL.

Each case posts a batch where one item holds a bad value among valid ones: the answer is a 2xx
naming the item's index, field and reason, the valid items are stored (posting them again finds
them as duplicates), and the same keep-alive connection goes on serving requests.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pyarrow as pa
import pytest

from tests.server.conftest import ServerProcess
from tests.store.backends import postgres_schema_url

ARROW = "application/vnd.apache.arrow.stream"
MODEL: dict[str, Any] = {
    "name": "shop",
    "task": "classification",
    "features": {"age": "numeric", "plan": "categorical", "note": "text", "active": "boolean"},
    "proba": {"0": "proba_0", "1": "proba_1"},
    "segments": ["region"],
    "windows": [3600],
}
REFERENCE = [
    {"age": 20.0 + k % 30, "plan": ["basic", "pro"][k % 2], "active": k % 3 == 0,
     "prediction": str(k % 2), "proba_1": (k % 10) / 10}
    for k in range(200)
]  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server (one ingest worker) with the ``shop`` model and its reference profile; it
    accepts events up to 60 days old, longer than the model keeps them (30 days)."""
    root = tmp_path_factory.mktemp("bad-inputs")

    def run(url: str) -> Iterator[ServerProcess]:
        process = ServerProcess(
            db=url,
            log=root / "server.log",
            env={
                "WATCHKEEPER_INGEST_WORKERS": "1",
                "WATCHKEEPER_MAX_EVENT_AGE_SECONDS": str(60 * 86_400),
            },
        ).start()
        try:
            with process.client() as client:
                assert client.post("/v1/models", json=MODEL).status_code == 201
                response = client.put("/v1/models/shop/reference", json={"records": REFERENCE})
                assert response.status_code in (200, 201), response.text
            yield process
        finally:
            process.stop()

    if request.param == "sqlite":
        yield from run(f"sqlite:///{root / 'wk.db'}")
    else:
        with postgres_schema_url() as url:
            yield from run(url)


def _event(key: str, k: int) -> dict[str, Any]:
    return {
        "id": f"{key}-{k}",
        "version": "v1",
        "timestamp": time.time(),
        "features": {"age": 30.0 + k, "plan": "pro", "note": "fine", "active": True},
        "prediction": "1",
        "proba": {"0": 0.3, "1": 0.7},
        "segment": {"region": "eu"},
    }


def _json(items: list[Any], key: str = "events") -> tuple[bytes, str]:
    # ensure_ascii keeps lone surrogates as \ud800 escapes, as a client in another language
    # would send them.
    return json.dumps({key: items}).encode(), "application/json"


def _with(change: Callable[[dict[str, Any]], None]) -> Callable[[str], tuple[bytes, str]]:
    """Three valid events, the middle one changed."""

    def body(key: str) -> tuple[bytes, str]:
        events = [_event(key, k) for k in range(3)]
        change(events[1])
        return _json(events)

    return body


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        target = event
        *parents, last = path.split(".")
        for parent in parents:
            target = target[parent]
        target[last] = value

    return change


def _huge_integer(key: str) -> tuple[bytes, str]:
    body, kind = _with(_set("features.age", 0))(key)
    return body.replace(b'"age": 0', b'"age": ' + b"7" * 5001), kind


def _arrow(key: str, *, plan: pa.Array | None = None, drop: str | None = None) -> bytes:
    columns: dict[str, Any] = {
        "id": [f"{key}-{k}" for k in range(3)],
        "version": ["v1"] * 3,
        "timestamp": [time.time()] * 3,
        "age": [30.0, 31.0, 32.0],
        "plan": plan if plan is not None else ["pro"] * 3,
        "note": ["fine"] * 3,
        "active": [True] * 3,
        "prediction": ["1"] * 3,
    }
    if drop is not None:
        del columns[drop]
    table = pa.table(columns)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _invalid_utf8(key: str) -> tuple[bytes, str]:
    # A string column whose middle value is the bytes b"\xff\xfe": a writer that skipped
    # UTF-8 validation (pyarrow validates, so the bytes are patched in).
    good = pa.array(["pro", "\x01\x02", "pro"])
    body = _arrow(key, plan=good)
    return body.replace(b"pro\x01\x02pro", b"pro\xff\xfepro"), ARROW


def _labels(change: Callable[[dict[str, Any]], None]) -> Callable[[str], tuple[bytes, str]]:
    def body(key: str) -> tuple[bytes, str]:
        items = [{"id": f"{key}-{k}", "label": "1"} for k in range(3)]
        change(items[1])
        return _json(items, "labels")

    return body


def _feedback(change: Callable[[dict[str, Any]], None]) -> Callable[[str], tuple[bytes, str]]:
    def body(key: str) -> tuple[bytes, str]:
        items = [{"id": f"{key}-{k}", "user_id": "u", "rating": 4} for k in range(3)]
        change(items[1])
        return _json(items, "feedback")

    return body


SURROGATE = "\ud800"
# name: (route, body, field, reason)
CASES: dict[str, tuple[str, Callable[[str], tuple[bytes, str]], str, str]] = {
    "5001-digit integer": ("events", _huge_integer, "features.age", "float64 range"),
    "surrogate id": ("events", _with(_set("id", SURROGATE)), "id", "lone surrogate"),
    "surrogate version": ("events", _with(_set("version", SURROGATE)), "version", "surrogate"),
    "surrogate segment": (
        "events", _with(_set("segment.region", SURROGATE)), "segment.region", "surrogate"
    ),
    "surrogate category": (
        "events", _with(_set("features.plan", SURROGATE)), "features.plan", "surrogate"
    ),
    "surrogate text": ("events", _with(_set("features.note", SURROGATE)), "features.note",
                       "surrogate"),
    "surrogate prediction": ("events", _with(_set("prediction", SURROGATE)), "prediction",
                             "surrogate"),
    "NUL id": ("events", _with(_set("id", "a\x00b")), "id", "NUL"),
    "NUL version": ("events", _with(_set("version", "v\x00")), "version", "NUL"),
    "NUL category": ("events", _with(_set("features.plan", "\x00")), "features.plan", "NUL"),
    "NUL text": ("events", _with(_set("features.note", "a\x00")), "features.note", "NUL"),
    "long id": ("events", _with(_set("id", "i" * 257)), "id", "1 to 256"),
    "long category": ("events", _with(_set("features.plan", "p" * 1025)), "features.plan",
                      "at most 1024"),
    "long text": ("events", _with(_set("features.note", "n" * 65_537)), "features.note",
                  "at most 65536"),
    "arrow invalid UTF-8": ("events", _invalid_utf8, "features.plan", "surrogate"),
    # Stored, it would be acknowledged and then deleted by the next retention pass.
    "older than retention": ("events", _with(_set("timestamp", time.time() - 31 * 86_400)),
                             "timestamp", "raw-event retention of 30 days (retention_days)"),
    "surrogate label id": ("labels", _labels(_set("id", SURROGATE)), "id", "surrogate"),
    "surrogate label": ("labels", _labels(_set("label", SURROGATE)), "label", "surrogate"),
    "NUL label id": ("labels", _labels(_set("id", "l\x00")), "id", "NUL"),
    "surrogate user id": ("feedback", _feedback(_set("user_id", SURROGATE)), "user_id",
                          "surrogate"),
    "NUL comment": ("feedback", _feedback(_set("comment", "nice\x00")), "comment", "NUL"),
    "long comment": ("feedback", _feedback(_set("comment", "c" * 65_537)), "comment",
                     "at most 65536"),
}  # fmt: skip


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    """One keep-alive connection for every case of a server."""
    with server.client(limits=httpx.Limits(max_connections=1)) as connection:
        yield connection


def _post(client: httpx.Client, route: str, body: tuple[bytes, str]) -> httpx.Response:
    content, kind = body
    return client.post(f"/v1/models/shop/{route}", content=content,
                       headers={"content-type": kind})  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_value_rejects_its_item_alone(client: httpx.Client, name: str) -> None:
    route, body, field, reason = CASES[name]
    key = name.replace(" ", "-")
    if route != "events":
        # Labels and feedback join stored events: store those first.
        events = [_event(key, k) for k in range(3)]
        assert _post(client, "events", _json(events)).json()["accepted"] == 3
    response = _post(client, route, body(key))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 2
    assert [(r["index"], r["field"]) for r in answer["rejected"]] == [(1, field)]
    assert reason in answer["rejected"][0]["reason"]
    # The valid items were stored: sending them again finds them.
    if route == "events":
        valid = [_event(key, 0), _event(key, 2)]
        again = _post(client, route, _json(valid)).json()
        assert (again["accepted"], again["duplicates"]) == (0, 2)
    # The same connection still serves requests.
    assert client.get("/healthz").status_code == 200


def test_a_missing_profiled_column_rejects_each_row_and_keeps_the_connection(
    client: httpx.Client,
) -> None:
    response = _post(client, "events", (_arrow("no-age", drop="age"), ARROW))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 0
    assert [(r["index"], r["field"]) for r in answer["rejected"]] == [
        (row, "features.age") for row in range(3)
    ]
    assert "missing" in answer["rejected"][0]["reason"]
    assert _post(client, "events", (_arrow("with-age"), ARROW)).json()["accepted"] == 3
