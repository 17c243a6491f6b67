"""Ports for the local stack: free ones to hand out, and checks that one is
free or already answering."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from chorus.tasks.errors import ChorusError

# SeaweedFS derives each gRPC port as its HTTP port + 10000 (some of its
# internal clients assume so), so every port it is given needs both free.
GRPC_OFFSET = 10000
# Lowest port free_port hands out: above the common fixed ports of databases
# and development servers.
LISTEN_LOW = 10240
_handed_out: set[int] = set()
_rng = random.SystemRandom()


class NoFreePort(ChorusError):
    """No free port is left in the range free_port draws from."""


def free_port(host: str = "127.0.0.1", with_grpc: bool = False) -> int:
    """A port free now (and its gRPC twin, when asked) on host.

    Chosen below the kernel's ephemeral range: a port from bind(0) lies inside
    it, where any outgoing connection (a worker dialling Redis, SeaweedFS's
    servers dialling each other) may take it before the server meant for it
    binds. Never the same port twice in one process, so the ports of one
    stack cannot collide with each other either."""
    top = _ephemeral_low() - (GRPC_OFFSET if with_grpc else 0)
    for _ in range(500):
        port = _rng.randrange(LISTEN_LOW, top)
        pair = (port, port + GRPC_OFFSET) if with_grpc else (port,)
        if any(p in _handed_out for p in pair) or not all(is_free(host, p) for p in pair):
            continue
        _handed_out.update(pair)
        return port
    raise NoFreePort(f"no free port{' pair' if with_grpc else ''} found in {LISTEN_LOW}-{top}")


def _ephemeral_low() -> int:
    """The bottom of the ports the kernel gives outgoing connections; 32768
    (Linux's default, below macOS's 49152) where it cannot be read."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
    # A range opened down to the low ports leaves nothing safe: fall back to
    # Linux's default and trust the check at bind.
    return low if low > LISTEN_LOW + 2 * GRPC_OFFSET else 32768


def is_free(host: str, port: int) -> bool:
    """Whether a server could bind host:port now."""
    with socket.socket() as probe:
        # Servers bind with SO_REUSEADDR, so a port in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def accepts(host: str, port: int) -> bool:
    """Whether something listens on host:port (raises OSError when nothing does)."""
    with socket.create_connection((host, port), timeout=1):
        return True
