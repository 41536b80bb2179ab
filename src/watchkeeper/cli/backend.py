"""Where a CLI command works: a running server (``--url``) or a database (``--db``).

Every command of the ``models``, ``tokens``, ``rules``, ``alerts``, ``silences``, ``signals``,
``rollout`` and ``experiments`` groups goes through a :class:`Backend`. :class:`ServerBackend`
calls the HTTP API; :class:`DatabaseBackend` opens the store and calls the same service
functions the API's routes call, and answers with the same JSON documents, so a command prints
the same thing either way. The first call prints one line on stderr naming the server or
database used.

Exit codes (one line on stderr each): 1 the server or database refused or failed (unreachable,
401/403, 404, 409, 5xx, a store error), 2 bad usage or an invalid value (400/413/415/422, a
config or input error).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Protocol
from urllib.parse import quote

import typer

from watchkeeper.cli.experiments_backend import (
    ExperimentCalls,
    ExperimentDatabaseCalls,
    ExperimentServerCalls,
)
from watchkeeper.cli.registry_backend import (
    RegistryCalls,
    RegistryDatabaseCalls,
    RegistryServerCalls,
)
from watchkeeper.cli.retrain_backend import (
    RetrainCalls,
    RetrainDatabaseCalls,
    RetrainServerCalls,
)
from watchkeeper.errors import ConfigError, InputError, WatchkeeperError

if TYPE_CHECKING:
    import httpx
    import pandas as pd

    from watchkeeper.alerts.engine import AlertingEngine
    from watchkeeper.config import Settings
    from watchkeeper.monitor.service import MonitorService
    from watchkeeper.rollout.controller import RolloutController
    from watchkeeper.serving import Serving
    from watchkeeper.store import Store

__all__ = [
    "Backend",
    "ConfigOpt",
    "DatabaseBackend",
    "DbOpt",
    "ServerBackend",
    "TokenOpt",
    "UrlOpt",
    "fail",
    "open_backend",
    "shown_db",
]

EXIT_SERVER = 1
EXIT_USAGE = 2

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Base URL of a running server to talk to (env WATCHKEEPER_URL); without it the "
        "command works on the database.",
        show_default=False,
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="WATCHKEEPER_TOKEN",
        help="API token (Bearer) for --url.",
        show_default=False,
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="Store URL: sqlite:///watchkeeper.db or postgresql://… (default: settings)."
    ),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="YAML file of settings (see docs/service.md).")
]


def fail(message: str, code: int) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


def read_spec(path: Path, expected: str) -> dict[str, Any]:
    """A YAML or JSON spec file as a mapping; exits 2 naming the file and what it holds
    instead (``expected`` lists the keys a spec starts with, for the message)."""
    from watchkeeper._yaml import load_yaml

    try:
        spec = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as error:
        fail(f"{path}: cannot read the spec: {error}", EXIT_USAGE)
    except ValueError as error:
        fail(f"{path}: not YAML or JSON: {error}", EXIT_USAGE)
    if not isinstance(spec, dict):
        fail(f"{path}: expected a mapping with {expected}", EXIT_USAGE)
    return spec


def _exit_code(error: WatchkeeperError) -> int:
    return EXIT_USAGE if isinstance(error, ConfigError | InputError) else EXIT_SERVER


class Backend(RegistryCalls, ExperimentCalls, RetrainCalls, Protocol):
    """The operations of the CLI; each answers the JSON document of the matching API route
    (the model registry's are in :mod:`watchkeeper.cli.registry_backend`)."""

    def list_models(self) -> dict[str, Any]: ...
    def register_model(
        self, config: Mapping[str, Any], reference: pd.DataFrame | None
    ) -> dict[str, Any]: ...
    def update_model(
        self,
        name: str,
        config: Mapping[str, Any],
        reference: pd.DataFrame | None,
        *,
        expected_version: int | None,
    ) -> dict[str, Any]: ...
    def create_token(self, name: str, scopes: list[str]) -> dict[str, Any]: ...
    def list_tokens(self) -> dict[str, Any]: ...
    def revoke_token(self, name: str) -> dict[str, Any]: ...
    def apply_rules(self, text: str, *, replace: bool) -> dict[str, Any]: ...
    def list_rules(self) -> dict[str, Any]: ...
    def export_prometheus(self) -> dict[str, Any]: ...
    def add_default_rules(self, model: str) -> dict[str, Any]: ...
    def alerts(self, state: str) -> dict[str, Any]: ...
    def history(self, limit: int) -> dict[str, Any]: ...
    def add_silence(self, body: Mapping[str, Any]) -> dict[str, Any]: ...
    def list_silences(self) -> dict[str, Any]: ...
    def expire_silence(self, silence_id: str) -> dict[str, Any]: ...
    def series_page(self, model: str, signal: str, query: Mapping[str, Any]) -> dict[str, Any]: ...
    def range_report(self, model: str, query: Mapping[str, Any]) -> dict[str, Any]: ...
    def start_rollout(self, spec: Mapping[str, Any]) -> dict[str, Any]: ...
    def list_rollouts(self, model: str | None, state: str | None) -> dict[str, Any]: ...
    def rollout_status(self, rollout_id: int) -> dict[str, Any]: ...
    def rollout_action(
        self, rollout_id: int, action: str, *, reason: str, full: bool
    ) -> dict[str, Any]: ...


class ServerBackend(RegistryServerCalls, ExperimentServerCalls, RetrainServerCalls):
    """The CLI's operations over the HTTP API of the server at ``url``."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        import httpx

        headers = dict(options.pop("headers", None) or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = httpx.request(
                method, self.url + path, headers=headers, timeout=30.0, **options
            )
        except httpx.HTTPError as error:
            fail(
                f"cannot reach watchkeeper at {self.url}: {error}; is the server running?",
                EXIT_SERVER,
            )
        if not response.is_success:
            _refused(method, path, response)
        body: dict[str, Any] = response.json()
        return body

    def list_models(self) -> dict[str, Any]:
        return self._call("GET", "/v1/models")

    def register_model(
        self, config: Mapping[str, Any], reference: pd.DataFrame | None
    ) -> dict[str, Any]:
        registered = self._call("POST", "/v1/models", json=dict(config))
        if reference is not None:
            self._put_reference(registered["name"], reference)
        return registered

    def update_model(
        self,
        name: str,
        config: Mapping[str, Any],
        reference: pd.DataFrame | None,
        *,
        expected_version: int | None,
    ) -> dict[str, Any]:
        headers = {} if expected_version is None else {"If-Match": f'"{expected_version}"'}
        updated = self._call("PUT", f"/v1/models/{name}", json=dict(config), headers=headers)
        if reference is not None:
            self._put_reference(name, reference)
        return updated

    def _put_reference(self, name: str, reference: pd.DataFrame) -> None:
        buffer = io.BytesIO()
        reference.to_parquet(buffer, index=False)
        self._call(
            "PUT",
            f"/v1/models/{name}/reference",
            content=buffer.getvalue(),
            headers={"Content-Type": "application/vnd.apache.parquet"},
        )

    def create_token(self, name: str, scopes: list[str]) -> dict[str, Any]:
        return self._call("POST", "/v1/tokens", json={"name": name, "scopes": scopes})

    def list_tokens(self) -> dict[str, Any]:
        return self._call("GET", "/v1/tokens")

    def revoke_token(self, name: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/tokens/{name}")

    def apply_rules(self, text: str, *, replace: bool) -> dict[str, Any]:
        return self._call(
            "PUT",
            "/v1/rules",
            content=text.encode("utf-8"),
            params={"replace": str(replace).lower()},
            headers={"Content-Type": "application/yaml"},
        )

    def list_rules(self) -> dict[str, Any]:
        return self._call("GET", "/v1/rules")

    def export_prometheus(self) -> dict[str, Any]:
        return self._call("GET", "/v1/rules/export/prometheus")

    def add_default_rules(self, model: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/models/{model}/rules/defaults")

    def alerts(self, state: str) -> dict[str, Any]:
        return self._call("GET", "/v1/alerts", params={"state": state})

    def history(self, limit: int) -> dict[str, Any]:
        return self._call("GET", "/v1/alerts/history", params={"limit": limit})

    def add_silence(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/silences", json=dict(body))

    def list_silences(self) -> dict[str, Any]:
        return self._call("GET", "/v1/silences")

    def expire_silence(self, silence_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/silences/{silence_id}")

    def series_page(self, model: str, signal: str, query: Mapping[str, Any]) -> dict[str, Any]:
        path = f"/v1/models/{quote(model, safe='')}/signals/{quote(signal, safe='')}"
        return self._call("GET", path, params=_present(query))

    def range_report(self, model: str, query: Mapping[str, Any]) -> dict[str, Any]:
        return self._call(
            "GET", f"/v1/models/{quote(model, safe='')}/report", params=_present(query)
        )

    def start_rollout(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/rollouts", json=dict(spec))

    def list_rollouts(self, model: str | None, state: str | None) -> dict[str, Any]:
        return self._call("GET", "/v1/rollouts", params=_present({"model": model, "state": state}))

    def rollout_status(self, rollout_id: int) -> dict[str, Any]:
        return self._call("GET", f"/v1/rollouts/{rollout_id}")

    def rollout_action(
        self, rollout_id: int, action: str, *, reason: str, full: bool
    ) -> dict[str, Any]:
        body = {"reason": reason, "full": full}
        return self._call("POST", f"/v1/rollouts/{rollout_id}/{quote(action)}", json=body)


def _present(query: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in query.items() if value is not None}


def _refused(method: str, path: str, response: httpx.Response) -> NoReturn:
    """Exit with the server's own message: 2 for an invalid request, 1 otherwise."""
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:300] or response.reason_phrase
    status = response.status_code
    if status in (401, 403):
        message += (
            "; pass a token with the needed scope (read, or admin to change things) with "
            "--token or WATCHKEEPER_TOKEN"
        )
    code = EXIT_USAGE if status in (400, 413, 415, 422) else EXIT_SERVER
    fail(f"{method} {path} answered {status}: {message}", code)


