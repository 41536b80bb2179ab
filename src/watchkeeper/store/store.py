"""The durable metadata and event store: one synchronous, thread-safe API over SQLite or PostgreSQL.

The service calls it from a thread pool; every method runs in its own short transaction (on
SQLite, event batches of concurrent callers share one: group commit), and a method that writes
has committed when it returns.

:class:`Store` is the one class callers use; its methods come from one module per
responsibility, each a part built on :class:`~watchkeeper.store.base.StoreBase` (the engine,
transactions, migrations, the backend's event writer):

- ``models.py``: models, versions, reference profiles
- ``events.py``: events (written by ``writers.py``, encoded by ``codec.py``)
- ``labels.py``: labels and feedback
- ``outcomes.py``: business outcomes
- ``windows.py``: window profiles, checkpoints and the changed-windows feed
- ``tokens.py``: API tokens
- ``registry.py``: model registry versions, aliases and alias moves
- ``rollouts.py``: rollouts, their analysis measurements and their history
- ``retrain_runs.py``: retraining runs
"""

from __future__ import annotations

from watchkeeper.store.base import MIGRATIONS_DIR, migrate_connection
from watchkeeper.store.codec import encode_columns, encode_events
from watchkeeper.store.events import EventStore
from watchkeeper.store.labels import LabelStore
from watchkeeper.store.models import ModelStore
from watchkeeper.store.outcomes import OutcomeStore
from watchkeeper.store.registry import RegistryStore
from watchkeeper.store.retrain_runs import RetrainRunStore
from watchkeeper.store.rollouts import RolloutStore
from watchkeeper.store.serving import ServingStore
from watchkeeper.store.tokens import TokenStore
from watchkeeper.store.windows import WindowStore

__all__ = ["MIGRATIONS_DIR", "Store", "encode_columns", "encode_events", "migrate_connection"]


class Store(
    ModelStore,
    EventStore,
    LabelStore,
    OutcomeStore,
    WindowStore,
    TokenStore,
    RegistryStore,
    RolloutStore,
    ServingStore,
    RetrainRunStore,
):
    """Models, versions, profiles, events, labels, feedback, outcomes, window profiles, API
    tokens, registry versions, serving routes, rollouts and retraining runs.

    ``url`` is a SQLAlchemy URL or a plain path (a SQLite file): ``sqlite:///watchkeeper.db``,
    ``sqlite:///:memory:``, ``postgresql://user@host:5432/db`` (psycopg 3 is used for plain
    ``postgresql://`` and ``postgres://`` URLs). ``Store(url)`` connects lazily and does not
    migrate; :meth:`open` also brings the schema to the newest revision.

    >>> from watchkeeper.store import NewEvent
    >>> with Store.open("sqlite:///:memory:") as store:
    ...     model = store.create_model("churn", {"name": "churn", "task": "classification"})
    ...     event = NewEvent("e1", "v1", 1_700_000_000.0, {"age": 41})
    ...     store.insert_events(model.id, [event, event]).duplicate_ids
    ('e1',)
    """
