"""The live monitor: models, ingest, windows, label, feedback and outcome joins, signals
and queries.

:class:`MonitorService` is the domain layer under the HTTP server (which calls it from a thread
pool): a facade over one :class:`~watchkeeper.monitor.state.MonitorState` (the models, the open
windows and their locks) and the parts that work on it:

- :mod:`~watchkeeper.monitor.models`: registration, reference data, deletion;
- :mod:`~watchkeeper.monitor.ingesting`: events → cardinality caps → store → open windows;
- :mod:`~watchkeeper.monitor.joins`: labels, feedback and business outcomes, joined into open
  or closed windows;
- :mod:`~watchkeeper.monitor.closing`: closing due windows, late events, retention;
- :mod:`~watchkeeper.monitor.stored`: the windows' rows in the store;
- :mod:`~watchkeeper.monitor.queries`: series, range reports, latest samples, signal names;
- :mod:`~watchkeeper.monitor.recovery`: start-up recovery, checkpoints, the checkpoint gate;
- :mod:`~watchkeeper.monitor.probes`: system signals (CPU, memory, GPU).

Raw events in the store are the source of truth: an ingested batch is committed in one store
transaction before the call returns, then only its newly inserted events are folded into
in-memory open windows. :meth:`MonitorService.tick` closes due windows (computing their signals
and persisting their profiles); labels and feedback update windows whether open or closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from watchkeeper.config import Settings
from watchkeeper.ingest.decode import DecodedEvents, DecodeJob, decode_events, decode_table
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor import closing, ingesting, joins, models, probes
from watchkeeper.monitor.outcome import IngestOutcome
from watchkeeper.monitor.queries import Queries
from watchkeeper.monitor.recovery import Recovery
from watchkeeper.monitor.state import MonitorState
from watchkeeper.store.protocol import MonitorStore

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["IngestOutcome", "MonitorService"]


class MonitorService:
    """Live monitoring of registered models over a :class:`~watchkeeper.store.Store`.

    ``clock`` returns the current epoch seconds (tests pass a fake one). Thread-safe: the
    server calls every method from a thread pool.
    """

    def __init__(
        self, store: MonitorStore, *, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self._shared = MonitorState(store, settings=settings, clock=clock)
        self._recovery = Recovery(self._shared)
        self._queries = Queries(self._shared)

    def __repr__(self) -> str:
        return f"MonitorService(store={self._shared.store!r})"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Recover the open windows, then checkpoint them.

        Each window left open in the store resumes from the latest checkpoint, and the events,
        labels and feedback stored after it are replayed; without a checkpoint the windows are
        rebuilt from all their raw events and labels. :meth:`recovery_progress` counts the
        events replayed; :meth:`close` from another thread interrupts the recovery.
        """
        self._recovery.start()

    def recovery_progress(self) -> tuple[int, int]:
        """Events replayed so far by :meth:`start`, and how many it replays in all."""
        return self._recovery.progress()

    def checkpoint(self) -> int:
        """Store the open windows with the number of the last ingest call they hold.

        Ingest calls wait only while the windows are copied (the calls in progress finish
        first); serialising and storing them happens after. Returns the number of windows
        (none before :meth:`start` has recovered them).
        """
        return self._recovery.checkpoint()

    def close(self) -> None:
        """Checkpoint the open windows (they stay open and resume on start); interrupt a
        recovery in progress instead (its windows are incomplete)."""
        self._recovery.close()

    # ------------------------------------------------------------------ models

    def register_model(
        self, spec: ModelSpec, *, reference: pd.DataFrame | None = None
    ) -> ModelSpec:
        """Register ``spec``; features are inferred from ``reference`` when empty.

        Raises ConflictError when the name is taken.
        """
        return models.register_model(self._shared, spec, reference)

    def set_reference(self, model: str, reference: pd.DataFrame) -> dict[str, Any]:
        """Replace the reference data of ``model``; returns a summary of the new profile.

        Windows open at this moment stop profiling features (their bins belong to the old
        reference) and so carry no drift or quality signals; later windows use the new one.
        """
        return models.set_reference(self._shared, model, reference)

    def update_model(
        self, spec: ModelSpec, *, expected_version: int | None = None
    ) -> tuple[ModelSpec, int]:
        """Replace the config of the registered model ``spec.name``: its spec, windows and
        thresholds; returns it with its new config version. With ``expected_version`` only if
        that is still the stored one (StaleVersionError otherwise). Open windows and alert
        rules: see :func:`watchkeeper.monitor.models.update_model`.
        """
        return models.update_model(self._shared, spec, expected_version=expected_version)

    def config_version(self, model: str) -> int:
        """The config version of ``model``: 1 at registration, one more at every update."""
        self._shared.model(model)  # NotFoundError for an unknown model
        return self._shared.store.get_model(model).config_version

    def get_model(self, model: str) -> ModelSpec:
        """The spec of ``model``; NotFoundError when it is not registered."""
        return self._shared.model(model).spec

    def list_models(self) -> list[ModelSpec]:
        """Every registered model, by name."""
        return self._shared.specs()

    def delete_model(self, model: str) -> None:
        """Delete ``model`` with its versions, events, labels, feedback and windows."""
        models.delete_model(self._shared, model)

    def list_versions(self, model: str) -> list[dict[str, Any]]:
        """Versions of ``model`` seen in events (or recorded), oldest first."""
        return models.list_versions(self._shared, model)

    def list_segments(self, model: str) -> list[str]:
        """The segments of ``model``'s windows (canonical strings like ``country=de``), sorted;
        events without segment values are in the segment ``""``."""
        state = self._shared.model(model)
        return sorted(self._shared.store.window_segments(state.model_id))

    # ------------------------------------------------------------------ ingest

    def decode_job(self, model: str) -> DecodeJob:
        """What decoding a batch for ``model`` needs now (NotFoundError for an unknown model)."""
        return ingesting.decode_job(self._shared, self._shared.model(model))

    def ingest_events(self, model: str, events: list[Any]) -> IngestOutcome:
        """Validate, store (one transaction) and fold a JSON batch; committed on return."""
        return self._decode_and_ingest(model, lambda job: decode_events(events, job))

    def ingest_table(self, model: str, table: pa.Table) -> IngestOutcome:
        """The columnar path of :meth:`ingest_events` (Arrow or Parquet bodies)."""
        return self._decode_and_ingest(model, lambda job: decode_table(table, job))

    def _decode_and_ingest(
        self, model: str, decode: Callable[[DecodeJob], DecodedEvents]
    ) -> IngestOutcome:
        # Through ingest_decoded like a worker's batch: a reference set while the batch was
        # decoded changes the plan, and the batch is decoded again with the new one.
        while True:
            outcome = self.ingest_decoded(model, decode(self.decode_job(model)))
            if outcome is not None:
                return outcome

    def ingest_decoded(self, model: str, decoded: DecodedEvents) -> IngestOutcome | None:
        """Store and fold a batch decoded elsewhere (:func:`~watchkeeper.ingest.decode.
        decode_body` in an ingest worker); committed on return.

        Returns None, storing nothing, when the model's plan changed since the job was taken
        (a reference was set meanwhile): the caller decodes the batch again.
        """
        state = self._shared.model(model)
        if decoded.plan != state.plan:
            return None
        with self._recovery.ingest_call() as seq:
            return ingesting.ingest(self._shared, state, decoded, seq)

    def ingest_labels(self, model: str, labels: list[Any]) -> IngestOutcome:
        """Store delayed labels and update the performance of their predictions' windows."""
        with self._recovery.ingest_call() as seq:
            return joins.ingest_labels(self._shared, model, labels, seq)

    def ingest_feedback(self, model: str, feedback: list[Any]) -> IngestOutcome:
        """Store user ratings and count them in the window of the rating's time.

        The window's version and segment are those of the rated prediction; ratings of unknown
        predictions are stored but not counted in any window.
        """
        with self._recovery.ingest_call() as seq:
            return joins.ingest_feedback(self._shared, model, feedback, seq)

    def ingest_outcomes(self, model: str, outcomes: list[Any]) -> IngestOutcome:
        """Store business outcomes and fold them into the windows of their predictions.

        An outcome names a declared outcome of the model and a stored prediction (others are
        refused); the first value of a prediction's outcome is kept, a different one refused.
        """
        with self._recovery.ingest_call() as seq:
            return joins.ingest_outcomes(self._shared, model, outcomes, seq)

    # ------------------------------------------------------------------ windows

    def tick(self, now: float | None = None) -> list[dict[str, Any]]:
        """Close every window whose end has passed: compute its signals and persist it."""
        return closing.tick(self._shared, self._shared.clock() if now is None else now)

    def apply_retention(self, now: float | None = None) -> dict[str, dict[str, int]]:
        """Apply retention: raw data past ``retention_days``, windows past their own limit."""
        return closing.apply_retention(self._shared, self._shared.clock() if now is None else now)

    # ------------------------------------------------------------------ queries

    def signal_names(self, model: str) -> list[str]:
        """Every signal name ``model``'s windows can carry."""
        return self._queries.signal_names(model)

    def signal_catalog(self) -> dict[str, list[str]]:
        """Every registered model (in the store, whoever registered it) → its signal names."""
        return self._queries.signal_catalog()

    def series(
        self,
        model: str,
        signal: str,
        *,
        version: str | None = None,
        segment: str | None = None,
        window_seconds: int | str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[dict[str, Any]]:
        """One point per window of ``signal``, every window of the range; versions / segments
        not given are merged (see :meth:`Queries.series_page`)."""
        return self._queries.series(
            model,
            signal,
            version=version,
            segment=segment,
            window_seconds=window_seconds,
            start=start,
            end=end,
        )

    def series_page(
        self,
        model: str,
        signal: str,
        *,
        limit: int,
        version: str | None = None,
        segment: str | None = None,
        window_seconds: int | str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> dict[str, Any]:
        """At most ``limit`` points of ``signal`` and the ``next`` start (None on the last
        page); see :meth:`Queries.series_page`."""
        return self._queries.series_page(
            model,
            signal,
            version=version,
            segment=segment,
            window_seconds=window_seconds,
            start=start,
            end=end,
            limit=limit,
        )

    def range_report(
        self,
        model: str,
        *,
        start: float,
        end: float,
        version: str | None = None,
        segment: str | None = None,
    ) -> dict[str, Any]:
        """A ``watchkeeper.report/v1`` document of the windows covering ``[start, end)``
        (see :meth:`Queries.range_report`)."""
        return self._queries.range_report(
            model, start=start, end=end, version=version, segment=segment
        )

    def latest_samples(self) -> list[dict[str, Any]]:
        """Signals of the latest closed window (smallest size) of each model, per version."""
        return self._queries.latest_samples()

    def version_health(self, model: str) -> dict[str, dict[str, Any]]:
        """Each version's events, newest event and latest closed window with its signals
        (see :meth:`Queries.version_health`); a service that has not started (the CLI on a
        database) counts the open windows of the latest checkpoint."""
        return self._queries.version_health(model, in_memory=self._recovery.recovered)

    def windows(
        self,
        model: str,
        *,
        start: float,
        end: float,
        window: int | str | None = None,
        version: str | None = None,
        segment: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every window of one length (default the smallest) starting in ``[start, end)``
        with all its signals: ``{"start", "end", "count", "signals"}``; versions and segments
        merged unless ``version`` / ``segment`` pick one."""
        return self._queries.windows(
            model, start=start, end=end, window=window, version=version, segment=segment
        )

    def window_samples(self, model: str, *, start: float, end: float) -> list[dict[str, Any]]:
        """The windows (smallest size) starting in ``[start, end)`` with their samples, as the
        alerting engine reads them (the entries of :meth:`changed_windows`), oldest first."""
        return self._queries.window_samples(model, start=start, end=end)

    def changed_windows(self) -> list[dict[str, Any]]:
        """Closed windows changed since the last call (closed, late events, labels or feedback
        joined), oldest first, each with its samples; reading empties the feed (the changes
        are stored until :meth:`acknowledge_windows`, and read again after a restart)."""
        return self._queries.changed_windows()

    def acknowledge_windows(self) -> None:
        """The windows read from :meth:`changed_windows` were evaluated: forget them."""
        self._queries.acknowledge_windows()

    def counters(self) -> dict[str, Any]:
        """Ingest totals per model and store operation latencies (cumulative histograms)."""
        return self._shared.counters()

    def system_signals(self) -> dict[str, float]:
        """Process CPU and memory (psutil), and GPU use when pynvml is importable."""
        return probes.system_signals()
