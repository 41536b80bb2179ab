"""Fixtures shared by the alerting tests: real local HTTP and SMTP receivers, SQL databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.alerts._databases import sql_url
from tests.alerts._servers import CaptureServer, self_signed_certificate

__all__ = ["http_receiver", "sql_url", "tls_files"]


@pytest.fixture
def http_receiver() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))
