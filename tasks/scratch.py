"""Where the jobs worker keeps its temporary files (a book or a chapter encoded
before its upload), and how a restart clears what a crashed one left there.

    <system temp dir>/chorus-scratch-<uid>/<cluster>/<worker node>/<pid>/...

Each pool process works in a directory named after its pid. When a worker
starts, its main process clears the node's whole directory (no pool process
runs yet); when a pool process starts, including one that replaces a pool
process killed mid-assembly, it removes the directories of its node whose
process is gone. A normal run cleans up after itself (``directory``).

Node names are unique within a cluster (one broker), not on a host: two
stacks on one machine (a test run beside ``chorus up``, two deployments) both
have a ``jobs@<host>``. ``<cluster>`` (a hash of the broker's URL) keeps one
stack's worker, starting, from clearing the other's assembly in flight.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from celery.signals import celeryd_after_setup, worker_process_init

from chorus.configs import get_settings

ROOT = Path(tempfile.gettempdir()) / f"chorus-scratch-{os.getuid()}"
_node = "local"  # this process's worker node name, once it is a pool process


def cluster_dir() -> Path:
    """This cluster's part of the host's scratch area."""
    return ROOT / hashlib.sha256(get_settings().redis_url.encode()).hexdigest()[:16]


def _node_dir(node: str) -> Path:
    return cluster_dir() / re.sub(r"[^A-Za-z0-9@._-]", "_", node)


def process_dir() -> Path:
    """This process's own scratch directory (made on first use, 0700)."""
    path = _node_dir(_node) / str(os.getpid())
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def directory(prefix: str) -> tempfile.TemporaryDirectory:
    """A temporary directory in this process's scratch area, removed on exit."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=process_dir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now holds that pid
        return True
    return True


def clear_dead(node: str) -> list[Path]:
    """Remove the scratch directories of the node's processes that are gone."""
    removed = []
    node_dir = _node_dir(node)
    for child in node_dir.iterdir() if node_dir.is_dir() else []:
        if child.name.isdigit() and int(child.name) != os.getpid() and not _alive(int(child.name)):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


@celeryd_after_setup.connect
def _clear_node_at_worker_start(sender: str, **_: object) -> None:
    shutil.rmtree(_node_dir(sender), ignore_errors=True)


@worker_process_init.connect
def _clear_dead_at_process_start(sender: str, **_: object) -> None:
    global _node
    _node = sender or _node
    clear_dead(_node)
