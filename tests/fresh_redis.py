"""A real Redis for fast tests: one redis-server on a free port per test
module, emptied before each test (as dramatiq's and rq's test fixtures do).

    pytest_plugins = ["tests.fresh_redis"]  # in a test module: its fixtures

``redis_server`` is a client of that server; ``restartable_redis`` a server of
a test's own, stopped and started again on the same port by the test.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from chorus.ports import free_port
from chorus.stack import redis_server_binary


class RedisServer:
    """One redis-server on a fixed loopback port, in ``directory``."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory, self.port = directory, port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=self.port, socket_timeout=5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    client = redis.Redis(port=server.port, socket_timeout=5)
    try:
        yield client
    finally:
        server.stop()


@pytest.fixture
def r(redis_server: redis.Redis) -> redis.Redis:
    redis_server.flushall()
    return redis_server


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
