"""The whole loop through the running service: serve, monitor, alert, retrain, canary, roll back.

One row of the rainfall data is one prediction, every two minutes of event time (a day of event
time is 720 rows, so daily windows hold two years of weather and its seasons). The replay of rows
6,000–18,158 spans 17 days of event time and ends a day or two ago, so the dashboard's last week
shows its end. The service runs on a fresh SQLite store with a simulated clock
(:mod:`watchkeeper.demo.harness`), labels arrive in six-hourly batches, and the demo is the
service's only client, over HTTP:

1. registers the monitored model (daily windows) with its reference and its ``retrain:``
   section (:data:`~watchkeeper.demo.actions.RETRAIN`), tunes the default pack's accuracy floor
   and gives that rule ``action: retrain``, uploads the champion (trained on rows 0–5,999) and
   points ``champion`` at it;
2. replays two simulated hours (60 rows) at a time: ``POST …/predict`` through the router, and the
   labels of the predictions made a day earlier (``POST …/labels``, every six hours);
3. notes the alerts the local webhook receiver gets; the accuracy alert starts a retraining run
   in the server's worker process, whose candidate the service gates, registers and sends to a
   canary that the rollout controller promotes. The demo only follows the run
   (``GET /v1/retrain/runs``) and its rollout (``GET /v1/rollouts``), holding the simulated clock
   while the worker trains (seconds of wall time that would be minutes of event time);
4. half a day after the promotion, uploads a deliberately broken version and starts its canary
   (a person's push, ``POST /v1/rollouts``), which the controller rolls back;
5. after the last row, lets the last labels arrive and the windows close, and reads the
   per-window signals back (``GET …/signals/…``).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from watchkeeper.demo.actions import (
    LABEL_DELAY,
    MODEL,
    RETRAIN,
    register_version,
    rollout_spec,
    train_broken,
)
from watchkeeper.demo.data import TARGET
from watchkeeper.demo.harness import ServiceThread, SimClock, WebhookReceiver, free_port

if TYPE_CHECKING:
    import httpx
    import pandas as pd

__all__ = [
    "FIRST_ROW",
    "SECONDS_PER_ROW",
    "WINDOW_SECONDS",
    "LoopOutcome",
    "run_loop",
    "trigger_text",
]

FIRST_ROW: Final = 6000
SECONDS_PER_ROW: Final = 120.0
ROWS_PER_STEP: Final = 60  # two simulated hours per step
WINDOW_SECONDS: Final = 86_400
ACCURACY_FLOOR: Final = 0.68
ACCURACY_MIN_LABELS: Final = 240
#: The most wall time the demo holds its clock for a run in the worker (spawn, train, gate).
RUN_TIMEOUT: Final = 120.0
BROKEN_AFTER_SECONDS: Final = 12 * 3600.0
LABEL_EVERY: Final = 6 * 3600
DRIFT_RULE, ACCURACY_RULE = "RainfallDriftShareHigh", "RainfallAccuracyDrop"
#: Wall time each step (two simulated hours) lasts at least: the service's loops (every 0.1 s
#: here) run between the steps, so what is due at a step happens before the next one.
DEFAULT_PACE: Final = 0.2


@dataclass
class LoopOutcome:
    """What the loop did and measured (rows are rainfall row numbers)."""

    url: str
    admin_token: str
    db_path: Path
    first: float
    windows: list[dict[str, Any]] = field(default_factory=list)
    served: dict[int, dict[str, int]] = field(default_factory=dict)  # day → version → rows
    deliveries: int = 0
    detections: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)  # as the service reports them
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    service: ServiceThread | None = None

    def row_at(self, at: float) -> int:
        """The row being served at event time ``at``."""
        return FIRST_ROW + int((at - self.first) // SECONDS_PER_ROW)

    def accuracy(self, version: str, first_row: int, last_row: int) -> float | None:
        """``version``'s accuracy over its windows within the rows, weighted by labels."""
        correct = labelled = 0.0
        for window in self.windows:
            stats = window["versions"].get(version) or {}
            inside = first_row <= window["rows"][0] and window["rows"][1] <= last_row
            if inside and stats.get("accuracy") is not None and stats["labeled"]:
                correct += stats["accuracy"] * stats["labeled"]
                labelled += stats["labeled"]
        return correct / labelled if labelled else None


