from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.backends import BACKENDS, backend_url, open_store, postgres_url
from watchkeeper.store import Store


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The test PostgreSQL server's URL (started by scripts/postgres.sh when not configured)."""
    return postgres_url()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, once per backend."""
    with backend_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An opened store on an empty database, once per backend."""
    with open_store(request.param, tmp_path) as opened:
        yield opened
