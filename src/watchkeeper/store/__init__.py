"""The durable metadata and event store (SQLAlchemy Core; SQLite by default, or PostgreSQL).

>>> from watchkeeper.store import NewEvent, Store
>>> with Store.open("sqlite:///:memory:") as store:
...     model = store.create_model("fraud", {"name": "fraud", "task": "classification"})
...     store.insert_events(model.id, [NewEvent("a1", "v1", 1_700_000_000.0, {"x": 1.5})])
InsertResult(inserted_ids=('a1',), duplicate_ids=())
"""

from __future__ import annotations

from watchkeeper.store.codec import EventCodec
from watchkeeper.store.protocol import MonitorStore
from watchkeeper.store.records import InsertResult, NewEvent
from watchkeeper.store.store import Store, encode_columns, encode_events

__all__ = [
    "EventCodec",
    "InsertResult",
    "MonitorStore",
    "NewEvent",
    "Store",
    "encode_columns",
    "encode_events",
]
