#!/usr/bin/env sh
# Install promtool (Debian package `prometheus`) so the alert-rule export can be validated.
# Idempotent: does nothing when promtool is already on PATH. Needs root (or sudo) and apt-get.
set -eu

if command -v promtool >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-promtool: need root or sudo to apt-get install prometheus" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-promtool: apt-get not found; install promtool from https://prometheus.io/download/" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The package's service is not wanted here, only the promtool binary it ships.
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null 2>&1
