"""One whole book through the real stack: speed, and each process's memory and CPU.

The stack ``chorus up`` starts (Redis, SeaweedFS, the jobs worker and its
embedded beat, ``--workers`` Piper workers of one thread each, API, Flower)
starts on free ports. A warm-up job runs, the segment cache is cleared (cache
hits should be 0), then the book is sent as ``chorus submit`` sends it (the
file's bytes as they are) and polled to the end. Prints (never fails on
timing): wall time (the job's ``created_at`` to ``finished_at``: POST to done),
audio hours, real-time factor, segments/s, chapters and segments, the time from
the POST to the first chapter's file, from the last segment to done, and the
host's load average; for every process of the stack (the pid files and their
children; pool processes and the beat told apart by the workers' ``inspect
stats``) its peak RSS sampled every 0.5 s during the job, its VmHWM (catches
spikes between samples, but includes start-up) and its CPU seconds during the
job; Redis' used_memory before, sampled peak during and after the job, and its
own used_memory_peak (which includes before the job). Ends with a Markdown
table for docs/benchmarks.md.

    python bench/whole_book.py [--book frankenstein.txt|PATH] [--format m4b] [--workers N] [--max-chars N]
    python bench/whole_book.py --max-chars 6000     # a quick try: about a minute on two cores
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import redis
from celery import Celery
from common import CORPUS, read_text, run_job
from pipeline_vs_direct import clear_cache

from chorus.stack import Stack, StackConfig
from chorus.worker_plan import WorkerSpec
from chorus.tasks.audio.formats import FORMATS

SERVICES = {"supervisord": "supervisord", "beat": "beat", "api": "API", "flower": "Flower", "redis": "Redis", "s3": "SeaweedFS", "worker-jobs": "jobs worker"}
MB = 1024 * 1024


@dataclass
class Proc:
    role: str  # e.g. "piper-joe worker pool": rows of one role are summed up together
    name: str  # the service it belongs to, e.g. "worker-piper-joe-1"
    process: psutil.Process
    cpu_start: float = 0.0  # 0 for a process born during the job: all its CPU is the job's
    cpu_last: float = 0.0
    peak_rss: int = 0
    hwm_mb: float | None = None


def cpu_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system  # its own only: children are rows of their own


def hwm_mb(pid: int) -> float | None:
    """The kernel's high-water mark of the process's resident memory; None once it is gone."""
    status = Path(f"/proc/{pid}/status")
    lines = status.read_text().splitlines() if status.exists() else []
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM:")), None)


class Sampler(threading.Thread):
    """Every ``interval`` s: each process's RSS and CPU time, and Redis' used_memory."""

    def __init__(self, stack: Stack, env: dict[str, str], pool_pids: set[int], interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.stack, self.pool_pids, self.interval = stack, pool_pids, interval
        self.redis = redis.Redis.from_url(env["CHORUS_REDIS_URL"])
        self.procs: dict[int, Proc] = {}
        self.procs_at_start: set[int] = set()
        self.redis_peak = 0
        self.stopping = threading.Event()
        self.sample(first=True)  # baselines, before the clock starts

    def label(self, name: str, process: psutil.Process, child: bool) -> str:
        service = SERVICES.get(name) or f"{name.removeprefix('worker-').rsplit('-', 1)[0]} worker"
        if not child:
            return service if not name.startswith("worker-") else f"{service} main"
        if name.startswith("worker-"):
            # Forked, without setproctitle, a worker's children all show its own
            # command line: the jobs worker's one child outside its pool is the
            # embedded beat; one born later is a pool process replacing another.
            known = process.pid in self.pool_pids or process.pid not in self.procs_at_start
            return f"{service} pool" if known else "beat"
        command = " ".join(process.cmdline())
        if "resource_tracker" in command:  # multiprocessing's, beside a spawned pool
            return f"{service} resource tracker"
        # The API's planner pool (api/planner.py); else e.g. Redis forking to rewrite its AOF.
        return f"{service} planner" if "spawn_main" in command else f"{service} child"

    def sample(self, first: bool = False) -> None:
        for name, pid in self.stack.running().items():
            try:
                main = psutil.Process(pid)
                # supervisord's children are the services, each labelled under its own name.
                children = [] if name == "supervisord" else main.children(recursive=True)
                family = [(main, False), *((c, True) for c in children)]
            except psutil.Error:
                continue
            for process, child in family:
                if first:
                    self.procs_at_start.add(process.pid)
                if process.pid not in self.procs:
                    try:
                        self.procs[process.pid] = Proc(self.label(name, process, child), name, process)
                    except psutil.Error:  # gone meanwhile
                        continue
        for entry in self.procs.values():
            try:
                cpu, rss = cpu_of(entry.process), entry.process.memory_info().rss
            except psutil.Error:
                continue  # gone: keep what it last showed
            entry.cpu_last, entry.peak_rss = cpu, max(entry.peak_rss, rss)
            if first:
                entry.cpu_start = cpu
        self.redis_peak = max(self.redis_peak, int(self.redis.info("memory")["used_memory"]))

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.sample()
            except (redis.RedisError, OSError) as error:  # one missed sample, not a dead sampler
                print(f"  sample skipped: {error}", flush=True)

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.sample()
        for pid, entry in self.procs.items():
            entry.hwm_mb = hwm_mb(pid)


def pool_pids(env: dict[str, str]) -> set[int]:
    """Pool processes of every Celery worker of the stack, as the workers report them."""
    app = Celery("bench", broker=env["CHORUS_REDIS_URL"])
    try:
        stats = app.control.inspect(timeout=3).stats() or {}
    finally:
        app.close()
    pids = {int(pid) for node in stats.values() for pid in node.get("pool", {}).get("processes", [])}
    if not pids:
        print("no worker answered `inspect stats`: workers' children are all labelled beat", flush=True)
    return pids


def book_file(book: str, max_chars: int | None) -> tuple[str, bytes, int]:
    """(file name, bytes to upload, characters): the file as it is (a Gutenberg
    book in Windows-1252 with CRLF stays so: the API detects it), or with
    ``max_chars`` its first characters cut at a paragraph, as UTF-8."""
    path = Path(book) if Path(book).is_file() else CORPUS / book
    if not path.is_file():
        raise SystemExit(f"book not found: {book} (neither a file nor in the corpus at {CORPUS}; "
                         "CHORUS_BENCH_CORPUS sets where the corpus is)")
    text = read_text(path)
    if not max_chars or len(text) <= max_chars:
        return path.name, path.read_bytes(), len(text)
    cut = text.rfind("\n\n", 0, max_chars)  # at a paragraph boundary, so no sentence is cut
    text = text[: cut if cut > 0 else max_chars]
    return path.name, text.encode(), len(text)


class LoadWatch(threading.Thread):
    """The host's 1-minute load average every 10 s: how busy the cores were besides."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.loads: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(10):
            self.loads.append(os.getloadavg()[0])

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.loads.append(os.getloadavg()[0])

    def mean(self) -> float:
        return sum(self.loads) / len(self.loads)

    def max(self) -> float:
        return max(self.loads)


