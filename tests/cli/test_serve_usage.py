"""`watchkeeper serve` usage errors: one line naming the problem, exit code 2."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def test_serve_on_a_port_in_use_says_so_and_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "watchkeeper", "serve", "--port", str(port),
             "--db", f"sqlite:///{tmp_path / 'wk.db'}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "serving on" not in result.stderr
