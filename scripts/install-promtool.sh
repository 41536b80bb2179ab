#!/usr/bin/env sh
# Install promtool (Debian package `prometheus`) so the alert-rule export can be validated.
exec "$(dirname "$0")/apt-install.sh" promtool prometheus
