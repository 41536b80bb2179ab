"""Request bodies in, JSON out: size-limited reading, JSON and columnar decoding, orjson replies.

The ingest path reads the raw body and hands orjson's output straight to validation: no
per-event pydantic models, which would cost more than the validation itself.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any, Final

from fastapi import Request

from watchkeeper.errors import InputError
from watchkeeper.ingest.arrow import (
    decode_arrow_stream,
    decode_parquet,
    measure_arrow_stream,
    measure_parquet,
)
from watchkeeper.ingest.decode import ARROW_STREAM, JSON, PARQUET
from watchkeeper.ingest.json import loads
from watchkeeper.server.errors import (
    malformed_body,
    malformed_json,
    payload_too_large,
    unsupported_media_type,
)
from watchkeeper.server.responses import JsonResponse

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "ARROW_STREAM",
    "CSV",
    "JSON",
    "PARQUET",
    "JsonResponse",
    "media_type",
    "parse_json",
    "read_body",
    "read_frame",
    "read_table",
]

CSV: Final = "text/csv"


def media_type(request: Request) -> str:
    """The request's content type without parameters, lower case (JSON when absent)."""
    raw = request.headers.get("content-type", JSON)
    return raw.split(";", 1)[0].strip().lower() or JSON


async def read_body(request: Request, *, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes.

    The declared ``Content-Length`` is checked first; the stream is counted as it arrives, so
    a client that lies about (or omits) the length is cut off before the server buffers more
    than ``limit`` bytes.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise payload_too_large(
            f"the body has {int(declared)} bytes; the limit is {limit} "
            "(WATCHKEEPER_MAX_BODY_BYTES): send smaller batches"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise payload_too_large(
                f"the body passed the limit of {limit} bytes (WATCHKEEPER_MAX_BODY_BYTES): "
                "send smaller batches"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """Decode a JSON body; 400 with the line, column and byte of the first problem.

    :func:`watchkeeper.ingest.json.loads` also reads what is one event's problem rather than
    the body's (``NaN``, lone surrogates, very long integers), so validation rejects that event
    alone, with its index and field.
    """
    try:
        return loads(body)
    except json.JSONDecodeError as error:
        raise malformed_json(error) from None
    except UnicodeDecodeError as error:
        raise malformed_json(
            json.JSONDecodeError(f"invalid UTF-8 ({error.reason})", "", error.start)
        ) from None
    except RecursionError:
        raise malformed_body("the JSON body is nested too deeply") from None


def read_table(body: bytes, content_type: str, *, max_rows: int, max_bytes: int) -> pa.Table:
    """Decode a columnar events body (Arrow IPC stream or Parquet); 400 when corrupt, 413 when
    its metadata shows more than ``max_rows`` events or ``max_bytes`` decoded bytes (checked
    before anything is decompressed)."""
    if content_type == ARROW_STREAM:
        measure, decode = measure_arrow_stream, decode_arrow_stream
    elif content_type == PARQUET:
        measure, decode = measure_parquet, decode_parquet
    else:
        raise unsupported_media_type(content_type, (JSON, ARROW_STREAM, PARQUET))
    try:
        size = measure(body)
    except ValueError as error:
        raise malformed_body(str(error)) from None
    if size.rows > max_rows:
        raise payload_too_large(
            f"the batch has {size.rows} events; the limit is {max_rows} "
            "(WATCHKEEPER_MAX_BATCH_EVENTS): split it into smaller batches",
            field="events",
        )
    if size.decoded_bytes > max_bytes:
        raise payload_too_large(
            f"the body decodes to about {size.decoded_bytes} bytes; the limit is {max_bytes} "
            "(WATCHKEEPER_MAX_BODY_BYTES): send smaller batches"
        )
    try:
        return decode(body, max_rows=max_rows, max_bytes=max_bytes)
    except ValueError as error:
        raise malformed_body(str(error)) from None


def read_frame(body: bytes, content_type: str) -> pd.DataFrame:
    """Decode reference data: CSV, Parquet, or JSON records (a list or ``{"records": [...]}``)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from watchkeeper.frame import as_dataframe

    if content_type == CSV:
        try:
            frame = pd.read_csv(io.BytesIO(body), low_memory=False)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
            raise malformed_body(f"the body is not readable CSV ({error})") from None
    elif content_type == PARQUET:
        try:
            frame = pq.read_table(pa.BufferReader(body)).to_pandas()
        except (pa.ArrowException, OSError, ValueError) as error:
            raise malformed_body(f"the body is not a valid Parquet file ({error})") from None
    elif content_type == JSON:
        document = parse_json(body)
        records = document.get("records") if isinstance(document, dict) else document
        if not isinstance(records, list) or not all(isinstance(row, dict) for row in records):
            raise InputError(
                'reference JSON must be a list of records or {"records": [{column: value}, ...]}',
                column="records",
            )
        frame = pd.DataFrame.from_records(records)
    else:
        raise unsupported_media_type(content_type, (CSV, PARQUET, JSON))
    return as_dataframe(frame, name="reference")
