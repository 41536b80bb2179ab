"""A real MLflow tracking server for the adapter's tests (SQLite backend, local artifact root).

The server runs from its own virtualenv, made by ``scripts/mlflow.sh install`` (the ``mlflow``
server package pins pyarrow below the project's, so it cannot share the project's venv). It
listens on a free port, keeps its database and artifacts in a temp dir, and serves artifacts
through its proxy (``mlflow-artifacts:``), as a remote server does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
MLFLOW_SCRIPT = PROJECT_DIR / "scripts" / "mlflow.sh"
_START_TIMEOUT = 180.0


def mlflow_executable() -> str:
    """The ``mlflow`` executable of the server's venv, installing it when needed."""
    try:
        result = subprocess.run(
            ["bash", str(MLFLOW_SCRIPT), "install"],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not run {MLFLOW_SCRIPT} install: {exc}", pytrace=False)
    if result.returncode != 0 or not result.stdout.strip():
        pytest.fail(
            f"the MLflow server could not be installed by {MLFLOW_SCRIPT} install "
            f"(exit {result.returncode}):\n{result.stderr}",
            pytrace=False,
        )
    return result.stdout.strip().splitlines()[-1]


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def mlflow_server(directory: Path) -> Iterator[str]:
    """Run ``mlflow server`` in ``directory``; yields its tracking URI, stops it afterwards."""
    port = free_port()
    log_path = directory / "server.log"
    command = [
        mlflow_executable(),
        "server",
        "--backend-store-uri",
        f"sqlite:///{directory / 'mlflow.db'}",
        "--artifacts-destination",
        str(directory / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # No telemetry, and no background job runner (a second process the tests do not use).
    environment = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    with log_path.open("wb") as log:
        # A session of its own: stopping it stops the workers it forks too.
        process = subprocess.Popen(
            command,
            cwd=directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
            start_new_session=True,
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"mlflow server exited ({process.returncode}):\n{log_path.read_text()[-3000:]}",
                    pytrace=False,
                )
            try:
                if httpx.get(f"{uri}/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server did not answer in {_START_TIMEOUT:.0f} s:\n"
                    f"{log_path.read_text()[-3000:]}",
                    pytrace=False,
                )
            time.sleep(0.5)
        yield uri
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass
