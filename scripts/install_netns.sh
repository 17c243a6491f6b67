#!/bin/sh
# iproute2, for the multi-host tests (tests/test_multihost.py), which give each
# host a network namespace of its own. Idempotent; installs only as root with
# apt-get, otherwise does nothing and those tests skip, saying why.
set -eu
if command -v ip >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_netns: ip (iproute2) missing and not root with apt-get; the multi-host tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends iproute2
