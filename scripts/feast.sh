#!/usr/bin/env bash
# Feast for watchkeeper's Feast base-data tests: scripts/feast.sh install|path
#
#   install  install Feast and the packages it needs that the project's venv lacks into
#            ./.feast-site (a plain directory, put on sys.path by the tests) and print its path.
#            Idempotent: an existing installation of the same spec is reused.
#   path     print that path (exit 1 when not installed).
#
# Why beside the venv and without Feast's own pins: Feast (0.67) declares pandas<3 and
# prometheus_client<0.25, so installing it into the venv would downgrade pandas 3 for the whole
# project. Its local provider (file offline store, SQLite online store) runs on pandas 3 for
# what watchkeeper uses (apply, materialize, get_historical_features); tests/retrain/
# test_sources.py checks exactly that. A user's `pip install 'watchkeeper[feast]'` resolves
# pandas 2 and keeps Feast's pins.
# Settings: WATCHKEEPER_FEAST_SITE (./.feast-site), PYTHON (python3).
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SITE="${WATCHKEEPER_FEAST_SITE:-$PROJECT_DIR/.feast-site}"
PYTHON="${PYTHON:-python3}"
# Feast, and those of its requirements that watchkeeper's own dependencies do not bring.
SPEC=(
    "feast>=0.67,<0.68" "dask>=2024.2.1" "partd>=1.4" "locket>=1.0" "toolz>=0.12" "pytz"
    "mmh3" "bigtree>=0.19.2" "tabulate>=0.8,<1" "tenacity>=7,<9" "toml>=0.10,<1" "tqdm>=4,<5"
    "typeguard>=4.0" "dill>=0.3,<0.5" "colorama>=0.3.9,<1" "pyjwt>=2.13" "gunicorn"
    "uvicorn-worker"
)
STAMP="$SITE/.installed-stamp"

installed() {
    [[ -d "$SITE/feast" && -f "$STAMP" && "$(cat "$STAMP")" == "${SPEC[*]}" ]]
}

install() {
    # Test workers may install at once: the second waits, then finds the directory ready.
    mkdir -p "$(dirname "$SITE")"
    exec 9>"$SITE.lock"
    flock 9
    if ! installed; then
        echo "feast.sh: installing Feast into $SITE" >&2
        rm -rf "$SITE"
        "$PYTHON" -m pip install --quiet --no-deps --target "$SITE" "${SPEC[@]}" >&2 \
            || { echo "feast.sh: error: pip could not install Feast into $SITE" >&2; exit 1; }
        echo "${SPEC[*]}" >"$STAMP"
    fi
    echo "$SITE"
}

case "${1:-}" in
    install) install ;;
    path) installed && echo "$SITE" ;;
    *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
