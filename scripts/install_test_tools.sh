#!/bin/sh
# Debian packages some tests need and no wheel provides: Chromium and its
# driver (tests/test_page.py), iproute2 (tests/test_multihost.py, a network
# namespace per host) and EPUBCheck (tests/test_readalong.py). Idempotent:
# installs only what is missing, only as root with apt-get; otherwise does
# nothing, and the tests that need them skip, saying why.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v epubcheck >/dev/null 2>&1 || missing="$missing epubcheck"
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_test_tools: missing$missing and not root with apt-get; the tests that need them will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # one word per package
apt-get install -y -qq --no-install-recommends $missing
