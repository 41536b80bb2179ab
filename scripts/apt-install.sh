#!/usr/bin/env sh
# Usage: scripts/apt-install.sh COMMAND PACKAGE
# Install Debian's PACKAGE unless COMMAND (a name on PATH or an absolute path) is already there.
# Idempotent and safe to run from several test workers at once: installs are serialised with a
# lock file, and apt-get waits for the dpkg lock instead of failing. Needs root (or sudo).
set -eu

command_name=$1
package=$2

present() {
    case "$command_name" in
        /*) [ -x "$command_name" ] ;;
        *) command -v "$command_name" >/dev/null 2>&1 ;;
    esac
}

present && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "apt-install: need root or sudo to install $package (for $command_name)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-install: apt-get not found; install $package so that $command_name exists" >&2
    exit 1
fi

exec 9>/tmp/watchkeeper-apt-install.lock
flock 9
present && exit 0  # another worker installed it while this one waited for the lock

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
# Recommends pull in fonts, desktop integration and services that the tests do not need.
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$package" >/dev/null
present || { echo "apt-install: $package installed but $command_name is still missing" >&2; exit 1; }
