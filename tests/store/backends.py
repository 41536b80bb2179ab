"""Store backends for tests: a SQLite file, SQLite in memory, and a real PostgreSQL server.

PostgreSQL comes from ``WATCHKEEPER_TEST_POSTGRES_URL`` or, when that is unset, from
``scripts/postgres.sh start`` (run once per process; the script holds a file lock, so pytest-xdist
workers starting together do not race). Each test gets its own PostgreSQL schema, so tests are
isolated from each other and from other workers while sharing one server.
"""

from __future__ import annotations

import functools
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from watchkeeper.store import Store
from watchkeeper.store.engine import normalise_url

PROJECT_DIR = Path(__file__).resolve().parents[2]
POSTGRES_SCRIPT = PROJECT_DIR / "scripts" / "postgres.sh"
BACKENDS = ("sqlite-file", "sqlite-memory", "postgresql")


@functools.cache
def postgres_url() -> str:
    """The URL of the test PostgreSQL server, starting it when needed; fails the test if absent."""
    configured = os.environ.get("WATCHKEEPER_TEST_POSTGRES_URL")
    if configured:
        return configured
    try:
        result = subprocess.run(
            ["bash", str(POSTGRES_SCRIPT), "start"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not run {POSTGRES_SCRIPT} start: {exc}", pytrace=False)
    if result.returncode != 0 or not result.stdout.strip():
        pytest.fail(
            "PostgreSQL is required by the store contract tests and could not be started by "
            f"{POSTGRES_SCRIPT} start (exit {result.returncode}):\n{result.stderr}\n"
            "Start a server yourself and set WATCHKEEPER_TEST_POSTGRES_URL to its URL.",
            pytrace=False,
        )
    return result.stdout.strip().splitlines()[-1]


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema; the schema is dropped afterwards."""
    base = normalise_url(postgres_url())
    schema = f"wk_test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@contextmanager
def backend_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database of ``backend``."""
    if backend == "sqlite-file":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    elif backend == "sqlite-memory":
        yield "sqlite:///:memory:"
    elif backend == "postgresql":
        with postgres_schema_url() as url:
            yield url
    else:
        raise ValueError(f"unknown test backend {backend!r}")


@contextmanager
def open_store(backend: str, tmp_path: Path) -> Iterator[Store]:
    """An opened (migrated) store on an empty database of ``backend``, closed afterwards."""
    with backend_url(backend, tmp_path) as url, Store.open(url) as store:
        yield store
