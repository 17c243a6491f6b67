#!/usr/bin/env bash
# Installs what the compose deployment test needs on Debian: the Docker engine
# (docker.io), Compose (the `docker compose` plugin where the distribution has
# one, else docker-compose) and debootstrap, which builds the base image from
# Debian's own packages where no image registry can be reached.
# Root only; prints nothing but apt's errors. Exits non-zero when it cannot.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
    echo "install_docker.sh: needs root (apt-get)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
    for candidate in docker-compose-plugin docker-compose-v2 docker-compose; do
        if apt-cache show "$candidate" >/dev/null 2>&1; then
            need+=("$candidate")
            break
        fi
    done
fi
if [ "${#need[@]}" -gt 0 ]; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
command -v dockerd >/dev/null
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null
