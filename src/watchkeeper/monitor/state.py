"""What the parts of the monitor share: the store, the models, the open windows and their locks.

One :class:`MonitorState` is built by :class:`~watchkeeper.monitor.service.MonitorService` and
handed to every part (ingest, joins, closing, queries, recovery), which read and change it under
its locks:

- ``lock`` guards the in-memory tables and is never held during store I/O on the ingest path;
- ``persist_lock`` serialises every read-modify-write of a stored window (closing, late events,
  labels and feedback for closed windows) and is always taken before ``lock``;
- ``marker_lock`` serialises writing the "open" rows of new windows;
- the checkpoint gate (:mod:`watchkeeper.monitor.recovery`) is taken before all of them.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchkeeper.config import Settings
from watchkeeper.errors import NotFoundError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.signals import Signals, window_signals
from watchkeeper.monitor.windows import ColumnPlan, WindowKey, WindowProfile
from watchkeeper.profiles import DatasetProfile
from watchkeeper.store.protocol import MonitorStore

__all__ = ["KnownValues", "ModelState", "MonitorState", "profile_id"]

# Prometheus' default histogram buckets, in seconds.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


@dataclass(frozen=True, slots=True)
class ModelState:
    """A registered model as the monitor uses it: its spec, store id, reference and plan."""

    spec: ModelSpec
    model_id: int
    reference: DatasetProfile | None
    reference_id: str | None
    plan: ColumnPlan

    @classmethod
    def of(
        cls,
        spec: ModelSpec,
        model_id: int,
        reference: DatasetProfile | None,
        reference_id: str | None,
    ) -> ModelState:
        """A model's state; its plan follows from the spec and the reference."""
        plan = ColumnPlan.build(
            task=spec.task,
            features=spec.features,
            prediction=spec.prediction,
            proba=spec.proba,
            reference=reference,
        )
        return cls(spec, model_id, reference, reference_id, plan)

    def new_window(self) -> WindowProfile:
        """An empty window on the model's plan and current reference."""
        return WindowProfile(
            plan=self.plan, reference=self.reference, reference_id=self.reference_id
        )

    def signals(self, window: WindowProfile, window_seconds: float) -> Signals:
        """The signals of ``window``; without drift and quality when its reference is not the
        model's current one (its bins belong to the old reference)."""
        current = window if window.reference_id == self.reference_id else window.without_profile()
        return window_signals(
            current,
            plan=self.plan,
            reference=self.reference,
            window_seconds=window_seconds,
            quality=self.spec.quality,
            outcomes=self.spec.outcomes,
        )


@dataclass(slots=True)
class _OperationTimes:
    count: int = 0
    total: float = 0.0
    buckets: list[int] = dataclasses.field(default_factory=lambda: [0] * len(_LATENCY_BUCKETS))

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        position = bisect.bisect_left(_LATENCY_BUCKETS, seconds)
        if position < len(self.buckets):
            self.buckets[position] += 1

    def to_dict(self) -> dict[str, Any]:
        cumulative = np.cumsum(self.buckets).tolist()
        return {
            "count": self.count,
            "sum": self.total,
            "buckets": dict(zip(_LATENCY_BUCKETS, cumulative, strict=True)),
        }


@dataclass(slots=True)
class KnownValues:
    """The versions and segments a model's events have (``""`` not counted): the caps' count."""

    versions: set[str]
    segments: set[str]


class MonitorState:
    """The monitor's shared state and the plumbing every part uses (see the module docstring).

    ``clock`` returns the current epoch seconds (tests pass a fake one).
    """

    def __init__(
        self, store: MonitorStore, *, settings: Settings, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.lock = threading.RLock()
        self.persist_lock = threading.RLock()
        self.marker_lock = threading.Lock()
        self.models: dict[str, ModelState] = {}
        # Per model: the open windows, and the windows whose "open" row is stored.
        self.open: dict[str, dict[WindowKey, WindowProfile]] = {}
        self.marked: dict[str, set[WindowKey]] = {}
        # Per model: labels stored before their prediction → when they arrived.
        self.pending: dict[str, dict[str, float]] = {}
        self.known: dict[str, KnownValues] = {}
        # Per model: the start of the latest closed window of the smallest size.
        self.last_closed: dict[str, float] = {}
        # Per model, per (version, segment): the ingest time of the newest event accepted by
        # this process (on ``clock``), and, read from the store once, of the newest stored one
        # (the store's wall-clock ``ingested_at``); the first wins where both are known.
        self.last_event: dict[str, dict[tuple[str, str], float]] = {}
        self.stored_last_event: dict[str, dict[tuple[str, str], float]] = {}
        # Changed windows (in the store) handed to the alerting engine and not yet
        # acknowledged, by (model id, window start) → the change's ``noted_at``.
        self.delivered: dict[tuple[int, float], float] = {}
        # Windows ``tick`` has taken out of ``open`` and not yet stored as closed.
        self.closing: dict[tuple[str, WindowKey], WindowProfile] = {}
        self._counts: dict[str, dict[str, int]] = {}
        self._operations: dict[str, _OperationTimes] = {}

    @contextmanager
    def timed(self, operation: str) -> Iterator[None]:
        """Time a store operation into its latency histogram."""
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            with self.lock:
                self._operations.setdefault(operation, _OperationTimes()).observe(elapsed)

    def count(self, model: str, **increments: int) -> None:
        """Add to the ingest totals of ``model``."""
        with self.lock:
            counts = self._counts.setdefault(model, {})
            for name, value in increments.items():
                counts[name] = counts.get(name, 0) + value

    def counters(self) -> dict[str, Any]:
        """Ingest totals per model and store operation latencies (cumulative histograms)."""
        with self.lock:
            return {
                "models": {name: dict(counts) for name, counts in self._counts.items()},
                "store_operations": {
                    name: times.to_dict() for name, times in self._operations.items()
                },
                "open_windows": {name: len(windows) for name, windows in self.open.items()},
            }

    def model(self, name: str) -> ModelState:
        """The state of model ``name``, loaded from the store once; NotFoundError if unknown."""
        with self.lock:
            state = self.models.get(name)
        if state is not None:
            return state
        with self.timed("get_model"):
            record = self.store.get_model(name)
        spec = ModelSpec.from_dict(record.config)
        state = ModelState.of(spec, record.id, *self._load_reference(record.id))
        with self.lock:
            return self.models.setdefault(name, state)

    def _load_reference(self, model_id: int) -> tuple[DatasetProfile | None, str | None]:
        try:
            with self.timed("get_reference_profile"):
                record = self.store.get_reference_profile(model_id)
        except NotFoundError:
            return None, None
        return DatasetProfile.from_bytes(record.profile), profile_id(record.profile)

    def specs(self) -> list[ModelSpec]:
        """Every registered model (in the store, whoever registered it), by name."""
        with self.timed("list_models"):
            records = self.store.list_models()
        return [ModelSpec.from_dict(record.config) for record in records]

    def validation_window(self) -> dict[str, float]:
        """The event-time bounds a batch is validated against now."""
        return {
            "now": self.clock(),
            "max_age_seconds": self.settings.max_event_age_seconds,
            "max_future_seconds": self.settings.max_event_future_seconds,
        }


def profile_id(data: bytes) -> str:
    """The id of a reference profile: a prefix of its bytes' SHA-256."""
    return hashlib.sha256(data).hexdigest()[:16]
