"""The Alembic migrations produce exactly the schema declared in ``watchkeeper.store.tables``,
the alerting tables included: one metadata for the whole database."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tests.store.backends import backend_url
from watchkeeper.store import Store
from watchkeeper.store.store import MIGRATIONS_DIR
from watchkeeper.store.tables import ALERT_TABLES, metadata

HEAD = "0010"


def test_single_head() -> None:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    assert script.get_heads() == [HEAD]


@pytest.mark.parametrize("backend", ["sqlite-file", "postgresql"])
def test_migrated_schema_matches_tables(backend: str, tmp_path: Path) -> None:
    with backend_url(backend, tmp_path) as url, Store.open(url) as store:
        assert store.schema_revision() == HEAD
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
            tables = set(sa.inspect(connection).get_table_names())
    assert differences == []
    assert {table.name for table in ALERT_TABLES} < tables
    assert set(metadata.tables) <= tables


def test_upgrade_before_and_after_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    with Store(url) as store:
        assert store.schema_revision() is None
        store.upgrade()
        store.upgrade()
        assert store.schema_revision() == HEAD


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
            assert store.schema_revision() == HEAD


def _upgrade_to(store: Store, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@pytest.mark.parametrize("backend", ["sqlite-file", "postgresql"])
def test_alerting_tables_made_before_0002_are_adopted(backend: str, tmp_path: Path) -> None:
    # Before 0002 the alerting code ran create_all on databases at 0001.
    with backend_url(backend, tmp_path) as url:
        with Store(url) as store:
            _upgrade_to(store, "0001")
            metadata.create_all(store.engine, tables=ALERT_TABLES)
            with store.engine.begin() as connection:
                connection.execute(
                    sa.text(
                        "INSERT INTO alert_rule (name, position, spec, updated_at) "
                        "VALUES ('Kept', 0, '{}', 1.0)"
                    )
                )
        with Store.open(url) as store:
            assert store.schema_revision() == HEAD
            with store.engine.connect() as connection:
                names = connection.execute(sa.text("SELECT name FROM alert_rule")).scalars()
                assert list(names) == ["Kept"]