class _Loop:
    """The demo as the service's client; one instance per run."""

    def __init__(
        self, output: Path, data: pd.DataFrame, say: Callable[[str], None], pace: float
    ) -> None:
        self.data = data
        self.features = [column for column in data.columns if column != TARGET]
        self.say = say
        self.pace = pace
        now = time.time()
        rows = len(data) - FIRST_ROW
        # Ends an hour (plus up to two days of late labels) ago, aligned to a window start: the
        # simulated clock never passes the wall clock, which it follows afterwards.
        first = now - 3600.0 - 2 * LABEL_DELAY - rows * SECONDS_PER_ROW
        first -= first % WINDOW_SECONDS
        self.clock = SimClock(first)
        self.db_path = output / "watchkeeper.db"
        self.db = f"sqlite:///{self.db_path}"
        self.artifacts = output / "watchkeeper-artifacts"
        for stale in output.glob("watchkeeper.db*"):
            stale.unlink()
        shutil.rmtree(self.artifacts, ignore_errors=True)
        self.receiver = WebhookReceiver().start()
        self.token = secrets.token_urlsafe(24)
        self.port = free_port()
        self.outcome = LoopOutcome(
            url=f"http://127.0.0.1:{self.port}",
            admin_token=self.token,
            db_path=self.db_path,
            first=first,
        )
        self.pending: list[tuple[float, str, str]] = []  # due, prediction id, label
        self.rollout: dict[str, Any] | None = None
        self.promoted_at: float | None = None

    # -- the service -----------------------------------------------------------------------

    def start(self, output: Path) -> httpx.Client:
        """The server on a fresh store, routing every alert to the webhook receiver."""
        import httpx

        from watchkeeper.config import Settings
        from watchkeeper.server.app import create_app

        routing = output / "alerting.yaml"
        routing.write_text(
            "route:\n  receiver: demo-webhook\n  group_by: [alertname, model]\n"
            "  group_wait: 0s\n  group_interval: 1h\n  repeat_interval: 1d\n"
            f"receivers:\n  - name: demo-webhook\n    webhook_configs:\n"
            f"      - url: {self.receiver.url}\n",
            encoding="utf-8",
        )
        fast = 0.1
        settings = Settings(
            db=self.db,
            port=self.port,
            auth=True,
            admin_token=self.token,
            external_url=self.outcome.url,
            alerts_config=str(routing),
            artifact_root=str(self.artifacts),
            ingest_workers=0,
            window_check_seconds=fast,
            alerts_interval_seconds=fast,
            alerts_delivery_interval_seconds=fast,
            max_event_age_seconds=30 * 86_400.0,
            log_level="warning",
            # A demo store: surviving a killed process is enough, power loss is not at stake.
            sqlite_synchronous="NORMAL",
        )
        app = create_app(settings, clock=self.clock)
        client = httpx.Client(
            base_url=self.outcome.url,
            headers={"authorization": f"Bearer {self.token}"},
            timeout=60.0,
        )

        def ready() -> bool:
            try:
                return client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        self.outcome.service = ServiceThread(app, self.port).start(ready)
        return client

    def setup(self, client: httpx.Client, champion: Any, reference: pd.DataFrame) -> None:
        """Monitored model, reference, tuned accuracy rule, champion version and alias."""
        spec = {
            "name": MODEL,
            "task": "classification",
            "features": dict.fromkeys(self.features, "numeric"),
            "prediction": "prediction",
            "windows": [WINDOW_SECONDS],
            "retrain": dict(RETRAIN),
        }
        _ok(client.post("/v1/models", json=spec))
        csv = reference[[*self.features, "prediction"]].to_csv(index=False)
        _ok(
            client.put(
                f"/v1/models/{MODEL}/reference",
                content=csv.encode(),
                headers={"content-type": "text/csv"},
            )
        )
        # The pack's floor (0.8) is the champion's own level on this data (its daily windows
        # before the drift: 0.77–0.83). 0.68 is below every one of them once a third of its
        # labels are in (the lowest: 0.70 at the end of the day the drift begins in).
        rules = _ok(client.get("/v1/rules"))["rules"]
        accuracy = next(rule for rule in rules if rule["name"] == ACCURACY_RULE)
        accuracy["condition"]["threshold"] = ACCURACY_FLOOR
        accuracy["min_labels"] = ACCURACY_MIN_LABELS
        # When it starts firing, the service starts a retraining run of the model.
        accuracy["action"] = "retrain"
        _ok(client.put("/v1/rules", params={"replace": "false"}, json={"rules": [accuracy]}))
        version = register_version(
            client, champion, self.features, description="trained on rows 0–5,999"
        )
        _ok(
            client.put(
                f"/v1/models/{MODEL}/aliases/champion",
                json={"version": version, "reason": "first model"},
            )
        )
        self.say(f"registered version {version} (trained on rows 0–5,999) as the champion")

    # -- the replay ------------------------------------------------------------------------

    def step(self, client: httpx.Client, at: float, first_row: int, last_row: int) -> None:
        """One simulated hour: predictions of its rows, labels now due, and the reactions."""
        pace_until = time.monotonic() + self.pace
        # A second past the step's start: no prediction, and no weight the rollout controller
        # sets meanwhile, is stamped at the very start of a window. A rollout's arms are the
        # windows that start after its weights were set; a window starting at the instant of a
        # change could hold this step's predictions from before it, routed at the old split.
        self.clock.set(at + 1.0)
        if first_row < last_row:
            part = self.data.iloc[first_row:last_row]
            rows = [{"features": row} for row in part[self.features].to_dict("records")]
            answers = _ok(client.post(f"/v1/models/{MODEL}/predict", json={"rows": rows}))
            day = int((at - self.outcome.first) // 86_400)
            served = self.outcome.served.setdefault(day, {})
            for answer, label in zip(answers["predictions"], part[TARGET], strict=True):
                served[str(answer["version"])] = served.get(str(answer["version"]), 0) + 1
                self.pending.append((at + LABEL_DELAY, answer["id"], str(int(label))))
        # The labels due, every six hours of event time.
        due = [item for item in self.pending if item[0] <= at] if at % LABEL_EVERY == 0 else []
        if due:
            self.pending = self.pending[len(due) :]
            labels = [{"id": ident, "label": label} for _, ident, label in due]
            _ok(client.post(f"/v1/models/{MODEL}/labels", json={"labels": labels}))
        self.react(client, at)
        time.sleep(max(0.0, pace_until - time.monotonic()))
        # A run the service started meanwhile (its alert fired on this step's labels) holds the
        # clock at this step.
        self._watch_runs(client)

    def react(self, client: httpx.Client, at: float) -> None:
        """Note what the webhook received; retrain, start and follow rollouts."""
        outcome = self.outcome
        for rule in (DRIFT_RULE, "RainfallFeatureDrift", ACCURACY_RULE):
            firing = self.receiver.firing(rule)
            if firing and rule not in outcome.detections:
                alert = firing[0]
                outcome.detections[rule] = {"row": outcome.row_at(at), "alert": alert}
                self.say(
                    f"row {outcome.row_at(at):,}: webhook received {rule} — "
                    f"{alert['annotations'].get('summary', '')}"
                )
        self._watch_runs(client)
        if self.rollout is not None and self.rollout["state"] in ("progressing", "paused"):
            self._follow(client, at)
        if (
            self.promoted_at is not None
            and len(outcome.rollouts) == 1
            and at >= self.promoted_at + BROKEN_AFTER_SECONDS
        ):
            self._push_broken(client, at)

    def _watch_runs(self, client: httpx.Client) -> None:
        """Follow the service's retraining runs and tell each change; while one is running
        (or due to start), hold the simulated clock until it settles."""
        since = time.monotonic()
        while True:
            held = time.monotonic() - since
            runs = _ok(client.get("/v1/retrain/runs", params={"model": MODEL}))["runs"]
            for run in runs:
                self._note_run(client, run, held)
            now = self.clock()
            busy = [
                run
                for run in runs
                if run["status"] == "running"
                # A retry's backoff is event time: it passes only when the clock goes on.
                or (run["status"] == "queued" and run["next_attempt_at"] <= now)
            ]
            if not busy:
                return
            if held >= RUN_TIMEOUT:
                raise RuntimeError(
                    f"retraining run {busy[0]['id']} is still {busy[0]['status']} after "
                    f"{held:.0f} s: {busy[0]['log'][-500:]}"
                )
            time.sleep(0.1)

    def _note_run(self, client: httpx.Client, run: dict[str, Any], held: float) -> None:
        """Record (and tell) a run the first time it is seen and whenever its status changes;
        adopt the canary rollout the service started for its candidate."""
        known = next((item for item in self.outcome.runs if item["id"] == run["id"]), None)
        if known is not None and known["status"] == run["status"]:
            return
        gate, data, trigger = run["gate"] or {}, run["data"] or {}, run["trigger"]
        record = {
            "id": run["id"],
            "trigger": trigger.get("kind"),
            "rule": trigger.get("rule"),
            "on_version": (trigger.get("labels") or {}).get("version"),
            "fingerprint": trigger.get("fingerprint"),
            "row": self.outcome.row_at(run["created_at"]),
            "status": run["status"],
            "reason": run["reason"],
            "version": run["version"],
            "rollout_id": run["rollout_id"],
            "p_value": gate.get("p_value"),
            "champion": gate.get("champion"),
            "candidate": gate.get("candidate"),
            "train_rows": data.get("train_rows"),
            "holdout_rows": data.get("holdout_rows"),
            "attempts": run["attempts"],
            "held_seconds": held,
        }
        if known is None:
            self.outcome.runs.append(record)
        else:
            known.update(record)
        row = self.outcome.row_at(run["updated_at"])
        if known is None:
            why = trigger_text(record)
            self.say(
                f"row {record['row']:,}: the service started retraining run {run['id']} "
                f"({why}) in its worker process"
            )
        if run["status"] not in ("queued", "running"):
            self.say(f"row {row:,}: retraining run {run['id']} {run['status']}: {run['reason']}")
        rollout_id = run["rollout_id"]
        if rollout_id is not None and not any(
            item.get("id") == rollout_id for item in self.outcome.rollouts
        ):
            listed = _ok(client.get("/v1/rollouts", params={"model": MODEL}))["rollouts"]
            self.rollout = next(item for item in listed if item["id"] == rollout_id)
            self.outcome.rollouts.append(
                {
                    "id": rollout_id,
                    "what": "retrained candidate",
                    "version": run["version"],
                    "row": row,
                    "by": f"retraining run {run['id']}",
                }
            )
            self.say(
                f"row {row:,}: canary of version {run['version']} (retrained candidate) "
                f"started by the service (rollout {rollout_id})"
            )

    def _start_rollout(self, client: httpx.Client, at: float, version: int, what: str) -> None:
        started = client.post("/v1/rollouts", json=rollout_spec(version))
        self.rollout = _ok(started)
        self.outcome.rollouts.append(
            {
                "id": self.rollout["id"],
                "what": what,
                "version": version,
                "row": self.outcome.row_at(at),
                "by": "the demo",
            }
        )
        self.say(f"row {self.outcome.row_at(at):,}: canary of version {version} ({what}) started")

    def _follow(self, client: httpx.Client, at: float) -> None:
        assert self.rollout is not None
        listed = _ok(client.get("/v1/rollouts", params={"model": MODEL}))["rollouts"]
        now = next(item for item in listed if item["id"] == self.rollout["id"])
        if now["state"] == self.rollout["state"] and now["weights"] == self.rollout["weights"]:
            return
        self.rollout = now
        if now["state"] in ("promoted", "aborted"):
            status = _ok(client.get(f"/v1/rollouts/{now['id']}"))
            # When the controller acted (the demo notices at its next step).
            ended = status["events"][-1]["at"]
            self.outcome.rollouts[-1].update(status=status, ended_row=self.outcome.row_at(ended))
            if now["state"] == "promoted":
                self.promoted_at = ended
            self.say(
                f"row {self.outcome.row_at(ended):,}: rollout of version {now['candidate']} "
                f"{now['state']}: {now['reason']}"
            )

    def _push_broken(self, client: httpx.Client, at: float) -> None:
        row = self.outcome.row_at(at)
        recent = self.data.iloc[row - 1440 : row - 720]
        version = register_version(
            client,
            train_broken(recent, self.features),
            self.features,
            description="retrained with the label encoding inverted (deliberately broken)",
        )
        self._start_rollout(client, at, version, "deliberately broken")

    def replay(self, client: httpx.Client) -> None:
        """Every row, two hours at a time; then the last day of labels (the windows of the
        last day close meanwhile), until the last rollout has ended (two days at most)."""
        first, total = self.outcome.first, len(self.data)
        last = first + (total - FIRST_ROW) * SECONDS_PER_ROW + 2 * LABEL_DELAY
        step = 0
        while True:
            first_row = min(FIRST_ROW + step * ROWS_PER_STEP, total)
            at = first + step * ROWS_PER_STEP * SECONDS_PER_ROW
            ended = self.rollout is None or self.rollout["state"] not in ("progressing", "paused")
            if first_row == total and ((not self.pending and ended) or at > last):
                break
            self.step(client, at, first_row, min(first_row + ROWS_PER_STEP, total))
            step += 1
        # The service's loops evaluate what the last labels changed.
        time.sleep(5 * self.pace)
        if self.rollout is not None and "status" not in self.outcome.rollouts[-1]:
            # Still running (or paused): told as it stands.
            status = _ok(client.get(f"/v1/rollouts/{self.rollout['id']}"))
            self.outcome.rollouts[-1]["status"] = status

    # -- reading back ----------------------------------------------------------------------

    def read_windows(self, client: httpx.Client) -> None:
        """Drift share, and accuracy with its label count per version, of every window."""

        def series(signal: str, version: str | None = None) -> dict[float, dict[str, Any]]:
            params: dict[str, Any] = {"limit": 1000}
            if version is not None:
                params["version"] = version
            page = _ok(client.get(f"/v1/models/{MODEL}/signals/{signal}", params=params))
            return {point["start"]: point for point in page["points"]}

        drift, counts = series("drift_share"), series("labeled_count")
        versions = sorted({v for day in self.outcome.served.values() for v in day}, key=int)
        by_version = {
            version: (series("accuracy", version), series("labeled_count", version))
            for version in versions
        }
        for start in sorted(drift):
            first_row = self.outcome.row_at(start)
            window: dict[str, Any] = {
                "start": start,
                "rows": (first_row, first_row + int(WINDOW_SECONDS / SECONDS_PER_ROW) - 1),
                "events": drift[start]["count"],
                "drift_share": drift[start]["value"],
                "labeled": (counts.get(start) or {}).get("value"),
                "versions": {},
            }
            for version, (accuracy, labeled) in by_version.items():
                if start in accuracy:
                    window["versions"][version] = {
                        "accuracy": accuracy[start]["value"],
                        "labeled": (labeled.get(start) or {}).get("value") or 0.0,
                    }
            self.outcome.windows.append(window)
        self.outcome.deliveries = len(self.receiver.received())


def run_loop(
    output: Path,
    data: pd.DataFrame,
    champion: Any,
    reference: pd.DataFrame,
    *,
    say: Callable[[str], None] = lambda line: None,
    keep_serving: bool = False,
    pace: float = DEFAULT_PACE,
) -> LoopOutcome:
    """Run the whole loop (module docstring); with ``keep_serving`` the server is left running
    on the wall clock (``outcome.service.stop()`` ends it)."""
    loop = _Loop(output, data, say, pace)
    # The controller logs each rollback as a warning: the narrative tells it already.
    controller_log = logging.getLogger("watchkeeper.rollout.controller")
    if _told not in controller_log.filters:
        controller_log.addFilter(_told)
    client = loop.start(output)
    try:
        loop.setup(client, champion, reference)
        loop.replay(client)
        loop.read_windows(client)
    except BaseException:
        keep_serving = False
        raise
    finally:
        client.close()
        if not keep_serving:
            assert loop.outcome.service is not None
            loop.outcome.service.stop()
            loop.receiver.stop()
    loop.clock.follow_wall_clock()
    return loop.outcome


def trigger_text(run: dict[str, Any]) -> str:
    """Why a run started, as the narrative tells it (``alert RainfallAccuracyDrop on v1``)."""
    return (
        str(run["trigger"])
        + (f" {run['rule']}" if run["rule"] else "")
        + (f" on v{run['on_version']}" if run["on_version"] else "")
    )


def _told(record: logging.LogRecord) -> bool:
    """Drop the controller's rollback warning (anything else it logs goes through)."""
    return "rolled back" not in str(record.msg)


def _ok(response: httpx.Response) -> Any:
    """The JSON answer; an error answer raises with the service's message."""
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:500]}"
        )
    return response.json() if response.content else None
