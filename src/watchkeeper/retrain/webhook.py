"""The webhook executor: a retraining job handed to the team's orchestrator over HTTP.

A model whose ``retrain.executor`` is

.. code-block:: yaml

    executor:
      kind: webhook
      url: https://airflow.example.com/hooks/retrain   # where the job is POSTed
      secret_env: WATCHKEEPER_RETRAIN_SECRET            # the env variable holding the HMAC key
                                                        #   (this one unless another is named)
      deadline: 6h                                      # the artifact must be back by then
      retries: 3                                        # POST attempts per hand-over
      backoff: 1s                                       # before the 2nd attempt, doubling
      timeout: 10s                                      # per POST
      format: watchkeeper                               # or airflow (see below)
      authorization_env: ORCHESTRATOR_AUTH              # optional: its value is sent as the
                                                        #   Authorization header

gets its runs POSTed there as JSON (:meth:`WebhookExecutor.payload`: run id, model, data
range, ``train_before`` (the holdout's start: the candidate must not learn from the rows the
gate scores it on), params, the callback URL and the deadline). With ``format: airflow`` the URL
is Airflow's REST endpoint that triggers a DAG (``/api/v1/dags/{dag_id}/dagRuns``, ``/api/v2``
in Airflow 3) and the job is the DAG run's ``conf``, its ``dag_run_id`` fixed per attempt, so a
repeated POST is refused as a duplicate (409, taken as accepted); docs/retraining-airflow.md.

The body is signed: ``X-Watchkeeper-Signature: sha256=HEX``, the HMAC-SHA256 of
``"{X-Watchkeeper-Timestamp}.{body}"`` with the shared secret (:func:`sign`; an orchestrator
checks it with :func:`verify`, which also refuses stale timestamps, so a captured request
cannot be replayed later). A connection error, a timeout, a 408, 429 or 5xx answer is retried
with backoff; another answer (a 401 for a bad signature) is not. When no attempt is accepted,
:meth:`WebhookExecutor.submit` raises :class:`WebhookError` and the runner retries the run. An
accepted job makes the run ``awaiting_artifact``: the orchestrator trains and posts the
artifact back to the callback URL (``POST /v1/retrain/runs/{id}/artifact``), which the server
gates and registers. A run still waiting at its deadline is moved back to ``running`` and
reported to the runner as a failed attempt (``done`` with an error), which retries it (a new
hand-over) or fails it and alerts.

>>> signature = sign(b"key", "1700000000", b'{"run_id": 1}')
>>> verify(b"key", "1700000000", b'{"run_id": 1}', signature, now=1700000100.0)
True
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from watchkeeper.alerts.model import parse_duration
from watchkeeper.errors import (
    ConfigError,
    ConflictError,
    DeliveryError,
    NotFoundError,
    WatchkeeperError,
)
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.retrain.config import RetrainConfig
from watchkeeper.retrain.data import LABEL, assemble
from watchkeeper.retrain.executor import Done, Handoff, JobResult
from watchkeeper.retrain.runs import RetrainJob, RunStatus
from watchkeeper.store import Store

__all__ = [
    "DEFAULT_SECRET_ENV",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookError",
    "WebhookExecutor",
    "WebhookOptions",
    "sign",
    "verify",
]

SIGNATURE_HEADER: Final = "X-Watchkeeper-Signature"
TIMESTAMP_HEADER: Final = "X-Watchkeeper-Timestamp"
#: A signed request older (or newer) than this is refused by :func:`verify`.
MAX_SKEW_SECONDS: Final = 300.0
#: The environment variable holding the shared secret when the options name none.
DEFAULT_SECRET_ENV: Final = "WATCHKEEPER_RETRAIN_SECRET"
DEFAULT_DEADLINE_SECONDS: Final = 6 * 3600.0
#: How soon a deadline that came before the run was marked awaiting looks again.
_RECHECK_SECONDS: Final = 1.0
_RETRIED_STATUSES: Final = frozenset({408, 425, 429})
FORMATS: Final = ("watchkeeper", "airflow")
_KEYS: Final = (
    "kind",
    "url",
    "secret_env",
    "deadline",
    "retries",
    "backoff",
    "timeout",
    "format",
    "authorization_env",
)


class WebhookError(DeliveryError):
    """The orchestrator did not accept the job (after the retries, when retrying could help)."""


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the HMAC-SHA256 of ``timestamp.body``."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    max_skew: float = MAX_SKEW_SECONDS,
) -> bool:
    """True when ``signature`` is :func:`sign`'s for this body and the timestamp is recent."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    at = time.time() if now is None else now
    if abs(at - sent) > max_skew:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    """A model's ``retrain.executor`` options for ``kind: webhook`` (module docstring)."""

    url: str
    secret_env: str = DEFAULT_SECRET_ENV
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    retries: int = 3
    backoff_seconds: float = 1.0
    timeout_seconds: float = 10.0
    format: str = "watchkeeper"
    authorization_env: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WebhookOptions:
        """Read the options; an error names the key (``retrain.executor.url``)."""
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise _fail(unknown[0], f"unknown key; expected {', '.join(_KEYS)}")
        url = data.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _fail("url", f"expected the orchestrator's http(s) URL, got {url!r}")
        secret_env = data.get("secret_env", DEFAULT_SECRET_ENV)
        if not isinstance(secret_env, str) or not secret_env:
            raise _fail(
                "secret_env",
                "expected the name of the environment variable that holds the shared HMAC "
                f"secret (the secret itself never goes in the config), got {secret_env!r}",
            )
        retries = data.get("retries", 3)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
            raise _fail("retries", f"expected an integer >= 1 (POST attempts), got {retries!r}")
        form = data.get("format", "watchkeeper")
        if form not in FORMATS:
            raise _fail("format", f"expected one of {', '.join(FORMATS)}, got {form!r}")
        authorization_env = data.get("authorization_env")
        if authorization_env is not None and (
            not isinstance(authorization_env, str) or not authorization_env
        ):
            raise _fail(
                "authorization_env",
                "expected the name of the environment variable holding the Authorization "
                f"header's value, got {authorization_env!r}",
            )
        return cls(
            url=url,
            secret_env=secret_env,
            deadline_seconds=_seconds(data, "deadline", "6h"),
            retries=retries,
            backoff_seconds=_seconds(data, "backoff", "1s", positive=False),
            timeout_seconds=_seconds(data, "timeout", "10s"),
            format=str(form),
            authorization_env=authorization_env,
        )


