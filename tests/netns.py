"""Machines on a private network, for tests: one Linux network namespace per
host, each joined by a veth pair to one bridge, like machines on one switch.
The test process is on the bridge too, as the operator's machine. A host sees
the others only through its link, with a loopback of its own, so what binds to
loopback on one host is out of every other host's reach.

Needs root and iproute2. Names carry a random tag, so runs side by side do not
clash; ``close`` removes everything made, and ends the processes still inside
the namespaces (all started by the test that made them).
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

LINK = "eth0"  # each host's link to the bridge, inside its namespace


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def unavailable() -> str | None:
    """Why hosts cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not shutil.which("ip"):
        return "no ip command (iproute2)"
    probe = f"chorus-probe-{uuid.uuid4().hex[:8]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.200.0.0/13 that no address or route of this machine touches."""
    taken = []
    for line in _ip("-4", "-o", "addr", "show").stdout.splitlines() + _ip("-4", "route", "show").stdout.splitlines():
        for word in line.split():
            try:
                taken.append(ipaddress.ip_network(word, strict=False))
            except ValueError:
                pass
    for _ in range(100):
        subnet = ipaddress.ip_network(f"10.{random.randint(200, 207)}.{random.randint(0, 255)}.0/24")
        if not any(subnet.overlaps(other) for other in taken if other.prefixlen > 0):
            return subnet
    raise RuntimeError("no free private /24 for the test network")


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    outside: str  # the root namespace's end of its veth, on the bridge

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]

    def run(self, argv: list[str], check: bool = False, **options) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(argv), check=check, capture_output=True, text=True, **options)

    def start(self, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
        """A long-running process on this host, in a session of its own."""
        with log.open("ab") as out:
            return subprocess.Popen(self.command(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)

    def cut(self) -> None:
        """Pull the cable: the link goes down, nothing inside the host is told."""
        _ip("-n", self.namespace, "link", "set", LINK, "down")

    def reachable(self, address: str, ports: list[int], timeout: float = 3) -> set[int]:
        """Which ports of address accept a TCP connection from this host."""
        probe = (
            "import json, socket, sys\n"
            "open_ = []\n"
            "for port in json.loads(sys.argv[2]):\n"
            "    try:\n"
            f"        socket.create_connection((sys.argv[1], port), timeout={timeout}).close()\n"
            "        open_.append(port)\n"
            "    except OSError:\n"
            "        pass\n"
            "print(json.dumps(open_))\n"
        )
        done = self.run([sys.executable, "-c", probe, address, json.dumps(ports)], timeout=60 + timeout * len(ports),
                        check=True)
        return set(json.loads(done.stdout))

    def listeners(self) -> set[tuple[str, int]]:
        """(address, port) of every TCP socket listening on this host."""
        found = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in self.run(["cat", table], check=True).stdout.splitlines()[1:]:
                fields = line.split()
                if fields[3] != "0A":  # LISTEN
                    continue
                raw, port = fields[1].split(":")
                # /proc shows each 32-bit word of the address in host (little-endian) order.
                words = [bytes.fromhex(raw[i:i + 8])[::-1] for i in range(0, len(raw), 8)]
                found.add((str(ipaddress.ip_address(b"".join(words))), int(port, 16)))
        return found

    def pids(self) -> list[int]:
        return [int(pid) for pid in _ip("netns", "pids", self.namespace, check=False).stdout.split()]


class Network:
    """Hosts on one /24: each host gets .1, .2, ... in order; the test process .254."""

    def __init__(self, names: list[str]) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.bridge = f"chb{self.tag}"
        subnet = _free_subnet()
        self.address = str(subnet[254])
        self.hosts: dict[str, Host] = {}
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.address}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            self._let_the_bridge_forward(True)
            for number, name in enumerate(names, start=1):
                outside = f"ch{self.tag}{number}"  # at most 15 characters, as the kernel wants
                host = Host(name, f"chorus-{self.tag}-{name}", str(subnet[number]), outside)
                _ip("netns", "add", host.namespace)
                self.hosts[name] = host
                _ip("link", "add", outside, "type", "veth", "peer", "name", LINK, "netns", host.namespace)
                _ip("link", "set", outside, "master", self.bridge, "up")
                _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", LINK)
                _ip("-n", host.namespace, "link", "set", LINK, "up")
                _ip("-n", host.namespace, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def _let_the_bridge_forward(self, on: bool) -> None:
        """Accept traffic between this bridge's ports in the host's firewall (and
        take the rule back). Where bridged frames pass through iptables
        (br_netfilter, as Docker sets it up) under a FORWARD policy of DROP, the
        hosts would otherwise not reach each other at all."""
        if shutil.which("iptables") is None:
            return
        rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]
        subprocess.run(["iptables", "-I" if on else "-D", *rule], capture_output=True, timeout=30, check=False)

    def close(self) -> None:
        """End what still runs in the hosts, then remove them and the bridge.
        Links cut are restored first, so the kernel can close the connections
        across them; the veths are deleted by name, because a namespace whose
        sockets still wait on a peer outlives ``ip netns del`` for minutes,
        and its veth with it."""
        for host in self.hosts.values():
            _ip("-n", host.namespace, "link", "set", LINK, "up", check=False)
        for host in self.hosts.values():
            for pid in host.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for host in self.hosts.values():
            _ip("link", "del", host.outside, check=False)
            _ip("netns", "del", host.namespace, check=False)
        self._let_the_bridge_forward(False)
        _ip("link", "del", self.bridge, check=False)
