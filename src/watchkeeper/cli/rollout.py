"""``watchkeeper rollout start | status | promote | pause | resume | abort``.

``start`` reads a rollout spec (YAML or JSON, docs/rollouts.md); ``status`` lists rollouts, or
with an id shows one with its history and latest measurements. The commands that change a
rollout act at once (all traffic back on the baseline for ``abort``); the steps and analysis
looks after that are the server's controller's. Like every command group it works on a running
server with ``--url`` or on the database (:mod:`watchkeeper.cli.backend`). Exit codes as for the
other groups.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from watchkeeper.cli.backend import (
    ConfigOpt,
    DbOpt,
    TokenOpt,
    UrlOpt,
    open_backend,
    read_spec,
)
from watchkeeper.cli.output import JsonOpt, print_json, print_table, when

__all__ = ["register"]

rollout_app = typer.Typer(
    help="Progressive rollouts of a candidate version (on the database, or a server with --url).",
    no_args_is_help=True,
)

IdArg = Annotated[int, typer.Argument(help="Rollout id (watchkeeper rollout status lists them).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why, recorded in the history.")]


@rollout_app.command("start")
def start(
    spec_file: Annotated[Path, typer.Argument(help="Rollout spec, YAML or JSON.")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a rollout: all traffic on the baseline, then its first step at once."""
    spec = read_spec(spec_file, "model, baseline, candidate, …")
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        document = backend.start_rollout(spec)
    _show(document, as_json)


@rollout_app.command("status")
def status(
    rollout_id: Annotated[int | None, typer.Argument(help="One rollout (default: list).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model's.")] = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state", help="Only those in this state: progressing, paused, promoted, aborted."
        ),
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List rollouts, or show one with its history and latest measurements."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        if rollout_id is None:
            listed = backend.list_rollouts(model, state)
        else:
            document = backend.rollout_status(rollout_id)
    if rollout_id is None:
        if as_json:
            print_json(listed)
            return
        print_table(
            "rollouts",
            ["id", "model", "baseline", "candidate", "state", "step", "weights", "reason"],
            [_row(item) for item in listed["rollouts"]],
        )
        return
    _show(document, as_json)


def _action(action: str, rollout_id: int, reason: str, full: bool, options: dict[str, Any]) -> None:
    as_json = options.pop("as_json")
    with open_backend(**options) as backend:
        document = backend.rollout_action(rollout_id, action, reason=reason, full=full)
    _show(document, as_json)


@rollout_app.command("promote")
def promote(
    rollout_id: IdArg,
    full: Annotated[
        bool, typer.Option("--full", help="All traffic to the candidate now (end the rollout).")
    ] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Skip the current step (a pause or an analysis), or with --full promote at once."""
    options = {"url": url, "token": token, "db": db, "config": config, "as_json": as_json}
    _action("promote", rollout_id, "", full, options)


@rollout_app.command("pause")
def pause(
    rollout_id: IdArg,
    reason: ReasonOpt = "",
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hold the rollout where it is (traffic stays) until resumed."""
    options = {"url": url, "token": token, "db": db, "config": config, "as_json": as_json}
    _action("pause", rollout_id, reason, False, options)


@rollout_app.command("resume")
def resume(
    rollout_id: IdArg,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Continue a paused rollout; its analysis starts over on traffic from now on."""
    options = {"url": url, "token": token, "db": db, "config": config, "as_json": as_json}
    _action("resume", rollout_id, "", False, options)


@rollout_app.command("abort")
def abort(
    rollout_id: IdArg,
    reason: ReasonOpt = "",
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put all traffic back on the baseline and end the rollout."""
    options = {"url": url, "token": token, "db": db, "config": config, "as_json": as_json}
    _action("abort", rollout_id, reason, False, options)


def _row(item: dict[str, Any]) -> list[str]:
    weights = ", ".join(f"{version}: {weight} %" for version, weight in item["weights"].items())
    return [
        str(item["id"]),
        item["model"],
        item["baseline"],
        item["candidate"],
        item["state"],
        f"{item['step']}/{item['steps']}",
        weights,
        item["reason"],
    ]


def _show(document: dict[str, Any], as_json: bool) -> None:
    """One rollout: its state line, then its history and latest measurements when present."""
    if as_json:
        print_json(document)
        return
    print_table(
        f"rollout {document['id']} of {document['model']}",
        ["id", "model", "baseline", "candidate", "state", "step", "weights", "reason"],
        [_row(document)],
    )
    events = document.get("events")
    if events:
        print_table(
            "history",
            ["at", "event", "reason"],
            [[when(event["at"]), event["kind"], event["reason"]] for event in events],
        )
    measurements = document.get("measurements")
    if measurements:
        last = measurements[-1]["at"]
        print_table(
            f"latest analysis ({when(last)})",
            ["metric", "outcome", "candidate", "baseline", "samples (cand/base)", "p (violated)"],
            [_measurement(item) for item in measurements if item["at"] == last],
        )


def _measurement(item: dict[str, Any]) -> list[str]:
    values = item["values"]

    def number(name: str) -> str:
        value = values.get(name)
        return "-" if value is None else f"{value:.4g}"

    if item["metric"] == "sample_ratio":
        counts = values.get("counts", [])
        return [
            "sample ratio", item["outcome"], "-", "-", "/".join(map(str, counts[::-1])),
            number("p_value"),
        ]  # fmt: skip
    samples = f"{values.get('candidate_count', '-')}/{values.get('baseline_count', '-')}"
    return [
        item["metric"], item["outcome"], number("candidate_value"), number("baseline_value"),
        samples, number("p_violated"),
    ]  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the ``rollout`` command group to ``app``."""
    app.add_typer(rollout_app, name="rollout")
