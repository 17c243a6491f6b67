"""The model a synthesis worker holds, loaded in a fresh process against a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

pytest_plugins = ["tests.fresh_redis"]  # its fixtures: redis_server, r

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import gc, json
from chorus.workers import model
model.engine()
print(json.dumps({"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects()), "loads": model.loads}))
"""


def test_a_loaded_model_is_frozen_out_of_the_collector(r: redis.Redis) -> None:
    """release_memory runs gc.collect() after each job. A full collection over
    the model and the imported libraries (about 120,000 objects) held a worker's
    GIL for 0.1-0.6 s in the scheduling benchmark while its other segments
    waited; after the load they are frozen, so it scans only what tasks left."""
    port = r.connection_pool.connection_kwargs["port"]
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
        env={**os.environ, "CHORUS_REDIS_URL": f"redis://127.0.0.1:{port}/0", "CHORUS_MODEL": "tone",
             "CHORUS_REGISTRY_FILE": str(ROOT / "tests" / "voices.toml")},
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["loads"] == 1
    assert counts["frozen"] > 50_000
    assert counts["tracked"] < counts["frozen"] / 20
