"""Window profiles and the checkpoint of open windows in the store."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import sqlalchemy as sa

from watchkeeper.store import tables as t
from watchkeeper.store.base import StoreBase
from watchkeeper.store.records import (
    ChangedWindow,
    Checkpoint,
    CheckpointWindow,
    ModelId,
    WindowRecord,
    records_from,
)

__all__ = ["WindowStore"]


class WindowStore(StoreBase):
    """Each window's serialised profile, and the checkpoint: the open windows as of an ingest
    call number, with the largest number in use (:meth:`last_seq`)."""

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
    ) -> WindowRecord:
        """Create or replace the profile of one window (profile, count and closed flag)."""
        record = WindowRecord(
            model_id=model_id,
            version=version,
            segment=segment,
            window_seconds=int(window_seconds),
            window_start=float(window_start),
            profile=bytes(profile),
            event_count=int(event_count),
            closed=bool(closed),
            updated_at=time.time(),
        )
        c = t.window_profiles.c
        insert = self._insert(t.window_profiles).values(
            {column.name: getattr(record, column.name) for column in t.window_profiles.columns}
        )
        statement = insert.on_conflict_do_update(
            index_elements=[c.model_id, c.version, c.segment, c.window_seconds, c.window_start],
            set_={
                name: insert.excluded[name]
                for name in ("profile", "event_count", "closed", "updated_at")
            },
        )
        with self._connection("store window profile", write=True) as connection:
            connection.execute(statement)
        return record

    def windows(
        self,
        model_id: ModelId,
        *,
        window_seconds: int,
        start: float,
        end: float,
        version: str | None = None,
        segment: str | None = None,
    ) -> list[WindowRecord]:
        """Window profiles with ``start <= window_start < end``, by start, version, segment."""
        c = t.window_profiles.c
        conditions = _window_conditions(model_id, window_seconds, start, end, version, segment)
        with self._connection("read window profiles", write=False) as connection:
            rows = connection.execute(
                sa.select(t.window_profiles)
                .where(*conditions)
                .order_by(c.window_start, c.version, c.segment)
            ).all()
        return records_from(WindowRecord, rows)

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
    ) -> list[float]:
        """The first ``limit`` distinct starts of the windows :meth:`windows` would return, in
        order (to page through a long series without reading every profile)."""
        c = t.window_profiles.c
        conditions = _window_conditions(model_id, window_seconds, start, end, version, segment)
        with self._connection("read window starts", write=False) as connection:
            rows = connection.execute(
                sa.select(c.window_start)
                .where(*conditions)
                .distinct()
                .order_by(c.window_start)
                .limit(limit)
            ).scalars()
            return [float(value) for value in rows]

    def version_window_totals(
        self, model_id: ModelId, *, window_seconds: int
    ) -> dict[tuple[str, bool], tuple[int, float]]:
        """Per (version, closed): the events of a model's windows of one length, and the start
        of the latest of them (what a version's live health reads without any profile)."""
        c = t.window_profiles.c
        query = (
            sa.select(c.version, c.closed, sa.func.sum(c.event_count), sa.func.max(c.window_start))
            .where(c.model_id == model_id, c.window_seconds == window_seconds)
            .group_by(c.version, c.closed)
        )
        with self._connection("read window totals", write=False) as connection:
            return {
                (str(version), bool(closed)): (int(events or 0), float(latest))
                for version, closed, events, latest in connection.execute(query)
            }

    def window_segments(self, model_id: ModelId) -> set[str]:
        """The distinct segments of a model's stored windows, open or closed (``""`` included)."""
        c = t.window_profiles.c
        with self._connection("read window segments", write=False) as connection:
            rows = connection.execute(
                sa.select(c.segment).where(c.model_id == model_id).distinct()
            ).scalars()
            return set(rows)

    def open_windows(self, model_id: ModelId | None = None) -> list[WindowRecord]:
        """Windows not yet closed (of one model, or of all), e.g. to resume after a restart."""
        c = t.window_profiles.c
        conditions: list[sa.ColumnElement[bool]] = [c.closed.is_(False)]
        if model_id is not None:
            conditions.append(c.model_id == model_id)
        with self._connection("read open windows", write=False) as connection:
            rows = connection.execute(
                sa.select(t.window_profiles)
                .where(*conditions)
                .order_by(c.model_id, c.window_seconds, c.window_start, c.version, c.segment)
            ).all()
        return records_from(WindowRecord, rows)

    def delete_windows_before(self, model_id: ModelId, cutoff: float) -> int:
        """Profile retention: delete window profiles of a model with ``window_start < cutoff``."""
        c = t.window_profiles.c
        with self._connection("apply profile retention", write=True) as connection:
            return int(
                connection.execute(
                    t.window_profiles.delete().where(
                        c.model_id == model_id, c.window_start < cutoff
                    )
                ).rowcount
            )

    # ------------------------------------------------------------------ changed windows

    def note_changed_window(self, model_id: ModelId, window_start: float) -> ChangedWindow:
        """Record that a closed window changed (now), so that the alerting engine evaluates
        it even if the process restarts before it does."""
        record = ChangedWindow(model_id, float(window_start), time.time())
        insert = self._insert(t.changed_windows).values(
            model_id=record.model_id, window_start=record.window_start, noted_at=record.noted_at
        )
        statement = insert.on_conflict_do_update(
            index_elements=[t.changed_windows.c.model_id, t.changed_windows.c.window_start],
            set_={"noted_at": insert.excluded.noted_at},
        )
        with self._connection("note changed window", write=True) as connection:
            connection.execute(statement)
        return record

    def changed_windows(self) -> list[ChangedWindow]:
        """Every changed window not yet acknowledged, by model and start."""
        c = t.changed_windows.c
        with self._connection("read changed windows", write=False) as connection:
            rows = connection.execute(
                sa.select(t.changed_windows).order_by(c.model_id, c.window_start)
            ).all()
        return records_from(ChangedWindow, rows)

    def forget_changed_windows(self, windows: Sequence[ChangedWindow]) -> None:
        """Acknowledge evaluated windows; one that changed again since (a newer ``noted_at``)
        stays."""
        if not windows:
            return
        c = t.changed_windows.c
        with self._connection("forget changed windows", write=True) as connection:
            for window in windows:
                connection.execute(
                    t.changed_windows.delete().where(
                        c.model_id == window.model_id,
                        c.window_start == window.window_start,
                        c.noted_at <= window.noted_at,
                    )
                )

    # ------------------------------------------------------------------ checkpoints

    def put_checkpoint(
        self, seq: int, windows: Sequence[CheckpointWindow], *, taken_at: float | None = None
    ) -> None:
        """Replace the checkpoint with ``windows``, the open windows after every ingest call
        numbered up to ``seq``, in one transaction (a crash keeps the old one or the new one).

        Windows of models deleted meanwhile are left out.
        """
        c = t.window_checkpoints.c
        with self._connection("store checkpoint", write=True) as connection:
            models = set(connection.execute(sa.select(t.models.c.id)).scalars())
            connection.execute(t.window_checkpoints.delete())
            rows = [
                {column.name: getattr(window, column.name) for column in c}
                for window in windows
                if window.model_id in models
            ]
            if rows:
                connection.execute(t.window_checkpoints.insert(), rows)
            mark = self._insert(t.checkpoints).values(
                id=1, seq=int(seq), taken_at=time.time() if taken_at is None else taken_at
            )
            connection.execute(
                mark.on_conflict_do_update(
                    index_elements=[t.checkpoints.c.id],
                    set_={"seq": mark.excluded.seq, "taken_at": mark.excluded.taken_at},
                )
            )

    def checkpoint(self) -> Checkpoint | None:
        """The latest checkpoint, or None when none was taken."""
        with self._connection("read checkpoint", write=False) as connection:
            mark = connection.execute(
                sa.select(t.checkpoints.c.seq, t.checkpoints.c.taken_at).where(
                    t.checkpoints.c.id == 1
                )
            ).first()
            if mark is None:
                return None
            rows = connection.execute(sa.select(t.window_checkpoints)).all()
        return Checkpoint(
            seq=int(mark.seq),
            taken_at=float(mark.taken_at),
            windows=tuple(records_from(CheckpointWindow, rows)),
        )

    def last_seq(self) -> int:
        """The largest ingest call number stored (events, labels, feedback or checkpoint)."""
        with self._connection("read sequence", write=False) as connection:
            largest = [
                connection.execute(sa.select(sa.func.max(table.c.seq))).scalar()
                for table in (t.events, t.labels, t.feedback, t.checkpoints)
            ]
        return max((int(value) for value in largest if value is not None), default=0)


def _window_conditions(
    model_id: ModelId,
    window_seconds: int,
    start: float,
    end: float,
    version: str | None,
    segment: str | None,
) -> list[sa.ColumnElement[bool]]:
    """Windows of one length starting in ``[start, end)``, of one version / segment if given.

    Infinite bounds mean "no bound" (not every backend binds an infinite float).
    """
    c = t.window_profiles.c
    conditions = [c.model_id == model_id, c.window_seconds == window_seconds]
    if math.isfinite(start):
        conditions.append(c.window_start >= start)
    if math.isfinite(end):
        conditions.append(c.window_start < end)
    if version is not None:
        conditions.append(c.version == version)
    if segment is not None:
        conditions.append(c.segment == segment)
    return conditions
