#!/bin/sh
# Chromium and its driver for the page's browser tests (tests/test_page.py).
# Idempotent; installs only as root with apt-get, otherwise does nothing and
# those tests skip, saying why.
set -eu
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: chromium missing and not root with apt-get; the browser tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver
