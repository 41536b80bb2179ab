"""The registry, rollout and backtest pages in a real headless Chromium against a real server.

The store holds a rollout the real controller rolled back in simulated time (measurements and
all), and a registry model whose champion moved twice; over HTTP the test starts a second
rollout (paused at its first step). In the browser: every page loads without console errors
and draws its charts, the overview links to the rollout, an alias is rolled back and a rollout
is aborted through the confirmation dialogs, a backtest shows its timeline; the routes check
the scopes and the CSRF token. Screenshots go to ``build/screenshots``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pandas as pd
import pytest
from playwright.sync_api import Browser, Dialog, Page, sync_playwright
from sklearn.linear_model import LinearRegression

from tests.browser import chromium
from tests.dashboard.test_browser import Console, _charts_drawn, _shot
from tests.rollout.sim import MINUTE, Behaviour, Clock, Simulation
from tests.server.conftest import ADMIN_TOKEN, ServerProcess
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.store import Store

SIM = "churn"
REGISTRY = "demand"
# Two days ago at midnight: recent enough that no retention removes the simulation's data.
START = (time.time() // 86_400 - 2) * 86_400


DEMAND = {
    "name": REGISTRY,
    "task": "regression",
    "features": {"x1": "numeric", "x2": "numeric"},
    "retrain": {"trainer": "tests.retrain.trainers:fit", "mode": "manual", "margin": 0.01},
}


def _linear(slope: float) -> LinearRegression:
    frame = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 0.0, 1.0, 0.0]})
    return LinearRegression().fit(frame, slope * frame["x1"] + frame["x2"])


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("dashboard-ops")
    url = f"sqlite:///{root / 'wk.db'}"
    with Store.open(url) as store:
        sim = Simulation(
            store, {"1": Behaviour(), "2": Behaviour(error_rate=0.08)}, seed=2, clock=Clock(START)
        )
        record = sim.controller.start(
            {
                "model": SIM,
                "baseline": "1",
                "candidate": "2",
                "steps": [{"set_weight": 20}, {"analysis": {"count": 12}}, {"set_weight": 50}],
                "analysis": {
                    "interval": "2m",
                    "failure_limit": 1,
                    "min_samples": 300,
                    "min_windows": 4,
                    "metrics": [
                        {
                            "signal": "error_rate",
                            "condition": {"kind": "difference", "value": 0.02},
                        },
                        {"signal": "latency_p99", "condition": {"kind": "relative", "value": 0.2}},
                    ],
                },
            }
        )
        sim.run(record.id, minutes=40)
        assert store.rollout(record.id).state == "aborted"
        # The registry model is monitored with a retraining config that waits for approval.
        sim.monitor.register_model(ModelSpec.from_dict(DEMAND))
        sim.monitor.close()
        registry = Registry(store, ArtifactStore(root / "artifacts"))
        registry.register(REGISTRY, _linear(1.0), metrics={"r2": 0.91}, registered_by="ana")
        registry.register(REGISTRY, _linear(1.1), metrics={"r2": 0.93}, registered_by="ana")
        registry.set_alias(REGISTRY, "champion", 1, moved_by="ana", reason="first")
        registry.set_alias(REGISTRY, "champion", 2, moved_by="ana", reason="better r2")
        gate = {"metric": "r2", "test": "paired bootstrap", "rows": 400, "champion": 0.91,
                "candidate": 0.93, "improvement": 0.02, "p_value": 0.003,
                "interval": [0.008, 0.031]}  # fmt: skip
        store.create_retrain_run(
            {"model": REGISTRY, "status": "awaiting_approval", "mode": "manual",
             "executor": "local", "as_of": START, "max_attempts": 3, "version": 2,
             "champion_version": 1, "gate": gate, "started_at": START, "finished_at": START + 42,
             "trigger": {"kind": "alert", "alert": "AccuracyDecay"}},
            now=START,
        )  # fmt: skip
    process = ServerProcess(
        db=url,
        log=root / "server.log",
        env={
            "WATCHKEEPER_ARTIFACT_ROOT": str(root / "artifacts"),
            "WATCHKEEPER_INGEST_WORKERS": "0",
        },
    ).start()
    try:
        with process.client() as admin:
            answer = admin.post(
                f"/v1/models/{REGISTRY}/predict", json={"features": {"x1": 1.0, "x2": 0.0}}
            )
            assert answer.status_code == 200, answer.text
            started = admin.post(
                "/v1/rollouts",
                json={
                    "model": REGISTRY,
                    "baseline": "1",
                    "candidate": "2",
                    "steps": [{"set_weight": 10}, {"pause": {}}, {"set_weight": 50}],
                    "analysis": {"interval": "1h", "metrics": [{"signal": "error_rate"}]},
                },
            )
            assert started.status_code == 201, started.text
            assert started.json()["state"] == "paused"
        yield process
    finally:
        process.stop()


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


def _rollout_id(server: ServerProcess, model: str) -> int:
    with server.client() as admin:
        (found,) = admin.get("/v1/rollouts", params={"model": model}).json()["rollouts"]
    return int(found["id"])


def _page(browser: Browser, server: ServerProcess, path: str) -> tuple[Page, Console]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console = Console(page)
    page.goto(f"{server.url}{path}")
    assert "/login" in page.url
    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}{path}")
    return page, console


def test_the_rolled_back_rollout_shows_its_measurements_charts_and_reason(
    browser: Browser, server: ServerProcess
) -> None:
    rollout = _rollout_id(server, SIM)
    page, console = _page(browser, server, f"/rollouts/{rollout}")
    assert page.inner_text("#state") == "aborted"
    assert _charts_drawn(page) == 2
    metrics = {s.get_attribute("data-metric") for s in page.locator("section.chart-card").all()}
    assert metrics == {"error_rate", "latency_p99"}
    # Both arms are drawn as lines with points at every look.
    assert page.locator("#chart-metric-0 g.scatterlayer g.trace").count() == 2
    with server.client() as admin:
        status = admin.get(f"/v1/rollouts/{rollout}").json()
    assert page.locator("#measurements tbody tr").count() == len(status["measurements"])
    top = page.locator("#events tbody tr").first.inner_text()
    assert "aborted" in top
    assert "error_rate" in top
    assert page.locator("#actions").count() == 0  # nothing to do on an ended rollout
    weights = page.locator("#weights .weight").all_inner_texts()
    assert ["100 %" in w for w in weights] == [True, False]  # v1 (baseline) first
    assert "0 %" in weights[1]
    _shot(page, "rollout")
    page.goto(f"{server.url}/rollouts")
    assert page.locator(f"#ended tr[data-rollout='{rollout}']").count() == 1
    _shot(page, "rollouts")
    assert console.errors == []
    page.close()


def test_a_rollout_is_aborted_through_the_ui_after_the_confirmation(
    browser: Browser, server: ServerProcess
) -> None:
    rollout = _rollout_id(server, REGISTRY)
    page, console = _page(browser, server, "/")
    link = page.locator(f"tr[data-model={REGISTRY}] td.rollout a")
    assert link.get_attribute("href") == f"/rollouts/{rollout}"
    link.click()
    page.wait_for_url(f"{server.url}/rollouts/{rollout}")
    assert page.inner_text("#state") == "paused"
    commands = [f.get_attribute("data-command") for f in page.locator("#actions form").all()]
    assert commands == ["promote", "resume", "abort", "promote-full"]
    abort = page.locator("#actions form[data-command=abort]")
    abort.locator("input[name=reason]").fill("customers complain")
    # Dismissing the dialog does nothing.
    messages: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    abort.locator("button").click()
    page.wait_for_timeout(300)
    assert "All traffic goes back to v1" in messages[0]
    assert page.inner_text("#state") == "paused"
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        abort.locator("button").click()
    assert page.inner_text("#state") == "aborted"
    assert "abort: rollout" in page.inner_text("p.done")
    top = page.locator("#events tbody tr").first.inner_text()
    assert "aborted" in top
    assert "customers complain" in top
    _shot(page, "rollout-aborted")
    assert console.errors == []
    page.close()
    with server.client() as admin:
        status = admin.get(f"/v1/rollouts/{rollout}").json()
        assert status["state"] == "aborted"
        assert status["weights"] == {"1": 100, "2": 0}
        assert status["events"][-1]["reason"] == "customers complain"
        assert status["events"][-1]["details"]["by"] == "admin"


def test_an_alias_is_rolled_back_through_the_registry_page(
    browser: Browser, server: ServerProcess
) -> None:
    page, console = _page(browser, server, f"/models/{REGISTRY}/versions")
    assert page.locator("#versions tr[data-version]").count() == 2
    champion = page.locator("#alias-champion")
    assert "v2" in champion.locator("h3 .current").inner_text()
    _shot(page, "registry")
    form = champion.locator("form.rollback")
    form.locator("input[name=reason]").fill("accuracy dropped")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        form.locator("button").click()
    assert "rolled back from v2 to v1" in page.inner_text("p.done")
    champion = page.locator("#alias-champion")
    assert "v1" in champion.locator("h3 .current").inner_text()
    top = champion.locator("table.history tbody tr").first.inner_text()
    assert "accuracy dropped" in top
    assert console.errors == []
    page.close()
    with server.client() as admin:
        history = admin.get(f"/v1/models/{REGISTRY}/aliases/champion/history").json()
    assert history["version"] == 1
    assert history["history"][0]["reason"] == "accuracy dropped"
    assert history["history"][0]["moved_by"] == "admin"


def test_a_retraining_run_is_approved_through_the_runs_page(
    browser: Browser, server: ServerProcess
) -> None:
    with server.client() as admin:
        # One rollout of a model at a time: end the one the fixture started, if still running.
        for rollout in admin.get("/v1/rollouts", params={"model": REGISTRY}).json()["rollouts"]:
            if rollout["state"] in ("progressing", "paused"):
                admin.post(f"/v1/rollouts/{rollout['id']}/abort", json={"reason": "make room"})
        (run,) = admin.get("/v1/retrain/runs", params={"model": REGISTRY}).json()["runs"]
    page, console = _page(browser, server, "/retrain/runs")
    row = page.locator(f"#runs tr[data-run='{run['id']}']")
    text = row.inner_text()
    assert "awaiting_approval" in text
    assert "alert" in text
    assert "AccuracyDecay" in text
    assert "0.91 → 0.93" in text
    assert "margin 0.01" in text
    assert "passed" in text
    _shot(page, "runs")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        row.locator("form.approve button").click()
    assert "approved: canary rollout" in page.inner_text("p.done")
    row = page.locator(f"#runs tr[data-run='{run['id']}']")
    assert "rolling_out" in row.inner_text()
    assert page.locator(f"#runs tr[data-run='{run['id']}'] form.approve").count() == 0
    link = row.locator("a[href^='/rollouts/']")
    rollout_path = link.get_attribute("href")
    assert rollout_path is not None
    assert console.errors == []
    page.close()
    with server.client() as admin:
        approved = admin.get(f"/v1/retrain/runs/{run['id']}").json()
        assert approved["status"] == "rolling_out"
        assert f"/rollouts/{approved['rollout_id']}" == rollout_path
        canary = admin.get(f"/v1/rollouts/{approved['rollout_id']}").json()
        assert (canary["candidate"], canary["state"]) == ("2", "progressing")
        # Twice is refused, with the runner's message.
        cookies = {"watchkeeper_token": ADMIN_TOKEN, "watchkeeper_csrf": "c" * 40}
        with httpx.Client(base_url=server.url, cookies=cookies, follow_redirects=False) as form:
            again = form.post(f"/retrain/runs/{run['id']}/approve", data={"csrf": "c" * 40})
            assert "only+a+run+awaiting_approval" in again.headers["location"]
        admin.post(f"/v1/rollouts/{approved['rollout_id']}/abort", json={"reason": "test over"})


def test_a_backtest_shows_the_alerts_on_a_timeline(browser: Browser, server: ServerProcess) -> None:
    page, console = _page(browser, server, f"/models/{SIM}/backtest")
    page.fill("#start", _iso(START))
    page.fill("#end", _iso(START + 45 * MINUTE))
    # A rule with a mistake: the error names the field, the form keeps what was typed.
    page.fill(
        "#rules", f"rules:\n  - name: CandidateErrors\n    model: {SIM}\n    signal: error_rate\n"
    )
    page.click("#backtest button[type=submit]")
    assert "rules[0].condition" in page.inner_text("p.error")
    assert "CandidateErrors" in page.input_value("#rules")
    # The refused form is answered 400 (Chromium logs it); nothing else went wrong.
    assert console.errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    console.errors.clear()
    page.fill(
        "#rules",
        f"rules:\n  - name: CandidateErrors\n    model: {SIM}\n    signal: error_rate\n"
        '    version: "2"\n    condition: "> 0.05"\n    severity: critical\n',
    )
    page.click("#backtest button[type=submit]")
    page.wait_for_selector("#result")
    assert _charts_drawn(page) == 1
    assert page.locator("#chart-timeline g.scatterlayer g.trace").count() >= 1
    rows = page.locator("#fired tbody tr")
    assert rows.count() >= 1
    assert "CandidateErrors" in rows.first.inner_text()
    assert "critical" in rows.first.inner_text()
    assert "pasted rule" in page.inner_text("#summary")
    _shot(page, "backtest")
    assert console.errors == []
    page.close()


def test_the_pages_need_read_and_the_buttons_admin_and_the_csrf_token(
    server: ServerProcess,
) -> None:
    rollout = _rollout_id(server, SIM)
    with server.client() as admin:
        reader = admin.post("/v1/tokens", json={"name": "ops-viewer", "scopes": ["read"]}).json()
    csrf = "c" * 40
    cookies = {"watchkeeper_token": reader["token"], "watchkeeper_csrf": csrf}
    rollback = f"/models/{REGISTRY}/aliases/champion/rollback"
    with httpx.Client(base_url=server.url, cookies=cookies, follow_redirects=False) as viewer:
        for path in (f"/models/{REGISTRY}/versions", "/rollouts", f"/rollouts/{rollout}",
                     f"/models/{SIM}/backtest", "/retrain/runs"):  # fmt: skip
            assert viewer.get(path).status_code == 200, path
        assert viewer.post(rollback, data={"csrf": csrf}).status_code == 403
        assert viewer.post(f"/rollouts/{rollout}/abort", data={"csrf": csrf}).status_code == 403
        assert viewer.post("/retrain/runs/1/approve", data={"csrf": csrf}).status_code == 403
        # A backtest changes nothing: read is enough, with the form's CSRF token.
        ran = viewer.post(f"/models/{SIM}/backtest", data={"csrf": csrf, "range": "6h"})
        assert ran.status_code == 200
        assert 'id="result"' in ran.text
        # Seven days of one-minute windows is more than one click may evaluate.
        big = viewer.post(f"/models/{SIM}/backtest", data={"csrf": csrf, "range": "7d"})
        assert big.status_code == 400
        assert "shorten the range" in big.text
        assert viewer.post(f"/models/{SIM}/backtest", data={"range": "7d"}).status_code == 403
        assert viewer.get("/rollouts/999").status_code == 404
        assert viewer.get("/rollouts/nope").status_code == 404
        assert viewer.get("/models/nothing/versions").status_code == 404
        assert viewer.get("/models/nothing/backtest").status_code == 404
    cookies["watchkeeper_token"] = ADMIN_TOKEN
    with httpx.Client(base_url=server.url, cookies=cookies, follow_redirects=False) as admin:
        forged = admin.post(rollback, data={"csrf": "x" * 40})
        assert forged.status_code == 403
        assert "CSRF" in forged.text
        # A command the state refuses comes back as the controller's message.
        ended = admin.post(f"/rollouts/{rollout}/resume", data={"csrf": csrf})
        assert ended.status_code == 303
        assert "error=" in ended.headers["location"]
        shown = admin.get(ended.headers["location"]).text
        assert "cannot resume rollout" in shown
        jump = admin.post(f"/rollouts/{rollout}/jump", data={"csrf": csrf})
        assert "no+rollout+action" in jump.headers["location"]
    with httpx.Client(base_url=server.url, follow_redirects=False) as anonymous:
        answer = anonymous.get(f"/rollouts/{rollout}")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login")
        posted = anonymous.post(rollback, data={"csrf": csrf})
        assert posted.status_code == 303
        assert posted.headers["location"].startswith("/login")
