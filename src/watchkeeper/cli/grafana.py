"""``watchkeeper grafana dashboard``: the Grafana dashboard of watchkeeper's /metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

grafana_app = typer.Typer(
    help="The Grafana dashboard of watchkeeper's /metrics.", no_args_is_help=True
)


@grafana_app.command("dashboard")
def grafana_dashboard(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the JSON here instead of standard output."),
    ] = None,
) -> None:
    """Print the dashboard JSON (import it in Grafana: Dashboards → New → Import)."""
    try:
        from watchkeeper.grafana import dashboard_json

        text = dashboard_json()
    except ImportError as error:
        typer.echo(
            f"error: the dashboard is built with grafanalib ({error.name or error}); "
            "install it with: pip install 'watchkeeper[grafana]'",
            err=True,
        )
        raise typer.Exit(2) from error
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        typer.echo(f"error: {output}: cannot write: {error.strerror}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"{output}: dashboard written", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``grafana`` command group to ``app``."""
    app.add_typer(grafana_app, name="grafana")
