"""``--quality-alpha`` / ``--quality-floor``: parsed like a model spec's ``quality`` section."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from watchkeeper.cli.main import app
from watchkeeper.errors import ConfigError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.stats.quality_thresholds import CHECK_FLOORS

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("quality-options")
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(list("abc"), 300)})
    labels = rng.choice(list("abc"), 300).astype(object)
    labels[:45] = "new"  # 15 % of the rows carry a label the reference never had
    current = pd.DataFrame({"x": rng.normal(size=300), "c": labels})
    reference.to_csv(root / "reference.csv", index=False)
    current.to_csv(root / "current.csv", index=False)
    return str(root / "reference.csv"), str(root / "current.csv")


def spec_error(config: dict[str, object]) -> str | None:
    try:
        ModelSpec.from_dict(
            {"name": "m", "task": "regression", "features": {"x": "numeric"}, "quality": config}
        )
    except ConfigError as exc:
        return str(exc)
    return None


def cli_error(files: tuple[str, str], alpha: float | None, floors: dict[str, float]) -> str | None:
    args = ["report", *files, "-q"]
    if alpha is not None:
        args.append(f"--quality-alpha={alpha!r}")
    if floors:
        args.append("--quality-floor=" + ",".join(f"{k}={v!r}" for k, v in floors.items()))
    result = runner.invoke(app, args)
    if result.exit_code == 0:
        return None
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    line = result.output.strip()
    assert line.startswith("error: ")
    return line.removeprefix("error: ")


values = st.one_of(
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, -0.0, 1e-300, math.nan, math.inf]),
)
check_names = st.one_of(
    st.sampled_from(sorted(CHECK_FLOORS)),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    alpha=st.one_of(st.none(), values),
    floors=st.dictionaries(check_names, values, max_size=3),
)
def test_cli_and_spec_accept_and_reject_the_same_quality_settings(
    files: tuple[str, str], alpha: float | None, floors: dict[str, float]
) -> None:
    config: dict[str, object] = {"floors": floors}
    if alpha is not None:
        config["alpha"] = alpha
    assert cli_error(files, alpha, floors) == spec_error(config)


def test_floors_change_the_check_verdict(files: tuple[str, str], tmp_path: Path) -> None:
    strict = runner.invoke(app, ["check", *files, "--fail-on-quality"])
    assert strict.exit_code == 1, strict.output
    lenient = runner.invoke(
        app, ["check", *files, "--fail-on-quality", "--quality-floor", "new_categories=0.2"]
    )
    assert lenient.exit_code == 0, lenient.output
    json_path = tmp_path / "report.json"
    runner.invoke(
        app,
        ["report", *files, "-q", "--quality-alpha", "0.01", "--json", str(json_path)],
    )
    check = orjson.loads(json_path.read_bytes())["quality"]["columns"]["c"]["new_categories"]
    assert check["verdict"] == "fail"
    assert check["details"]["new_counts"] == {"new": 45}


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--quality-floor=missing_rat=0.1", "unknown quality check; valid checks are"),
        ("--quality-floor=missing_rate", "expected CHECK=FLOOR"),
        ("--quality-floor=missing_rate=lots", "must be a number, got 'lots'"),
        ("--quality-floor=missing_rate=0.1,missing_rate=0.2", "'missing_rate' given twice"),
        ("--quality-alpha=0", "quality alpha: must be a significance level in (0, 1)"),
    ],
)
def test_bad_quality_options_exit_2_naming_the_problem(
    files: tuple[str, str], option: str, message: str
) -> None:
    result = runner.invoke(app, ["check", *files, "--fail-on-quality", option])
    assert result.exit_code == 2, result.output
    assert message in result.output
