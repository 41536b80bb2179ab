"""``watchkeeper models versions|alias|rollback|history`` on a database and on a server (--url),
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.server.conftest import ADMIN_TOKEN, MODEL, ServerProcess
from tests.server.test_registry_api import model_file
from tests.store.backends import postgres_schema_url
from watchkeeper.cli.main import app

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            yield f"sqlite:///{tmp_path / 'wk.db'}"
        else:
            yield stack.enter_context(postgres_schema_url())


def cli(*args: str, artifacts: Path) -> Result:
    return runner.invoke(
        app, list(args), env={"WATCHKEEPER_ARTIFACT_ROOT": str(artifacts), "WATCHKEEPER_URL": ""}
    )


def test_the_registry_commands_on_the_database_then_on_a_server(
    database: str, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    spec = tmp_path / "churn.json"
    spec.write_text(json.dumps(MODEL))
    on_db = ("--db", database)
    assert cli("models", "register", str(spec), *on_db, artifacts=artifacts).exit_code == 0
    added = cli(
        "models", "versions", "add", "churn", str(model_file(tmp_path, 0)),
        "--metric", "auc=0.91", "--param", "C=1", "--tag", "team=risk",
        "--description", "baseline", "--code-revision", "3f2c1e0", *on_db,
        artifacts=artifacts,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "registered churn/1 (sklearn, sha256" in added.stdout
    second = cli(
        "models", "versions", "add", "churn", str(model_file(tmp_path, 1)), "--json", *on_db,
        artifacts=artifacts,
    )  # fmt: skip
    assert json.loads(second.stdout)["version"] == 2
    moved = cli("models", "alias", "churn", "champion", "1", "--reason", "first", *on_db,
                artifacts=artifacts)  # fmt: skip
    assert moved.exit_code == 0, moved.output
    assert "churn@champion: nothing → 1" in moved.stdout
    time.sleep(0.05)
    between = time.time()
    time.sleep(0.05)
    assert (
        cli("models", "alias", "churn", "champion", "2", *on_db, artifacts=artifacts).exit_code == 0
    )

    server = ServerProcess(
        db=database, log=tmp_path / "server.log",
        env={"WATCHKEEPER_ARTIFACT_ROOT": str(artifacts)},
    ).start()  # fmt: skip
    try:
        on_server = ("--url", server.url, "--token", ADMIN_TOKEN)
        listed = cli("models", "versions", "list", "churn", "--json", *on_server,
                     artifacts=artifacts)  # fmt: skip
        assert listed.exit_code == 0, listed.output
        entries = {e["version"]: e for e in json.loads(listed.stdout)["versions"]}
        assert entries["1"]["registry"]["metrics"] == {"auc": 0.91}
        assert entries["1"]["registry"]["params"] == {"C": 1}
        assert entries["1"]["registry"]["tags"] == {"team": "risk"}
        assert entries["2"]["registry"]["aliases"] == ["champion"]
        table = cli("models", "versions", "list", "churn", *on_server, artifacts=artifacts)
        assert "auc=0.91" in table.stdout
        assert "champion" in table.stdout
        then = cli("models", "history", "churn", "--at", str(between), *on_server,
                   artifacts=artifacts)  # fmt: skip
        assert then.exit_code == 0, then.output
        assert "churn@champion at" in then.stdout
        assert "version 1" in then.stdout
        rolled = cli("models", "rollback", "churn", "--reason", "AUC dropped", *on_server,
                     artifacts=artifacts)  # fmt: skip
        assert rolled.exit_code == 0, rolled.output
        assert "churn@champion: 2 → 1 (AUC dropped)" in rolled.stdout
        added = cli("models", "versions", "add", "churn", str(model_file(tmp_path, 2)),
                    "--metric", "auc=0.95", *on_server, artifacts=artifacts)  # fmt: skip
        assert added.exit_code == 0, added.output
        assert "registered churn/3" in added.stdout
        assert "by admin" in added.stdout
        shown = cli("models", "versions", "show", "churn", "3", *on_server, artifacts=artifacts)
        assert json.loads(shown.stdout)["registry"]["metrics"] == {"auc": 0.95}
        over_http = cli("models", "history", "churn", "--json", *on_server, artifacts=artifacts)
    finally:
        server.stop()

    # The database sees what the server did, and answers the same documents.
    on_disk = cli("models", "history", "churn", "--json", *on_db, artifacts=artifacts)
    assert json.loads(on_disk.stdout) == json.loads(over_http.stdout)
    moves = json.loads(on_disk.stdout)["history"]
    assert [(m["from_version"], m["to_version"]) for m in moves] == [(2, 1), (1, 2), (None, 1)]
    assert moves[0]["moved_by"] == "admin"
    table = cli("models", "history", "churn", *on_db, artifacts=artifacts)
    assert "AUC dropped" in table.stdout
    assert "first" in table.stdout
    shown = cli("models", "versions", "show", "churn", "3", *on_db, artifacts=artifacts)
    assert json.loads(shown.stdout)["registry"]["registered_by"] == "admin"


def test_bad_registry_commands_exit_with_one_clear_line(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    on_db = ("--db", f"sqlite:///{tmp_path / 'wk.db'}")
    good = str(model_file(tmp_path, 0))

    def refused(code: int, *args: str, words: tuple[str, ...]) -> None:
        result = cli(*args, *on_db, artifacts=artifacts)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        for word in words:
            assert word in result.stderr, result.stderr

    refused(2, "models", "versions", "add", "churn", str(tmp_path / "missing.skops"),
            words=("PATH:", "missing.skops", "is not a file"))  # fmt: skip
    refused(2, "models", "versions", "add", "churn", good, "--flavor", "sklaern",
            words=("unknown flavor 'sklaern'", "sklearn, pickle"))  # fmt: skip
    refused(2, "models", "versions", "add", "churn", good, "--metric", "auc",
            words=("--metric: expected KEY=VALUE, got 'auc'",))  # fmt: skip
    assert (
        cli("models", "versions", "add", "churn", good, *on_db, artifacts=artifacts).exit_code == 0
    )
    refused(1, "models", "alias", "churn", "champion", "5", words=("has no version 5",))
    refused(
        2, "models", "alias", "churn", "champion", "two", words=("Invalid value for 'VERSION'",)
    )
    refused(2, "models", "alias", "churn", "9lives", "1", words=("alias:",))
    refused(1, "models", "rollback", "churn", words=("never been set",))
    refused(2, "models", "history", "churn", "--at", "last week", words=("at:",))
    refused(1, "models", "versions", "show", "churn", "7", words=("no version '7'",))
    refused(1, "models", "versions", "list", "nothing", words=("'nothing'",))