@dataclass
class Run:
    status: dict  # the final status
    first_chapter_s: float | None  # POST to the first chapter's file in S3 (its status "ready")
    last_segment_at: float | None  # epoch seconds of the first poll that saw every segment done


def run_book(env: dict[str, str], upload: tuple[str, bytes], audio_format: str, timeout: float) -> Run:
    """Send the book as ``chorus submit`` does (the file's bytes as they are, in
    a multipart form) and poll it to the end: once a second, quiet for the API,
    and every 0.2 s from the last few segments on, so the wait from the last
    segment to done is seen to a fifth of a second."""
    api, headers = env["CHORUS_API_URL"], {"Authorization": f"Bearer {env['CHORUS_API_KEY']}"}
    first_chapter = last_segment = None
    with httpx.Client(base_url=api, headers=headers, timeout=120) as http:
        answer = http.post("/v1/jobs", files={"file": (upload[0], upload[1], "text/plain")},
                           data={"voice": "joe", "format": audio_format})
        if answer.status_code != 202:
            raise SystemExit(f"POST /v1/jobs: {answer.status_code} {answer.text[:300]}")
        job_id, started = answer.json()["id"], time.monotonic()
        shown = started
        while True:
            status = http.get(f"/v1/jobs/{job_id}").json()
            now = time.monotonic() - started
            if first_chapter is None and any(c["ready"] for c in status["chapters"]):
                first_chapter = now
            total, done = status["segments_total"], status["segments_done"]
            if last_segment is None and total and done >= total:
                last_segment = time.time()
            if status["state"] in ("done", "failed", "cancelled") or now > timeout:
                return Run(status, first_chapter, last_segment)
            if time.monotonic() - shown >= 60:  # a sign of life on a half-hour job
                shown = time.monotonic()
                print(f"  {now:5.0f} s: {done}/{total} segments, load average {os.getloadavg()[0]:.1f}", flush=True)
            time.sleep(0.2 if total and total - done <= 8 else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", default="frankenstein.txt", help="a file of the corpus, or a path")
    parser.add_argument("--format", default="m4b", choices=FORMATS)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Piper workers, one thread each")
    parser.add_argument("--max-chars", type=int, help="only the book's first N characters (cut at a paragraph)")
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    args = parser.parse_args()
    if not CORPUS.is_dir() and not Path(args.book).is_file():
        raise SystemExit(f"no corpus at {CORPUS} (set CHORUS_BENCH_CORPUS, or pass --book PATH)")
    source, data, characters = book_file(args.book, args.max_chars)
    upload = (source, data)
    print(f"{source}: {characters} characters, {len(data)} bytes uploaded; {args.workers} Piper workers x 1 thread; format {args.format}", flush=True)

    with tempfile.TemporaryDirectory(prefix="chorus-bench-") as tmp:
        stack = Stack(StackConfig.on_free_ports(
            Path(tmp), workers=[WorkerSpec("piper-joe", count=args.workers, threads=1)]))
        env = stack.up()
        try:
            run_job(env, "Warm up the workers. Every one of them.", args.format)
            clear_cache(env)
            client = redis.Redis.from_url(env["CHORUS_REDIS_URL"])
            redis_before = client.info("memory")
            sampler = Sampler(stack, env, pool_pids(env))
            sampler.start()
            loads = LoadWatch()
            loads.start()
            run = run_book(env, upload, args.format, args.timeout)
            sampler.stop()
            loads.stop()
            redis_after = client.info("memory")
        finally:
            stack.down()
    if run.status["state"] != "done":
        raise SystemExit(f"job {run.status['state']}: {run.status.get('error')}")
    report(run, sampler, loads, redis_before, redis_after, source, args)


def report(run: Run, sampler: Sampler, loads: LoadWatch, before: dict, after: dict, source: str,
           args: argparse.Namespace) -> None:
    status, stamp = run.status, datetime.fromisoformat
    wall = (stamp(status["finished_at"]) - stamp(status["created_at"])).total_seconds()
    audio, segments, chapters = status["audio_seconds"], status["segments_total"], len(status["chapters"])
    first = f"{run.first_chapter_s:.1f} s" if run.first_chapter_s is not None else "not seen"
    # The job's own end less the poll that first saw every segment done (late by at most 0.2 s).
    finished = stamp(status["finished_at"]).timestamp()
    tail = f"{finished - run.last_segment_at:.1f} s" if run.last_segment_at is not None else "not seen"
    print(f"\nwall time        {wall:.1f} s (POST to done)")
    print(f"audio            {audio / 3600:.3f} h ({audio:.0f} s); real-time factor {wall / audio:.4f}")
    print(f"first chapter    its file {first} after the POST")
    print(f"last segment     to done {tail}")
    print(f"load average     1-min, sampled every 10 s during the job: mean {loads.mean():.1f}, max {loads.max():.1f}"
          f" (host of {os.cpu_count()} cores)")
    print(f"segments         {segments} in {chapters} chapters; {segments / wall:.2f} segments/s; cache hits {status['cache_hits']}")

    procs = sorted(sampler.procs.values(), key=lambda p: (p.name, p.role))
    print(f"\n{'process':<28}{'service':<22}{'pid':>8}{'peak RSS MB':>13}{'VmHWM MB':>10}{'CPU s':>9}")
    for p in procs:
        hwm = f"{p.hwm_mb:.0f}" if p.hwm_mb is not None else "gone"
        print(f"{p.role:<28}{p.name:<22}{p.process.pid:>8}{p.peak_rss / MB:>13.0f}{hwm:>10}{p.cpu_last - p.cpu_start:>9.1f}")

    roles: dict[str, list[Proc]] = {}
    for p in procs:
        roles.setdefault(p.role, []).append(p)
    cpu_total = sum(p.cpu_last - p.cpu_start for p in procs)
    print(f"\n{'role':<28}{'processes':>10}{'max peak RSS MB':>17}{'sum of peaks MB':>17}{'CPU s':>9}")
    for role, group in roles.items():
        peaks = [p.peak_rss / MB for p in group]
        print(f"{role:<28}{len(group):>10}{max(peaks):>17.0f}{sum(peaks):>17.0f}{sum(p.cpu_last - p.cpu_start for p in group):>9.1f}")
    print(f"{'all':<28}{len(procs):>10}{'':>17}{sum(p.peak_rss for p in procs) / MB:>17.0f}{cpu_total:>9.1f}"
          f"  ({cpu_total / wall:.2f} cores over the wall time)")

    print(f"\nRedis memory     before the job {before['used_memory_human']}, at the end {after['used_memory_human']}; "
          f"peak sampled during the job {sampler.redis_peak / MB:.2f}M; "
          f"used_memory_peak {after['used_memory_peak_human']} ({after['used_memory_peak']} bytes, includes before the job)")

    print("\nMarkdown:\n")
    print(f"| {source}{f' (first {args.max_chars} chars)' if args.max_chars else ''}, {args.format}, "
          f"{args.workers} Piper workers × 1 thread | |")
    print("|---|---|")
    print(f"| chapters / segments | {chapters} / {segments} |")
    print(f"| audio | {audio / 3600:.2f} h |")
    print(f"| wall time (POST to done) | {wall / 60:.1f} min |")
    print(f"| real-time factor | {wall / audio:.3f} |")
    print(f"| first chapter's file (after the POST) | {first} |")
    print(f"| last segment to done | {tail} |")
    print(f"| load average during the job (mean / max) | {loads.mean():.1f} / {loads.max():.1f} |")
    print(f"| segments/s | {segments / wall:.2f} |")
    print(f"| CPU, all processes | {cpu_total:.0f} s ({cpu_total / wall:.2f} cores) |")
    for role, group in roles.items():
        each = f" (× {len(group)}, each at most)" if len(group) > 1 else ""
        print(f"| peak RSS, {role}{each} | {max(p.peak_rss for p in group) / MB:.0f} MB |")
    print(f"| Redis used_memory: before / peak during / end | {before['used_memory_human']} / "
          f"{sampler.redis_peak / MB:.2f}M / {after['used_memory_human']} |")


if __name__ == "__main__":
    main()
