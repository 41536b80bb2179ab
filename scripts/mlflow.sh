#!/usr/bin/env bash
# An MLflow tracking server for watchkeeper's MLflow adapter tests: scripts/mlflow.sh install|bin
#
#   install  create ./.venv-mlflow (a virtualenv of its own) with the full `mlflow` package and
#            print the path of its `mlflow` executable. Idempotent: an existing installation of
#            the wanted version range is reused.
#   bin      print that path (exit 1 when not installed).
#
# Why a virtualenv of its own: the `mlflow` server package pins pyarrow (and more) below the
# versions watchkeeper uses, so it cannot share the project's venv; the project installs only the
# client (`mlflow-skinny`, extra `mlflow`). The tests start `mlflow server` from this venv on a
# free port with a SQLite backend in a temp dir (tests/registry/mlflow_server.py).
# Settings: WATCHKEEPER_MLFLOW_VENV (./.venv-mlflow), WATCHKEEPER_MLFLOW_SPEC (mlflow>=3,<4),
# PYTHON (python3).
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WATCHKEEPER_MLFLOW_VENV:-$PROJECT_DIR/.venv-mlflow}"
SPEC="${WATCHKEEPER_MLFLOW_SPEC:-mlflow>=3,<4}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.installed-stamp"

log() { echo "mlflow.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

installed() {
    [[ -x "$VENV/bin/mlflow" && -f "$STAMP" && "$(cat "$STAMP")" == "$SPEC" ]]
}

install() {
    # Test workers may install at once: the second waits, then finds the venv ready.
    mkdir -p "$(dirname "$VENV")"
    exec 9>"$VENV.lock"
    flock 9
    if ! installed; then
        log "creating $VENV with $SPEC"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV" || die "cannot create a virtualenv with $PYTHON"
        "$VENV/bin/pip" install --quiet --upgrade pip >&2
        "$VENV/bin/pip" install --quiet "$SPEC" >&2 || die "pip could not install $SPEC into $VENV"
        echo "$SPEC" >"$STAMP"
    fi
    echo "$VENV/bin/mlflow"
}

case "${1:-}" in
    install) install ;;
    bin) installed && echo "$VENV/bin/mlflow" ;;
    *) echo "usage: $0 install|bin" >&2; exit 2 ;;
esac
