"""The JSON Schema of model.yaml shipped in the package: current, and never stricter than
watchkeeper's own check on load (every config watchkeeper accepts validates against it)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from watchkeeper.cli.main import app
from watchkeeper.errors import ConfigError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.server.schemas import ModelConfig, model_config_schema

SHIPPED = resources.files("watchkeeper.data") / "model-config.schema.json"


def test_the_shipped_schema_is_the_current_one() -> None:
    assert json.loads(SHIPPED.read_text("utf-8")) == model_config_schema(), (
        "regenerate it: python -c 'import json; from watchkeeper.server.schemas import "
        "model_config_schema as s; print(json.dumps(s(), indent=2, ensure_ascii=False))' "
        "> src/watchkeeper/data/model-config.schema.json"
    )


def test_the_cli_prints_it() -> None:
    result = CliRunner().invoke(app, ["models", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == model_config_schema()


def mostly(valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any]) -> Any:
    """Mostly valid values (Hypothesis favours small draws: 9 is the rare one), so many drawn
    configs are accepted and the property is tested on them, not only on refusals."""
    return st.integers(0, 9).flatmap(lambda draw: invalid if draw == 9 else valid)


kinds = mostly(
    st.sampled_from(["numeric", "categorical", "boolean", "datetime", "text"]),
    st.sampled_from(["date", 3]),
)
names = mostly(st.sampled_from(["churn", "credit.v2", "a-b_c"]), st.text(max_size=6))
features = st.dictionaries(
    mostly(st.sampled_from(["age", "plan", "income"]), st.sampled_from(["id", "proba.x", ""])),
    kinds,
    min_size=1,
    max_size=3,
)
windows = mostly(
    st.sampled_from([[3600], [3600, 86400], [60, "6h"], ["day", "week", "month"], [300, "day"]]),
    st.lists(st.one_of(st.sampled_from(["1d", "fortnight"]), st.integers(-5, 10)), max_size=3),
)
quality = st.fixed_dictionaries(
    {},
    optional={
        "alpha": mostly(st.floats(0.001, 0.5), st.floats(-0.5, 1.5)),
        "floors": st.dictionaries(
            mostly(st.sampled_from(["missing_rate", "new_categories"]), st.just("typo")),
            mostly(st.floats(0.0, 1.0), st.floats(-0.5, 1.5)),
        ),
    },
)
configs = st.fixed_dictionaries(
    {
        "name": names,
        "task": mostly(st.sampled_from(["classification", "regression"]), st.just("ranking")),
        "features": features,
    },
    optional={
        "prediction": st.one_of(st.none(), st.sampled_from(["prediction", "score"])),
        "proba": st.one_of(st.none(), st.dictionaries(st.sampled_from(["0", "1"]), st.text())),
        "target_kind": st.one_of(st.none(), kinds),
        "windows": windows,
        "timezone": mostly(st.sampled_from(["UTC", "Europe/Paris"]), st.just("Mars/Olympus")),
        "segments": st.lists(st.sampled_from(["region", "device"]), max_size=2, unique=True),
        "retention_days": mostly(st.integers(1, 400), st.integers(-1, 0)),
        "quality": st.one_of(st.none(), quality),
        "outcomes": st.dictionaries(
            mostly(st.sampled_from(["click", "revenue", "_x1"]), st.sampled_from(["1st", "a.b"])),
            mostly(st.sampled_from(["binary", "numeric"]), st.sampled_from(["rate", None])),
            max_size=3,
        ),
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs)
def test_every_config_watchkeeper_accepts_validates_against_the_schema(
    config: dict[str, Any],
) -> None:
    try:
        ModelSpec.from_dict(config)
    except ConfigError:
        return
    try:
        ModelConfig.model_validate(config)
    except ValidationError as error:  # pragma: no cover - the failure message is the point
        raise AssertionError(f"the schema refuses a config watchkeeper accepts: {error}") from None


def test_the_schema_refuses_what_watchkeeper_refuses_in_outcomes() -> None:
    base = {"name": "m", "task": "classification", "features": {"a": "numeric"}}
    for outcomes in ({"a.b": "binary"}, {"click": "rate"}):
        try:
            ModelConfig.model_validate({**base, "outcomes": outcomes})
        except ValidationError:
            pass
        else:  # pragma: no cover
            raise AssertionError(f"the schema accepts outcomes {outcomes}")
    assert model_config_schema()["properties"]["outcomes"]["additionalProperties"] is False
