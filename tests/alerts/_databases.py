"""The databases the SQL alerting tests run on: a SQLite file and a real PostgreSQL server.

PostgreSQL is the store tests' server (``tests/store/backends.py``: ``scripts/postgres.sh`` or
``WATCHKEEPER_TEST_POSTGRES_URL``); every test gets a fresh schema, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.backends import backend_url

SQL_BACKENDS = ("sqlite-file", "postgresql")


@pytest.fixture(params=SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, once per SQL backend."""
    with backend_url(request.param, tmp_path) as url:
        yield url
