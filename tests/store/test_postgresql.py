"""PostgreSQL specifics: the test server script, error translation without secrets."""

from __future__ import annotations

import subprocess

import pytest

from tests.store.backends import POSTGRES_SCRIPT
from watchkeeper.errors import StoreError
from watchkeeper.store import Store


def test_script_prints_the_test_url() -> None:
    result = subprocess.run(
        ["bash", str(POSTGRES_SCRIPT), "url"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "postgresql+psycopg://postgres@127.0.0.1:54329/watchkeeper_test"


def test_script_rejects_unknown_commands() -> None:
    result = subprocess.run(["bash", str(POSTGRES_SCRIPT), "frobnicate"], capture_output=True)
    assert result.returncode == 2


def test_server_is_up(pg_url: str) -> None:
    with Store(pg_url) as store:
        store.ping()
        assert store.backend == "postgresql"


def test_unreachable_server_raises_store_error_without_password() -> None:
    # Port 9 (discard) on localhost: nothing listens, the connection is refused at once.
    with (
        Store("postgresql://wk:s3cret-pw@127.0.0.1:9/wk?connect_timeout=2") as store,
        pytest.raises(StoreError) as raised,
    ):
        store.ping()
    assert raised.value.backend == "postgresql"
    assert "s3cret-pw" not in str(raised.value)
    assert "reachable" in str(raised.value)
    assert "***" in str(raised.value)
