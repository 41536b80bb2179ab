"""The HTTP/1.1 protocol the service runs on: uvicorn's httptools protocol with a bounded head.

uvicorn's httptools protocol buffers request lines and headers of any size (a 186 MiB
``Authorization`` header was accepted). :class:`BoundedHttpToolsProtocol` refuses a request
whose head is larger than uvicorn's ``h11_max_incomplete_event_size`` setting, which
:func:`uvicorn_options` sets to ``Settings.max_header_bytes``, with 431 Request Header Fields
Too Large, and answers malformed requests with the service's JSON error body instead of
uvicorn's plain text. uvicorn's h11 protocol enforces the same setting natively, but it served
60 % fewer small requests and 15 % fewer events per second in batches of 500 (docs/service.md).

The limit is checked twice. While a head is arriving, every received chunk after the one that
began it is counted, so a head that never ends is cut off after at most ``limit`` bytes plus
one socket read; when the head is complete, the request target and the header names and values
together must fit in ``limit`` bytes.

``watchkeeper serve`` uses it; with ``uvicorn --factory`` pass
``--http watchkeeper.server.protocol:BoundedHttpToolsProtocol --h11-max-incomplete-event-size N``.
"""

from __future__ import annotations

import sys
from http import HTTPStatus
from typing import Any, Final

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from watchkeeper.config import ENV_PREFIX, Settings
from watchkeeper.server.errors import error_body

__all__ = ["BoundedHttpToolsProtocol", "uvicorn_options"]

_DEFAULT_HEAD_BYTES: Final = Settings().max_header_bytes


class _HeadTooLargeError(Exception):
    """Raised in the parser's callback; httptools hands it back as a parser error."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head and JSON protocol errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = self.config.h11_max_incomplete_event_size
        self._head_limit: int = _DEFAULT_HEAD_BYTES if limit is None else limit
        # Bytes received since the current request's head began; None outside a head.
        self._head_bytes: int | None = None
        self._head_too_large = False

    def data_received(self, data: bytes) -> None:
        """Refuse a head that keeps arriving past the limit before the parser buffers it."""
        if self._head_bytes is not None:
            self._head_bytes += len(data)
            if self._head_bytes > self._head_limit:
                self._refuse(431)
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        """A request begins: its head is counted from the next chunk on."""
        super().on_message_begin()
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        """Refuse a complete head whose target and header fields exceed the limit."""
        self._head_bytes = None
        size = len(self.url) + sum(len(name) + len(value) for name, value in self.headers)
        if size > self._head_limit:
            self._head_too_large = True
            raise _HeadTooLargeError
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """Answer a request the parser refused: 431 for a head too large, else 400."""
        self._refuse(431 if self._head_too_large else 400)

    def _refuse(self, status: int) -> None:
        if status == 431:
            body = error_body(
                "request_header_fields_too_large",
                f"the request target and header fields passed the limit of {self._head_limit} "
                f"bytes ({ENV_PREFIX}MAX_HEADER_BYTES)",
                field="headers",
            )
        else:
            # uvicorn calls send_400_response from its ``except HttpParserError`` block.
            body = error_body("bad_request", f"malformed HTTP request: {sys.exception()}")
        payload = orjson.dumps(body)
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(payload)
        )
        self.transport.write(b"".join(head) + payload)
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The ``uvicorn.run`` keywords that bound the request head to ``max_header_bytes``."""
    return {
        "http": BoundedHttpToolsProtocol,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