class DatabaseBackend(RegistryDatabaseCalls, ExperimentDatabaseCalls, RetrainDatabaseCalls):
    """The CLI's operations on the database itself, through the functions the routes call.

    A server running on the same database sees every change at once: models are read from
    the store when it does not know them, and the alerting engine reloads a changed rule set
    before each evaluation and read.
    """

    def __init__(self, settings: Settings) -> None:
        from watchkeeper.store import Store

        self.settings = settings
        self.store: Store = Store.open(settings.db)
        self._service: MonitorService | None = None
        self._alerting: AlertingEngine | None = None
        self._serving: Serving | None = None
        self._rollouts: RolloutController | None = None

    @property
    def service(self) -> MonitorService:
        """The model registry (no windows are opened, recovered or closed here)."""
        if self._service is None:
            from watchkeeper.monitor.service import MonitorService

            self._service = MonitorService(self.store, settings=self.settings)
        return self._service

    @property
    def alerting(self) -> AlertingEngine:
        """The alerting engine over the store's database, built as the server builds it."""
        if self._alerting is None:
            from watchkeeper.alerts.engine import AlertingEngine

            self._alerting = AlertingEngine(
                db=self.store.engine,
                config=self.settings.alerts_config,
                external_url=self.settings.external_url,
                signal_catalog=self.service.signal_catalog,
            )
        return self._alerting

    @property
    def serving(self) -> Serving:
        """The router over the store's routing configs and registry (predictions are not
        served here; rollouts and experiments set the routing through it)."""
        if self._serving is None:
            from watchkeeper.registry import ArtifactStore, Registry
            from watchkeeper.serving import PredictionLog, Serving

            registry = Registry(self.store, ArtifactStore(self.settings.artifact_location))
            self._serving = Serving(
                registry=registry, monitor=self.service, log=PredictionLog(self.service)
            )
        return self._serving

    @property
    def rollouts(self) -> RolloutController:
        """The rollout controller, built as the server builds it (traffic through the router's
        routing configs, rollbacks alerted through the engine; a running server's /metrics
        counts an abort made here, from the store)."""
        if self._rollouts is None:
            from watchkeeper.rollout.alerting import EngineAlerts
            from watchkeeper.rollout.controller import RolloutController
            from watchkeeper.rollout.router import ServingTraffic

            self._rollouts = RolloutController(
                store=self.store,
                monitor=self.service,
                traffic=ServingTraffic(self.serving),
                alerts=EngineAlerts(self.alerting, samples=self.service.latest_samples),
            )
        return self._rollouts

    def close(self) -> None:
        """Close the retraining worker, the serving log, the alerting engine and the store."""
        self.close_retrain()
        if self._serving is not None:
            self._serving.close()
        if self._alerting is not None:
            self._alerting.close()
        self.store.close()

    def list_models(self) -> dict[str, Any]:
        return {"models": [spec.to_dict() for spec in self.service.list_models()]}

    def register_model(
        self, config: Mapping[str, Any], reference: pd.DataFrame | None
    ) -> dict[str, Any]:
        from watchkeeper.ingest.spec import ModelSpec

        registered = self.service.register_model(
            ModelSpec.from_dict(dict(config)), reference=reference
        )
        from watchkeeper.alerts.defaults import pack_options

        self.alerting.on_model_registered(registered.name, **pack_options(registered))
        return registered.to_dict()

    def update_model(
        self,
        name: str,
        config: Mapping[str, Any],
        reference: pd.DataFrame | None,
        *,
        expected_version: int | None,
    ) -> dict[str, Any]:
        from watchkeeper.alerts.defaults import pack_options
        from watchkeeper.errors import ConfigError
        from watchkeeper.ingest.spec import ModelSpec

        spec = ModelSpec.from_dict(dict(config))
        if spec.name != name:
            raise ConfigError(
                f"name: the config names model {spec.name!r}, not {name!r}; a model's name "
                "cannot change",
                key="name",
            )
        previous = self.service.get_model(name)
        updated, version = self.service.update_model(spec, expected_version=expected_version)
        self.alerting.on_model_updated(
            name, previous=pack_options(previous), current=pack_options(updated)
        )
        if reference is not None:
            self.service.set_reference(name, reference)
            self.alerting.on_reference_set(name, **pack_options(updated))
        return {"model": updated.to_dict(), "config_version": version}

    def create_token(self, name: str, scopes: list[str]) -> dict[str, Any]:
        from watchkeeper.server.auth import issue_token, token_summary

        secret, record = issue_token(self.store, name, scopes)
        return {**token_summary(record), "token": secret}

    def list_tokens(self) -> dict[str, Any]:
        from watchkeeper.server.auth import token_summary

        return {"tokens": [token_summary(record) for record in self.store.list_tokens()]}

    def revoke_token(self, name: str) -> dict[str, Any]:
        from watchkeeper.server.auth import token_summary

        return token_summary(self.store.revoke_token(name))

    def apply_rules(self, text: str, *, replace: bool) -> dict[str, Any]:
        from watchkeeper._yaml import load_yaml
        from watchkeeper.alerts.config import parse_rules
        from watchkeeper.alerts.views import rules_document

        specs = parse_rules(load_yaml(text) or [])
        applied = self.alerting.apply_rules(specs, replace=replace)
        return {"applied": len(specs), **rules_document(applied)}

    def list_rules(self) -> dict[str, Any]:
        from watchkeeper.alerts.views import rules_document

        return rules_document(self.alerting.rules())

    def export_prometheus(self) -> dict[str, Any]:
        from watchkeeper.alerts.views import prometheus_document

        return prometheus_document(self.alerting.export_prometheus())

    def add_default_rules(self, model: str) -> dict[str, Any]:
        from watchkeeper.alerts.defaults import pack_options
        from watchkeeper.alerts.views import rules_document

        # An unknown model is refused, as by the API.
        spec = self.service.get_model(model)
        added = self.alerting.add_default_rules(model, **pack_options(spec))
        return {"added": [spec.name for spec in added], **rules_document(self.alerting.rules())}

    def alerts(self, state: str) -> dict[str, Any]:
        from watchkeeper.alerts.views import alerts_document

        return alerts_document(self.alerting, state)

    def history(self, limit: int) -> dict[str, Any]:
        from watchkeeper.alerts.views import history_document

        return history_document(self.alerting, limit)

    def add_silence(self, body: Mapping[str, Any]) -> dict[str, Any]:
        from watchkeeper.alerts.views import silence_document

        silence = self.alerting.add_silence(
            matchers=body["matchers"],
            created_by=body["created_by"],
            comment=body.get("comment", ""),
            duration=body["duration"],
        )
        return silence_document(silence, self.alerting.now())

    def list_silences(self) -> dict[str, Any]:
        from watchkeeper.alerts.views import silence_document

        now = self.alerting.now()
        return {"silences": [silence_document(item, now) for item in self.alerting.silences()]}

    def expire_silence(self, silence_id: str) -> dict[str, Any]:
        from watchkeeper.alerts.views import silence_document

        expired = self.alerting.expire_silence(silence_id)
        return silence_document(expired, self.alerting.now())

    def series_page(self, model: str, signal: str, query: Mapping[str, Any]) -> dict[str, Any]:
        from watchkeeper.server.routes.signals import parse_instant, window_form

        page = self.service.series_page(
            model,
            signal,
            version=query.get("version"),
            segment=query.get("segment"),
            window_seconds=window_form(query.get("window")),
            start=parse_instant(query.get("start"), name="start"),
            end=parse_instant(query.get("end"), name="end"),
            limit=int(query["limit"]),
        )
        return {"model": model, "signal": signal, **page}

    def range_report(self, model: str, query: Mapping[str, Any]) -> dict[str, Any]:
        import time

        from watchkeeper.server.routes.signals import report_range

        since, until = report_range(query.get("start"), query.get("end"), now=time.time())
        return self.service.range_report(
            model,
            start=since,
            end=until,
            version=query.get("version"),
            segment=query.get("segment"),
        )

    def start_rollout(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        from watchkeeper.rollout.controller import describe

        return describe(self.rollouts.start(spec, by="cli"))

    def list_rollouts(self, model: str | None, state: str | None) -> dict[str, Any]:
        from watchkeeper.rollout.controller import describe

        states = None if state is None else [state]
        return {"rollouts": [describe(r) for r in self.store.rollouts(model=model, states=states)]}

    def rollout_status(self, rollout_id: int) -> dict[str, Any]:
        return self.rollouts.status(rollout_id)

    def rollout_action(
        self, rollout_id: int, action: str, *, reason: str, full: bool
    ) -> dict[str, Any]:
        from watchkeeper.rollout.controller import describe

        controller = self.rollouts
        if action == "promote":
            record = controller.promote(rollout_id, full=full, by="cli")
        elif action == "pause":
            record = controller.pause(rollout_id, by="cli", reason=reason)
        elif action == "resume":
            record = controller.resume(rollout_id, by="cli")
        elif action == "abort":
            record = controller.abort(rollout_id, by="cli", reason=reason)
        else:
            raise ConfigError(
                f"action: expected promote, pause, resume or abort, got {action!r}", key="action"
            )
        return describe(record)


def shown_db(db_url: str) -> str:
    """The store URL without its password."""
    from watchkeeper.store.engine import normalise_url

    return normalise_url(db_url).render_as_string(hide_password=True)


@contextmanager
def open_backend(
    *, url: str | None, token: str | None, db: str | None, config: Path | None
) -> Iterator[Backend]:
    """The server at ``url`` (or ``WATCHKEEPER_URL``), else the database of the settings.

    ``--url`` and ``--db`` together are a usage error; an explicit ``--db`` wins over
    ``WATCHKEEPER_URL``. Prints ``watchkeeper: using server URL`` or ``watchkeeper: using
    database URL`` on stderr; watchkeeper errors become one line on stderr and an exit code.
    """
    if url is not None and db is not None:
        fail("--url and --db: give one (a running server, or a database), not both", EXIT_USAGE)
    server_url = url if url is not None else (None if db else os.environ.get("WATCHKEEPER_URL"))
    if server_url:
        typer.echo(f"watchkeeper: using server {server_url.rstrip('/')}", err=True)
        yield ServerBackend(server_url, token)
        return
    try:
        from watchkeeper.config import load_settings

        settings = load_settings(config_file=config, db=db)
        typer.echo(f"watchkeeper: using database {shown_db(settings.db)}", err=True)
        backend = DatabaseBackend(settings)
    except WatchkeeperError as error:
        fail(str(error), _exit_code(error))
    try:
        yield backend
    except WatchkeeperError as error:
        fail(str(error), _exit_code(error))
    finally:
        backend.close()
