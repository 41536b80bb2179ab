from __future__ import annotations

import pytest

from tests.store.backends import postgres_url


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The test PostgreSQL server's URL (started by scripts/postgres.sh when not configured)."""
    return postgres_url()
