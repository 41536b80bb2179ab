"""What the monitor needs of a store: :class:`MonitorStore`.

:class:`~watchkeeper.store.Store` implements it over SQLite and PostgreSQL; the monitor
(``watchkeeper.monitor``) is typed against this Protocol alone, so the methods it relies on are
listed in one place and anything else implementing them can stand in.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from watchkeeper.store.codec import EventCodec
from watchkeeper.store.records import (
    ChangedWindow,
    Checkpoint,
    CheckpointWindow,
    EncodedEvents,
    EventId,
    EventRecord,
    FeedbackInsertResult,
    FeedbackRecord,
    InsertResult,
    LabelInsertResult,
    LabelRecord,
    ModelId,
    ModelRecord,
    NewFeedback,
    NewLabel,
    NewOutcome,
    OutcomeInsertResult,
    OutcomeRecord,
    ReferenceProfileRecord,
    RetentionResult,
    VersionRecord,
    WindowRecord,
)

__all__ = ["MonitorStore"]


class MonitorStore(Protocol):
    """The store methods :class:`~watchkeeper.monitor.MonitorService` calls (see
    :class:`~watchkeeper.store.Store` for what each does), and the codec its ingest jobs use."""

    @property
    def event_codec(self) -> EventCodec: ...

    def checkpoint(self) -> Checkpoint | None: ...

    def count_events(
        self,
        model_id: ModelId,
        *,
        start: float | None = None,
        end: float | None = None,
        version: str | None = None,
        segment: str | None = None,
    ) -> int: ...

    def count_events_after(self, seq: int) -> int: ...

    def last_ingested(self, model_id: ModelId) -> dict[tuple[str, str], float]: ...

    def create_model(self, name: str, config: Mapping[str, Any]) -> ModelRecord: ...

    def delete_events_before(self, model_id: ModelId, cutoff: float) -> RetentionResult: ...

    def delete_model(self, name: str) -> None: ...

    def changed_windows(self) -> list[ChangedWindow]: ...

    def delete_windows_before(self, model_id: ModelId, cutoff: float) -> int: ...

    def events_by_ids(
        self, model_id: ModelId, ids: Sequence[EventId]
    ) -> dict[EventId, EventRecord]: ...

    def feedback_after(self, seq: int) -> list[FeedbackRecord]: ...

    def feedback_between(
        self, model_id: ModelId, start: float, end: float
    ) -> list[FeedbackRecord]: ...

    def get_model(self, name: str) -> ModelRecord: ...

    def update_model_config(
        self, name: str, config: Mapping[str, Any], *, expected_version: int | None = None
    ) -> ModelRecord: ...

    def get_reference_profile(self, model_id: ModelId) -> ReferenceProfileRecord: ...

    def insert_encoded(
        self, model_id: ModelId, encoded: EncodedEvents, *, seq: int = 0
    ) -> InsertResult: ...

    def insert_feedback(
        self, model_id: ModelId, feedback: Sequence[NewFeedback], *, seq: int = 0
    ) -> FeedbackInsertResult: ...

    def insert_labels(
        self, model_id: ModelId, labels: Sequence[NewLabel], *, seq: int = 0
    ) -> LabelInsertResult: ...

    def insert_outcomes(
        self, model_id: ModelId, outcomes: Sequence[NewOutcome], *, seq: int = 0
    ) -> OutcomeInsertResult: ...

    def iter_event_batches(
        self,
        model_id: ModelId,
        start: float,
        end: float,
        *,
        version: str | None = None,
        segment: str | None = None,
        batch_size: int = ...,
    ) -> Iterator[list[EventRecord]]: ...

    def iter_events_after(
        self, seq: int, *, batch_size: int = ...
    ) -> Iterator[list[EventRecord]]: ...

    def labels_after(self, seq: int) -> list[LabelRecord]: ...

    def labels_for(
        self, model_id: ModelId, ids: Sequence[EventId]
    ) -> dict[EventId, LabelRecord]: ...

    def labels_of_events_after(self, seq: int) -> list[LabelRecord]: ...

    def labels_received_between(
        self, model_id: ModelId, start: float, end: float
    ) -> list[LabelRecord]: ...

    def last_seq(self) -> int: ...

    def latest_predictions(
        self, model_id: ModelId, wanted: Sequence[tuple[str, float]]
    ) -> dict[tuple[str, float], EventId]: ...

    def outcomes_after(self, seq: int) -> list[OutcomeRecord]: ...

    def outcomes_for(self, model_id: ModelId, ids: Sequence[EventId]) -> list[OutcomeRecord]: ...

    def list_models(self) -> list[ModelRecord]: ...

    def list_versions(self, model_id: ModelId) -> list[VersionRecord]: ...

    def open_windows(self, model_id: ModelId | None = None) -> list[WindowRecord]: ...

    def put_checkpoint(
        self, seq: int, windows: Sequence[CheckpointWindow], *, taken_at: float | None = None
    ) -> None: ...

    def put_reference_profile(
        self, model_id: ModelId, profile: bytes, *, rows: int
    ) -> ReferenceProfileRecord: ...

    def note_changed_window(self, model_id: ModelId, window_start: float) -> ChangedWindow: ...

    def forget_changed_windows(self, windows: Sequence[ChangedWindow]) -> None: ...

    def upsert_window(
        self,
        model_id: ModelId,
        *,
        version: str,
        segment: str,
        window_seconds: int,
        window_start: float,
        profile: bytes,
        event_count: int,
        closed: bool,
    ) -> WindowRecord: ...

    def version_window_totals(
        self, model_id: ModelId, *, window_seconds: int
    ) -> dict[tuple[str, bool], tuple[int, float]]: ...

    def window_segments(self, model_id: ModelId) -> set[str]: ...

    def windows(
        self,
        model_id: ModelId,
        *,
        window_seconds: int,
        start: float,
        end: float,
        version: str | None = None,
        segment: str | None = None,
    ) -> list[WindowRecord]: ...

    def window_starts(
        self,
        model_id: ModelId,
        *,
        window_seconds: int,
        start: float,
        end: float,
        version: str | None = None,
        segment: str | None = None,
        limit: int,
    ) -> list[float]: ...
