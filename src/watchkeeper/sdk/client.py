"""The SDK entry point: a :class:`Client` for one watchkeeper service (or a local store)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from watchkeeper.errors import (
    AuthError,
    ConflictError,
    DeliveryError,
    IngestError,
    InputError,
    NotFoundError,
)
from watchkeeper.ingest import Rejection
from watchkeeper.sdk.logger import PredictionLogger
from watchkeeper.sdk.sink import BatchKind, Delivery, HttpSink, Outcome, Sink

if TYPE_CHECKING:
    from watchkeeper.config import Settings
    from watchkeeper.monitor.service import MonitorService
    from watchkeeper.sdk.local import LocalSink

__all__ = ["Client", "Receipt"]


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the service did with a synchronous batch (labels, feedback or outcomes).

    ``accepted``: stored now; ``duplicates``: the same label (or rating) was already stored,
    e.g. by a retry, harmless; ``rejected``: invalid items; ``conflicts``: a different label
    for an id already labelled (or a user's different rating of an event already rated),
    refused because the first one is kept. Items of ``rejected`` and ``conflicts`` carry their
    index in the batch, the field and the reason.
    """

    accepted: int
    duplicates: int
    rejected: tuple[Rejection, ...]
    conflicts: tuple[Rejection, ...] = ()