class WebhookExecutor:
    """Hands jobs to an orchestrator by a signed POST; their artifacts come back by the API.

    ``callback_base`` is this service's URL as the orchestrator reaches it (the callback URL
    is ``callback_base`` + ``/v1/retrain/runs/{id}/artifact``; the server passes its
    ``external_url``). At a run's deadline the run is read from ``store``: only when it is
    still awaiting that attempt's artifact is it claimed (moved back to ``running``, guarded
    by its revision, so an artifact arriving at the same moment wins or loses cleanly) and
    ``done`` told the attempt timed out. ``secrets`` is where ``secret_env`` is looked up
    (the process environment by default).
    """

    kind = "webhook"

    def __init__(
        self,
        *,
        callback_base: str,
        store: Store,
        secrets: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not callback_base.startswith(("http://", "https://")):
            raise ConfigError(
                f"callback_base: expected this service's http(s) URL, got {callback_base!r}",
                key="callback_base",
            )
        self.callback_base = callback_base.rstrip("/")
        self._store = store
        self._secrets = os.environ if secrets is None else secrets
        self._clock = clock
        self._sleep = sleep
        self._client: httpx.Client | None = None  # made at the first hand-over
        self._timers: dict[tuple[int, int], threading.Timer] = {}
        self._lock = threading.Lock()
        self._closed = False

    def payload(self, job: RetrainJob, *, deadline: float) -> dict[str, Any]:
        """What the orchestrator gets: the job (run id, model, attempt, data range ``start`` to
        ``end``, trigger, config), ``train_before`` (the time from which the mature rows are
        the gate's holdout), the model's ``features`` and ``label`` column, its ``params`` and
        ``trainer``, where to post the artifact (``callback_url``) and by when (``deadline``,
        epoch seconds).

        The split is the pipeline's own (:func:`~watchkeeper.retrain.data.assemble` on the
        run's data), so the orchestrator's candidate is gated on rows it never trained on; a
        run without enough mature data raises its :class:`InputError` before any hand-over.
        """
        spec = RetrainConfig.from_dict(job.config).spec
        model_spec = ModelSpec.from_dict(dict(self._store.get_model(job.model).config))
        data = assemble(self._store, model_spec, spec, now=job.as_of)
        document = job.to_dict()
        return {
            **document,
            "train_before": data.split_at,
            "train_rows": len(data.train),
            "holdout_rows": len(data.holdout),
            "features": list(data.features),
            "label": LABEL,
            "params": dict(spec.params or {}),
            "trainer": spec.trainer,
            "callback_url": self.callback_base + document["artifact_url"],
            "deadline": deadline,
        }

    def submit(self, job: RetrainJob, done: Done) -> Handoff:
        """POST ``job`` (retrying); :class:`WebhookError` when the orchestrator never took it."""
        options = WebhookOptions.from_dict(dict(job.config.get("executor") or {}))
        secret = self._secrets.get(options.secret_env)
        if not secret:
            raise WebhookError(
                f"retrain.executor.secret_env: the environment variable {options.secret_env!r} "
                "that should hold the webhook's HMAC secret is not set"
            )
        authorization = None
        if options.authorization_env is not None:
            authorization = self._secrets.get(options.authorization_env)
            if not authorization:
                raise WebhookError(
                    f"retrain.executor.authorization_env: the environment variable "
                    f"{options.authorization_env!r} is not set"
                )
        document = self.payload(job, deadline=self._clock() + options.deadline_seconds)
        if options.format == "airflow":
            document = {"dag_run_id": _delivery(job), "logical_date": None, "conf": document}
        body = json.dumps(document, sort_keys=True).encode()
        self._deliver(job, options, secret.encode(), body, authorization)
        self._arm(job.run_id, job.attempt, options.deadline_seconds, options.deadline_seconds, done)
        return Handoff.AWAITING_ARTIFACT

    def _deliver(
        self,
        job: RetrainJob,
        options: WebhookOptions,
        secret: bytes,
        body: bytes,
        authorization: str | None,
    ) -> None:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client()
            client = self._client
        failures: list[str] = []
        for attempt in range(1, options.retries + 1):
            if attempt > 1:
                self._sleep(options.backoff_seconds * 2.0 ** (attempt - 2))
            timestamp = f"{self._clock():.3f}"
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "watchkeeper-retrain",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(secret, timestamp, body),
                # The same key on every POST of one hand-over: an orchestrator that got the
                # job but whose answer was lost can recognise the repeat.
                "Idempotency-Key": _delivery(job),
                **({} if authorization is None else {"Authorization": authorization}),
            }
            try:
                response = client.post(
                    options.url, content=body, headers=headers, timeout=options.timeout_seconds
                )
            except httpx.HTTPError as error:
                failures.append(f"{type(error).__name__}: {error}")
                continue
            if response.is_success or (options.format == "airflow" and response.status_code == 409):
                return  # Airflow's 409: this attempt's DAG run exists (an earlier POST got in)
            failures.append(f"answered {response.status_code}: {response.text[:200]}")
            if response.status_code < 500 and response.status_code not in _RETRIED_STATUSES:
                break  # the orchestrator refused the job itself: retrying sends the same
        raise WebhookError(
            f"webhook POST {options.url} for retraining run {job.run_id}: "
            f"{len(failures)} attempt(s) failed; last: {failures[-1]}"
        )

    def resume(self, done: Done) -> int:
        """After a restart: arm the deadlines of the runs a previous process handed over.

        Each run awaiting its artifact from this executor times out ``deadline`` after it was
        handed over (its last change; the model's current deadline, or the default when its
        configuration no longer names a webhook); one already past it times out now. The
        server calls this once at start with the runner's ``done``. Returns how many.
        """
        armed = 0
        for run in self._store.retrain_runs(statuses=[RunStatus.AWAITING_ARTIFACT.value]):
            if run.executor != self.kind:
                continue
            try:
                raw = self._store.get_model(run.model).config.get("retrain") or {}
                deadline = WebhookOptions.from_dict(dict(raw.get("executor") or {}))
                seconds = deadline.deadline_seconds
            except WatchkeeperError:
                seconds = DEFAULT_DEADLINE_SECONDS
            left = max(0.0, run.updated_at + seconds - self._clock())
            self._arm(run.id, run.attempts, seconds, left, done)
            armed += 1
        return armed

    def _arm(
        self,
        run_id: int,
        attempt: int,
        deadline: float,
        delay: float,
        done: Done,
        *,
        recheck: bool = True,
    ) -> None:
        """In ``delay`` seconds, time out attempt ``attempt`` of ``run_id`` if it still waits
        (with ``recheck``, once more a moment later if it was not yet marked waiting)."""
        key = (run_id, attempt)

        def expired() -> None:
            with self._lock:
                self._timers.pop(key, None)
                if self._closed:
                    return
            claimed = self._claim_expired(run_id, attempt)
            if claimed is None and recheck:  # the hand-over is not marked yet: look again
                self._arm(run_id, attempt, deadline, _RECHECK_SECONDS, done, recheck=False)
            elif claimed:
                error = (
                    f"webhook: no artifact posted back within {deadline:g} s "
                    "(retrain.executor.deadline)"
                )
                done(JobResult(run_id, attempt, error=error))

        timer = threading.Timer(delay, expired)
        timer.daemon = True
        with self._lock:
            if self._closed:
                return
            previous = self._timers.pop(key, None)
            self._timers[key] = timer
        if previous is not None:
            previous.cancel()
        timer.start()

    def _claim_expired(self, run_id: int, attempt: int) -> bool | None:
        """Move a run still awaiting ``attempt``'s artifact back to ``running`` for the runner
        to record the timeout; False when anything (the artifact) moved it first, None when
        the runner has not yet marked it awaiting (a deadline shorter than that moment)."""
        try:
            run = self._store.retrain_run(run_id)
        except NotFoundError:
            return False
        if run.attempts != attempt:
            return False
        if run.status == RunStatus.RUNNING.value:
            return None
        if run.status != RunStatus.AWAITING_ARTIFACT.value:
            return False
        try:
            self._store.update_retrain_run(run, {"status": RunStatus.RUNNING.value})
        except ConflictError:
            return False
        return True

    def close(self) -> None:
        """Stop the deadline timers (a restart finds the runs still awaiting) and the client."""
        with self._lock:
            self._closed = True
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
        if self._client is not None:
            self._client.close()


def _delivery(job: RetrainJob) -> str:
    return f"watchkeeper-run-{job.run_id}-attempt-{job.attempt}"


def _fail(key: str, message: str) -> ConfigError:
    return ConfigError(f"retrain.executor.{key}: {message}", key=f"retrain.executor.{key}")


def _seconds(data: Mapping[str, Any], key: str, default: str, *, positive: bool = True) -> float:
    seconds = parse_duration(data.get(key, default), key=f"retrain.executor.{key}")
    if positive and seconds <= 0:
        raise _fail(key, f"expected a positive duration, got {data.get(key)!r}")
    return seconds
