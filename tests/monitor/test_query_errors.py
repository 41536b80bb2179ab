"""A query for a signal the model does not have says what it may have meant and where to look."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchkeeper.config import Settings
from watchkeeper.errors import NotFoundError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor import MonitorService
from watchkeeper.store import Store


def test_an_unknown_signal_names_close_matches_and_the_listing_route(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'wk.db'}") as store:
        service = MonitorService(store, settings=Settings())
        service.register_model(
            ModelSpec.from_dict(
                {"name": "churn", "task": "classification", "features": {"age": "numeric"}}
            )
        )
        with pytest.raises(NotFoundError) as caught:
            service.series("churn", "acuracy")
        service.close()
    message = str(caught.value)
    assert "model 'churn' has no signal 'acuracy'; did you mean accuracy?" in message
    assert "GET /v1/models/churn/signals" in message
    assert "signal_names()" not in message
