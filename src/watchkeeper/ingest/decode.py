"""Event batches from request bodies to the form the monitor stores and folds.

This is the one module of :mod:`watchkeeper.ingest` that reaches below the contract: it hands
the accepted columns to the monitor's fold batch (:class:`~watchkeeper.monitor.windows.
EventBatch`) and the store's encoder, so that an ingest worker process does all the per-event
work and the server process only stores and folds.

Decoding (JSON or columnar), validation and encoding for the store are pure functions of the body
and the model: they need neither the store nor the monitor's state. :class:`DecodedEvents` is
their result, and it pickles cheaply, so the server can run :func:`decode_body` in its ingest
worker processes (``watchkeeper.server.workers``) while the monitor process only stores and folds.
The in-process paths (:meth:`MonitorService.ingest_events`, the SDK's local mode) use the same
functions, so both give the same outcome for the same body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from watchkeeper.ingest import rules
from watchkeeper.ingest.arrow import (
    column_values,
    decode_arrow_stream,
    decode_parquet,
    validate_table,
    warm_up_columnar,
)
from watchkeeper.ingest.columns import Rejection, ValidBatch, ValidColumns
from watchkeeper.ingest.json import unwrap_batch, validate_event_batch
from watchkeeper.store import EncodedEvents
from watchkeeper.store.codec import SQLITE_CODEC, EventCodec

if TYPE_CHECKING:
    import pyarrow as pa

    from watchkeeper.ingest.spec import ModelSpec
    from watchkeeper.monitor.windows import ColumnPlan, EventBatch

__all__ = [
    "ARROW_STREAM",
    "JSON",
    "PARQUET",
    "DecodeJob",
    "DecodedEvents",
    "decode_body",
    "decode_events",
    "decode_table",
    "encode_valid",
    "warm_up",
]

JSON: Final = "application/json"
ARROW_STREAM: Final = "application/vnd.apache.arrow.stream"
PARQUET: Final = "application/vnd.apache.parquet"


@dataclass(frozen=True, slots=True)
class DecodeJob:
    """What decoding a batch for one model needs: its spec and plan, the clock, the limits
    (``max_body_bytes`` also bounds what a columnar body may decode to), and the codec of the
    store that will write the batch (``Store.event_codec``)."""

    spec: ModelSpec
    plan: ColumnPlan
    now: float
    max_age_seconds: float
    max_future_seconds: float
    max_batch: int
    max_body_bytes: int = 32 * 1024 * 1024
    codec: EventCodec = SQLITE_CODEC
    retention_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class DecodedEvents:
    """A validated batch: accepted events as fold columns and as store rows, and rejections.

    ``rejected_versions`` holds the version each rejected event claimed (``""`` when unusable),
    so rejections are counted in that version's window.
    """

    plan: ColumnPlan
    now: float
    batch: EventBatch
    encoded: EncodedEvents
    rejected: list[Rejection]
    rejected_versions: list[str]


def _raw_version(raw: object) -> str:
    version = raw.get("version") if isinstance(raw, Mapping) else None
    checked = rules.identifier(version)
    return checked if isinstance(checked, str) else ""


def encode_valid(accepted: ValidColumns, codec: EventCodec = SQLITE_CODEC) -> EncodedEvents:
    """Validated events encoded by ``codec`` (the store's), straight from their columns."""
    return codec.encode_columns(
        ids=accepted.ids,
        versions=accepted.versions,
        ts=accepted.ts,
        segments=accepted.segments,
        features=accepted.feature_rows(),
        predictions=accepted.predictions,
        probas=accepted.probas,
        latency_ms=accepted.latency_ms,
        errors=accepted.errors,
        units=accepted.units,
        arms=accepted.arms,
    )


def _decoded(job: DecodeJob, result: ValidBatch, rejected_versions: list[str]) -> DecodedEvents:
    # Imported here: the monitor package imports this module (its service decodes in-process).
    from watchkeeper.monitor.windows import EventBatch

    return DecodedEvents(
        plan=job.plan,
        now=job.now,
        batch=EventBatch.of_columns(result.accepted, job.plan),
        encoded=encode_valid(result.accepted, job.codec),
        rejected=list(result.rejected),
        rejected_versions=rejected_versions,
    )


def _limits(job: DecodeJob) -> dict[str, Any]:
    return {
        "now": job.now,
        "max_age_seconds": job.max_age_seconds,
        "max_future_seconds": job.max_future_seconds,
        "max_batch": job.max_batch,
        "retention_seconds": job.retention_seconds,
    }


def decode_events(events: list[Any], job: DecodeJob) -> DecodedEvents:
    """Validate and encode a decoded JSON batch (the list under ``"events"``)."""
    result = validate_event_batch(events, job.spec, **_limits(job))
    indices = sorted({rejection.index for rejection in result.rejected})
    return _decoded(job, result, [_raw_version(events[index]) for index in indices])


def decode_table(table: pa.Table, job: DecodeJob) -> DecodedEvents:
    """Validate and encode a columnar batch (Arrow or Parquet, one row per event)."""
    result = validate_table(table, job.spec, **_limits(job))
    indices = sorted({rejection.index for rejection in result.rejected})
    versions = [""] * len(indices)
    if indices and "version" in table.column_names:
        column = column_values(table.column("version"))
        versions = [_raw_version({"version": column[index]}) for index in indices]
    return _decoded(job, result, versions)


def decode_body(body: bytes, content_type: str, job: DecodeJob) -> DecodedEvents | None:
    """:func:`decode_events` / :func:`decode_table` straight from a request body.

    Returns None for any body it does not decode cleanly (not JSON, an unusable envelope, too
    many events, an unknown content type, or an unexpected error): the caller then takes the
    in-process path, which gives the client the precise error. Only well-formed batches, which
    are nearly all of them, are worth sending to another process.
    """
    try:
        if content_type == JSON:
            # orjson alone: a body it refuses (NaN tokens, lone surrogates) is rare, and the
            # in-process path reads it with the fallback parser and its precise errors.
            events = unwrap_batch(orjson.loads(body), "events")
            if len(events) > job.max_batch:
                return None
            return decode_events(events, job)
        if content_type in (ARROW_STREAM, PARQUET):
            decode = decode_arrow_stream if content_type == ARROW_STREAM else decode_parquet
            # Over a limit, the metadata says so before anything is decompressed.
            table = decode(body, max_rows=job.max_batch, max_bytes=job.max_body_bytes)
            return decode_table(table, job)
    except Exception:
        return None
    return None


def warm_up() -> None:
    """Load everything :func:`decode_body` loads on first use (the monitor's window code, the
    Arrow, Parquet and zstd readers): an ingest worker does this before it says it is ready, so
    its first batch costs no more time or memory than the next."""
    from watchkeeper.monitor.windows import EventBatch  # noqa: F401

    warm_up_columnar()
