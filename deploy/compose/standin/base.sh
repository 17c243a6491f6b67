#!/bin/sh
# Builds a stand-in for python:3.11-slim where no image registry can be
# reached (the compose test): Debian bookworm's minimal system with python3,
# its venv module and busybox, from Debian's own packages, imported as IMAGE.
# It trusts the certificate authorities the host trusts (HOST_CA_BUNDLE, the
# host's system bundle by default), pip included: a build reaches the package
# index the way the host does, through a TLS-inspecting proxy too.
# Usage: base.sh IMAGE WORKDIR   (root; debootstrap installed; WORKDIR is
# scratch space, removed after).
set -eu
image=$1
root=$2/rootfs
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,busybox \
    bookworm "$root" http://deb.debian.org/debian >"$2/debootstrap.log" 2>&1
# Caches and documentation an image does without.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/locale
cp "${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" "$root/etc/ssl/certs/ca-certificates.crt"
tar -C "$root" -c . | docker import -c 'ENV LANG=C.UTF-8' \
    -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' -c 'CMD ["python3"]' - "$image" >/dev/null
rm -rf "$root"
