#!/usr/bin/env sh
# Install Debian's `chromium` so the HTML report can be checked in a real headless browser.
# Idempotent: does nothing when /usr/bin/chromium already exists. Needs root (or sudo) and apt-get.
set -eu

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-chromium: need root or sudo to apt-get install chromium" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: apt-get not found; install Chromium so that $CHROMIUM exists" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Recommends pull in fonts and desktop integration that a headless check does not need.
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
test -x "$CHROMIUM"
