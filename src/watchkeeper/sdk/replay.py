"""Backtest: a model's whole live path over historical events, in simulated event time.

:func:`replay` runs local mode (:meth:`Client.local` with a clock) exactly as production would
see the data: it registers the model with its reference, then walks the events window by window
(the model's smallest window), setting the clock to each window's end — the events of the
window are logged through the SDK, the labels that have *arrived* by then (each at its own time,
or a fixed delay after its prediction) are sent, and ``client.tick()`` closes the window and
evaluates the rules (the default pack, or the rules given) on every window that closed or
changed. The result holds every window's signals once all labels joined, and every alert
transition with its event time (``at``) and the simulated time it became known (``known_at``):
with labels two weeks late, an accuracy alert is known two weeks after its window.

Nothing here is a second pipeline: validation, windows, signals, label joins and alerting are
the service's own, so rules tuned on last year's data behave the same when turned on.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchkeeper.errors import ConfigError, InputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from watchkeeper.alerts.rules import RuleSpec
    from watchkeeper.ingest.spec import ModelSpec
    from watchkeeper.sdk.client import Client
    from watchkeeper.windowing import WindowLength

__all__ = ["ReplayResult", "replay"]

_FLUSH_EVERY = 5_000
_HISTORY_LIMIT = 1_000_000


@dataclass(frozen=True)
class ReplayResult:
    """What a replay saw: counts, per-window signals and the alert history, oldest first."""

    model: str
    window_seconds: int
    events: int
    labels: int
    rejected: int
    windows: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    rules: list[dict[str, Any]]

    def firing(self) -> list[dict[str, Any]]:
        """The transitions into ``firing``, oldest first."""
        return [change for change in self.alerts if change["state"] == "firing"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``--json`` file of ``watchkeeper replay``)."""
        return {
            "model": self.model,
            "window_seconds": self.window_seconds,
            "events": self.events,
            "labels": self.labels,
            "rejected": self.rejected,
            "rules": self.rules,
            "windows": self.windows,
            "alerts": self.alerts,
        }


