"""Request bodies in, JSON out: size-limited reading, JSON and columnar decoding, orjson replies.

Every route with a body reads it here, after authentication, through :func:`read_body`, which
stops at the route's limit; small JSON bodies are then validated by a pydantic model
(:func:`read_model`). The ingest path reads the raw body and hands orjson's output straight to
validation: no per-event pydantic models, which would cost more than the validation itself.
:class:`CloseUnreadBodies` closes the connection after an answer given before the body was read
to its end (a refused token, a body over its limit), so the server never reads a body nobody
will use and the client knows not to reuse the connection.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any, Final, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeeper.config import ENV_PREFIX
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
    "CloseUnreadBodies",
    "JsonResponse",
    "media_type",
    "parse_json",
    "read_body",
    "read_frame",
    "read_model",
    "read_table",
    "require_media",
]

CSV: Final = "text/csv"
# JSON bodies above this size are parsed in a worker thread, off the event loop.
_PARSE_INLINE_BYTES: Final = 64 * 1024

Model = TypeVar("Model", bound=BaseModel)


def media_type(request: Request) -> str:
    """The request's content type without parameters, lower case (JSON when absent)."""
    raw = request.headers.get("content-type", JSON)
    return raw.split(";", 1)[0].strip().lower() or JSON


def require_media(request: Request, *supported: str) -> str:
    """The request's media type; 415 naming the supported ones when it is not among them."""
    kind = media_type(request)
    if kind not in supported:
        raise unsupported_media_type(kind, supported)
    return kind


async def read_body(request: Request, *, limit: int, setting: str) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes.

    ``setting`` is the :class:`~watchkeeper.config.Settings` field of the limit, named in the
    error. The declared ``Content-Length`` is checked first; the stream is counted as it
    arrives, so a client that lies about (or omits) the length is cut off before the server
    buffers more than ``limit`` bytes. Call it after authentication: nothing is read before.
    """
    variable = ENV_PREFIX + setting.upper()
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise payload_too_large(
            f"the body has {int(declared)} bytes; the limit is {limit} ({variable}): "
            "send smaller bodies"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise payload_too_large(
                f"the body passed the limit of {limit} bytes ({variable}): send smaller bodies"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def read_document(
    request: Request, *, limit: int, setting: str, required: bool = True
) -> Any:
    """A JSON body of at most ``limit`` bytes, parsed; with ``required`` False an empty body
    (sent with or without a JSON media type) is ``{}``. 415, 413 and 400 as for
    :func:`read_model`."""
    if required or request.headers.get("content-type"):
        require_media(request, JSON)
    body = await read_body(request, limit=limit, setting=setting)
    if not body and not required:
        return {}
    return parse_json(body)


async def read_model(request: Request, model: type[Model], *, limit: int, setting: str) -> Model:
    """A JSON body of at most ``limit`` bytes validated as ``model``.

    415 when the body is not JSON, 413 past the limit, 400 when it does not parse, 422 naming
    the first invalid field (through the same handler as FastAPI's own validation).
    """
    require_media(request, JSON)
    body = await read_body(request, limit=limit, setting=setting)
    if len(body) > _PARSE_INLINE_BYTES:
        document = await run_in_threadpool(parse_json, body)
    else:
        document = parse_json(body)
    try:
        return model.model_validate(document)
    except ValidationError as error:
        problems = error.errors(include_url=False)
        raise RequestValidationError(
            [{**problem, "loc": ("body", *problem["loc"])} for problem in problems]
        ) from None


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


class CloseUnreadBodies:
    """ASGI middleware: answers sent before the request body was read to its end close the
    connection (``Connection: close``).

    Without it the server would keep reading a refused body, up to gigabytes, only to throw it
    away, before the connection could serve the next request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        finished = False

        async def receive_counted() -> Message:
            nonlocal finished
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                finished = True
            return message

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and not finished:
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive_counted, send_closing)


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False
