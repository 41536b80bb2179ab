"""Compressed columnar bodies that decode to gigabytes are refused from their metadata.

A real server (one ingest worker) gets each bomb; the resident memory of the server and its
worker processes must not grow by more than 64 MB, and the answer names the limit.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.server.conftest import ServerProcess
from watchkeeper.errors import IngestError
from watchkeeper.ingest.arrow import decode_arrow_stream, measure_arrow_stream, measure_parquet

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
ROWS = 100_000_000
MODEL = {
    "name": "bombed",
    "task": "regression",
    "features": {"age": "numeric", "note": "text"},
    "windows": [3600],
}
GROWTH_LIMIT = 64 * 2**20


def _zeros() -> pa.Table:
    # np.zeros maps untouched pages: the test itself does not hold 800 MB.
    return pa.table({"version": pa.nulls(ROWS, pa.string()), "age": np.zeros(ROWS)})


def arrow_bomb() -> bytes:
    """100 million zeros in one record batch, zstd-compressed to a few tens of KiB."""
    sink = io.BytesIO()
    table = _zeros()
    options = pa.ipc.IpcWriteOptions(compression=pa.Codec("zstd", compression_level=19))
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=ROWS)
    return sink.getvalue()


def parquet_bomb() -> bytes:
    """100 million zeros in one row group: dictionary and run-length encoding make it tiny."""
    sink = io.BytesIO()
    pq.write_table(_zeros(), sink, row_group_size=ROWS, compression="zstd")
    return sink.getvalue()


def shared_value_bomb() -> bytes:
    """1,000 rows (within the row limit) that all refer to one 1.5 MB dictionary string."""
    note = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(1000, dtype=np.int32)), pa.array(["n" * 1_500_000])
    )
    table = pa.table({"version": ["v1"] * 1000, "age": np.ones(1000), "note": note})
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("bombs")
    process = ServerProcess(
        db=f"sqlite:///{root / 'wk.db'}",
        log=root / "server.log",
        env={"WATCHKEEPER_INGEST_WORKERS": "1"},
    ).start()
    try:
        with process.client() as client:
            assert client.post("/v1/models", json=MODEL).status_code == 201
            # Warm up both paths (imports, first allocations) before measuring.
            for kind, body in ((ARROW, _small(ARROW)), (PARQUET, _small(PARQUET))):
                response = client.post(
                    "/v1/models/bombed/events", content=body, headers={"content-type": kind}
                )
                assert response.json()["accepted"] == 10, response.text
        yield process
    finally:
        process.stop()


def _small(kind: str) -> bytes:
    table = pa.table({"version": ["v1"] * 10, "age": np.ones(10), "note": ["x"] * 10})
    sink = io.BytesIO()
    if kind == PARQUET:
        pq.write_table(table, sink)
    else:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    return sink.getvalue()


def _resident(server: ServerProcess) -> int:
    """Resident bytes of the server process and its ingest workers."""
    assert server.process is not None
    process = psutil.Process(server.process.pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


@pytest.mark.parametrize(
    ("build", "kind", "limit"),
    [
        (arrow_bomb, ARROW, "WATCHKEEPER_MAX_BATCH_EVENTS"),
        (parquet_bomb, PARQUET, "WATCHKEEPER_MAX_BATCH_EVENTS"),
    ],
    ids=["zstd-arrow", "parquet"],
)
def test_a_bomb_is_refused_from_its_metadata(
    server: ServerProcess, build: object, kind: str, limit: str
) -> None:
    body = build()  # type: ignore[operator]
    assert len(body) < 1_000_000
    before = _resident(server)
    with server.client() as client:
        response = client.post(
            "/v1/models/bombed/events", content=body, headers={"content-type": kind}
        )
    growth = _resident(server) - before
    assert response.status_code in (413, 422), response.text
    assert limit in response.json()["error"]["message"]
    assert f"{ROWS} events" in response.json()["error"]["message"]
    assert growth < GROWTH_LIMIT, f"resident memory grew by {growth / 2**20:.0f} MiB"


def test_a_long_value_shared_by_every_row_is_rejected_once_per_row(server: ServerProcess) -> None:
    body = shared_value_bomb()
    before = _resident(server)
    with server.client() as client:
        response = client.post(
            "/v1/models/bombed/events", content=body, headers={"content-type": ARROW}
        )
    growth = _resident(server) - before
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 0
    assert len(answer["rejected"]) == 1000
    assert answer["rejected"][0]["field"] == "features.note"
    assert "at most 65536 characters" in answer["rejected"][0]["reason"]
    assert growth < GROWTH_LIMIT, f"resident memory grew by {growth / 2**20:.0f} MiB"


def _stream(table: pa.Table, compression: str | None) -> bytes:
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


@pytest.mark.parametrize("compression", [None, "zstd", "lz4"])
def test_the_metadata_gives_rows_and_at_least_the_decoded_bytes(compression: str | None) -> None:
    table = pa.table({"age": np.zeros(1_000_000), "note": ["n" * 100] * 1_000_000})
    size = measure_arrow_stream(_stream(table, compression))
    assert size.rows == 1_000_000
    assert size.decoded_bytes >= table.nbytes
    parquet = io.BytesIO()
    pq.write_table(table, parquet, row_group_size=300_000)
    assert measure_parquet(parquet.getvalue()).rows == 1_000_000


def test_a_body_that_decodes_past_the_byte_limit_is_refused_before_decoding() -> None:
    table = pa.table({"note": ["n" * 3_000_000] * 2})
    body = _stream(table, "zstd")
    assert len(body) < 10_000
    with pytest.raises(IngestError, match="decodes to about") as caught:
        decode_arrow_stream(body, max_rows=100, max_bytes=2_000_000)
    assert caught.value.field == "body"
