from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from watchkeeper.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(11)
    n = 3000
    y = rng.integers(0, 2, n)
    reference = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.choice(list("xyz"), n),
            "y": y,
            "pred": np.where(rng.random(n) < 0.1, 1 - y, y),
        }
    )
    y2 = rng.integers(0, 2, n)
    current = pd.DataFrame(
        {
            "a": rng.normal(1.0, 1, n),
            "b": rng.normal(size=n),
            "c": rng.choice(list("xyz"), n),
            "y": y2,
            "pred": np.where(rng.random(n) < 0.4, 1 - y2, y2),
        }
    )
    paths = {
        "reference": root / "reference.parquet",
        "current": root / "current.csv.gz",
        "same": root / "same.csv",
    }
    reference.to_parquet(paths["reference"])
    current.to_csv(paths["current"], index=False)
    reference.sample(frac=1.0, random_state=1).to_csv(paths["same"], index=False)
    paths["empty"] = root / "empty.csv"
    paths["empty"].write_text("a,b\n")
    paths["garbage"] = root / "garbage.parquet"
    paths["garbage"].write_bytes(b"\x00\x01 not parquet")
    paths["other"] = root / "other.csv"
    pd.DataFrame({"q": [1.0, 2.0]}).to_csv(paths["other"], index=False)
    paths["nan"] = root / "nan.csv"
    reference.assign(a=np.nan).to_csv(paths["nan"], index=False)
    paths["renamed"] = root / "renamed.csv"
    reference.rename(columns={"b": "b_renamed"}).to_csv(paths["renamed"], index=False)
    return paths


def _ok_single_line_error(result: object) -> str:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 2, output  # type: ignore[attr-defined]
    assert "Traceback" not in output
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_report_writes_json_and_html(files: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "report",
            str(files["reference"]),
            str(files["current"]),
            "--json",
            str(tmp_path / "r.json"),
            "--html",
            str(tmp_path / "r.html"),
            "--target",
            "y",
            "--prediction",
            "pred",
            "--categorical",
            "c",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Dataset:" in result.output
    document = orjson.loads((tmp_path / "r.json").read_bytes())
    assert document["schema"] == "watchkeeper.report/v1"
    assert document["drift"]["columns"]["a"]["drift"] is True
    assert document["performance"]["current"]["accuracy"] < 0.7
    assert (tmp_path / "r.html").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--max-drift-share", "0.9"], 0),
        (["--max-drift-share", "0.1"], 1),
        (["--fail-on-dataset-drift"], 0),
        (["--max-missing", "0.0"], 0),
        (["--target", "y", "--prediction", "pred", "--min-accuracy", "0.8"], 1),
        (["--target", "y", "--prediction", "pred", "--min-accuracy", "0.5"], 0),
    ],
)
def test_check_exit_codes(files: dict[str, Path], args: list[str], expected: int) -> None:
    result = runner.invoke(
        app,
        ["check", str(files["reference"]), str(files["current"]), "--exclude", "y,pred", *args]
        if "--target" not in args
        else ["check", str(files["reference"]), str(files["current"]), *args],
    )
    assert result.exit_code == expected, result.output
    assert ("FAIL" in result.output) == (expected == 1)


def test_check_passes_on_same_distribution(files: dict[str, Path]) -> None:
    result = runner.invoke(
        app,
        [
            "check",
            str(files["reference"]),
            str(files["same"]),
            "--fail-on-dataset-drift",
            "--fail-on-quality",
            "--max-drift-share",
            "0.0",
        ],
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such file"),
        ("empty", "no rows"),
        ("garbage", "cannot read the file"),
        ("other", "no common columns"),
        ("target", "target column 'nope'"),
        ("nan", "column 'a' has no numeric values"),
        ("no-condition", "no condition given"),
        ("bad-share", "--max-drift-share must be between 0 and 1"),
        ("exclude-typo", "column(s) excluded are not in the reference data: rowid"),
        ("kind-typo", "column(s) given a kind are not in the reference data: cc"),
    ],
)
def test_bad_input_exits_2_with_one_line(files: dict[str, Path], case: str, message: str) -> None:
    reference, current = str(files["reference"]), str(files["current"])
    args = {
        "missing": ["report", reference, "/nonexistent/x.csv"],
        "empty": ["report", reference, str(files["empty"])],
        "garbage": ["report", str(files["garbage"]), current],
        "other": ["report", reference, str(files["other"])],
        "target": ["report", reference, current, "--target", "nope", "--prediction", "pred"],
        "nan": ["report", str(files["nan"]), current],
        "no-condition": ["check", reference, current],
        "bad-share": ["check", reference, current, "--max-drift-share", "3"],
        "exclude-typo": ["report", reference, current, "--exclude", "a,rowid"],
        "kind-typo": ["check", reference, current, "--categorical", "cc", "--fail-on-quality"],
    }[case]
    line = _ok_single_line_error(runner.invoke(app, args))
    assert message in line


def test_console_script_runs_as_a_process(files: dict[str, Path]) -> None:
    command = [
        sys.executable,
        "-m",
        "watchkeeper",
        "check",
        str(files["reference"]),
        "/nonexistent.csv",
        "--fail-on-dataset-drift",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 2
    assert "no such file" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_usage_error_exit_code(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["report", str(files["reference"])])
    assert result.exit_code == 2


def test_missing_columns_are_listed_and_fail_the_check(
    files: dict[str, Path], tmp_path: Path
) -> None:
    reference, renamed = str(files["reference"]), str(files["renamed"])
    json_path = tmp_path / "report.json"
    report = runner.invoke(app, ["report", reference, renamed, "--json", str(json_path)])
    assert report.exit_code == 0, report.output
    assert "missing from the renamed.csv data" in " ".join(report.output.split())
    document = orjson.loads(json_path.read_bytes())
    assert document["drift"]["missing_columns"] == ["b"]
    assert document["summary"]["missing_columns"] == ["b"]
    assert "not tested" in document["drift"]["skipped"]["b"]
    assert "b" not in document["drift"]["columns"]

    strict = runner.invoke(app, ["check", reference, renamed, "--max-drift-share", "0.3"])
    assert strict.exit_code == 1, strict.output
    assert "FAIL columns present" in strict.output
    lenient = runner.invoke(
        app, ["check", reference, renamed, "--max-drift-share", "0.3", "--allow-missing-columns"]
    )
    assert lenient.exit_code == 0, lenient.output
