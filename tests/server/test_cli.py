"""``watchkeeper serve`` in a real process, and the ``models`` commands."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import typer
from typer.testing import CliRunner

from tests.server.conftest import MODEL, free_port
from watchkeeper.cli.service import register

runner = CliRunner()
# The lead registers these commands in cli/main.py; a bare Typer app runs them the same way.
_MAIN = (
    "import typer; from watchkeeper.cli.service import register; "
    "app = typer.Typer(); register(app); app()"
)


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_serve_runs_the_service_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _MAIN, "serve", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        ready = False
        while time.monotonic() < deadline and process.poll() is None and not ready:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
            except httpx.TransportError:
                time.sleep(0.1)
        assert ready, "the server did not become ready within 60 s"
        # Loopback without auth: no token needed.
        created = httpx.post(f"http://127.0.0.1:{port}/v1/models", json=MODEL)
        assert created.status_code == 201
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode()
    assert (tmp_path / "watchkeeper.db").exists(), "the default store is a SQLite file in the cwd"
    assert "(auth off, database sqlite:///watchkeeper.db)" in stderr.decode()


def test_serve_refuses_public_address_in_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _MAIN, "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "refusing to listen on non-loopback address" in result.stderr
    assert "Traceback" not in result.stderr


def test_models_register_and_list(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'models.db'}"
    spec = tmp_path / "churn.json"
    spec.write_bytes(orjson.dumps(MODEL))
    reference = tmp_path / "reference.csv"
    reference.write_text(
        "age,plan,active\n" + "".join(f"{20 + i % 40},pro,true\n" for i in range(100))
    )
    app = _cli()
    registered = runner.invoke(
        app, ["models", "register", str(spec), "--reference", str(reference), "--db", db]
    )
    assert registered.exit_code == 0, registered.output
    assert "registered model 'churn' with 100 reference rows" in registered.output
    listed = runner.invoke(app, ["models", "list", "--db", db])
    assert listed.exit_code == 0
    assert "churn  classification  3 features: age, plan, active" in listed.output
    again = runner.invoke(app, ["models", "register", str(spec), "--db", db])
    assert again.exit_code == 1, "the database refused: the name is taken"
    assert "already exists" in again.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ntask: regression\nfeatures: {a: number}\n")
    bad = runner.invoke(app, ["models", "register", str(broken), "--db", db])
    assert bad.exit_code == 2
    assert "features.a" in bad.output
