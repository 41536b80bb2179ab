"""``watchkeeper experiments create | list | show | results | stop``.

``create`` reads an experiment spec (YAML or JSON, docs/experiments.md) and routes the model's
traffic to its arms at once; ``results`` recomputes the results from the stored data each time;
``stop`` puts back the routing the experiment replaced. Like every command group it works on a
running server with ``--url`` or on the database (:mod:`watchkeeper.cli.backend`); on the
database, results count the windows the server has closed (its open windows are in its
memory). Exit codes as for the other groups.
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

experiments_app = typer.Typer(
    help="A/B experiments of a model's versions (on the database, or a server with --url).",
    no_args_is_help=True,
)

IdArg = Annotated[
    int, typer.Argument(help="Experiment id (watchkeeper experiments list shows them).")
]


@experiments_app.command("create")
def create(
    spec_file: Annotated[Path, typer.Argument(help="Experiment spec, YAML or JSON.")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start an experiment: the model's traffic goes to its arms (sticky) from now on."""
    spec = read_spec(spec_file, "model, arms, metrics, …")
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        document = backend.create_experiment(spec)
    _show(document, as_json)


@experiments_app.command("list")
def list_(
    model: Annotated[str | None, typer.Option("--model", help="Only this model's.")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List experiments, oldest first."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        listed = backend.list_experiments(model)
    if as_json:
        print_json(listed)
        return
    print_table("experiments", _COLUMNS, [_row(item) for item in listed["experiments"]])


@experiments_app.command("show")
def show(
    experiment_id: IdArg,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one experiment: its arms, metrics, method and state."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        document = backend.get_experiment(experiment_id)
    _show(document, as_json)


@experiments_app.command("results")
def results(
    experiment_id: IdArg,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each metric's arms and comparisons with the control, recomputed from the stored data."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        document = backend.experiment_results(experiment_id)
    if as_json:
        print_json(document)
        return
    srm = document["sample_ratio"]
    counts = ", ".join(
        f"{arm} {count}" for arm, count in zip(srm["arms"], srm["counts"], strict=True)
    )
    typer.echo(
        f"experiment {experiment_id} of {document['experiment']['model']}, "
        f"{when(document['since'])} to {when(document['until'])}: {document['verdict']} "
        f"({document['reason']})\nsample ratio: {counts} events, p = {srm['p_value']:.3g}; "
        f"method {document['method']}, alpha {document['alpha']:g}"
    )
    for metric in document["metrics"]:
        arms = {arm["arm"]: arm for arm in metric["arms"]}
        rows = [_arm_row(arms[metric["arms"][0]["arm"]], None)]
        rows += [_arm_row(arms[item["arm"]], item) for item in metric["comparisons"]]
        print_table(
            f"{metric['name']} ({metric['signal']}; n: {metric['counts']})",
            ["arm", "n", "estimate", "effect [CI]", "lift [CI]", "p", "verdict"],
            rows,
        )


@experiments_app.command("stop")
def stop(
    experiment_id: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="Why, kept with the experiment.")] = "",
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop an experiment and put back the routing it replaced."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        document = backend.stop_experiment(experiment_id, reason)
    _show(document, as_json)


_COLUMNS = ["id", "model", "name", "state", "arms", "metrics", "method", "started", "reason"]


def _row(item: dict[str, Any]) -> list[str]:
    arms = ", ".join(f"{arm['name']}: v{arm['version']} {arm['weight']} %" for arm in item["arms"])
    return [
        str(item["id"]), item["model"], item["name"], item["state"], arms,
        ", ".join(metric["name"] for metric in item["metrics"]),
        f"{item['method']} (alpha {item['alpha']:g})", when(item["created_at"]), item["reason"],
    ]  # fmt: skip


def _show(document: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(document)
        return
    print_table(f"experiment {document['id']} of {document['model']}", _COLUMNS, [_row(document)])


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _arm_row(arm: dict[str, Any], comparison: dict[str, Any] | None) -> list[str]:
    head = [arm["arm"], str(arm["n"]), _number(arm["estimate"])]
    if comparison is None:
        return [*head, "(control)", "", "", ""]
    if comparison.get("effect") is None and comparison.get("p_value") is None:
        return [*head, "-", "-", "-", comparison["verdict"]]
    effect = (
        f"{_number(comparison['effect'])} [{_number(comparison['ci_low'])}, "
        f"{_number(comparison['ci_high'])}]"
    )
    lift = (
        "-"
        if comparison["lift"] is None
        else f"{comparison['lift']:+.1%} [{_percent(comparison['lift_ci_low'])}, "
        f"{_percent(comparison['lift_ci_high'])}]"
    )
    return [*head, effect, lift, f"{comparison['p_value']:.3g}", comparison["verdict"]]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def register(app: typer.Typer) -> None:
    """Add the ``experiments`` command group to ``app``."""
    app.add_typer(experiments_app, name="experiments")
