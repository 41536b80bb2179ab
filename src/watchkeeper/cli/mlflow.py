"""``watchkeeper models mlflow import|mirror``: the MLflow adapter from the command line.

Both work on the registry of the settings' database and artifact location (``--db``,
``--config``), and on the MLflow tracking server of ``--tracking-uri`` (or
``MLFLOW_TRACKING_URI``). Exit codes follow the CLI contract: 1 when MLflow or the database
refused or failed (unreachable, a missing model), 2 on bad usage or an unusable model (a flavor
that does not map, a pickle without ``--trust``); one line on stderr, never a traceback.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from watchkeeper.cli.backend import EXIT_SERVER, EXIT_USAGE, ConfigOpt, DbOpt, fail, shown_db
from watchkeeper.errors import ConfigError, InputError, WatchkeeperError

if TYPE_CHECKING:
    from watchkeeper.registry import Registry

__all__ = ["mlflow_app"]

mlflow_app = typer.Typer(
    help="Import versions and aliases from an MLflow registry, or mirror ours to one.",
    no_args_is_help=True,
)

TrackingUriOpt = Annotated[
    str,
    typer.Option(
        "--tracking-uri",
        envvar="MLFLOW_TRACKING_URI",
        help="The MLflow tracking server (env MLFLOW_TRACKING_URI), e.g. http://mlflow:5000.",
        show_default=False,
    ),
]
IntoOpt = Annotated[
    str | None,
    typer.Option("--into", help="The model's name on the other side (default: the same name)."),
]


@contextmanager
def _registry(db: str | None, config: ConfigOpt) -> Iterator[Registry]:
    """The registry of the settings; watchkeeper errors as one line on stderr and an exit code."""
    from watchkeeper.config import load_settings
    from watchkeeper.registry import ArtifactStore, Registry
    from watchkeeper.store import Store

    try:
        settings = load_settings(config_file=config, db=db)
        typer.echo(f"watchkeeper: using database {shown_db(settings.db)}", err=True)
        store = Store.open(settings.db)
    except WatchkeeperError as error:
        fail(str(error), _exit_code(error))
    try:
        yield Registry(store, ArtifactStore(settings.artifact_location))
    except WatchkeeperError as error:
        fail(str(error), _exit_code(error))
    finally:
        store.close()


def _exit_code(error: WatchkeeperError) -> int:
    return EXIT_USAGE if isinstance(error, ConfigError | InputError) else EXIT_SERVER


@mlflow_app.command("import")
def mlflow_import(
    name: Annotated[str, typer.Argument(help="The MLflow registered model.")],
    tracking_uri: TrackingUriOpt,
    into: IntoOpt = None,
    version: Annotated[
        list[int] | None,
        typer.Option("--version", help="Import only this MLflow version (repeatable)."),
    ] = None,
    trust: Annotated[
        bool,
        typer.Option(
            "--trust",
            help="Accept versions whose loading runs code they contain (pickled models, "
            "python_function models): only for sources you trust.",
        ),
    ] = False,
    by: Annotated[
        str | None, typer.Option("--by", help="Who imports (default: the current user).")
    ] = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Import an MLflow model's versions and aliases; versions imported before are skipped."""
    from watchkeeper.registry.mlflow import import_from_mlflow

    with _registry(db, config) as registry:
        report = import_from_mlflow(
            registry,
            name,
            tracking_uri=tracking_uri,
            into=into,
            versions=version or None,
            trust=trust,
            imported_by=by or getpass.getuser(),
        )
    for source, ours in sorted(report.imported.items()):
        typer.echo(f"imported MLflow {name}/{source} as {report.model}/{ours}")
    for source, ours in sorted(report.already_imported.items()):
        typer.echo(f"MLflow {name}/{source} is already {report.model}/{ours}")
    for move in report.alias_moves:
        typer.echo(f"{report.model}@{move.alias} -> version {move.to_version}")
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)


@mlflow_app.command("mirror")
def mlflow_mirror(
    name: Annotated[str, typer.Argument(help="The watchkeeper model.")],
    tracking_uri: TrackingUriOpt,
    into: IntoOpt = None,
    experiment: Annotated[
        str, typer.Option("--experiment", help="The MLflow experiment of the mirror's runs.")
    ] = "watchkeeper-mirror",
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Register our versions missing from MLflow and set or delete its aliases to match ours."""
    from watchkeeper.registry.mlflow import mirror_to_mlflow

    with _registry(db, config) as registry:
        report = mirror_to_mlflow(
            registry, name, tracking_uri=tracking_uri, into=into, experiment=experiment
        )
    for ours, theirs in sorted(report.registered.items()):
        typer.echo(f"registered {name}/{ours} as MLflow {report.model}/{theirs}")
    typer.echo(f"{len(report.already_there)} versions already in MLflow")
    for alias, theirs in sorted(report.aliases_set.items()):
        typer.echo(f"MLflow {report.model}@{alias} -> version {theirs}")
    for alias in report.aliases_deleted:
        typer.echo(f"MLflow {report.model}@{alias} deleted")
