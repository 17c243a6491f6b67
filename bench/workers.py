"""Piper throughput with 1 and with 2 workers on this machine, the cores divided
between them, and each worker's resident memory.

For each layout the real stack starts on free ports, a warm-up job runs, then
the same text runs as one job; segments per second is its segment count over
its wall time (POST to done, assembly included). Memory is read from /proc for
the pool process that holds the model (its pid is in the worker's fleet record)
and for the worker's main process. Never fails on timing.

    python bench/workers.py [--text FILE] [--chapter III]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import redis
from common import run_job, sample_text

from chorus.stack import Stack, StackConfig
from chorus.worker_plan import WorkerSpec
from chorus.tasks.state.fleet import Fleet


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path)
    parser.add_argument("--chapter", default="III")
    args = parser.parse_args()
    body, source = sample_text(args.text, args.chapter)
    cores = os.cpu_count() or 1
    print(f"text: {source}; {cores} cores")

    rows = []
    for count in (1, 2):
        spec = WorkerSpec("piper-joe", count=count, threads=max(1, cores // count))
        with tempfile.TemporaryDirectory(prefix="chorus-bench-") as tmp:
            stack = Stack(StackConfig.on_free_ports(Path(tmp), workers=[spec], jobs_concurrency=1))
            env = stack.up()
            try:
                run_job(env, "Warm up. Every worker. Each one of them.", "wav")
                seconds, status = run_job(env, body, "wav")
                fleet = Fleet(redis.Redis.from_url(env["CHORUS_REDIS_URL"]), ttl_s=60)
                memory = []
                for node in fleet.nodes_of("piper-joe"):
                    child = int(fleet.get(node)["pid"])
                    memory.append((node.split("@")[0], rss_mb(child), rss_mb(parent_of(child))))
            finally:
                stack.down()
        rows.append((count, spec.threads, status["segments_total"] / seconds, seconds, status, memory))

    print()
    base = rows[0][2]
    for count, threads, rate, seconds, status, memory in rows:
        print(
            f"{count} worker(s) x {threads} thread(s): {rate:6.2f} segments/s "
            f"({status['segments_total']} segments, {status['audio_seconds']:.0f} s of audio in {seconds:.1f} s; "
            f"{rate / base:.2f}x the 1-worker rate)"
        )
        for name, model_mb, main_mb in memory:
            print(f"    {name}: model process {model_mb:.0f} MB RSS, worker main process {main_mb:.0f} MB RSS")


if __name__ == "__main__":
    main()
