"""Scratch directories: a worker starting clears what its own crashed
predecessor left, never another stack's work on the same host."""

from __future__ import annotations

from pathlib import Path

import pytest

from chorus.configs import Settings
from chorus.tasks import scratch


def in_cluster(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    monkeypatch.setattr(scratch, "get_settings", lambda: Settings(redis_url=redis_url))


def test_a_starting_worker_leaves_another_stacks_node_of_the_same_name(tmp_path: Path, monkeypatch) -> None:
    """Two stacks on one host both have a jobs@<host>; the second starting must
    not delete the first one's assembly in flight (seen: a test run beside
    another one failed with the encoded audiobook gone)."""
    monkeypatch.setattr(scratch, "ROOT", tmp_path)
    in_cluster(monkeypatch, "redis://127.0.0.1:1001/0")
    running = scratch._node_dir("jobs@host") / "4242" / "assemble-x"
    running.mkdir(parents=True)
    in_cluster(monkeypatch, "redis://127.0.0.1:1002/0")
    left_by_crash = scratch._node_dir("jobs@host") / "77" / "assemble-y"
    left_by_crash.mkdir(parents=True)

    scratch._clear_node_at_worker_start("jobs@host")  # the second stack's jobs worker starts

    assert running.is_dir() and not left_by_crash.exists()
