"""Alembic environment: migrates the connection that :class:`~watchkeeper.store.Store` passes in.

The store runs migrations itself, inside a transaction it has already opened (holding the SQLite
write lock or a PostgreSQL advisory lock), so two processes opening the same database at once
migrate it once. There is no offline (``--sql``) mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from watchkeeper.errors import StoreError
from watchkeeper.store.tables import metadata


def _run_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode() or not isinstance(connection, Connection):
        raise StoreError(
            "watchkeeper migrations run only through Store.upgrade() (or Store.open()), "
            "which passes in a live connection; offline SQL generation is not supported"
        )
    _run_online(connection)


_main()
