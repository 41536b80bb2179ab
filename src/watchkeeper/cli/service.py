"""Service sub-commands of the ``watchkeeper`` CLI: ``serve``, ``tokens …`` and ``models …``.

``register(app)`` adds them to the main Typer app. Exit codes follow the CLI contract: 0 on
success, 2 on bad usage or unusable input (one line on stderr, never a traceback).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from watchkeeper.errors import ConfigError, InputError, WatchkeeperError

if TYPE_CHECKING:
    from watchkeeper.config import Settings
    from watchkeeper.store import Store

__all__ = ["register"]

_EXIT_USAGE = 2

DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Store URL: sqlite:///watchkeeper.db or postgresql://…"),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="YAML file of settings (see docs/service.md).")
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(_EXIT_USAGE)


@contextmanager
def _usage_errors() -> Iterator[None]:
    """Turn watchkeeper's errors into one line on stderr and exit code 2."""
    try:
        yield
    except WatchkeeperError as error:
        raise _fail(str(error)) from None


def _settings(config: Path | None, **overrides: Any) -> Settings:
    from watchkeeper.config import load_settings

    return load_settings(config_file=config, **overrides)


@contextmanager
def _store(db: str | None, config: Path | None) -> Iterator[Store]:
    from watchkeeper.store import Store

    settings = _settings(config, db=db)
    with Store.open(settings.db) as store:
        yield store


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def serve(
    db: DbOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000).")] = None,
    config: ConfigOpt = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="critical|error|warning|info|debug")
    ] = None,
) -> None:
    """Run the monitoring service (HTTP API, /metrics, /docs)."""
    import uvicorn

    from watchkeeper.server.boot import DeferredApp
    from watchkeeper.server.protocol import uvicorn_options

    with _usage_errors():
        settings = _settings(config, db=db, host=host, port=port, log_level=log_level)
        settings.check_exposure()
        # Built in the background: /healthz answers while the service loads and recovers.
        app = DeferredApp(settings)
    typer.echo(
        f"watchkeeper serving on http://{settings.host}:{settings.port} "
        f"(auth {'on' if settings.auth else 'off'})",
        err=True,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        server_header=False,
        **uvicorn_options(settings),
    )


tokens_app = typer.Typer(help="Create, revoke and list API tokens.", no_args_is_help=True)


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="Token name (unique).")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="ingest, read or admin; repeat for several."),
    ],
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create a token and print its secret once (only its hash is stored)."""
    from watchkeeper.server.auth import issue_token

    with _usage_errors(), _store(db, config) as store:
        secret, record = issue_token(store, name, scope)
    typer.echo(
        f"created token {record.name!r} with scopes {', '.join(record.scopes)}; it is shown "
        "only this once:",
        err=True,
    )
    typer.echo(secret)


@tokens_app.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Argument(help="Token name.")],
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Revoke a token; requests with it are refused from now on."""
    with _usage_errors(), _store(db, config) as store:
        record = store.revoke_token(name)
    typer.echo(f"revoked token {record.name!r} at {_when(record.revoked_at)}")


@tokens_app.command("list")
def tokens_list(db: DbOpt = None, config: ConfigOpt = None) -> None:
    """List tokens: name, scopes, created, last used, revoked (never the secrets)."""
    with _usage_errors(), _store(db, config) as store:
        records = store.list_tokens()
    if not records:
        typer.echo("no tokens; create one with `watchkeeper tokens create NAME --scope …`")
        return
    typer.echo(f"{'NAME':<24} {'SCOPES':<20} {'CREATED':<21} {'LAST USED':<21} REVOKED")
    for record in records:
        typer.echo(
            f"{record.name:<24} {','.join(record.scopes):<20} {_when(record.created_at):<21} "
            f"{_when(record.last_used_at):<21} {_when(record.revoked_at)}"
        )


models_app = typer.Typer(help="List and register monitored models.", no_args_is_help=True)


def _read_spec(path: Path) -> dict[str, Any]:
    import yaml

    from watchkeeper._yaml import load_yaml

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        document = load_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid YAML or JSON ({error})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping (the model config)")
    return document


@models_app.command("list")
def models_list(db: DbOpt = None, config: ConfigOpt = None) -> None:
    """List registered models with their task and features."""
    from watchkeeper.ingest.spec import ModelSpec

    with _usage_errors(), _store(db, config) as store:
        records = store.list_models()
    if not records:
        typer.echo("no models; register one with `watchkeeper models register SPEC`")
        return
    for record in records:
        spec = ModelSpec.from_dict(record.config)
        typer.echo(
            f"{spec.name}  {spec.task.value}  {len(spec.features)} features: "
            f"{', '.join(spec.features)}"
        )


@models_app.command("register")
def models_register(
    spec_file: Annotated[Path, typer.Argument(help="Model config as YAML or JSON.")],
    reference: Annotated[
        Path | None,
        typer.Option("--reference", help="Reference data (CSV, CSV.gz or Parquet)."),
    ] = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Register a model from its config file, optionally with its reference data.

    Like registration over the API, the model gets the default alert rule pack.
    """
    from watchkeeper.alerts.engine import AlertingEngine
    from watchkeeper.frame import read_table
    from watchkeeper.ingest.spec import ModelSpec
    from watchkeeper.monitor.service import MonitorService

    with _usage_errors():
        spec = ModelSpec.from_dict(_read_spec(spec_file))
        frame = read_table(reference) if reference is not None else None
        settings = _settings(config, db=db)
        with _store(db, config) as store:
            service = MonitorService(store, settings=settings)
            registered = service.register_model(spec, reference=frame)
            alerting = AlertingEngine(
                db=store.engine,
                config=settings.alerts_config,
                signal_catalog=service.signal_catalog,
            )
            try:
                alerting.on_model_registered(registered.name, window_seconds=registered.windows[0])
                rules = len(alerting.rules())
            finally:
                alerting.close()
    rows = "" if frame is None else f" with {len(frame)} reference rows"
    typer.echo(f"registered model {registered.name!r}{rows}")
    typer.echo(f"{rules} alert rules in force (defaults included; `watchkeeper rules list`)")


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``tokens`` and ``models`` to the main CLI app."""
    app.command("serve")(serve)
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(models_app, name="models")