def replay(
    events: pd.DataFrame,
    *,
    spec: Mapping[str, Any],
    reference: pd.DataFrame,
    time_column: str = "timestamp",
    label_column: str | None = None,
    label_time_column: str | None = None,
    label_delay: float | None = None,
    id_column: str | None = None,
    version: str = "replay",
    rules: Sequence[RuleSpec] | None = None,
    db_url: str | None = None,
) -> ReplayResult:
    """Replay ``events`` through local mode in simulated event time; see the module docstring.

    ``spec`` is the model config (docs/service.md); the events hold ``time_column`` (epoch
    seconds or datetimes), the spec's features, prediction and probability columns, and
    optionally ``label_column`` (labels arrive at ``label_time_column`` or ``label_delay``
    seconds after their prediction; default: with it) and ``id_column`` (default: ``row-<n>``
    by position). ``rules`` replaces the default rule pack; ``db_url`` keeps the replayed
    store (default: a temporary SQLite file). Errors name the column or option at fault.
    """
    from watchkeeper.config import Settings
    from watchkeeper.ingest.spec import ModelSpec
    from watchkeeper.sdk.client import Client

    model_spec = ModelSpec.from_dict(dict(spec))
    columns = _check_columns(
        events, model_spec, time_column, label_column, label_time_column, id_column
    )
    if label_column is None and (label_time_column is not None or label_delay is not None):
        raise ConfigError(
            "label_column: label times or a label delay need the column of the labels",
            key="label_column",
        )
    if label_time_column is not None and label_delay is not None:
        raise ConfigError(
            "label_delay: give a label time column or a fixed delay, not both", key="label_delay"
        )
    if label_delay is not None and not (math.isfinite(label_delay) and label_delay >= 0):
        raise ConfigError(
            f"label_delay: expected a non-negative duration, got {label_delay!r}",
            key="label_delay",
        )
    frame = events.reset_index(drop=True)
    times = _epoch_seconds(frame[time_column], column=time_column)
    order = times.argsort(kind="stable")
    frame, times = frame.iloc[order].reset_index(drop=True), times[order]
    ids = (
        frame[id_column].astype(str).tolist()
        if id_column is not None
        else [f"row-{position}" for position in order]
    )
    label_times = None
    if label_column is not None:
        if label_time_column is not None:
            label_times = _epoch_seconds(frame[label_time_column], column=label_time_column)
            early = (label_times < times).nonzero()[0]
            if len(early):
                raise InputError(
                    f"{label_time_column}: row {ids[early[0]]} has its label before its "
                    "prediction; a label arrives at or after the prediction it labels",
                    column=label_time_column,
                )
        else:
            label_times = times + (label_delay or 0.0)
    size = model_spec.windows[0]
    with tempfile.TemporaryDirectory(prefix="watchkeeper-replay-") as scratch:
        url = db_url or f"sqlite:///{Path(scratch) / 'replay.db'}"
        clock = [size.start(float(times[0]))]
        # Events are sent when the clock reaches their window's end: they are up to one window
        # old then, so the accepted age must cover a window.
        settings = Settings(
            db=url,
            max_event_age_seconds=max(Settings().max_event_age_seconds, 2.0 * size.nominal_seconds),
        )
        client = Client.local(url, settings=settings, clock=lambda: clock[0])
        try:
            client.register_model(model_spec.to_dict(), reference=reference)
            if rules is not None:
                client.apply_rules([rule.to_dict() for rule in rules])
            walk = _Walk(client, model_spec, version, frame, columns, ids, clock)
            walk.run(times, label_times, frame[label_column] if label_column else None)
            service = client._local_sink("replay").service
            windows = service.windows(
                model_spec.name, start=float(times[0]), end=float(times[-1]) + 1.0
            )
            applied = client._local_sink("replay").alerting
            assert applied is not None
            return ReplayResult(
                model=model_spec.name,
                window_seconds=size.nominal_seconds,
                events=walk.sent,
                labels=walk.labels,
                rejected=walk.rejected_events + walk.rejected_labels,
                windows=windows,
                alerts=walk.transitions,
                rules=[rule.to_dict() for rule in applied.rules()],
            )
        finally:
            client.close()


class _Walk:
    """Walks the events and label arrivals window by window on the simulated clock."""

    def __init__(
        self,
        client: Client,
        spec: ModelSpec,
        version: str,
        frame: pd.DataFrame,
        columns: dict[str, Any],
        ids: list[str],
        clock: list[float],
    ) -> None:
        self.client = client
        self.spec = spec
        self.logger = client.logger(spec.name, version, capacity=2 * _FLUSH_EVERY)
        self.features = frame[list(spec.features)].to_dict("records")
        self.predictions = (
            frame[columns["prediction"]].tolist() if columns["prediction"] is not None else None
        )
        self.proba = {label: frame[name].tolist() for label, name in columns["proba"].items()}
        self.ids = ids
        self.clock = clock
        self.sent = self.labels = self.rejected_events = self.rejected_labels = 0
        self.transitions: list[dict[str, Any]] = []
        self._seen: Counter[tuple[Any, ...]] = Counter()

    def run(
        self, times: np.ndarray, label_times: np.ndarray | None, labels: pd.Series | None
    ) -> None:
        size = self.spec.windows[0]
        arrivals = [] if label_times is None else label_times.argsort(kind="stable").tolist()
        label_values = [] if labels is None else labels.tolist()
        event, label = 0, 0
        while event < len(times) or label < len(arrivals):
            next_time = min(
                float(times[event]) if event < len(times) else math.inf,
                float(label_times[arrivals[label]])  # type: ignore[index]
                if label < len(arrivals)
                else math.inf,
            )
            end = _window_end(next_time, size)
            # Just before the window's end while its data arrives: nothing closes early.
            self.clock[0] = math.nextafter(end, -math.inf)
            start = event
            while event < len(times) and times[event] < end:
                self._log(event, float(times[event]))
                event += 1
                if (event - start) % _FLUSH_EVERY == 0:
                    self._flush()
            self._flush()
            due: list[dict[str, Any]] = []
            while label < len(arrivals) and label_times[arrivals[label]] < end:  # type: ignore[index]
                row = arrivals[label]
                value = label_values[row]
                if value is not None and value == value:
                    due.append(
                        {
                            "id": self.ids[row],
                            "label": _plain(value),
                            "timestamp": float(label_times[row]),  # type: ignore[index]
                        }
                    )
                label += 1
            if due:
                receipt = self.client.log_labels(self.spec.name, due)
                self.labels += receipt.accepted
                self.rejected_labels += len(receipt.rejected) + len(receipt.conflicts)
            self.clock[0] = end
            self.client.tick()
            self._note_transitions(end)

    def _log(self, row: int, ts: float) -> None:
        features = {str(name): _plain(value) for name, value in self.features[row].items()}
        proba = {label: float(values[row]) for label, values in self.proba.items()} or None
        prediction = None if self.predictions is None else _plain(self.predictions[row])
        self.logger.log(features, prediction, proba=proba, id=self.ids[row], timestamp=ts)

    def _flush(self) -> None:
        if not self.logger.flush(timeout=600):
            raise InputError("replay: the local service did not take the events in time")
        stats = self.logger.stats
        self.sent, self.rejected_events = stats.sent, stats.rejected + stats.failed

    def _note_transitions(self, now: float) -> None:
        """Record the transitions that appeared since the last window, known at ``now``."""
        history = self.client.alert_history(_HISTORY_LIMIT)
        counts = Counter(_key(change) for change in history)
        for change in reversed(history):
            key = _key(change)
            if counts[key] > self._seen[key]:
                self._seen[key] += 1
                self.transitions.append(change | {"known_at": now})
        self.transitions.sort(key=lambda change: (change["at"], change["known_at"]))


