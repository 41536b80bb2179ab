"""``watchkeeper retrain run | list | show | approve``.

``run`` queues a retraining run of a model (the trigger ``manual``) and, with ``--wait`` (always
on a database, where this command's own worker process runs it), waits until it ends or waits
for someone; ``list`` shows runs, ``show`` one run with its gate result and log, ``approve``
sends a run awaiting approval to its canary rollout. Like every command group it works on a
running server with ``--url`` or on the database (:mod:`watchkeeper.cli.backend`). Exit codes as
for the other groups, and 1 when a waited-for run failed.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from watchkeeper.cli.backend import EXIT_SERVER, ConfigOpt, DbOpt, TokenOpt, UrlOpt, open_backend
from watchkeeper.cli.output import JsonOpt, print_json, print_table, when

__all__ = ["register"]

retrain_app = typer.Typer(
    help="Retraining runs: start, list, show, approve (on the database, or a server with --url).",
    no_args_is_help=True,
)

IdArg = Annotated[int, typer.Argument(help="Run id (watchkeeper retrain list shows them).")]
_COLUMNS = ["id", "model", "status", "trigger", "attempts", "version", "rollout", "reason"]


@retrain_app.command("run")
def run(
    model: Annotated[str, typer.Argument(help="The model to retrain (its config has retrain:).")],
    reason: Annotated[str, typer.Option("--reason", help="Why, recorded in the trigger.")] = "",
    as_of: Annotated[
        float | None,
        typer.Option("--as-of", help="Epoch seconds the data are assembled at (default: now)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the run ends (always on a database).")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds --wait waits.")] = 3600.0,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue a run; it runs in a worker process (the server's, or this command's)."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        document = backend.start_retrain(model, reason, as_of)
        local = not hasattr(backend, "_call")
        if wait or local:
            document = backend.wait_retrain_run(int(document["id"]), timeout)
    _show(document, as_json)
    if document["status"] in ("failed", "interrupted"):
        raise typer.Exit(EXIT_SERVER)


@retrain_app.command("list")
def list_runs(
    model: Annotated[str | None, typer.Option("--model", help="Only this model's.")] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only those with this status: queued, running, awaiting_artifact, "
            "awaiting_approval, rolling_out, registered, rejected, failed, interrupted.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="The newest this many.")] = 100,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List runs, oldest first."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        listed = backend.list_retrain_runs(model, status, limit)
    if as_json:
        print_json(listed)
        return
    print_table("retraining runs", _COLUMNS, [_row(item) for item in listed["runs"]])


@retrain_app.command("show")
def show(
    run_id: IdArg,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One run: status, trigger, timings, the gate's result and the log."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        document = backend.retrain_run(run_id)
    _show(document, as_json)


@retrain_app.command("approve")
def approve(
    run_id: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="A note for the run's log.")] = "",
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send the candidate of a run awaiting approval to its canary rollout."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        document = backend.approve_retrain_run(run_id, reason)
    _show(document, as_json)


def _trigger(trigger: dict[str, Any]) -> str:
    kind = str(trigger.get("kind", ""))
    if kind == "alert":
        return f"alert {trigger.get('rule')}"
    if kind == "schedule":
        return f"schedule {trigger.get('schedule')}"
    return kind


def _row(item: dict[str, Any]) -> list[str]:
    return [
        str(item["id"]),
        item["model"],
        item["status"],
        _trigger(item["trigger"]),
        f"{item['attempts']}/{item['max_attempts']}",
        "-" if item["version"] is None else str(item["version"]),
        "-" if item["rollout_id"] is None else str(item["rollout_id"]),
        item["reason"] or item["error"],
    ]


def _show(document: dict[str, Any], as_json: bool) -> None:
    """One run: its line, its timings and gate, then its log."""
    if as_json:
        print_json(document)
        return
    print_table(f"retraining run {document['id']}", _COLUMNS, [_row(document)])
    gate = document.get("gate") or {}
    rows = [
        ["created", when(document["created_at"])],
        ["started", "-" if document["started_at"] is None else when(document["started_at"])],
        ["finished", "-" if document["finished_at"] is None else when(document["finished_at"])],
        ["data as of", when(document["as_of"])],
    ]
    if gate:
        rows.append(["gate", ", ".join(f"{k} = {v}" for k, v in gate.items() if k != "interval")])
    print_table("details", ["", ""], rows)
    if document.get("log"):
        typer.echo(document["log"])


def register(app: typer.Typer) -> None:
    """Add the ``retrain`` command group to ``app``."""
    app.add_typer(retrain_app, name="retrain")
