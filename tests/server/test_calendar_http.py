"""Calendar windows through a real server: series pages over HTTP and the CLI, range reports
that name the range they cover, and the OpenAPI document of both."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from tests.server.conftest import ADMIN_TOKEN, ServerProcess
from tests.test_windowing import DAY, HOUR, PARIS, at
from watchkeeper.cli.main import app

FIRST_MONDAY = at("2025-01-06 00:00", PARIS)
WEEKS = 50
# Two events a week: Monday at midnight exactly (it opens the week) and Tuesday noon.
TIMESTAMPS = np.array(
    [
        FIRST_MONDAY + week * 7 * DAY + offset
        for week in range(WEEKS)
        for offset in (0, DAY + 12 * HOUR)
    ]
)


def model(name: str, windows: list[int | str]) -> dict[str, Any]:
    return {
        "name": name,
        "task": "regression",
        "features": {"x": "numeric"},
        "windows": windows,
        "timezone": PARIS,
        "retention_days": 3650,
        "profile_retention_days": 3650,
    }


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("calendar")
    process = ServerProcess(
        db=f"sqlite:///{root / 'wk.db'}",
        log=root / "server.log",
        env={"WATCHKEEPER_INGEST_WORKERS": "0", "WATCHKEEPER_MAX_EVENT_AGE_SECONDS": "1e9"},
    ).start()
    try:
        with process.client() as client:
            for name, windows in (("calendar", ["day", "week", "month"]), ("weekly", ["week"])):
                client.post("/v1/models", json=model(name, windows)).raise_for_status()
                events = [
                    {"id": f"e{i}", "timestamp": float(ts), "version": "v1",
                     "features": {"x": float(i % 5)}, "prediction": 1.0}
                    for i, ts in enumerate(TIMESTAMPS)
                ]  # fmt: skip
                answer = client.post(f"/v1/models/{name}/events", json={"events": events})
                assert answer.status_code == 200, answer.text
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(live: ServerProcess) -> Iterator[httpx.Client]:
    with live.client() as opened:
        yield opened


def mondays() -> list[float]:
    first = np.datetime64("2025-01-06")
    days = [str(first + np.timedelta64(7 * week, "D")) for week in range(WEEKS)]
    return [at(f"{day} 00:00", PARIS) for day in days]


def test_a_series_without_start_returns_every_window(client: httpx.Client) -> None:
    answer = client.get("/v1/models/calendar/signals/count", params={"window": "week"})
    body = answer.json()
    assert answer.status_code == 200, body
    assert (body["window"], body["next"]) == ("week", None)
    assert [point["start"] for point in body["points"]] == mondays()
    assert {point["value"] for point in body["points"]} == {2.0}
    days = client.get("/v1/models/calendar/signals/count").json()  # the shortest: days
    assert (days["window"], len(days["points"]), days["next"]) == ("day", 2 * WEEKS, None)


def test_series_pages_follow_the_next_cursor(client: httpx.Client) -> None:
    points: list[dict[str, Any]] = []
    params: dict[str, Any] = {"window": "week", "limit": 20}
    sizes = []
    while True:
        body = client.get("/v1/models/calendar/signals/count", params=params).json()
        points += body["points"]
        sizes.append(len(body["points"]))
        if body["next"] is None:
            break
        params["start"] = body["next"]
    assert sizes == [20, 20, 10]
    assert [point["start"] for point in points] == mondays()
    too_many = client.get("/v1/models/calendar/signals/count", params={"limit": 10_001})
    assert too_many.status_code == 422
    wrong = client.get("/v1/models/calendar/signals/count", params={"window": "fortnight"})
    assert wrong.status_code == 422
    assert "keeps the windows 'day', 'week', 'month'" in wrong.json()["error"]["message"]
    nan = client.get("/v1/models/calendar/signals/count", params={"start": "nan"})
    assert nan.status_code == 422


def test_range_reports_name_the_range_they_cover(client: httpx.Client) -> None:
    march, april = "2025-03-01T00:00:00+01:00", "2025-04-01T00:00:00+02:00"
    exact = client.get("/v1/models/calendar/report", params={"start": march, "end": april})
    window = exact.json()["window"]
    assert (window["start"], window["end"], window["exact"], window["window"]) == (
        at("2025-03-01 00:00", PARIS),
        at("2025-04-01 00:00", PARIS),
        True,
        "month",
    )
    in_march = (window["start"] <= TIMESTAMPS) & (window["end"] > TIMESTAMPS)
    assert exact.json()["current"]["rows"] == int(in_march.sum())

    # Weekly windows cannot cover March exactly: the report covers whole weeks and says so.
    wide = client.get("/v1/models/weekly/report", params={"start": march, "end": april}).json()
    window = wide["window"]
    assert (window["start"], window["end"], window["exact"]) == (
        at("2025-02-24 00:00", PARIS),
        at("2025-04-07 00:00", PARIS),
        False,
    )
    assert window["requested"] == {
        "start": at("2025-03-01 00:00", PARIS),
        "end": at("2025-04-01 00:00", PARIS),
    }
    assert wide["current"]["name"] == "weekly [2025-02-23T23:00:00Z, 2025-04-06T22:00:00Z)"
    covered = (window["start"] <= TIMESTAMPS) & (window["end"] > TIMESTAMPS)
    assert wide["current"]["rows"] == int(covered.sum()) == 12


def test_the_openapi_document_describes_pages_and_calendar_windows(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/v1/models/{model}/signals/{signal}"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert parameters["limit"]["schema"]["maximum"] == 10_000
    assert "'week'" in parameters["window"]["description"]
    assert "start" in operation["description"]
    assert "next" in operation["description"]
    schemas = document["components"]["schemas"]
    assert {"window", "points", "next"} <= set(schemas["SignalSeries"]["properties"])
    assert "next page" in schemas["SignalSeries"]["properties"]["next"]["description"]
    assert "timezone" in schemas["ModelConfig"]["properties"]


def cli(live: ServerProcess, *args: str) -> tuple[int, str, str]:
    env = {"WATCHKEEPER_URL": live.url, "WATCHKEEPER_TOKEN": ADMIN_TOKEN}
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_follows_pages_or_says_it_truncated(live: ServerProcess, tmp_path: Path) -> None:
    code, out, err = cli(
        live, "signals", "series", "calendar", "count", "--window", "week", "--json"
    )
    assert (code, err) == (0, f"watchkeeper: using server {live.url}\n")
    body = json.loads(out)
    assert [point["start"] for point in body["points"]] == mondays()
    assert body["next"] is None
    # The same command on the server's database reads the same (closed) windows.
    on_db = CliRunner().invoke(
        app,
        ["signals", "series", "calendar", "count", "--window", "week", "--json", "--db", live.db],
    )
    assert on_db.exit_code == 0, on_db.stderr
    assert on_db.stderr.startswith("watchkeeper: using database sqlite:///")
    closed = [point for point in body["points"] if point["end"] <= time.time()]
    assert json.loads(on_db.stdout)["points"][: len(closed)] == closed

    code, out, err = cli(
        live,
        "signals",
        "series",
        "calendar",
        "count",
        "--window",
        "week",
        "--limit",
        "20",
        "--json",
    )
    assert code == 0
    assert len(json.loads(out)["points"]) == 20
    assert "truncated at --limit 20" in err
    assert f"--start {mondays()[20]!r}" in err

    code, out, _ = cli(live, "signals", "series", "calendar", "count", "--window", "week")
    assert code == 0
    assert "50 windows of week" in out

    code, out, _ = cli(
        live,
        "signals",
        "report",
        "weekly",
        "--start",
        "2025-03-01T00:00:00+01:00",
        "--end",
        "2025-04-01T00:00:00+02:00",
    )
    assert code == 0
    assert "2025-02-23 23:00:00Z to 2025-04-06 22:00:00Z" in out
    assert "covers more than requested" in out
    assert "12 events" in out
    code, _, err = cli(live, "signals", "series", "calendar", "count", "--window", "fortnight")
    assert code == 2
    assert "keeps the windows" in err