class Client:
    """Talks to one watchkeeper service; makes loggers and sends labels and feedback.

    Parameters
    ----------
    url:
        Service base URL, e.g. ``http://localhost:8000``.
    token:
        API token with the ``ingest`` scope (sent as ``Authorization: Bearer``).
    timeout:
        Seconds per HTTP request.
    sink_factory:
        Makes the sink of each logger and of the synchronous calls instead of an HTTP sink;
        :meth:`local` uses it to write to an in-process store.

    Example
    -------
    >>> with Client("http://localhost:8000", token="...") as client:  # doctest: +SKIP
    ...     logger = client.logger("churn", "v3")
    ...     event_id = logger.log({"age": 42}, prediction=1)
    ...     client.log_labels("churn", [(event_id, 1)])
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 5.0,
        sink_factory: Callable[[], Sink] | None = None,
    ) -> None:
        if sink_factory is None:
            HttpSink(url=url, token=token, timeout=timeout).close()  # validates url / timeout

            def sink_factory() -> Sink:
                return HttpSink(url=url, token=token, timeout=timeout)

        self._url = url
        self._token = token
        self._timeout = timeout
        self._new_sink = sink_factory
        self._sink: Sink | None = None
        self._loggers: list[PredictionLogger] = []

    @classmethod
    def local(
        cls,
        db_url: str,
        *,
        settings: Settings | None = None,
        clock: Callable[[], float] | None = None,
    ) -> Client:
        """A client that runs the monitoring service in-process on ``db_url``, with no server.

        Events are validated, stored and folded into windows exactly as the server does, and
        the alert rules are evaluated on every window that closes or changes (labels joined
        late, late events), in event time (:meth:`tick`, :meth:`alerts`). ``clock`` replaces
        the wall clock (to replay history; ``watchkeeper.sdk.replay`` does it for a whole
        file). Example: ``Client.local("sqlite:///watchkeeper.db")``.
        """
        from watchkeeper.sdk.local import LocalSink

        root = LocalSink.open(db_url, settings=settings, clock=clock)
        client = cls(db_url, sink_factory=root.share)
        client._sink = root
        return client

    @property
    def url(self) -> str:
        """The service URL (or store URL in local mode)."""
        return self._url

    def logger(self, model: str, version: str, **options: Any) -> PredictionLogger:
        """A non-blocking logger for ``model`` at ``version``; options as PredictionLogger."""
        logger = PredictionLogger(sink=self._new_sink(), model=model, version=version, **options)
        self._loggers.append(logger)
        return logger

    def log_labels(
        self,
        model: str,
        labels: Iterable[tuple[str, Any] | Mapping[str, Any]],
        *,
        timestamp: float | datetime | None = None,
    ) -> Receipt:
        """Send delayed labels ``[(event_id, label), ...]`` (or ``{"id", "label"}`` mappings).

        Synchronous. Items the service refuses one by one come back in ``Receipt.rejected``;
        a refused batch raises (AuthError, NotFoundError, IngestError), an unreachable service
        raises DeliveryError.
        """
        records: list[dict[str, Any]] = []
        for item in labels:
            if isinstance(item, Mapping):
                record = dict(item)
            else:
                event_id, label = item
                record = {"id": event_id, "label": label}
            if timestamp is not None:
                record.setdefault("timestamp", timestamp)
            records.append(record)
        return self._send(model, "labels", records)

    def log_feedback(
        self,
        model: str,
        id: str,
        *,
        user_id: str,
        rating: int,
        comment: str | None = None,
        timestamp: float | datetime | None = None,
    ) -> Receipt:
        """Send one user's rating (1..5) of the prediction in event ``id``; synchronous."""
        record: dict[str, Any] = {"id": id, "user_id": user_id, "rating": rating}
        if comment is not None:
            record["comment"] = comment
        if timestamp is not None:
            record["timestamp"] = timestamp
        return self._send(model, "feedback", [record])

    def log_outcomes(
        self,
        model: str,
        outcomes: Iterable[tuple[str, str, bool | float] | Mapping[str, Any]],
        *,
        timestamp: float | datetime | None = None,
    ) -> Receipt:
        """Send business outcomes ``[(event_id, name, value), ...]`` (or ``{"id" | "unit",
        "name", "value", "timestamp"?}`` mappings) of the model's predictions; synchronous.

        ``name`` is an outcome declared in the model's config; ``value`` is ``True``/``False``
        for a binary outcome, a number for a numeric one. An outcome is refused (in
        ``Receipt.rejected``) until its prediction is stored, and a different value for an
        outcome already stored comes back in ``Receipt.conflicts``. From serving code,
        :meth:`PredictionLogger.log_outcome` queues one without blocking.
        """
        records: list[dict[str, Any]] = []
        for item in outcomes:
            if isinstance(item, Mapping):
                record = dict(item)
            else:
                event_id, name, value = item
                record = {"id": event_id, "name": name, "value": value}
            if timestamp is not None:
                record.setdefault("timestamp", timestamp)
            records.append(record)
        return self._send(model, "outcomes", records)

    def register_model(
        self, config: Mapping[str, Any], *, reference: Any | None = None
    ) -> dict[str, Any]:
        """Register a model from its config and, optionally, its reference data.

        ``config`` is the model config of docs/service.md (name, task, features, …);
        ``reference`` is any input watchkeeper reads (pandas or polars DataFrame, pyarrow
        Table, dict of arrays) and is sent as Parquet. Over HTTP this needs a token with the
        ``admin`` scope when the service requires authentication. Returns the stored config;
        raises ConflictError when the name is taken.
        """
        local = self._local_service()
        if local is not None:
            from watchkeeper.ingest.spec import ModelSpec

            frame = None if reference is None else _frame(reference)
            stored = local.register_model(ModelSpec.from_dict(dict(config)), reference=frame)
            alerting = self._local_sink("register_model").alerting
            if alerting is not None:
                from watchkeeper.alerts.defaults import pack_options

                alerting.on_model_registered(stored.name, **pack_options(stored))
            return stored.to_dict()
        registered = self._request("POST", "/v1/models", json=dict(config))
        if reference is not None:
            self.set_reference(str(registered["name"]), reference)
        return registered

    def set_reference(self, model: str, reference: Any) -> dict[str, Any]:
        """Replace ``model``'s reference data (drift is measured against it from then on)."""
        frame = _frame(reference)
        local = self._local_service()
        if local is not None:
            summary = local.set_reference(model, frame)
            alerting = self._local_sink("set_reference").alerting
            if alerting is not None:
                from watchkeeper.alerts.defaults import pack_options

                alerting.on_reference_set(model, **pack_options(local.get_model(model)))
            return summary
        import io

        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return self._request(
            "PUT",
            f"/v1/models/{model}/reference",
            content=buffer.getvalue(),
            headers={"content-type": "application/vnd.apache.parquet"},
        )

    def tick(self, now: float | None = None) -> list[dict[str, Any]]:
        """Local mode: close the windows due at ``now`` (default: the clock), evaluate the
        alert rules on every window closed or changed since the last evaluation (in event
        time) and deliver due notifications; returns the alert state changes."""
        sink = self._local_sink("tick")
        report = sink.tick(now)
        return [] if report is None else [change.to_dict() for change in report.transitions]

    def alerts(self, state: str | None = None) -> list[dict[str, Any]]:
        """Local mode: pending, firing and recently resolved alerts (optionally of one state)."""
        alerting = self._local_sink("alerts").alerting
        assert alerting is not None
        muted = alerting.muted()
        return [
            record.to_dict(muted=record.fingerprint in muted) for record in alerting.alerts(state)
        ]

    def alert_history(self, limit: int = 100) -> list[dict[str, Any]]:
        """Local mode: the latest alert state changes, newest first."""
        alerting = self._local_sink("alert_history").alerting
        assert alerting is not None
        return [change.to_dict() for change in alerting.history(limit)]

    def apply_rules(self, rules: str | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Local mode: make ``rules`` (a rules file's YAML text or a list of rule dicts) the
        rule set; a rule naming an unknown model or signal is a ConfigError."""
        from watchkeeper.alerts import load_rules
        from watchkeeper.alerts.config import parse_rules

        alerting = self._local_sink("apply_rules").alerting
        assert alerting is not None
        specs = load_rules(rules) if isinstance(rules, str) else parse_rules(list(rules))
        return [spec.to_dict() for spec in alerting.apply_rules(specs)]

    def _local_sink(self, what: str) -> LocalSink:
        from watchkeeper.sdk.local import LocalSink

        if not isinstance(self._sink, LocalSink):
            raise InputError(
                f"{what}() runs in local mode (Client.local); with a server use its API "
                "(/v1/alerts, /v1/rules) or `watchkeeper alerts list --url URL`"
            )
        return self._sink

    def _local_service(self) -> MonitorService | None:
        from watchkeeper.sdk.local import LocalSink

        return self._sink.service if isinstance(self._sink, LocalSink) else None

    def _request(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        """One synchronous admin request; errors become watchkeeper's exceptions."""
        import httpx

        headers = dict(options.pop("headers", {}))
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        url = self._url.rstrip("/") + path
        try:
            response = httpx.request(method, url, headers=headers, timeout=self._timeout, **options)
        except httpx.HTTPError as error:
            raise DeliveryError(f"{method} {path}: the service is unreachable ({error})") from None
        if response.status_code < 400:
            body: dict[str, Any] = response.json()
            return body
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        status = response.status_code
        where = f"{method} {path}: {status} {message}"
        if status in (401, 403):
            raise AuthError(where)
        if status == 404:
            raise NotFoundError(where)
        if status == 409:
            raise ConflictError(where)
        if status < 500:
            raise InputError(where)
        raise DeliveryError(where)

    def _send(self, model: str, kind: BatchKind, records: Sequence[Mapping[str, Any]]) -> Receipt:
        if not records:
            return Receipt(accepted=0, duplicates=0, rejected=())
        if self._sink is None:
            self._sink = self._new_sink()
        delivery = self._sink.send(model, kind, records)
        if delivery.outcome is Outcome.DELIVERED:
            return Receipt(
                accepted=delivery.accepted,
                duplicates=delivery.duplicates,
                rejected=delivery.rejected,
                conflicts=delivery.conflicts,
            )
        raise _error_of(delivery, model=model, kind=kind, url=self._url)

    def close(self) -> None:
        """Close every logger made by this client (delivering what they hold) and the sink."""
        for logger in self._loggers:
            logger.close()
        self._loggers.clear()
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _frame(reference: Any) -> Any:
    from watchkeeper.frame import as_dataframe

    return as_dataframe(reference, name="reference")


def _error_of(delivery: Delivery, *, model: str, kind: str, url: str) -> Exception:
    """The exception for a batch that was not delivered."""
    detail = delivery.detail or "no detail"
    if delivery.outcome is not Outcome.REFUSED:
        return DeliveryError(
            f"could not send {kind} for model {model!r} to {url} ({delivery.outcome.value}, "
            f"HTTP {delivery.status}): {detail}; check the service is up and retry",
            receiver=url,
        )
    if delivery.status in (401, 403):
        return AuthError(
            f"the service refused the token for {kind} of model {model!r} (HTTP "
            f"{delivery.status}): {detail}; pass a token with the 'ingest' scope"
        )
    if delivery.status == 404:
        return NotFoundError(
            f"model {model!r} is not registered at {url}: {detail}", kind="model", name=model
        )
    if delivery.status in (400, 413, 422) or delivery.status is None:
        return IngestError(
            f"the service refused the {kind} batch for model {model!r}: {detail}", field=kind
        )
    return DeliveryError(
        f"the service refused the {kind} batch for model {model!r} (HTTP {delivery.status}): "
        f"{detail}",
        receiver=url,
    )
