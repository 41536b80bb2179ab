"""The registry's tests run on both real stores (a SQLite file and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.backends import backend_url
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.store import Store


@pytest.fixture(params=["sqlite-file", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with backend_url(request.param, tmp_path) as url, Store.open(url) as opened:
        yield opened


class Clock:
    """A settable clock: registry moves are stamped with it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(store: Store, tmp_path: Path, clock: Clock) -> Registry:
    return Registry(store, ArtifactStore(tmp_path / "artifacts"), clock=clock)
