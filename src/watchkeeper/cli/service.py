"""Service sub-commands of the ``watchkeeper`` CLI: ``serve``, ``tokens …`` and ``models …``.

``register(app)`` adds them to the main Typer app. ``tokens`` and ``models`` work on the
database of the settings, or on a running server with ``--url`` (:mod:`watchkeeper.cli.backend`).
Exit codes follow the CLI contract: 0 on success, 1 when the server or database refused or
failed, 2 on bad usage or unusable input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from watchkeeper.cli.backend import ConfigOpt, DbOpt, TokenOpt, UrlOpt, open_backend, shown_db
from watchkeeper.errors import ConfigError, InputError, WatchkeeperError

if TYPE_CHECKING:
    from watchkeeper.config import Settings

__all__ = ["register"]

_EXIT_USAGE = 2


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
        _check_port_free(settings.host, settings.port)
        # Built in the background: /healthz answers while the service loads and recovers.
        app = DeferredApp(settings)
    typer.echo(
        f"watchkeeper serving on http://{settings.host}:{settings.port} "
        f"(auth {'on' if settings.auth else 'off'}, database {shown_db(settings.db)})",
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


def _check_port_free(host: str, port: int) -> None:
    """Exit 2 naming the port when it cannot be bound (uvicorn would exit 3 after the banner)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise _fail(f"--host {host!r} is not an address of this machine: {error}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn binds: SO_REUSEADDR, so a port in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            reason = (
                "is in use" if error.errno == errno.EADDRINUSE else f"cannot be bound ({error})"
            )
            raise _fail(
                f"port {port} on {host} {reason}; stop what listens there or choose another "
                "with --port"
            ) from None


tokens_app = typer.Typer(
    help="Create, revoke and list API tokens (on the database, or a server with --url).",
    no_args_is_help=True,
)


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="Token name (unique).")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="ingest, read or admin; repeat for several."),
    ],
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create a token and print its secret once (only its hash is stored)."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        created = backend.create_token(name, scope)
    typer.echo(
        f"created token {created['name']!r} with scopes {', '.join(created['scopes'])}; it is "
        "shown only this once:",
        err=True,
    )
    typer.echo(created["token"])


@tokens_app.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Argument(help="Token name.")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Revoke a token; requests with it are refused from now on."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        revoked = backend.revoke_token(name)
    typer.echo(f"revoked token {revoked['name']!r} at {_when(revoked['revoked_at'])}")


@tokens_app.command("list")
def tokens_list(
    url: UrlOpt = None, token: TokenOpt = None, db: DbOpt = None, config: ConfigOpt = None
) -> None:
    """List tokens: name, scopes, created, last used, revoked (never the secrets)."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        records = backend.list_tokens()["tokens"]
    if not records:
        typer.echo("no tokens; create one with `watchkeeper tokens create NAME --scope …`")
        return
    typer.echo(f"{'NAME':<24} {'SCOPES':<20} {'CREATED':<21} {'LAST USED':<21} REVOKED")
    for record in records:
        typer.echo(
            f"{record['name']:<24} {','.join(record['scopes']):<20} "
            f"{_when(record['created_at']):<21} {_when(record['last_used_at']):<21} "
            f"{_when(record['revoked_at'])}"
        )


models_app = typer.Typer(
    help="List, register and update monitored models; their registered versions, aliases and "
    "history (on the database, or a server with --url).",
    no_args_is_help=True,
)


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
def models_list(
    url: UrlOpt = None, token: TokenOpt = None, db: DbOpt = None, config: ConfigOpt = None
) -> None:
    """List registered models with their task and features."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        models = backend.list_models()["models"]
    if not models:
        typer.echo("no models; register one with `watchkeeper models register SPEC`")
        return
    for model in models:
        typer.echo(
            f"{model['name']}  {model['task']}  {len(model['features'])} features: "
            f"{', '.join(model['features'])}"
        )


@models_app.command("schema")
def models_schema() -> None:
    """Print the JSON Schema of a model config (model.yaml), for editors and CI checks."""
    from importlib import resources

    typer.echo(
        (resources.files("watchkeeper.data") / "model-config.schema.json").read_text("utf-8"),
        nl=False,
    )


@models_app.command("register")
def models_register(
    spec_file: Annotated[Path, typer.Argument(help="Model config as YAML or JSON.")],
    reference: Annotated[
        Path | None,
        typer.Option("--reference", help="Reference data (CSV, CSV.gz or Parquet)."),
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Register a model from its config file, optionally with its reference data.

    Like registration over the API, the model gets the default alert rule pack; a server
    running on the same database sees the model and its rules at once.
    """
    from watchkeeper.frame import read_table
    from watchkeeper.ingest.spec import ModelSpec
    from watchkeeper.monitor.models import inferred_spec

    with _usage_errors():
        spec = ModelSpec.from_dict(_read_spec(spec_file))
        frame = read_table(reference) if reference is not None else None
        if frame is not None:
            # Features left out of the config are inferred here, so a server gets them too.
            spec = inferred_spec(spec, frame)
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        registered = backend.register_model(spec.to_dict(), frame)
        rules = len(backend.list_rules()["rules"])
    rows = "" if frame is None else f" with {len(frame)} reference rows"
    typer.echo(f"registered model {registered['name']!r}{rows}")
    typer.echo(f"{rules} alert rules in force (defaults included; `watchkeeper rules list`)")


@models_app.command("update")
def models_update(
    name: Annotated[str, typer.Argument(help="Name of the registered model.")],
    spec_file: Annotated[Path, typer.Argument(help="Its new config, YAML or JSON (all of it).")],
    reference: Annotated[
        Path | None,
        typer.Option("--reference", help="New reference data (CSV, CSV.gz or Parquet)."),
    ] = None,
    expect_version: Annotated[
        int | None,
        typer.Option(
            "--expect-version",
            help="Update only if the config is still at this version (1 at registration; "
            "printed by each update; the ETag of GET /v1/models/NAME).",
        ),
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Replace a model's config (spec, windows, thresholds), optionally its reference data.

    Each update adds one to the model's config version. Its events, stored windows and alert
    rules stay; see docs/service.md, "Updating a model", for open windows and the default
    rule pack.
    """
    from watchkeeper.frame import read_table
    from watchkeeper.ingest.spec import ModelSpec

    with _usage_errors():
        spec = ModelSpec.from_dict(_read_spec(spec_file))
        frame = read_table(reference) if reference is not None else None
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        updated = backend.update_model(name, spec.to_dict(), frame, expected_version=expect_version)
    rows = "" if frame is None else f" and {len(frame)} reference rows"
    typer.echo(f"updated model {name!r} to config version {updated['config_version']}{rows}")


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``tokens`` and ``models`` to the main CLI app."""
    app.command("serve")(serve)
    app.add_typer(tokens_app, name="tokens")
    from watchkeeper.cli.mlflow import mlflow_app

    models_app.add_typer(mlflow_app, name="mlflow")
    from watchkeeper.cli.registry import attach

    attach(models_app)
    app.add_typer(models_app, name="models")
