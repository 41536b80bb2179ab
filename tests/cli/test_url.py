"""Every CLI command group through ``--url`` (a real server) and through the database.

One server runs on a SQLite file; the CLI works on the same file with ``--db`` and on the
server with ``--url``. The same command prints the same thing both ways, and whatever one
path registers the other sees at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from tests.server.conftest import ADMIN_TOKEN, MODEL, ServerProcess, event, free_port
from tests.store.backends import backend_url
from watchkeeper.alerts import load_rules
from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.cli.backend import shown_db
from watchkeeper.cli.main import app

EXTRA_RULES = """rules:
  - name: ChurnErrorsVeryHigh
    model: churn
    signal: error_rate
    condition: "> 0.5"
"""


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Setup:
    server: ServerProcess
    db: str
    root: Path

    def url(self, *args: str, token: str | None = ADMIN_TOKEN) -> Run:
        extra = ["--url", self.server.url] + ([] if token is None else ["--token", token])
        return cli(*args, *extra)

    def database(self, *args: str) -> Run:
        return cli(*args, "--db", self.db)

    def server_rules(self) -> list[str]:
        with self.server.client() as client:
            return [rule["name"] for rule in client.get("/v1/rules").json()["rules"]]


def cli(*args: str, env: dict[str, str] | None = None) -> Run:
    result = CliRunner().invoke(app, list(args), env=env)
    return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("cliurl")
    db = f"sqlite:///{root / 'wk.db'}"
    # No evaluation round while the test runs: alert state comes only from the test.
    server = ServerProcess(
        db=db, log=root / "server.log", env={"WATCHKEEPER_ALERTS_INTERVAL_SECONDS": "3600"}
    ).start()
    try:
        yield Setup(server=server, db=db, root=root)
    finally:
        server.stop()


def _spec(root: Path, name: str, *, features: bool = True) -> Path:
    config = {**MODEL, "name": name}
    if not features:
        config["features"] = {}
    path = root / f"{name}.json"
    path.write_bytes(orjson.dumps(config))
    return path


def _reference(root: Path) -> Path:
    path = root / "reference.csv"
    path.write_text(
        "age,plan,active\n"
        + "".join(f"{20 + i % 40},{'pro' if i % 3 else 'basic'},{i % 2 == 0}\n" for i in range(200))
    )
    return path


def test_model_registered_on_the_database_while_serving_keeps_its_default_rules(
    setup: Setup,
) -> None:
    registered = setup.database(
        "models", "register", str(_spec(setup.root, "churn")), "--reference",
        str(_reference(setup.root)),
    )  # fmt: skip
    assert registered.code == 0, registered.err
    defaults = [name for name in setup.server_rules() if name.startswith("Churn")]
    assert len(defaults) >= 4, "the server sees the new model's default rules at once"
    with setup.server.client() as client:
        assert client.get("/v1/models/churn").status_code == 200
        ingested = client.post("/v1/models/churn/events", json={"events": [event(1), event(2)]})
        assert ingested.is_success, ingested.text

    rules_file = setup.root / "extra.yaml"
    rules_file.write_text(EXTRA_RULES)
    applied = setup.url("rules", "apply", "--merge", str(rules_file))
    assert applied.code == 0, applied.err
    assert setup.server_rules() == [*defaults, "ChurnErrorsVeryHigh"]
    listed = setup.database("rules", "list", "-o", "json")
    assert [rule["name"] for rule in json.loads(listed.out)["rules"]] == setup.server_rules()


def test_rules_applied_on_the_database_are_served_at_once(setup: Setup) -> None:
    rules_file = setup.root / "more.yaml"
    rules_file.write_text(EXTRA_RULES.replace("ChurnErrorsVeryHigh", "ChurnErrorsAll"))
    applied = setup.database("rules", "apply", "--merge", str(rules_file))
    assert applied.code == 0, applied.err
    assert setup.server_rules()[-1] == "ChurnErrorsAll"
    removed = setup.root / "none.yaml"
    removed.write_text(EXTRA_RULES)
    applied = setup.url("rules", "apply", str(removed))  # replace: the file is the whole set
    assert applied.code == 0, applied.err
    assert setup.server_rules() == ["ChurnErrorsVeryHigh"]
    again = setup.database("rules", "defaults", "churn")
    assert again.code == 0, again.err
    assert "ChurnErrorsVeryHigh" in setup.server_rules()
    assert len(setup.server_rules()) > 1


def test_models_commands_agree(setup: Setup) -> None:
    # Over the API, the features left out of the config are inferred from the reference.
    over_api = setup.url(
        "models", "register", str(_spec(setup.root, "inferred", features=False)),
        "--reference", str(_reference(setup.root)),
    )  # fmt: skip
    assert over_api.code == 0, over_api.err
    assert "registered model 'inferred' with 200 reference rows" in over_api.out
    listed = [setup.url("models", "list"), setup.database("models", "list")]
    assert listed[0].out == listed[1].out
    assert "inferred  classification  3 features: age, plan, active" in listed[0].out
    taken = [
        setup.url("models", "register", str(_spec(setup.root, "inferred"))),
        setup.database("models", "register", str(_spec(setup.root, "inferred"))),
    ]
    assert [run.code for run in taken] == [1, 1]
    assert all("already" in run.err for run in taken)


def test_tokens_commands_agree(setup: Setup) -> None:
    created = setup.url("tokens", "create", "reader", "--scope", "read")
    assert created.code == 0, created.err
    secret = created.out.strip()
    assert len(secret) > 20
    listed = [setup.url("tokens", "list"), setup.database("tokens", "list")]
    assert listed[0].code == listed[1].code == 0
    assert listed[0].out == listed[1].out
    assert "reader" in listed[0].out
    # The new token reads but may not manage tokens (admin scope): 403 names the token problem.
    assert setup.url("rules", "list", token=secret).code == 0
    refused = setup.url("tokens", "list", token=secret)
    assert refused.code == 1
    assert "403" in refused.err
    assert "--token" in refused.err
    missing = setup.url("tokens", "list", token=None)
    assert missing.code == 1
    assert "401" in missing.err
    revoked = setup.database("tokens", "revoke", "reader")
    assert revoked.code == 0, revoked.err
    assert setup.url("rules", "list", token=secret).code == 1, "revoked on the database"
    bad = setup.url("tokens", "create", "x y", "--scope", "read")
    assert bad.code == 2
    assert "name" in bad.err
    unknown = [
        setup.url("tokens", "revoke", "nobody"),
        setup.database("tokens", "revoke", "nobody"),
    ]
    assert [run.code for run in unknown] == [1, 1]


def test_rules_alerts_and_silences_commands_agree(setup: Setup) -> None:
    # Alert state and history written by another engine on the same database.
    engine = AlertingEngine(db=setup.db, clock=lambda: 5000.0)
    try:
        (rule,) = engine.apply_rules(load_rules(EXTRA_RULES), replace=True)
        sample = {
            "labels": {"model": rule.model, "signal": rule.signal},
            "value": 0.99,
            "timestamp": 5000.0,
        }
        engine.evaluate(5000.0, [sample])
    finally:
        engine.close()
    for command in (
        ["rules", "list"],
        ["rules", "list", "-o", "yaml"],
        ["rules", "list", "-o", "json"],
        ["alerts", "list", "--json"],
        ["alerts", "history", "--json"],
    ):
        url, database = setup.url(*command), setup.database(*command)
        assert url.code == database.code == 0, (command, url.err, database.err)
        assert url.out == database.out, command
    alerts = json.loads(setup.url("alerts", "list", "--json").out)["alerts"]
    assert [alert["labels"]["alertname"] for alert in alerts] == ["ChurnErrorsVeryHigh"]

    exported = [setup.root / "url.yml", setup.root / "db.yml"]
    assert setup.url("rules", "export-prometheus", str(exported[0])).code == 0
    assert setup.database("rules", "export-prometheus", str(exported[1])).code == 0
    assert exported[0].read_text() == exported[1].read_text()

    added = setup.database(
        "silences", "add", "-m", "alertname=ChurnErrorsVeryHigh", "--duration", "1h",
        "--author", "ana",
    )  # fmt: skip
    assert added.code == 0, added.err
    silence_id = added.out.strip()
    listed = [setup.url("silences", "list", "--json"), setup.database("silences", "list", "--json")]
    assert listed[0].out == listed[1].out
    assert [item["id"] for item in json.loads(listed[0].out)["silences"]] == [silence_id]
    muted = json.loads(setup.url("alerts", "list", "--json").out)["alerts"]
    assert muted[0]["muted"] is True, "the server applies a silence added on the database"
    assert setup.url("silences", "expire", silence_id).code == 0
    assert json.loads(setup.database("silences", "list", "--json").out)["silences"] == []
    unknown = [
        setup.url("silences", "expire", "nope"),
        setup.database("silences", "expire", "nope"),
    ]
    assert [run.code for run in unknown] == [1, 1]
    assert all("no silence with id 'nope'" in run.err for run in unknown)
    for run in (
        setup.url("rules", "defaults", "cancr"),
        setup.database("rules", "defaults", "cancr"),
    ):
        assert run.code == 1
        assert "cancr" in run.err


def test_each_command_says_which_database_or_server_it_used(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = setup.url("models", "list")
    assert run.err.splitlines()[0] == f"watchkeeper: using server {setup.server.url}"
    run = setup.database("models", "list")
    assert run.err.splitlines()[0] == f"watchkeeper: using database {setup.db}"
    # The environment's server, unless --db names a database; both flags are a usage error.
    env = {"WATCHKEEPER_URL": setup.server.url, "WATCHKEEPER_TOKEN": ADMIN_TOKEN}
    run = cli("tokens", "list", env=env)
    assert run.code == 0
    assert run.err.startswith(f"watchkeeper: using server {setup.server.url}")
    run = cli("tokens", "list", "--db", setup.db, env=env)
    assert run.err.startswith(f"watchkeeper: using database {setup.db}")
    both = cli("alerts", "list", "--url", setup.server.url, "--db", setup.db)
    assert both.code == 2
    assert "--url and --db" in both.err
    # Neither: the configured default, a SQLite file in the working directory.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WATCHKEEPER_DB", raising=False)
    monkeypatch.delenv("WATCHKEEPER_URL", raising=False)
    run = cli("silences", "list")
    assert run.code == 0, run.err
    assert run.err.splitlines()[0] == "watchkeeper: using database sqlite:///watchkeeper.db"
    assert (tmp_path / "watchkeeper.db").exists()
    assert shown_db("postgresql://wk:s3cret@db:5432/wk") == (
        "postgresql+psycopg://wk:***@db:5432/wk"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["models", "list"],
        ["tokens", "list"],
        ["rules", "list"],
        ["alerts", "history"],
        ["silences", "list"],
    ],
)
def test_unreachable_server_is_one_line_naming_the_url(command: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = cli(*command, "--url", url)
    assert run.code == 1
    using, error = run.err.splitlines()
    assert using == f"watchkeeper: using server {url}"
    assert error.startswith(f"error: cannot reach watchkeeper at {url}")


def test_server_log_has_no_errors(setup: Setup) -> None:
    assert httpx.get(f"{setup.server.url}/readyz").status_code == 200
    assert "Traceback" not in setup.server.log.read_text()


@pytest.mark.parametrize("backend", ["sqlite-file", "postgresql"])
def test_every_group_on_each_database_backend(backend: str, tmp_path: Path) -> None:
    with backend_url(backend, tmp_path) as db:
        run = cli("models", "register", str(_spec(tmp_path, "churn")), "--db", db)
        assert run.code == 0, run.err
        assert run.err.splitlines()[0] == f"watchkeeper: using database {shown_db(db)}"
        rules_file = tmp_path / "extra.yaml"
        rules_file.write_text(EXTRA_RULES)
        run = cli("rules", "apply", "--merge", str(rules_file), "--db", db)
        assert run.code == 0, run.err
        names = [
            rule["name"]
            for rule in json.loads(cli("rules", "list", "-o", "json", "--db", db).out)["rules"]
        ]
        assert names[-1] == "ChurnErrorsVeryHigh"
        assert len(names) >= 4, "the default pack stays"
        assert cli("tokens", "create", "ci", "--scope", "ingest", "--db", db).code == 0
        assert "ci" in cli("tokens", "list", "--db", db).out
        run = cli("silences", "add", "-m", "model=churn", "--duration", "1h", "--db", db)
        assert run.code == 0, run.err
        assert cli("alerts", "list", "--json", "--db", db).out.strip() == '{\n  "alerts": []\n}'
        assert "churn  classification" in cli("models", "list", "--db", db).out
