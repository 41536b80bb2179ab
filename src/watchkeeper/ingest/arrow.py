"""Columnar bodies (Arrow IPC stream, Parquet): bounded decoding, and tables as raw columns.

A compressed columnar body can decode to far more than it weighs (24 KiB of zstd hold 100
million zeros). :func:`measure_arrow_stream` and :func:`measure_parquet` read only the body's
metadata (row counts, buffer and page sizes, which compressed Arrow buffers carry in their first
eight bytes), and :func:`decode_arrow_stream` / :func:`decode_parquet` refuse a body over the
limits before decoding anything. Dictionary-encoded strings stay dictionaries until each row
takes a reference to its (shared) value, so a long value repeated on every row costs one copy.

:func:`raw_events` turns a table into the raw columns of :mod:`watchkeeper.ingest.events`:
Arrow values become what JSON decodes to (timestamps epoch seconds, decimals floats, invalid
UTF-8 strings with lone surrogates in place of the bad bytes, which the rules reject), so a table
is validated by the same validator as JSON events.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np

from watchkeeper.errors import IngestError
from watchkeeper.ingest import rules
from watchkeeper.ingest.columns import Rejection, ValidationResult, ValidBatch, ValidEvent
from watchkeeper.ingest.events import RawEvents, validate_raw
from watchkeeper.ingest.spec import EventModel

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "ColumnarSize",
    "column_values",
    "decode_arrow_stream",
    "decode_parquet",
    "measure_arrow_stream",
    "measure_parquet",
    "raw_events",
    "validate_columns",
    "validate_table",
    "warm_up_columnar",
]

_TOP_LEVEL = ("id", "timestamp", "version", "prediction", "latency_ms", "error", "unit", "arm")
# Every value of a column costs at least this much once decoded (an offset, a float64).
_BYTES_PER_VALUE = 8
# Arrow's MessageHeader union: which table a message holds.
_DICTIONARY_BATCH = 2
_RECORD_BATCH = 3


class ColumnarSize(NamedTuple):
    """What a columnar body holds, from its metadata: events and bytes once decoded."""

    rows: int
    decoded_bytes: int


def _corrupt(kind: str, writer: str, error: Exception) -> IngestError:
    return IngestError(
        f"the body is not a valid {kind} ({error}); send the bytes written by {writer}",
        field="body",
    )


class _Table:
    """A FlatBuffers table (the format of Arrow's IPC metadata), read field by field."""

    __slots__ = ("data", "position", "vtable")

    def __init__(self, data: bytes, position: int) -> None:
        self.data = data
        self.position = position
        (relative,) = struct.unpack_from("<i", data, position)
        self.vtable = position - relative

    def _offset(self, slot: int) -> int:
        (size,) = struct.unpack_from("<H", self.data, self.vtable)
        entry = 4 + 2 * slot
        if entry >= size:
            return 0
        (offset,) = struct.unpack_from("<H", self.data, self.vtable + entry)
        return int(offset)

    def scalar(self, slot: int, fmt: str) -> int:
        offset = self._offset(slot)
        if not offset:
            return 0
        (value,) = struct.unpack_from(fmt, self.data, self.position + offset)
        return int(value)

    def table(self, slot: int) -> _Table | None:
        offset = self._offset(slot)
        if not offset:
            return None
        where = self.position + offset
        (relative,) = struct.unpack_from("<I", self.data, where)
        return _Table(self.data, where + relative)

    def structs(self, slot: int) -> list[tuple[int, int]]:
        """A vector of two-int64 structs (FieldNode, Buffer)."""
        offset = self._offset(slot)
        if not offset:
            return []
        where = self.position + offset
        (relative,) = struct.unpack_from("<I", self.data, where)
        start = where + relative
        (count,) = struct.unpack_from("<I", self.data, start)
        return [struct.unpack_from("<qq", self.data, start + 4 + 16 * k) for k in range(count)]


def _batch_size(batch: _Table, body: pa.Buffer | None) -> ColumnarSize:
    """Rows and decoded bytes of one RecordBatch message (Arrow's Message.fbs)."""
    rows = batch.scalar(0, "<q")
    values = sum(length for length, _ in batch.structs(1))
    compressed = batch.table(3) is not None
    decoded = 0
    for offset, length in batch.structs(2):
        if compressed and length >= 8 and body is not None:
            # A compressed buffer starts with its uncompressed length (-1: stored as is).
            (size,) = struct.unpack("<q", body.slice(offset, 8).to_pybytes())
            decoded += length - 8 if size < 0 else size
        else:
            decoded += length
    return ColumnarSize(rows, decoded + values * _BYTES_PER_VALUE)


def measure_arrow_stream(body: bytes) -> ColumnarSize:
    """Rows and decoded bytes of an Arrow IPC stream, from its metadata (nothing decompressed)."""
    import pyarrow as pa

    rows = decoded = 0
    try:
        reader = pa.ipc.MessageReader.open_stream(pa.BufferReader(body))
        while True:
            try:
                message = reader.read_next_message()
            except StopIteration:
                break
            if message is None:
                break
            root = message.metadata.to_pybytes()
            header = _Table(root, struct.unpack_from("<I", root, 0)[0])
            kind = header.scalar(1, "<B")
            table = header.table(2)
            if table is None or kind not in (_RECORD_BATCH, _DICTIONARY_BATCH):
                continue
            if kind == _DICTIONARY_BATCH:
                data = table.table(1)
                if data is not None:
                    decoded += _batch_size(data, message.body).decoded_bytes
                continue
            size = _batch_size(table, message.body)
            rows += size.rows
            decoded += size.decoded_bytes
    except (pa.ArrowException, OSError, ValueError, struct.error) as error:
        raise _corrupt("Arrow IPC stream", "pyarrow.ipc.new_stream", error) from error
    return ColumnarSize(rows, decoded)


def measure_parquet(body: bytes) -> ColumnarSize:
    """Rows and decoded bytes of a Parquet file, from its footer (no page read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(pa.BufferReader(body)).metadata
        decoded = 0
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for position in range(row_group.num_columns):
                chunk = row_group.column(position)
                decoded += chunk.total_uncompressed_size + chunk.num_values * _BYTES_PER_VALUE
    except (pa.ArrowException, OSError, ValueError) as error:
        raise _corrupt("Parquet file", "pyarrow.parquet.write_table", error) from error
    return ColumnarSize(metadata.num_rows, decoded)


def _check_size(size: ColumnarSize, max_rows: int, max_bytes: int) -> None:
    if size.rows > max_rows:
        raise IngestError(
            f"batch has {size.rows} events; the limit is {max_rows}: split it into smaller batches",
            field="events",
        )
    if size.decoded_bytes > max_bytes:
        raise IngestError(
            f"the body decodes to about {size.decoded_bytes} bytes; the limit is {max_bytes}: "
            "send smaller batches",
            field="body",
        )


def decode_arrow_stream(body: bytes, *, max_rows: int, max_bytes: int) -> pa.Table:
    """Decode an Arrow IPC stream body into a table, once its metadata shows it within
    ``max_rows`` events and ``max_bytes`` decoded bytes; IngestError when over or corrupt."""
    import pyarrow as pa

    _check_size(measure_arrow_stream(body), max_rows, max_bytes)
    try:
        with pa.ipc.open_stream(pa.BufferReader(body)) as reader:
            return reader.read_all()
    except (pa.ArrowException, OSError, ValueError) as error:
        raise _corrupt("Arrow IPC stream", "pyarrow.ipc.new_stream", error) from error


def decode_parquet(body: bytes, *, max_rows: int, max_bytes: int) -> pa.Table:
    """Decode a Parquet file body like :func:`decode_arrow_stream`; string columns stay
    dictionary-encoded (each row then refers to one shared value)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _check_size(measure_parquet(body), max_rows, max_bytes)
    try:
        source = pq.ParquetFile(pa.BufferReader(body))
        schema = source.schema_arrow
        strings = [
            item.name
            for item in schema
            if pa.types.is_string(item.type)
            or pa.types.is_large_string(item.type)
            or pa.types.is_binary(item.type)
        ]
        return (
            source.read(use_threads=False)
            if not strings
            else pq.read_table(pa.BufferReader(body), read_dictionary=strings, use_threads=False)
        )
    except (pa.ArrowException, OSError, ValueError) as error:
        raise _corrupt("Parquet file", "pyarrow.parquet.write_table", error) from error


# --------------------------------------------------------------------------- tables → raw


def _strings(array: pa.Array) -> list[Any]:
    """Python strings of a string array; invalid UTF-8 keeps its bad bytes as lone surrogates."""
    import pyarrow as pa

    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        binary = (
            array.cast(pa.binary())
            if pa.types.is_string(array.type)
            else array.cast(pa.large_binary())
        )
        return [
            None if value is None else value.decode("utf-8", "surrogateescape")
            for value in binary.to_pylist()
        ]
    values: list[Any] = array.to_pylist()
    return values


def column_values(column: pa.ChunkedArray) -> list[Any]:
    """The raw values (as JSON decodes them) of one column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    data_type = array.type
    if pa.types.is_dictionary(data_type):
        # Each row refers to its dictionary value: a long value repeated is stored once.
        dictionary = column_values(pa.chunked_array([array.dictionary]))
        indices = array.indices.to_pylist()
        return [None if index is None else dictionary[index] for index in indices]
    if (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_string_view(data_type)
    ):
        if pa.types.is_string_view(data_type):
            array = array.cast(pa.large_string())
        return _strings(array)
    if pa.types.is_floating(data_type):
        nulls = array.is_null().to_numpy(zero_copy_only=False)
        floats = array.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        return rules.FloatColumn(np.asarray(floats, dtype=np.float64), np.asarray(nulls))
    if pa.types.is_timestamp(data_type):
        per_second = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[data_type.unit]
        # Stored values are UTC for zoned timestamps and wall time for naive ones, which
        # watchkeeper reads as UTC, so the raw integers are epoch units in both cases.
        raw = array.cast(pa.int64())
        array = pc.divide(raw.cast(pa.float64()), per_second)
    elif pa.types.is_decimal(data_type):
        array = array.cast(pa.float64())
    return cast("list[Any]", array.to_pylist())


def raw_events(table: pa.Table, model: EventModel) -> RawEvents:
    """The raw columns of a table (one row per event) and the rejections of its columns.

    Columns: ``id``, ``timestamp``, ``version``, one per feature (named as the feature),
    ``prediction``, ``proba.<class>``, ``latency_ms``, ``error``, ``unit``, ``arm``,
    ``segment.<key>``. A null cell
    is the JSON ``null``; an absent feature column is a missing feature in every row; an
    unknown column rejects every row.
    """
    names = table.column_names
    if len(set(names)) != len(names):
        duplicated = sorted({name for name in names if names.count(name) > 1})
        raise IngestError(f"duplicate columns: {', '.join(duplicated)}", field=duplicated[0])
    size = table.num_rows
    classes = list(model.proba or ())
    segments = list(model.segments)
    known = {
        *_TOP_LEVEL,
        *model.features,
        *(f"proba.{label}" for label in classes),
        *(f"segment.{key}" for key in segments),
    }
    shape: list[Rejection] = []
    for name in names:
        if name in known:
            continue
        if name.startswith("proba."):
            field_name = name
            reason = f"unknown class (declared: {', '.join(sorted(classes)) or 'none'})"
        elif name.startswith("segment."):
            field_name = name
            reason = (
                f"segment key is not declared (declared: {', '.join(sorted(segments)) or 'none'})"
            )
        else:
            field_name, reason = f"features.{name}", "unknown feature"
        shape.extend(Rejection(row, field_name, reason) for row in range(size))
    present = set(names)

    def column(name: str, absent: Any = None) -> list[Any]:
        return column_values(table.column(name)) if name in present else [absent] * size

    return RawEvents(
        size=size,
        fields={name: column(name) for name in _TOP_LEVEL},
        features={name: column(name, rules.MISSING) for name in model.features},
        proba={label: column(f"proba.{label}") for label in classes},
        segment={key: column(f"segment.{key}") for key in segments},
        shape=shape,
    )


def validate_table(
    table: pa.Table,
    model: EventModel,
    *,
    now: float,
    max_age_seconds: float,
    max_future_seconds: float = 300.0,
    max_batch: int,
    retention_seconds: float | None = None,
) -> ValidBatch:
    """Validate a columnar batch (one row per event, columns as in :func:`raw_events`) with
    the rules of the JSON path; accepted events come back as columns."""
    if table.num_rows > max_batch:
        raise IngestError(
            f"batch has {table.num_rows} events; the limit is {max_batch}: split it into smaller "
            "batches",
            field="events",
        )
    window = rules.Window.build(now, max_age_seconds, max_future_seconds, retention_seconds)
    return validate_raw(raw_events(table, model), model, window)


def validate_columns(
    table: pa.Table,
    model: EventModel,
    *,
    now: float,
    max_age_seconds: float,
    max_future_seconds: float = 300.0,
    max_batch: int,
) -> ValidationResult[ValidEvent]:
    """:func:`validate_table` with one :class:`ValidEvent` per accepted event."""
    return validate_table(
        table,
        model,
        now=now,
        max_age_seconds=max_age_seconds,
        max_future_seconds=max_future_seconds,
        max_batch=max_batch,
    ).result()


def warm_up_columnar() -> None:
    """Load what decoding a columnar body loads (Arrow IPC, Parquet, zstd): a process that does
    this before it takes batches decodes its first one as fast, and with as little added
    memory, as the next (the server and each ingest worker call it while starting)."""
    import io

    import pyarrow as pa
    import pyarrow.ipc
    import pyarrow.parquet as pq

    table = pa.table({"x": [1.0], "s": ["x"]})
    stream = io.BytesIO()
    options = pyarrow.ipc.IpcWriteOptions(compression="zstd")
    with pyarrow.ipc.new_stream(stream, table.schema, options=options) as writer:
        writer.write_table(table)
    body = stream.getvalue()
    measure_arrow_stream(body)
    pyarrow.ipc.open_stream(body).read_all()
    parquet = io.BytesIO()
    pq.write_table(table, parquet, compression="zstd")
    measure_parquet(parquet.getvalue())
    pq.read_table(io.BytesIO(parquet.getvalue()))
