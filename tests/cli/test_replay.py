"""``watchkeeper replay`` end to end on the bundled rainfall data (documented drift at row 12,000).

A logistic regression trained on rows 0–5,999 predicts every later row; the rows are replayed one
every 5 minutes, so a daily window holds 288 of them (44 windows). Its accuracy per window is
0.72–0.86 before row 12,000 and 0.35–0.63 after it, so a rule ``accuracy < 0.65`` (with the
default pack's ``min_labels: 100``) must fire after row 12,000 and never before, whether labels
come with their predictions or two weeks later.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from watchkeeper.cli.main import app

DAY = 86_400.0
ROW_SECONDS = 300.0
START = 1_600_000_000.0 - 1_600_000_000.0 % DAY
ONSET = START + 12_000 * ROW_SECONDS


@pytest.fixture(scope="module")
def replay_files(tmp_path_factory: pytest.TempPathFactory, rainfall: pd.DataFrame) -> Path:
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("replay")
    features = [name for name in rainfall.columns if name != "rain"]
    model = LogisticRegression(max_iter=1000).fit(
        rainfall[features].iloc[:6000], rainfall["rain"].iloc[:6000]
    )
    frame = rainfall.assign(prediction=model.predict(rainfall[features]))
    frame["timestamp"] = START + frame.index.to_numpy() * ROW_SECONDS
    frame["id"] = [f"row-{row}" for row in frame.index]
    frame.iloc[:6000][[*features, "prediction"]].to_csv(folder / "reference.csv", index=False)
    frame.iloc[6000:].to_csv(folder / "events.csv", index=False)
    config = {
        "name": "rainfall",
        "task": "classification",
        "features": dict.fromkeys(features, "numeric"),
        "prediction": "prediction",
        "windows": [86_400],
    }
    (folder / "model.yaml").write_text(yaml.safe_dump(config))
    rule = {
        "name": "RainfallAccuracyDrop",
        "model": "rainfall",
        "signal": "accuracy",
        "condition": "< 0.65",
        "min_labels": 100,
        "severity": "critical",
    }
    (folder / "rules.yaml").write_text(yaml.safe_dump({"rules": [rule]}))
    return folder


def _replay(folder: Path, *extra: str) -> tuple[str, dict]:
    out = folder / f"out{len(list(folder.glob('out*.json')))}.json"
    arguments = [
        "replay",
        str(folder / "events.csv"),
        "--config",
        str(folder / "model.yaml"),
        "--reference",
        str(folder / "reference.csv"),
        "--label-column",
        "rain",
        "--id-column",
        "id",
        "--rules",
        str(folder / "rules.yaml"),
        "--json",
        str(out),
        *extra,
    ]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    return result.output, orjson.loads(out.read_bytes())


@pytest.mark.parametrize(("delay", "delay_seconds"), [("0s", 0.0), ("14d", 14 * DAY)])
def test_rainfall_accuracy_alert_fires_after_row_12000_and_not_before(
    replay_files: Path, delay: str, delay_seconds: float
) -> None:
    output, document = _replay(replay_files, "--label-delay", delay)
    assert "replayed 12159 events and 12159 labels of 'rainfall' into 44 windows" in output
    assert "RainfallAccuracyDrop: fired" in output
    firing = [change for change in document["alerts"] if change["state"] == "firing"]
    assert firing, "the accuracy collapse after row 12,000 must be alerted"
    assert all(change["at"] > ONSET for change in firing), "no accuracy alert before row 12,000"
    first = firing[0]
    # At the end of the window holding row 12,000 or of the next one (event time) …
    assert first["at"] <= ONSET + 2 * DAY
    assert first["labels"]["model"] == "rainfall"
    assert first["value"] < 0.65
    # … and known once the labels of that window have arrived: the delay, at most a window more.
    assert delay_seconds <= first["known_at"] - first["at"] <= delay_seconds + DAY
    windows = document["windows"]
    assert len(windows) == 44
    assert windows[0]["signals"]["label_coverage"] == 1.0
    before = [w for w in windows if w["end"] <= ONSET and w["signals"]["labeled_count"] >= 100]
    after = [w for w in windows if w["start"] >= ONSET and w["signals"]["labeled_count"] >= 100]
    assert min(w["signals"]["accuracy"] for w in before) > 0.65
    assert max(w["signals"]["accuracy"] for w in after) < 0.65


def test_replay_bad_inputs_name_the_option(replay_files: Path) -> None:
    base = [
        "replay",
        str(replay_files / "events.csv"),
        "--config",
        str(replay_files / "model.yaml"),
        "--reference",
        str(replay_files / "reference.csv"),
    ]
    cases = [
        (["--label-column", "rainn"], "label_column: no column 'rainn' in the events"),
        (["--time-column", "ts"], "time_column: no column 'ts' in the events"),
        (["--label-column", "rain", "--label-delay", "two weeks"], "--label-delay"),
        (["--label-column", "rain", "--label-delay", "-1"], "--label-delay"),
        (["--label-delay", "1d"], "label_column: label times or a label delay need"),
        (["--rules", str(replay_files / "nope.yaml")], "--rules: no such file"),
        (
            ["--label-column", "rain", "--label-delay", "1d", "--label-time-column", "timestamp"],
            "label_delay: give a label time column or a fixed delay, not both",
        ),
    ]
    for extra, message in cases:
        result = CliRunner().invoke(app, [*base, *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in " ".join(result.output.split()), (extra, result.output)
