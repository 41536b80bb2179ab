"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against a real server.

Every page loads without console errors and draws its charts; a drift cell opens that
window's report; a silence is added and expired through the forms; sign-in, scopes and CSRF
hold. Screenshots of the main pages are kept in ``build/screenshots`` (or
``$WATCHKEEPER_SCREENSHOTS``) for people to look at.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.browser import chromium
from tests.server.conftest import ADMIN_TOKEN, MODEL, ServerProcess

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("WATCHKEEPER_SCREENSHOTS", REPO / "build" / "screenshots"))
HOUR = 3600.0


def _events(start: float, hours: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Events every few minutes over ``hours`` closed hours; ``age`` shifts in the last third."""
    events = []
    for hour in range(hours):
        shift = 25.0 if hour >= 2 * hours // 3 else 0.0
        for minute in range(0, 60, 2):
            index = hour * 100 + minute
            events.append(
                {
                    "id": f"e-{index}",
                    "timestamp": start + hour * HOUR + minute * 60.0,
                    "version": "v1" if hour % 2 else "v2",
                    "features": {
                        "age": float(rng.normal(40.0 + shift, 5.0)),
                        "plan": "basic" if rng.random() < 0.7 else "pro",
                        "active": bool(rng.random() < 0.5),
                    },
                    "prediction": "1" if rng.random() < 0.4 else "0",
                    "proba": {"0": 0.4, "1": 0.6},
                    "latency_ms": float(rng.gamma(2.0, 3.0)),
                    "segment": {"region": "eu" if minute % 4 else "us"},
                }
            )
    return events


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with auth, the ``churn`` model, its reference and 12 hours of windows."""
    root = tmp_path_factory.mktemp("dashboard")
    process = ServerProcess(
        db=f"sqlite:///{root / 'wk.db'}",
        log=root / "server.log",
        env={"WATCHKEEPER_WINDOW_CHECK_SECONDS": "0.5", "WATCHKEEPER_ALERTS_INTERVAL_SECONDS": "1"},
    ).start()
    rng = np.random.default_rng(3)
    try:
        with process.client() as admin:
            assert admin.post("/v1/models", json=MODEL).status_code == 201
            reference = [
                {
                    "age": float(rng.normal(40.0, 5.0)),
                    "plan": "basic" if rng.random() < 0.7 else "pro",
                    "active": bool(rng.random() < 0.5),
                    "prediction": "1" if rng.random() < 0.4 else "0",
                }
                for _ in range(500)
            ]
            assert admin.put("/v1/models/churn/reference", json=reference).status_code == 200
            start = (time.time() // HOUR - 13) * HOUR
            events = _events(start, 12, rng)
            answer = admin.post("/v1/models/churn/events", json={"events": events})
            assert answer.status_code == 200
            assert answer.json()["accepted"] == len(events)
            labels = [{"id": e["id"], "label": e["prediction"]} for e in events[::3]]
            assert admin.post("/v1/models/churn/labels", json={"labels": labels}).status_code == 200
            _wait_for_windows(admin)
        yield process
    finally:
        process.stop()


def _wait_for_windows(admin: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        series = admin.get("/v1/models/churn/signals/count", params={"limit": 50}).json()
        if len(series.get("points", [])) >= 12:
            return
        time.sleep(0.3)
    raise AssertionError(f"windows did not close: {series}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium()), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


class Console:
    """Console errors and uncaught exceptions of a page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


def _signed_in(browser: Browser, server: ServerProcess, token: str = ADMIN_TOKEN) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server.url}/")
    assert "/login" in page.url
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    return page


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _charts_drawn(page: Page) -> int:
    expected = page.locator("div.chart[data-figure]").count()
    page.wait_for_function(
        f"document.querySelectorAll('div.chart[data-rendered=true]').length >= {expected}",
        timeout=15_000,
    )
    return expected


def test_sign_in_refuses_a_bad_token_and_admits_a_good_one(
    browser: Browser, server: ServerProcess
) -> None:
    page = browser.new_page()
    page.goto(f"{server.url}/models/churn")
    assert "/login" in page.url
    page.fill("#token", "not-a-token")
    page.click("button[type=submit]")
    assert "unknown token" in page.inner_text("p.error")
    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/models/churn")
    page.close()


def test_overview_lists_the_model_with_its_health_and_traffic(
    browser: Browser, server: ServerProcess
) -> None:
    page = _signed_in(browser, server)
    console = Console(page)
    page.reload()
    row = page.locator("tr[data-model=churn]")
    assert row.count() == 1
    assert "classification" in row.inner_text()
    assert _charts_drawn(page) == 1
    _shot(page, "overview")
    assert console.errors == []
    page.close()


def test_model_page_draws_every_chart_and_a_drift_cell_opens_its_report(
    browser: Browser, server: ServerProcess
) -> None:
    page = _signed_in(browser, server)
    console = Console(page)
    page.goto(f"{server.url}/models/churn?range=24h")
    drawn = _charts_drawn(page)
    sections = {element.get_attribute("id") for element in page.locator("section.chart-card").all()}
    assert {
        "section-drift",
        "section-performance",
        "section-traffic",
        "section-latency",
    } <= sections
    assert drawn == len(sections)
    heatmap = page.locator("#chart-drift")
    assert heatmap.locator("g.heatmaplayer image, g.heatmaplayer").count() >= 1
    assert "age" in heatmap.inner_text()
    _shot(page, "model")
    # A version filter narrows the windows and keeps the page whole.
    page.select_option("select[name=version]", "v1")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**version=v1**")
    _charts_drawn(page)
    assert console.errors == []
    # Clicking a heatmap cell opens that window's report (reference vs current).
    page.goto(f"{server.url}/models/churn?range=24h")
    _charts_drawn(page)
    box = heatmap.locator("rect.nsewdrag").first.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 8)
    with page.expect_navigation():
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + 8)
    assert "/models/churn/report?" in page.url
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length > 0")
    assert "watchkeeper report" in page.title()
    assert console.errors == []
    page.close()


def test_a_silence_is_added_and_expired_through_the_alerts_page(
    browser: Browser, server: ServerProcess
) -> None:
    page = _signed_in(browser, server)
    console = Console(page)
    page.goto(f"{server.url}/alerts")
    page.fill("#matchers", 'model="churn"\nalertname="DataDrift"')
    page.fill("#duration", "90m")
    page.fill("#comment", "dashboard test")
    page.click("#new-silence button[type=submit]")
    page.wait_for_url(f"{server.url}/alerts")
    row = page.locator("#silences tr[data-silence]").first
    assert "active" in row.inner_text()
    assert "dashboard test" in row.inner_text()
    _shot(page, "alerts")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button").click()
    page.wait_for_url(f"{server.url}/alerts")
    assert "expired" in page.locator("#silences tr[data-silence]").first.inner_text()
    # A bad duration comes back as an error naming the field, nothing created.
    page.fill("#matchers", 'model="churn"')
    page.fill("#duration", "soon")
    page.click("#new-silence button[type=submit]")
    assert "duration" in page.inner_text("p.error")
    assert console.errors == []
    page.close()


def test_actions_need_the_admin_scope_and_the_forms_csrf_token(server: ServerProcess) -> None:
    with server.client() as admin:
        reader = admin.post("/v1/tokens", json={"name": "viewer", "scopes": ["read"]}).json()
    cookies = {"watchkeeper_token": reader["token"], "watchkeeper_csrf": "c" * 40}
    form = {"csrf": "c" * 40, "matchers": 'model="churn"', "duration": "1h"}
    with httpx.Client(base_url=server.url, cookies=cookies, follow_redirects=False) as viewer:
        assert viewer.get("/alerts").status_code == 200
        assert viewer.post("/alerts/silences", data=form).status_code == 403
    cookies["watchkeeper_token"] = ADMIN_TOKEN
    with httpx.Client(base_url=server.url, cookies=cookies, follow_redirects=False) as admin:
        forged = admin.post("/alerts/silences", data={**form, "csrf": "x" * 40})
        assert forged.status_code == 403
        assert "CSRF" in forged.text
        assert admin.post("/alerts/silences", data=form).status_code == 303
    with httpx.Client(base_url=server.url, follow_redirects=False) as anonymous:
        answer = anonymous.get("/models/churn")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login")
        # No open redirect through the sign-in form's target.
        page = anonymous.get("/login", params={"next": "//evil.example/x"}).text
        assert 'value="/"' in page
