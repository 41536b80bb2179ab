"""The SDK registers models and hands over reference data against a running server."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tests.server.conftest import ADMIN_TOKEN, ServerProcess
from watchkeeper.errors import AuthError, ConflictError, InputError, NotFoundError
from watchkeeper.sdk import Client

CONFIG = {
    "name": "sdk-registered",
    "task": "regression",
    "features": {"x": "numeric", "colour": "categorical"},
}


def _reference(rows: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "colour": rng.choice(["red", "blue"], rows),
            "prediction": rng.normal(size=rows),
        }
    )


def test_register_with_reference_then_replace_it(server: ServerProcess) -> None:
    with Client(server.url, token=ADMIN_TOKEN) as client:
        registered = client.register_model(CONFIG, reference=_reference())
        assert registered["name"] == "sdk-registered"
        with pytest.raises(ConflictError):
            client.register_model(CONFIG)
        summary = client.set_reference("sdk-registered", pl.from_pandas(_reference(300)))
        assert summary
        with pytest.raises(NotFoundError):
            client.set_reference("no-such-model", _reference())
        with pytest.raises(InputError):
            client.register_model({"name": "bad", "task": "astrology", "features": {}})
    with server.client() as admin:
        assert "sdk-registered" in str(admin.get("/v1/models").json())
        assert admin.get("/v1/models/sdk-registered/signals").status_code == 200


def test_register_needs_an_admin_token(server: ServerProcess) -> None:
    with Client(server.url, token="wk_not_a_token") as client, pytest.raises(AuthError):
        client.register_model({**CONFIG, "name": "never"})
