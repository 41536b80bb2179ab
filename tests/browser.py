"""A real headless Chromium for tests: the DOM a page has after its scripts ran.

Chromium is installed by scripts/install-chromium.sh (``make test`` runs it; a test run without
it installs it here once).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")

# Every host name but loopback resolves to nothing: a page that needs the internet shows it.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


def chromium() -> Path:
    """The Chromium binary, installed by the project's script when missing."""
    if not CHROMIUM.exists():
        result = subprocess.run(
            ["sh", str(REPO / "scripts" / "install-chromium.sh")],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, (
            "scripts/install-chromium.sh could not install Chromium:\n" + result.stderr
        )
        assert CHROMIUM.exists(), f"scripts/install-chromium.sh succeeded but left no {CHROMIUM}"
    return CHROMIUM


def dom_after_scripts(url: str, *extra_flags: str, budget_ms: int = 5000) -> str:
    """The DOM of ``url`` after Chromium ran its scripts for ``budget_ms`` of virtual time."""
    with tempfile.TemporaryDirectory(prefix="wk-chromium-") as directory:
        result = subprocess.run(
            [
                str(chromium()),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={Path(directory) / 'profile'}",
                f"--virtual-time-budget={budget_ms}",
                *extra_flags,
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(Path(directory) / "profile", ignore_errors=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
