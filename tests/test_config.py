from __future__ import annotations

from pathlib import Path

import pytest

from watchkeeper.config import Settings, load_settings
from watchkeeper.errors import ConfigError


def test_sources_in_order(tmp_path: Path) -> None:
    config = tmp_path / "watchkeeper.yaml"
    config.write_text("port: 9000\nauth: true\nlog_level: debug\n")
    settings = load_settings(
        config_file=config, environ={"WATCHKEEPER_PORT": "9100"}, db="sqlite:///x.db"
    )
    assert settings.port == 9100
    assert settings.auth is True
    assert settings.log_level == "debug"
    assert settings.db == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"WATCHKEEPER_PORT": "eighty"}, "WATCHKEEPER_PORT: expected an integer, got 'eighty'"),
        ({"WATCHKEEPER_AUTH": "maybe"}, "WATCHKEEPER_AUTH: expected true or false"),
        ({"WATCHKEEPER_PORT": "70000"}, "port: expected 1–65535"),
        ({"WATCHKEEPER_LOG_LEVEL": "loud"}, "log_level"),
        ({"WATCHKEEPER_MAX_BATCH_EVENTS": "0"}, "max_batch_events: must be > 0"),
        ({"WATCHKEEPER_INGEST_CONCURRENCY": "0"}, "ingest_concurrency: expected at least 1"),
        (
            {"WATCHKEEPER_ALERTS_DELIVERY_INTERVAL_SECONDS": "0"},
            "alerts_delivery_interval_seconds: must be > 0",
        ),
    ],
)
def test_bad_values_name_the_key(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(config_file=tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("nope: 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'nope'"):
        load_settings(config_file=bad, environ={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("port: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(config_file=broken, environ={})


def test_exposure_needs_auth() -> None:
    Settings(host="127.0.0.1").check_exposure()
    Settings(host="::1").check_exposure()
    Settings(host="0.0.0.0", auth=True).check_exposure()
    with pytest.raises(ConfigError, match="refusing to listen on non-loopback"):
        Settings(host="0.0.0.0").check_exposure()


def test_secret_not_in_repr() -> None:
    assert "s3cret" not in repr(Settings(admin_token="s3cret"))


def test_every_setting_is_documented() -> None:
    import dataclasses
    import re

    docs = (Path(__file__).parents[1] / "docs" / "service.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \| `WATCHKEEPER_[A-Z_]+` \|", docs, re.M))
    assert documented == {field.name for field in dataclasses.fields(Settings)}


def test_artifact_location_defaults_beside_the_sqlite_file(tmp_path: Path) -> None:
    beside = Settings(db=f"sqlite:///{tmp_path}/wk.db").artifact_location
    assert beside == f"{tmp_path}/watchkeeper-artifacts"
    assert Settings(db="sqlite:///:memory:").artifact_location == "watchkeeper-artifacts"
    assert Settings(db="postgresql+psycopg://h/db").artifact_location == "watchkeeper-artifacts"
    assert Settings(artifact_root="s3://b/m").artifact_location == "s3://b/m"
