"""Records are built from rows by column name, so a new or moved column cannot shift fields."""

from __future__ import annotations

import dataclasses
from collections import namedtuple
from typing import Any

import pytest
import sqlalchemy as sa

from watchkeeper.store import NewEvent, Store
from watchkeeper.store import tables as t
from watchkeeper.store.records import (
    CheckpointWindow,
    LabelRecord,
    ModelRecord,
    NewLabel,
    VersionRecord,
    WindowRecord,
    record_from,
    records_from,
)

T0 = 1_700_000_000.0


def _row(columns: dict[str, Any]) -> Any:
    """A row with these columns, in this order, as a query result gives it."""
    return namedtuple("Row", list(columns))(*columns.values())


def test_a_record_comes_from_a_row_in_any_column_order_with_extra_columns() -> None:
    window = WindowRecord(
        model_id=1,
        version="v1",
        segment="",
        window_seconds=3600,
        window_start=T0,
        profile=b"p",
        event_count=3,
        closed=True,
        updated_at=T0 + 1,
    )
    fields = dataclasses.asdict(window)
    reordered = _row({name: fields[name] for name in reversed(fields)} | {"added_later": 7})
    assert record_from(WindowRecord, reordered) == window
    assert records_from(WindowRecord, [reordered, reordered]) == [window, window]
    assert record_from(CheckpointWindow, reordered) == CheckpointWindow(
        model_id=1,
        version="v1",
        segment="",
        window_seconds=3600,
        window_start=T0,
        profile=b"p",
        event_count=3,
    )


def test_a_field_with_a_default_may_be_missing_from_the_row() -> None:
    row = _row({"received_at": T0, "ts": T0, "label": "1", "event_id": "a", "model_id": 1})
    assert record_from(LabelRecord, row) == LabelRecord(1, "a", "1", T0, T0, seq=0)
    # A required field is never filled from another column.
    with pytest.raises(TypeError):
        record_from(LabelRecord, _row({"ts": T0, "label": "1", "event_id": "a", "model_id": 1}))


def test_rows_selected_in_another_column_order_give_the_same_records() -> None:
    with Store.open("sqlite:///:memory:") as store:
        model = store.create_model("m", {"name": "m"})
        store.insert_events(model.id, [NewEvent("a", "v1", T0, {"x": 1})])
        store.insert_labels(model.id, [NewLabel("a", "1", T0)], seq=4)
        with store.engine.connect() as connection:
            label_row = connection.execute(sa.select(*reversed(t.labels.columns))).one()
            model_row = connection.execute(sa.select(*reversed(t.models.columns))).one()
            version_row = connection.execute(sa.select(*reversed(t.model_versions.columns))).one()
        assert record_from(LabelRecord, label_row) == store.labels_after(0)[0]
        assert record_from(LabelRecord, label_row).seq == 4
        assert record_from(ModelRecord, model_row) == model
        assert record_from(VersionRecord, version_row) == store.list_versions(model.id)[0]
