#!/usr/bin/env bash
# A throwaway PostgreSQL server for watchkeeper's tests: scripts/postgres.sh start|stop|status|url
#
#   start  install PostgreSQL if no server binaries exist (Debian package, needs root), initdb a
#          cluster under ./.pgdata, start it on 127.0.0.1:$PORT, create the test database and
#          print its URL. Idempotent: an already running server is reused.
#   stop   stop the server started from this checkout (if any).
#   status exit 0 when the server answers.
#   url    print the URL the tests use.
#
# The cluster trusts local connections (it is for tests only) and runs as a non-root user:
# PostgreSQL refuses to run as root, so as root the `postgres` system user (created if missing)
# owns the cluster. Settings: WATCHKEEPER_PG_PORT (54329), WATCHKEEPER_PGDATA (./.pgdata).
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${WATCHKEEPER_PG_PORT:-54329}"
BASE="${WATCHKEEPER_PGDATA:-$PROJECT_DIR/.pgdata}"
DB_NAME="watchkeeper_test"
DB_USER="postgres"
URL="postgresql+psycopg://${DB_USER}@127.0.0.1:${PORT}/${DB_NAME}"

log() { echo "postgres.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

find_bindir() {
    local candidate
    for candidate in $(command -v pg_ctl 2>/dev/null || true) \
        $(ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V -r); do
        candidate="$(readlink -f "$candidate")"
        if [[ -x "$candidate" && -x "$(dirname "$candidate")/initdb" ]]; then
            dirname "$candidate"
            return 0
        fi
    done
    return 1
}

install_postgres() {
    [[ "$(id -u)" == 0 ]] || die "no PostgreSQL server binaries (pg_ctl, initdb) found and not root; install PostgreSQL (e.g. apt-get install postgresql) or set WATCHKEEPER_TEST_POSTGRES_URL"
    command -v apt-get >/dev/null || die "no PostgreSQL server binaries found and no apt-get; install PostgreSQL or set WATCHKEEPER_TEST_POSTGRES_URL"
    log "installing PostgreSQL with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # The same lock as scripts/apt-install.sh: test workers may install other packages at once.
    (
        flock 9
        apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
        apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends postgresql >&2
    ) 9>/tmp/watchkeeper-apt-install.lock
}

# Run a command as the cluster owner: ourselves, or `postgres` when we are root.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

ensure_owner() {
    [[ "$(id -u)" == 0 ]] || return 0
    if ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
}

# The cluster owner must reach $BASE; a checkout under e.g. /root is not reachable by `postgres`,
# and a socket path must stay under the kernel's 107-byte limit: fall back to a private temp dir.
choose_base() {
    mkdir -p "$BASE"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres: "$BASE"
        if ! runuser -u postgres -- test -w "$BASE" || (( ${#BASE} > 80 )); then
            local fallback="/tmp/watchkeeper-pgdata-$(echo -n "$PROJECT_DIR" | md5sum | cut -c1-12)"
            log "$BASE is not usable by the postgres user; using $fallback"
            BASE="$fallback"
            mkdir -p "$BASE"
            chown postgres: "$BASE"
        fi
    fi
    chmod 700 "$BASE"
}

is_up() {
    "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT" >/dev/null 2>&1
}

start() {
    # Two test workers may start at once: the second waits, then finds the server running.
    # The lock fd is closed for pg_ctl below, or the server would hold the lock for its lifetime.
    exec 9>"${TMPDIR:-/tmp}/watchkeeper-postgres-$PORT.lock"
    flock 9
    BINDIR="$(find_bindir)" || { install_postgres; BINDIR="$(find_bindir)" || die "PostgreSQL installed but pg_ctl/initdb not found"; }
    ensure_owner
    choose_base
    local cluster="$BASE/cluster" run="$BASE/run"
    as_owner mkdir -p "$run"
    if [[ ! -f "$cluster/PG_VERSION" ]]; then
        log "initdb $cluster"
        as_owner "$BINDIR/initdb" -D "$cluster" -U "$DB_USER" --auth=trust --encoding=UTF8 \
            --locale=C --no-sync >/dev/null
    fi
    if ! as_owner "$BINDIR/pg_ctl" -D "$cluster" status >/dev/null 2>&1; then
        if is_up; then
            log "another server already listens on 127.0.0.1:$PORT; reusing it"
        else
            log "starting PostgreSQL on 127.0.0.1:$PORT"
            as_owner "$BINDIR/pg_ctl" -D "$cluster" -l "$BASE/server.log" -w -t 60 \
                -o "-p $PORT -c listen_addresses=127.0.0.1 -k $run -c fsync=off -c full_page_writes=off -c max_connections=200" \
                start >/dev/null 9>&- || { tail -n 20 "$BASE/server.log" >&2 || true; die "PostgreSQL did not start (log: $BASE/server.log)"; }
        fi
    fi
    local psql=("$BINDIR/psql" -h 127.0.0.1 -p "$PORT" -U "$DB_USER" -X -q -At)
    local tries=0
    until "${psql[@]}" -d postgres -c "SELECT 1" >/dev/null 2>&1; do
        (( ++tries > 60 )) && die "PostgreSQL on 127.0.0.1:$PORT does not accept user $DB_USER (log: $BASE/server.log)"
        sleep 0.5
    done
    if [[ "$("${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]]; then
        "${psql[@]}" -d postgres -c "CREATE DATABASE $DB_NAME" >/dev/null 2>&1 \
            || [[ "$("${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" == 1 ]] \
            || die "cannot create database $DB_NAME"
    fi
    echo "$URL"
}

stop() {
    local bindir
    bindir="$(find_bindir)" || return 0
    local candidate
    for candidate in "$BASE" "/tmp/watchkeeper-pgdata-$(echo -n "$PROJECT_DIR" | md5sum | cut -c1-12)"; do
        if [[ -f "$candidate/cluster/postmaster.pid" ]]; then
            as_owner "$bindir/pg_ctl" -D "$candidate/cluster" -m fast -w stop >/dev/null \
                && log "stopped PostgreSQL ($candidate/cluster)"
        fi
    done
}

status() {
    BINDIR="$(find_bindir)" || die "no PostgreSQL server binaries found"
    is_up
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    url) echo "$URL" ;;
    *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
