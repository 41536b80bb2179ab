from __future__ import annotations

import pytest

from watchkeeper.errors import ConfigError
from watchkeeper.store.engine import normalise_url, redact_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://wk@db:5432/wk", "postgresql+psycopg://wk@db:5432/wk"),
        ("postgres://wk@db/wk", "postgresql+psycopg://wk@db/wk"),
        ("postgresql+psycopg://wk@db/wk", "postgresql+psycopg://wk@db/wk"),
        ("sqlite:///data/wk.db", "sqlite:///data/wk.db"),
        ("sqlite://", "sqlite://"),
        ("monitoring.db", "sqlite:///monitoring.db"),
        ("/var/lib/wk/monitoring.db", "sqlite:////var/lib/wk/monitoring.db"),
    ],
)
def test_normalise_url(given: str, expected: str) -> None:
    assert normalise_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("bad", ["", "   ", "mysql://u@h/db", "oracle://scott@h/db"])
def test_unsupported_urls_raise_config_error(bad: str) -> None:
    with pytest.raises(ConfigError) as raised:
        normalise_url(bad)
    assert raised.value.key == "db"


def test_redaction_hides_password_even_in_errors() -> None:
    url = normalise_url("postgresql://wk:s3cret@db/wk")
    assert "s3cret" not in redact_url(url)
    assert url.password == "s3cret"
    with pytest.raises(ConfigError) as raised:
        normalise_url("mysql://wk:s3cret@db/wk")
    assert "s3cret" not in str(raised.value)
