"""The same text through the whole pipeline vs. synthesised directly in one process.

Direct: one process loads the Piper voice with all cores and does the same
work as the pipeline (chapters, sentences, spoken form, synthesis, trimming,
one loudness gain, the same pauses, the same encoder) on segments kept in
memory. Pipeline: the real stack (Redis, SeaweedFS, Celery
workers, API) started on free ports; the text is POSTed and the job polled to
`done`. Both use the same voice and the same cores; model loading is outside
both timings (workers load at start). Prints wall times, ratios and the
pipeline's overhead per segment. Never fails on timing.

    python bench/pipeline_vs_direct.py [--text FILE] [--chapter III] [--format mp3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import redis
from common import run_job, sample_text

from chorus.stack import Stack, StackConfig, WorkerSpec
from configs import Settings, load_registry
from tasks.assemble import mastering_config
from tasks.audio import formats, mastering
from tasks.state.cache import SegmentCache
from tasks.state.storage import Storage
from tasks.text.plain import parse_text
from tasks.text.plan import make_plan
from workers.engines.piper import PiperEngine


def direct(engine: PiperEngine, voice, body: str, audio_format: str) -> tuple[float, int]:
    """The same work as the pipeline, in one process: plan (chapters, sentences,
    spoken form), synthesise, trim and fade, measure loudness, one gain (and the
    limiter where needed), encode. Segments are kept in memory, as a single
    process can afford for one chapter."""
    started = time.perf_counter()
    model = engine.model
    planned = make_plan(parse_text(body), voice, model, namespace="bench").segments
    rate, config = engine.sample_rate, mastering_config()
    spoken = [mastering.prepare_segment(engine.synthesize(s.spoken, voice), rate, config) for s in planned]
    lufs, peak = mastering.measure(np.concatenate(spoken), rate)
    ceiling = config.ceiling_dbfs(audio_format)
    gain_db = config.target_lufs - lufs
    limiting = peak + gain_db > ceiling
    if limiting:
        gain_db = mastering.calibrate_gain(spoken, rate, gain_db, ceiling - mastering.LIMITER_MARGIN_DB)
    with tempfile.TemporaryDirectory() as tmp, formats.Encoder(Path(tmp) / f"book.{audio_format}", audio_format, rate) as out:
        for segment, samples in zip(planned, spoken):
            if segment.index:
                previous = planned[segment.index - 1]
                kind = "chapter" if previous.chapter != segment.chapter else ("paragraph" if previous.paragraph_end else "sentence")
                out.write(mastering.pause(config, kind, rate))
            scaled = (samples * 10 ** (gain_db / 20)).astype(np.float32)
            out.write(mastering.limit(scaled, rate, ceiling - mastering.LIMITER_MARGIN_DB) if limiting else scaled)
    return time.perf_counter() - started, len(planned)


def clear_cache(env: dict[str, str]) -> None:
    """Each pipeline run must synthesise everything, as the direct run does."""
    settings = Settings(**{k[len("CHORUS_"):].lower(): v for k, v in env.items() if k.startswith("CHORUS_")})
    SegmentCache(redis.Redis.from_url(settings.redis_url), Storage(settings), 0, 0).clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, help="a UTF-8 text file (default: a chapter of Pride and Prejudice)")
    parser.add_argument("--chapter", default="III")
    parser.add_argument("--format", default="mp3", choices=formats.FORMATS)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    body, source = sample_text(args.text, args.chapter)

    registry = load_registry(Settings().registry_file)
    model, voice = registry.model_of("joe"), registry.voice("joe")
    cores = os.cpu_count() or 1

    engine = PiperEngine.load(model, threads=cores)
    engine.synthesize("Warm up.", voice)
    direct_runs = [direct(engine, voice, body, args.format) for _ in range(args.repeats)]
    direct_times, segment_count = [t for t, _ in direct_runs], direct_runs[0][1]
    print(f"text: {source}: {len(body)} characters, {segment_count} segments; {cores} cores; format {args.format}")
    del engine

    layouts = {f"{cores} workers x 1 thread": WorkerSpec("piper-joe", count=cores, threads=1),
               f"1 worker x {cores} threads": WorkerSpec("piper-joe", count=1, threads=cores)}
    results = {}
    for label, spec in layouts.items():
        with tempfile.TemporaryDirectory(prefix="chorus-bench-") as tmp:
            stack = Stack(StackConfig.on_free_ports(Path(tmp), workers=[spec], jobs_concurrency=1))
            env = stack.up()
            try:
                run_job(env, "Warm up the workers. Every one of them.", args.format)
                runs = []
                for _ in range(args.repeats):
                    clear_cache(env)
                    runs.append(run_job(env, body, args.format))
            finally:
                stack.down()
        results[label] = ([t for t, _ in runs], runs[-1][1]["audio_seconds"])

    best_direct = min(direct_times)
    print(f"\naudio: {results[next(iter(results))][1]:.1f} s")
    print(f"direct, 1 process x {cores} threads: {best_direct:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in direct_times)})")
    for label, (times, _) in results.items():
        best = min(times)
        overhead_ms = (best - best_direct) / segment_count * 1000
        print(
            f"pipeline, {label}: {best:7.2f} s  ratio {best / best_direct:.3f}  "
            f"overhead {overhead_ms:+.1f} ms/segment  (runs: {', '.join(f'{t:.2f}' for t in times)})"
        )
    print(f"\nreal-time factor, direct: {best_direct / results[next(iter(results))][1]:.3f}; median direct {statistics.median(direct_times):.2f} s")


if __name__ == "__main__":
    main()