def _key(change: Mapping[str, Any]) -> tuple[Any, ...]:
    return (change["fingerprint"], change["previous"], change["state"], change["at"])


def _check_columns(
    events: pd.DataFrame,
    spec: ModelSpec,
    time_column: str,
    label_column: str | None,
    label_time_column: str | None,
    id_column: str | None,
) -> dict[str, Any]:
    """The columns the replay reads, each checked to be in ``events``."""
    wanted: list[tuple[str, str]] = [("time_column", time_column)]
    wanted += [(f"features.{name}", name) for name in spec.features]
    if spec.prediction is not None:
        wanted.append(("prediction", spec.prediction))
    wanted += [(f"proba.{label}", name) for label, name in (spec.proba or {}).items()]
    for option, name in (
        ("label_column", label_column),
        ("label_time_column", label_time_column),
        ("id_column", id_column),
    ):
        if name is not None:
            wanted.append((option, name))
    present = set(map(str, events.columns))
    for option, name in wanted:
        if name not in present:
            shown = ", ".join(sorted(present)[:40])
            raise InputError(
                f"{option}: no column {name!r} in the events; columns: {shown}", column=name
            )
    if len(events) == 0:
        raise InputError("events: no rows to replay", column=time_column)
    return {"prediction": spec.prediction, "proba": dict(spec.proba or {})}


def _epoch_seconds(values: pd.Series, *, column: str) -> np.ndarray:
    """Epoch seconds of a column of numbers or datetimes; InputError naming the column."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        seconds = values.to_numpy(dtype=float)
    else:
        try:
            stamps = pd.to_datetime(values, utc=True)
        except (ValueError, TypeError) as error:
            raise InputError(
                f"{column}: expected epoch seconds or datetimes ({error})", column=column
            ) from None
        seconds = stamps.astype("int64").to_numpy(dtype=float) / 1e9
        seconds[stamps.isna().to_numpy()] = np.nan
    bad = (~np.isfinite(seconds)).nonzero()[0]
    if len(bad):
        raise InputError(
            f"{column}: row {int(bad[0])} has no usable time ({values.iloc[bad[0]]!r})",
            column=column,
        )
    return seconds


def _window_end(ts: float, size: WindowLength) -> float:
    return size.bounds(ts)[1]


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar (NumPy scalars become Python ones, NaN stays NaN: missing)."""
    return value.item() if hasattr(value, "item") else value
