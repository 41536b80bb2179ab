"""Alembic migrations of the store; run by :meth:`watchkeeper.store.Store.upgrade`."""
