"""Kill one service of a running stack and bring it back: the one place the
tests do it.

    outage = restart_redis(stack, down_s=5)   # SIGKILL, 5 s down, started again
    outage.answering_s                        # from the kill to the service answering

Every fault is a SIGKILL of the service's whole process group (no clean
shutdown: Redis's append-only file holds what it acknowledged, SeaweedFS its
volumes). With ``down_s`` the service is then held stopped in supervisord for
that long before it is started again (an outage of that length); without, it
comes back as supervisord restarts any service that dies. Either way the
helpers wait until it answers.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from chorus.stack import Stack


@dataclass(frozen=True)
class Outage:
    """One service killed and back: monotonic times of the kill and of its first answer."""

    service: str
    killed_at: float
    answering_at: float

    @property
    def answering_s(self) -> float:
        return self.answering_at - self.killed_at

    def since_kill(self, moment: float | None = None) -> float:
        return (time.monotonic() if moment is None else moment) - self.killed_at


def crash(stack: Stack, service: str, down_s: float = 0, timeout: float = 20) -> float:
    """SIGKILL a service's process group, wait until its process is gone, and
    hold it down for ``down_s`` (then start it again); the monotonic time of the kill."""
    pid = stack.pid(service)
    killed_at = time.monotonic()
    try:
        os.killpg(pid, signal.SIGKILL)  # supervisord starts each service as a group leader
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"{service} (pid {pid}) still alive {timeout} s after SIGKILL"
        time.sleep(0.05)
    if down_s > 0:
        stack.stop_service(service)  # also stops a restart supervisord may have begun
        time.sleep(max(0.0, down_s - (time.monotonic() - killed_at)))
        stack.start_service(service)
    return killed_at


def restart_redis(stack: Stack, down_s: float) -> Outage:
    killed_at = crash(stack, "redis", down_s)
    client = redis.Redis.from_url(stack.environment()["CHORUS_REDIS_URL"], socket_connect_timeout=1)
    _wait("redis", lambda: client.ping())
    return Outage("redis", killed_at, time.monotonic())


def restart_s3(stack: Stack, down_s: float) -> Outage:
    killed_at = crash(stack, "s3", down_s)
    stack._start_s3(stack.environment())  # waits until the bucket takes a write
    return Outage("s3", killed_at, time.monotonic())


def restart_api(stack: Stack, down_s: float = 0) -> Outage:
    killed_at = crash(stack, "api", down_s)
    stack._start_api(stack.environment())  # waits until /healthz answers 200
    return Outage("api", killed_at, time.monotonic())


def _wait(service: str, answers, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if answers() is not False:
                return
        except (redis.RedisError, httpx.HTTPError, OSError):
            pass
        assert time.monotonic() < deadline, f"{service} did not answer within {timeout} s"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:  # our own child until reaped: a zombie counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:
        pass
    if not Path(f"/proc/{pid}").exists():
        return False
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
