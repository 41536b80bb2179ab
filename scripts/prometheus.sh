#!/usr/bin/env sh
# Prometheus (with promtool) and Alertmanager for watchkeeper's integration tests:
#   scripts/prometheus.sh install   install Debian's `prometheus` and `prometheus-alertmanager`
#                                   unless their binaries are already there (idempotent, safe
#                                   from several test workers at once; needs root or sudo)
#   scripts/prometheus.sh paths     print the three binaries the tests run, one a line
# The tests start their own servers (temporary configuration and storage, free loopback ports)
# and stop them; nothing here runs a daemon. The packages' own services, where systemd starts
# them, listen on 9090/9093 and do not disturb the tests.
set -eu

here=$(dirname "$0")

case "${1:-}" in
    install)
        "$here/apt-install.sh" prometheus prometheus
        "$here/apt-install.sh" promtool prometheus
        "$here/apt-install.sh" prometheus-alertmanager prometheus-alertmanager
        ;;
    paths)
        for binary in prometheus promtool prometheus-alertmanager; do
            command -v "$binary" || { echo "prometheus.sh: $binary is missing; run $0 install" >&2; exit 1; }
        done
        ;;
    *)
        echo "usage: $0 install|paths" >&2
        exit 2
        ;;
esac
