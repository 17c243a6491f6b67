"""A real Redis for fast tests: one redis-server on a free port per test
module, emptied before each test (as dramatiq's and rq's test fixtures do).

    pytest_plugins = ["tests.fresh_redis"]  # in a test module: its fixtures
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


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    port = free_port()
    directory: Path = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    client = redis.Redis(port=port, socket_timeout=5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    try:
        yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def r(redis_server: redis.Redis) -> redis.Redis:
    redis_server.flushall()
    return redis_server
