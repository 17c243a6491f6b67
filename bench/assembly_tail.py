"""The assembly's tail: how long a book waits after its last segment, and what
joining chapter files costs on its own.

``--book``: the real stack (Redis, SeaweedFS, a jobs worker, ``--workers``
Piper workers of one thread each, API) starts on free ports, the segment
cache is cleared, the book (or its first ``--max-chars`` characters, cut at a
paragraph) is POSTed and polled to the end. The last segment's time is the
newest Last-Modified of the job's segment objects in S3 (each is put when its
segment is done; SeaweedFS stamps whole seconds); the tail is the job's
``finished_at`` minus that.

``--tone-hours``: no stack; a book of that many hours of a 22.05 kHz tone in
``--chapters`` chapter files (two encoded with the assembly's encoder, not
timed, the rest copies), then the join alone (``remux.join``) timed.

    python bench/assembly_tail.py --book frankenstein.txt --max-chars 15000 --format m4b
    python bench/assembly_tail.py --tone-hours 6 --chapters 30 --format m4b
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from common import run_job
from pipeline_vs_direct import clear_cache
from whole_book import book_text

from chorus.configs import Settings
from chorus.stack import Stack, StackConfig
from chorus.tasks.state.cache import PREFIX
from chorus.tasks.state.storage import Storage
from chorus.tasks.audio import formats, remux
from chorus.tasks.audio.formats import FORMATS
from chorus.worker_plan import WorkerSpec

RATE = 22050


def stack_tail(args: argparse.Namespace) -> None:
    text, source = book_text(args.book, args.max_chars)
    print(f"{source}: {len(text)} characters; {args.workers} Piper workers x 1 thread; format {args.format}", flush=True)
    with tempfile.TemporaryDirectory(prefix="chorus-bench-") as tmp:
        stack = Stack(StackConfig.on_free_ports(
            Path(tmp), workers=[WorkerSpec("piper-joe", count=args.workers, threads=1)], jobs_concurrency=1))
        env = stack.up()
        try:
            run_job(env, "Warm up the workers. Every one of them.", args.format)
            clear_cache(env)
            wall, status = run_job(env, text, args.format, poll_s=1.0)
            settings = Settings(**{k[len("CHORUS_"):].lower(): v for k, v in env.items() if k.startswith("CHORUS_")})
            storage = Storage(settings)
            pages = storage.s3.get_paginator("list_objects_v2").paginate(Bucket=storage.bucket, Prefix=PREFIX)
            segments = [o["LastModified"].timestamp() for page in pages for o in page.get("Contents", ())]
        finally:
            stack.down()
    finished = datetime.fromisoformat(status["finished_at"]).timestamp()
    print(f"chapters {len(status['chapters'])}, segments {status['segments_total']} ({len(segments)} segment objects), "
          f"audio {status['audio_seconds'] / 60:.1f} min, POST to done {wall:.1f} s")
    print(f"last segment to done: {finished - max(segments):.1f} s (±1 s: S3 stamps whole seconds)")


def tone_remux(args: argparse.Namespace) -> None:
    seconds = args.tone_hours * 3600 / args.chapters
    t = np.arange(RATE * 10) / RATE
    block = (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="chorus-bench-") as tmp:
        # Two chapter files are encoded (the first, and one that opens with the
        # chapter pause); the later chapters are copies of the second: the
        # join's cost is in the packets, not in what they hold.
        started = time.perf_counter()
        made = []
        for number in range(min(2, args.chapters)):
            path = Path(tmp) / f"{number:03d}.{args.format}"
            with formats.Encoder(path, args.format, RATE, aac_coder="fast") as encoder:
                if number:
                    encoder.write(np.zeros(2 * RATE, dtype=np.float32))
                for _ in range(round(seconds / 10)):
                    encoder.write(block)
                encoder.pad_to_frame()
            made.append(path)
        parts = made[:1] + [made[-1]] * (args.chapters - 1)
        encoded = time.perf_counter() - started
        size = sum(p.stat().st_size for p in parts)
        started, cpu = time.perf_counter(), time.process_time()
        joined = remux.join(parts, [f"Chapter {n + 1}" for n in range(args.chapters)], Path(tmp) / f"book.{args.format}",
                            args.format, "Tone", "Bench")
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"{args.tone_hours} h of {args.format} in {args.chapters} chapter files ({size / 1e6:.0f} MB; "
          f"two of them encoded in {encoded:.0f} s, not part of the join)")
    print(f"join: {took:.2f} s wall, {cpu:.2f} s CPU; the book {joined.duration / 3600:.3f} h")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", help="a file of the corpus, or a path")
    parser.add_argument("--max-chars", type=int, help="only the book's first N characters (cut at a paragraph)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Piper workers, one thread each")
    parser.add_argument("--tone-hours", type=float, help="time the join alone, on a tone book this long")
    parser.add_argument("--chapters", type=int, default=30)
    parser.add_argument("--format", default="m4b", choices=FORMATS)
    args = parser.parse_args()
    if args.tone_hours:
        tone_remux(args)
    elif args.book:
        stack_tail(args)
    else:
        parser.error("--book or --tone-hours")


if __name__ == "__main__":
    main()
