"""Where the SDK sends batches: the :class:`Sink` seam and its HTTP implementation.

A sink takes one batch (events, labels, feedback or outcomes of one model) and says what
happened in a :class:`Delivery`; it never raises for delivery problems, so the sender thread
decides about retries in one place. :class:`HttpSink` speaks the service wire contract (``POST
/v1/models/{model}/{kind}``); :class:`~watchkeeper.sdk.local.LocalSink` writes to the embedded
store in-process."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx
import orjson

from watchkeeper.errors import ConfigError
from watchkeeper.ingest import Rejection

__all__ = ["BatchKind", "Delivery", "HttpSink", "Outcome", "Sink", "encode_batch"]

BatchKind = Literal["events", "labels", "feedback", "outcomes"]

_RETRYABLE_STATUS = frozenset({408, 429})
# A Retry-After longer than this is treated as this: a logger must not sleep for hours.
_MAX_RETRY_AFTER = 300.0
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


class Outcome(StrEnum):
    """What became of a batch."""

    DELIVERED = "delivered"
    RETRY = "retry"  # transient: 408, 429, 5xx, timeouts, broken connections
    UNREACHABLE = "unreachable"  # nothing listens (yet): connection refused, DNS, connect timeout
    REFUSED = "refused"  # permanent: any other 4xx; sending the same batch again cannot help


@dataclass(frozen=True, slots=True)
class Delivery:
    """The result of sending one batch.

    ``accepted`` and ``duplicates`` count items the store now holds (duplicates were already
    there: an earlier attempt succeeded); ``rejected`` are the items refused one by one, with
    indices into the batch as sent; ``conflicts`` are labels or ratings refused because their
    id already holds a different one (which is kept). ``retry_after`` is the server's
    Retry-After in seconds.
    """

    outcome: Outcome
    accepted: int = 0
    duplicates: int = 0
    rejected: tuple[Rejection, ...] = ()
    conflicts: tuple[Rejection, ...] = ()
    status: int | None = None
    retry_after: float | None = None
    detail: str = ""


class Sink(Protocol):
    """Delivers batches of one kind for one model; never raises for delivery problems."""

    def send(self, model: str, kind: BatchKind, records: Sequence[Mapping[str, Any]]) -> Delivery:
        """Send ``records`` and report what became of them."""
        ...

    def close(self) -> None:
        """Release connections or handles; the sink is not used afterwards."""
        ...


def _to_json_value(value: Any) -> Any:
    """JSON form of values orjson does not know (pandas scalars, Decimal, sets)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if value.__class__.__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "__float__"):
        return float(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_to_json_value, option=_JSON_OPTIONS)


def encode_batch(
    kind: BatchKind, records: Sequence[Mapping[str, Any]]
) -> tuple[bytes, list[int], list[Rejection]]:
    """JSON body ``{kind: [...]}``, the batch positions it holds, and the unencodable items.

    NaN and infinity become ``null`` (orjson's rule), so a pandas NaN arrives as a missing value.
    One unencodable item must not sink its whole batch, so on failure items are encoded one by
    one and the bad ones are reported instead of sent.
    """
    try:
        return _dumps({kind: list(records)}), list(range(len(records))), []
    except TypeError:
        pass
    parts: list[bytes] = []
    kept: list[int] = []
    bad: list[Rejection] = []
    for position, record in enumerate(records):
        try:
            parts.append(_dumps(record))
        except TypeError as error:
            bad.append(Rejection(position, "event", f"cannot be encoded as JSON: {error}"))
        else:
            kept.append(position)
    body = b'{"' + kind.encode() + b'":[' + b",".join(parts) + b"]}"
    return body, kept, bad


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


def _rejections(raw: object, kept: Sequence[int]) -> list[Rejection]:
    """Server rejections, with indices mapped back to positions in the batch as given."""
    if not isinstance(raw, list):
        return []
    found: list[Rejection] = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        index = item.get("index")
        position = kept[index] if isinstance(index, int) and 0 <= index < len(kept) else -1
        found.append(Rejection(position, str(item.get("field", "")), str(item.get("reason", ""))))
    return found


class HttpSink:
    """Sends batches to a watchkeeper service over HTTP (JSON bodies, orjson-encoded).

    ``client`` may be shared; when omitted the sink owns one with ``timeout`` seconds.
    """

    def __init__(
        self,
        *,
        url: str,
        token: str | None = None,
        timeout: float = 5.0,
        client: httpx.Client | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"url: {url!r} is not an http(s) URL; use e.g. http://localhost:8000", key="url"
            )
        if not timeout > 0:
            raise ConfigError(f"timeout: must be > 0 seconds, got {timeout}", key="timeout")
        self._base = url.rstrip("/")
        headers = {"content-type": "application/json", "user-agent": "watchkeeper-sdk"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._headers = headers
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout)

    @property
    def url(self) -> str:
        """The service base URL."""
        return self._base

    def send(self, model: str, kind: BatchKind, records: Sequence[Mapping[str, Any]]) -> Delivery:
        """POST the batch to ``/v1/models/{model}/{kind}``."""
        body, kept, unencodable = encode_batch(kind, records)
        if not kept:
            return Delivery(
                Outcome.REFUSED, rejected=tuple(unencodable), detail="nothing encodable"
            )
        address = f"{self._base}/v1/models/{quote(model, safe='')}/{kind}"
        try:
            response = self._client.post(address, content=body, headers=self._headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            return Delivery(Outcome.UNREACHABLE, detail=f"{type(error).__name__}: {error}")
        except httpx.TransportError as error:
            return Delivery(Outcome.RETRY, detail=f"{type(error).__name__}: {error}")
        status = response.status_code
        if status < 300:
            try:
                answer = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                answer = {}
            if not isinstance(answer, Mapping):
                answer = {}
            rejected = unencodable + _rejections(answer.get("rejected"), kept)
            accepted = answer.get("accepted")
            duplicates = answer.get("duplicates")
            return Delivery(
                Outcome.DELIVERED,
                accepted=accepted if isinstance(accepted, int) else len(kept) - len(rejected),
                duplicates=duplicates if isinstance(duplicates, int) else 0,
                rejected=tuple(sorted(rejected, key=lambda rejection: rejection.index)),
                conflicts=tuple(_rejections(answer.get("conflicts"), kept)),
                status=status,
            )
        detail = response.text[:500]
        if status in _RETRYABLE_STATUS or status >= 500:
            return Delivery(
                Outcome.RETRY,
                status=status,
                retry_after=_retry_after(response.headers.get("retry-after")),
                detail=detail,
            )
        return Delivery(Outcome.REFUSED, status=status, detail=detail, rejected=tuple(unencodable))

    def close(self) -> None:
        """Close the HTTP connections if this sink owns them."""
        if self._owns_client:
            self._client.close()
