"""Follow the README as a new user: every command block runs, and says what the README says.

The blocks are read from README.md itself, so a changed README is what gets tested. The files
they name (``train.parquet``, ``prod.csv``, ``events.parquet`` …) are made here, seeded, with the
columns the commands use; placeholders a reader replaces are replaced the same way: the server
address and token by a server started here, ``postgresql://user@host/db`` by the test database.
``make demo`` and ``make test`` run as dry runs (``make -n``): the demo itself is
``tests/test_demo.py``, and ``make test`` is this suite.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.server.conftest import free_port
from tests.store.backends import backend_url
from watchkeeper.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(language: str) -> list[str]:
    """The README's code blocks of ``language``, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


def commands(block: str) -> list[list[str]]:
    """A bash block's commands: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    split = [shlex.split(line, comments=True) for line in joined.splitlines()]
    return [argv for argv in split if argv]


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, rows).round(1)
    score = 1 / (1 + np.exp(-(age - 40) / 5))
    label = (rng.random(rows) < score).astype(int)
    right = rng.random(rows) < 0.9
    return pd.DataFrame(
        {
            "row_id": np.arange(rows),
            "timestamp": 1_767_225_600.0 + np.arange(rows) * 60.0,
            "age": age,
            "plan": rng.choice(["basic", "pro", "team"], rows),
            "active": rng.random(rows) < 0.7,
            "region": rng.choice(["eu", "us"], rows),
            "zip_code": rng.choice(["10115", "75001", "94105"], rows),
            "label": label,
            "pred": np.where(right, label, 1 - label),
            "score": score.round(4),
            "prediction": np.where(right, label, 1 - label).astype(str),
            "proba_0": (1 - score).round(4),
            "proba_1": score.round(4),
        }
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new user's directory: the data files and configs the README's commands name."""
    root = tmp_path_factory.mktemp("readme")
    train, prod = _frame(2_000, 1), _frame(1_000, 2)
    train.to_parquet(root / "train.parquet")
    prod.to_csv(root / "prod.csv", index=False)
    prod.to_csv(root / "prod.csv.gz", index=False)
    prod.drop(columns=["row_id"]).to_parquet(root / "events.parquet")
    (model,) = blocks("yaml")
    assert model.startswith("# model.yaml")
    (root / "model.yaml").write_text(model)
    (root / "rules.yaml").write_text(
        "rules:\n  - name: ChurnSlow\n    model: churn\n    signal: latency_p99\n"
        '    condition: "> 250"\n    for: 10m\n'
    )
    (root / "watchkeeper.yaml").write_text("log_level: warning\n")
    return root


class Server:
    """``watchkeeper serve`` as the README runs it, on a free port of this machine."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "WATCHKEEPER_LOG_LEVEL": "warning"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "watchkeeper", *argv[1:], "--port", str(self.port)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"{shlex.join(argv)} did not become ready: {self.stderr}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        _, stderr = self.process.communicate(timeout=30)
        self.stderr = stderr.decode()
        return self.process.returncode


def _run(argv: list[str], env: dict[str, str] | None = None) -> Any:
    assert argv[0] == "watchkeeper", argv
    return CliRunner().invoke(app, argv[1:], env={"COLUMNS": "160", **(env or {})})


def test_the_two_commands_exist(workdir: Path) -> None:
    (block, *_) = blocks("bash")
    for argv in commands(block):
        assert argv[0] == "make"
        completed = subprocess.run(
            ["make", "-n", *argv[1:]], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert completed.returncode == 0, completed.stderr


def test_the_command_line_block(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    report, check = commands(blocks("bash")[1])
    result = _run(report)
    assert result.exit_code == 0, result.output
    assert "Drift by column" in result.stdout
    assert (workdir / "report.json").stat().st_size > 0
    assert (workdir / "report.html").stat().st_size > 0
    gate = _run(check)
    assert gate.exit_code == 0, gate.output
    assert gate.stdout.count("PASS") == 3  # drift share, missing values, accuracy


@pytest.fixture(scope="module")
def service(workdir: Path) -> Iterator[dict[str, str]]:
    """The service block run top to bottom; the first server stays up for the SDK block."""
    before = Path.cwd()
    os.chdir(workdir)  # the commands' files and the default database are in the user's cwd
    try:
        lines = commands(blocks("bash")[2])
        first = Server(lines[0], workdir)
        outputs: dict[str, str] = {"url": first.url}
        try:
            yield from _service_lines(lines[1:], first, outputs, workdir)
        finally:
            assert first.stop() == 0, first.stderr
    finally:
        os.chdir(before)


def _service_lines(
    lines: list[list[str]], first: Server, outputs: dict[str, str], workdir: Path
) -> Iterator[dict[str, str]]:
    with backend_url("postgresql", workdir) as postgres:
        for argv in lines:
            argv = [postgres if arg == "postgresql://user@host/db" else arg for arg in argv]
            if argv[1] == "serve":
                other = Server(argv, workdir)
                assert other.stop() == 0, other.stderr
                assert "database postgresql" in other.stderr
                continue
            argv = [first.url if arg == "http://monitor:8000" else arg for arg in argv]
            if "wk_..." in argv:
                argv[argv.index("wk_...")] = outputs["token"]
            result = _run(argv)
            assert result.exit_code == 0, f"{shlex.join(argv)}: {result.output}"
            outputs[" ".join(argv[1:3])] = result.stdout
            if argv[1:3] == ["tokens", "create"]:
                outputs["token"] = result.stdout.strip().splitlines()[-1]
    yield outputs


def test_the_service_block(service: dict[str, str], workdir: Path) -> None:
    assert service["token"].startswith("wk_")
    assert "registered model 'churn'" in service["models register"]
    assert "config version 2" in service["models update"]
    assert "churn" in service["models list"]
    assert (workdir / "replay.json").stat().st_size > 0


def test_the_sdk_block_logs_through_the_running_server(
    service: dict[str, str], workdir: Path
) -> None:
    code = blocks("python")[0]
    code = code.replace("http://127.0.0.1:8000", service["url"]).replace("wk_...", service["token"])
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""  # no event refused, nothing lost
    versions = httpx.get(f"{service['url']}/v1/models/churn/versions").json()["versions"]
    assert "2026-11-01" in [entry["version"] for entry in versions]


def test_the_python_api_block(workdir: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", blocks("python")[1]],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    dataset_drift, share, *_ = completed.stdout.split()
    assert dataset_drift in ("True", "False")
    assert 0.0 <= float(share) <= 1.0
    assert (workdir / "report.html").stat().st_size > 0
