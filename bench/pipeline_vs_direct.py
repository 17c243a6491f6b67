"""The same text through the whole pipeline vs. synthesised directly in one process.

Direct: one process loads the Piper voice with all cores, splits the text the
same way, synthesises every segment, joins them with the same pauses and
encodes the same format. Pipeline: the real stack (Redis, SeaweedFS, Celery
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

from common import run_job, sample_text

from chorus.stack import Stack, StackConfig, WorkerSpec
from configs import Settings, load_registry
from tasks import audio, text
from workers.engines.piper import PiperEngine


def direct(engine: PiperEngine, voice, segments: list[text.Segment], audio_format: str, settings: Settings) -> float:
    started = time.perf_counter()
    rate = engine.sample_rate
    with tempfile.TemporaryDirectory() as tmp, audio.Encoder(Path(tmp) / f"book.{audio_format}", audio_format, rate) as out:
        for segment in segments:
            out.write(engine.synthesize(segment.text, voice))
            if segment.index < len(segments) - 1:
                pause = settings.paragraph_pause_ms if segment.paragraph_end else settings.sentence_pause_ms
                out.write(audio.silence(pause / 1000, rate))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, help="a UTF-8 text file (default: a chapter of Pride and Prejudice)")
    parser.add_argument("--chapter", default="III")
    parser.add_argument("--format", default="mp3", choices=audio.FORMATS)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    body, source = sample_text(args.text, args.chapter)

    settings = Settings()
    registry = load_registry(settings.registry_file)
    model, voice = registry.model_of("joe"), registry.voice("joe")
    segments = text.split(body, model.max_segment_chars)
    cores = os.cpu_count() or 1
    print(f"text: {source}: {len(body)} characters, {len(segments)} segments; {cores} cores; format {args.format}")

    engine = PiperEngine.load(model, threads=cores)
    engine.synthesize("Warm up.", voice)
    direct_times = [direct(engine, voice, segments, args.format, settings) for _ in range(args.repeats)]
    del engine

    layouts = {f"{cores} workers x 1 thread": WorkerSpec("piper-joe", count=cores, threads=1),
               f"1 worker x {cores} threads": WorkerSpec("piper-joe", count=1, threads=cores)}
    results = {}
    for label, spec in layouts.items():
        with tempfile.TemporaryDirectory(prefix="chorus-bench-") as tmp:
            stack = Stack(StackConfig.on_free_ports(Path(tmp), workers=[spec], jobs_concurrency=1))
            env = stack.up()
            try:
                run_job(env["CHORUS_API_URL"], "Warm up the workers. Every one of them.", args.format)
                runs = [run_job(env["CHORUS_API_URL"], body, args.format) for _ in range(args.repeats)]
            finally:
                stack.down()
        results[label] = ([t for t, _ in runs], runs[-1][1]["audio_seconds"])

    best_direct = min(direct_times)
    print(f"\naudio: {results[next(iter(results))][1]:.1f} s")
    print(f"direct, 1 process x {cores} threads: {best_direct:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in direct_times)})")
    for label, (times, _) in results.items():
        best = min(times)
        overhead_ms = (best - best_direct) / len(segments) * 1000
        print(
            f"pipeline, {label}: {best:7.2f} s  ratio {best / best_direct:.3f}  "
            f"overhead {overhead_ms:+.1f} ms/segment  (runs: {', '.join(f'{t:.2f}' for t in times)})"
        )
    print(f"\nreal-time factor, direct: {best_direct / results[next(iter(results))][1]:.3f}; median direct {statistics.median(direct_times):.2f} s")


if __name__ == "__main__":
    main()
