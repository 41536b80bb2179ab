"""A model's ``retrain:`` configuration: defaults, and errors that name the key."""

from __future__ import annotations

import pytest

from watchkeeper.errors import ConfigError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.retrain import RetrainConfig
from watchkeeper.retrain.config import DEFAULT_CANARY, Mode

TRAINER = {"trainer": "tests.retrain.trainers:fit"}


def test_defaults_and_round_trip() -> None:
    config = RetrainConfig.from_dict(TRAINER)
    assert config.schedule is None
    assert config.min_interval_seconds == 6 * 3600
    assert (config.after_detections, config.max_retries, config.max_attempts) == (1, 2, 3)
    assert config.mode is Mode.AUTOMATIC
    assert config.executor_kind == "local"
    assert config.canary == DEFAULT_CANARY
    assert [config.backoff(n) for n in (1, 2, 3)] == [60.0, 120.0, 240.0]
    assert RetrainConfig.from_dict(config.to_dict()) == config
    assert config.canary_spec("m", 4)["baseline"] == "champion"


def test_the_trigger_keys() -> None:
    config = RetrainConfig.from_dict(
        {**TRAINER, "schedule": "0 3 * * 1", "min_interval": "1d", "after_detections": 3,
         "max_retries": 0, "retry_backoff": "5m", "mode": "manual",
         "executor": {"kind": "webhook", "url": "http://127.0.0.1:9/jobs"},
         "canary": {"step_weight": 50}}
    )  # fmt: skip
    assert config.schedule == "0 3 * * 1"
    assert config.min_interval_seconds == 86_400
    assert (config.after_detections, config.max_attempts) == (3, 1)
    assert config.retry_backoff_seconds == 300
    assert config.mode is Mode.MANUAL
    assert config.executor == {"kind": "webhook", "url": "http://127.0.0.1:9/jobs"}


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        ({"schedule": "every monday"}, "retrain.schedule", "cron expression"),
        ({"schedule": "61 * * * *"}, "retrain.schedule", "cron expression"),
        ({"min_interval": "soon"}, "retrain.min_interval", "duration"),
        ({"after_detections": 0}, "retrain.after_detections", "integer >= 1"),
        ({"max_retries": -1}, "retrain.max_retries", "integer >= 0"),
        ({"mode": "auto"}, "retrain.mode", "automatic, manual"),
        ({"executor": "airflow"}, "retrain.executor", "local, webhook"),
        ({"canary": {"candidate": 3}}, "retrain.canary.candidate", "set by the run"),
        ({"canary": {"step_weight": 500}}, "retrain.canary.step_weight", "step_weight"),
        ({"trainer": "nocolon"}, "trainer", "package.module:function"),
        ({"metrics": "accuracy"}, "retrain.metrics", "unknown key"),
    ],
)
def test_bad_values_name_the_key(change: dict[str, object], key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        RetrainConfig.from_dict({**TRAINER, **change})
    assert caught.value.key == key


def test_the_model_config_carries_it() -> None:
    base = {"name": "m", "task": "classification", "features": {"x": "numeric"}}
    spec = ModelSpec.from_dict({**base, "retrain": {**TRAINER, "mode": "manual"}})
    assert spec.retrain == {**TRAINER, "mode": "manual"}
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert "retrain" not in ModelSpec.from_dict(base).to_dict()
    with pytest.raises(ConfigError) as caught:
        ModelSpec.from_dict({**base, "retrain": {**TRAINER, "mode": "sometimes"}})
    assert caught.value.key == "retrain.mode"
