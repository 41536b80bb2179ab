"""The HTTP/1.1 protocol the service runs on: uvicorn's h11 protocol with a bounded request head.

uvicorn's default parser (httptools) buffers request lines and headers of any size: a 186 MiB
``Authorization`` header was accepted. h11 refuses a head larger than its
``max_incomplete_event_size`` before buffering more; :func:`uvicorn_options` sets it to
``Settings.max_header_bytes``. uvicorn answers every h11 protocol error with a plain-text 400;
:class:`BoundedH11Protocol` answers with h11's own status hint instead (431 Request Header
Fields Too Large for an oversized head) and the service's JSON error body.

``watchkeeper serve`` uses it; with ``uvicorn --factory`` pass
``--http watchkeeper.server.protocol:BoundedH11Protocol --h11-max-incomplete-event-size N``.
"""

from __future__ import annotations

import sys
from http import HTTPStatus
from typing import Any

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from watchkeeper.config import ENV_PREFIX, Settings
from watchkeeper.server.errors import error_body

__all__ = ["BoundedH11Protocol", "uvicorn_options"]


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering malformed or oversized requests in JSON."""

    def send_400_response(self, msg: str) -> None:
        """Answer the h11 error being handled with its status hint (400 or 431), then close."""
        # uvicorn calls this from its ``except h11.RemoteProtocolError`` block.
        error = sys.exception()
        status = error.error_status_hint if isinstance(error, h11.RemoteProtocolError) else 400
        if status == 431:
            limit = self.config.h11_max_incomplete_event_size
            body = error_body(
                "request_header_fields_too_large",
                f"the request line and headers passed the limit of {limit} bytes "
                f"({ENV_PREFIX}MAX_HEADER_BYTES)",
                field="headers",
            )
        else:
            body = error_body("bad_request", f"malformed HTTP request: {error or msg}")
        payload = orjson.dumps(body)
        head = h11.Response(
            status_code=status,
            reason=HTTPStatus(status).phrase,
            headers=[
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        )
        for event in (head, h11.Data(data=payload), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The ``uvicorn.run`` keywords that bound the request head to ``max_header_bytes``."""
    return {"http": BoundedH11Protocol, "h11_max_incomplete_event_size": settings.max_header_bytes}
