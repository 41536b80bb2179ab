"""A simulated service for rollout tests: traffic split by the router's weights, events per
version into a real MonitorService, labels arriving late, all on a simulated clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from watchkeeper.config import Settings
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor import MonitorService
from watchkeeper.rollout.controller import RolloutController
from watchkeeper.rollout.traffic import InMemoryTraffic
from watchkeeper.store import Store

MINUTE = 60.0
T0 = 1_700_006_400.0 - (1_700_006_400.0 % 86_400)
MODEL = "churn"
LABEL_DELAY = 5 * MINUTE


@dataclass
class Behaviour:
    """How one version serves: its error rate, accuracy and latency scale (ms)."""

    error_rate: float = 0.01
    accuracy: float = 0.9
    latency_ms: float = 50.0
    logged: float = 1.0  # share of its events that reach the monitor


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Simulation:
    """One model served by versions "1" (baseline) and "2" (candidate)."""

    store: Store
    behaviour: dict[str, Behaviour]
    per_minute: int = 300
    seed: int = 0
    clock: Clock = field(default_factory=lambda: Clock(T0))
    traffic: InMemoryTraffic = field(default_factory=InMemoryTraffic)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.pending_labels: list[tuple[float, dict[str, Any]]] = []
        self.counter = 0
        self.monitor = self.open_monitor(register=True)
        self.traffic.set_split(MODEL, {"1": 100})
        self.controller = self.open_controller()

    def open_monitor(self, *, register: bool) -> MonitorService:
        monitor = MonitorService(
            self.store,
            settings=Settings(max_event_age_seconds=30 * 86_400, max_event_future_seconds=7200),
            clock=self.clock,
        )
        monitor.start()
        if register:
            spec = ModelSpec.from_dict(
                {
                    "name": MODEL,
                    "task": "classification",
                    "features": {"x": "numeric"},
                    "windows": [60],
                }
            )
            monitor.register_model(spec)
        return monitor

    def open_controller(self, **options: Any) -> RolloutController:
        return RolloutController(
            store=self.store,
            monitor=self.monitor,
            traffic=self.traffic,
            clock=self.clock,
            **options,
        )

    def minute(self) -> None:
        """Serve one minute of traffic, deliver due labels, then tick monitor and controller."""
        start = self.clock.now
        split = self.traffic.split(MODEL)
        versions = sorted(split)
        shares = np.array([split[v] for v in versions], dtype=float) / 100.0
        chosen = self.rng.choice(len(versions), size=self.per_minute, p=shares)
        events, labels = [], []
        for index, which in enumerate(chosen):
            version = versions[which]
            serving = self.behaviour[version]
            self.counter += 1
            x = float(self.rng.normal())
            prediction = "1" if x > 0 else "0"
            correct = self.rng.uniform() < serving.accuracy
            event_id = f"e{self.counter}"
            if self.rng.uniform() >= serving.logged:
                continue
            events.append(
                {
                    "id": event_id,
                    "timestamp": start + index * MINUTE / self.per_minute,
                    "version": version,
                    "features": {"x": x},
                    "prediction": prediction,
                    "latency_ms": float(serving.latency_ms * self.rng.lognormal(0.0, 0.3)),
                    "error": bool(self.rng.uniform() < serving.error_rate),
                }
            )
            label = prediction if correct else ("0" if prediction == "1" else "1")
            labels.append({"id": event_id, "label": label})
        if events:
            self.monitor.ingest_events(MODEL, events)
        self.pending_labels += [(start + LABEL_DELAY, label) for label in labels]
        self.clock.now = start + MINUTE
        due = [label for at, label in self.pending_labels if at <= self.clock.now]
        self.pending_labels = [(at, lab) for at, lab in self.pending_labels if at > self.clock.now]
        if due:
            self.monitor.ingest_labels(MODEL, due)
        self.monitor.tick()
        self.controller.tick()

    def run(self, rollout_id: int, *, minutes: int) -> int:
        """Serve until the rollout ends or ``minutes`` pass; returns the minutes served."""
        for served in range(1, minutes + 1):
            self.minute()
            if self.store.rollout(rollout_id).state in ("promoted", "aborted", "paused"):
                return served
        return minutes
