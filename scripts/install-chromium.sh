#!/usr/bin/env sh
# Install Debian's `chromium` so the HTML report can be checked in a real headless browser.
exec "$(dirname "$0")/apt-install.sh" /usr/bin/chromium chromium
