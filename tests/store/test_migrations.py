"""The Alembic migrations produce exactly the schema declared in ``watchkeeper.store.tables``."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tests.store.backends import backend_url
from watchkeeper.store import Store
from watchkeeper.store.store import MIGRATIONS_DIR
from watchkeeper.store.tables import metadata


def test_single_head() -> None:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    assert script.get_heads() == ["0001"]


@pytest.mark.parametrize("backend", ["sqlite-file", "postgresql"])
def test_migrated_schema_matches_tables(backend: str, tmp_path: Path) -> None:
    with backend_url(backend, tmp_path) as url, Store.open(url) as store:
        assert store.schema_revision() == "0001"
        with store._engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    assert differences == []


def test_upgrade_before_and_after_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    with Store(url) as store:
        assert store.schema_revision() is None
        store.upgrade()
        store.upgrade()
        assert store.schema_revision() == "0001"


@pytest.mark.parametrize("backend", ["sqlite-file", "postgresql"])
def test_concurrent_first_opens_migrate_once(backend: str, tmp_path: Path) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def open_and_close(url: str) -> None:
        try:
            barrier.wait()
            with Store.open(url) as store:
                store.ping()
        except BaseException as exc:
            errors.append(exc)

    with backend_url(backend, tmp_path) as url:
        threads = [threading.Thread(target=open_and_close, args=(url,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with Store(url) as store:
            assert store.schema_revision() == "0001"
