"""The same text through the whole pipeline vs. synthesised directly, without it.

Direct: the same work as the pipeline (chapters, sentences, spoken form,
synthesis, trimming, each segment's loudness measured where it is made, one
loudness gain, the same pauses, the same encoder) on
segments kept in memory, with no Redis, S3 or Celery, in the best layouts a
single program has on the same cores: one process with N onnxruntime threads,
and N single-thread engine processes fed in order (a process pool), whose
segments the parent masters and encodes. Pipeline: the real stack (Redis,
SeaweedFS, Celery workers, API) started on free ports, in the same two
layouts; the text is POSTed and the job polled to `done`. Model loading is
outside every timing (workers and pool processes load at start).

Prints wall times; the pipeline's ratio to the best direct run (target 1.05);
the like-for-like ratio (the same layout on both sides); and the overhead per
segment (wall-time difference of like layouts / segments; target 10 ms).
Never fails on timing.

    python bench/pipeline_vs_direct.py [--text FILE] [--chapter III] [--format mp3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import redis
from common import run_job, sample_text

from chorus.stack import Stack, StackConfig
from chorus.worker_plan import WorkerSpec
from chorus.configs import Settings, load_registry
from chorus.tasks.assemble import CALIBRATION_SECONDS, CALIBRATION_SEGMENTS, mastering_config
from chorus.tasks.audio import formats, loudness, mastering
from chorus.tasks.state.cache import SegmentCache
from chorus.tasks.state.storage import Storage
from chorus.tasks.text.plain import parse_text
from chorus.tasks.text.plan import make_plan
from chorus.workers.engines.piper import PiperEngine

_engine: PiperEngine | None = None  # a pool process's own engine and voice
_voice = None


def _load_engine() -> None:
    global _engine, _voice
    registry = load_registry(Settings().registry_file)
    _engine, _voice = PiperEngine.load(registry.model_of("joe"), threads=1), registry.voice("joe")
    _engine.synthesize("Warm up.", _voice)


def _speak(spoken: str) -> tuple[np.ndarray, loudness.SegmentLevel]:
    """One segment in a pool process: synthesised, trimmed, faded and measured."""
    assert _engine is not None
    return _prepared(_engine.synthesize(spoken, _voice), _engine.sample_rate)


def _prepared(raw: np.ndarray, rate: int) -> tuple[np.ndarray, loudness.SegmentLevel]:
    """What a synthesis worker does to a segment: trim and fade, and measure its level."""
    samples = mastering.prepare_segment(raw, rate, mastering_config())
    return samples, loudness.SegmentLevel.of(samples, rate, mastering_config().sentence_pause_ms / 1000)


def direct(speak_all: Callable[[list[str]], list[tuple[np.ndarray, loudness.SegmentLevel]]], rate: int, model,
           voice, body: str, audio_format: str) -> tuple[float, int]:
    """The same work as the pipeline, without it: plan (chapters, sentences,
    spoken form), synthesise, trim, fade and measure (``speak_all``: one
    process or a pool), one gain from the levels (and the limiter where a
    segment needs it, its cost calibrated on the same sample the pipeline
    takes), encode. Segments are kept in memory, as a single program can
    afford for one chapter."""
    started = time.perf_counter()
    planned = make_plan(parse_text(body), voice, model, namespace="bench").segments
    config = mastering_config()
    spoken = speak_all([s.spoken for s in planned])
    levels = [level for _, level in spoken]
    lufs, peak = loudness.loudness_of(levels)
    ceiling = config.ceiling_dbfs(audio_format)
    gain_db = config.target_lufs - lufs
    limiting = loudness.to_db(peak) + gain_db > ceiling
    if limiting:
        stride = max(1, len(spoken) // CALIBRATION_SEGMENTS)
        sample = [samples for samples, _ in spoken[::stride]]
        seconds = np.cumsum([samples.size / rate for samples in sample])
        sample = sample[: int(np.searchsorted(seconds, CALIBRATION_SECONDS)) + 1]
        gain_db = mastering.calibrate_gain(sample, rate, gain_db, ceiling - mastering.LIMITER_MARGIN_DB)
    gain = 10 ** (gain_db / 20)
    sample_ceiling = 10 ** ((ceiling - mastering.LIMITER_MARGIN_DB) / 20)
    with tempfile.TemporaryDirectory() as tmp, formats.Encoder(Path(tmp) / f"book.{audio_format}", audio_format, rate) as out:
        for segment, (samples, level) in zip(planned, spoken):
            if segment.index:
                previous = planned[segment.index - 1]
                kind = "chapter" if previous.chapter != segment.chapter else ("paragraph" if previous.paragraph_end else "sentence")
                out.write(mastering.pause(config, kind, rate))
            scaled = (samples * gain).astype(np.float32)
            needs_limit = limiting and level.true_peak * gain > sample_ceiling
            out.write(mastering.limit(scaled, rate, ceiling - mastering.LIMITER_MARGIN_DB) if needs_limit else scaled)
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

    wide, narrow = f"1 x {cores} threads", f"{cores} x 1 thread"
    engine = PiperEngine.load(model, threads=cores)
    engine.synthesize("Warm up.", voice)
    rate = engine.sample_rate

    def in_one_process(texts: list[str]) -> list[tuple[np.ndarray, loudness.SegmentLevel]]:
        return [_prepared(engine.synthesize(t, voice), rate) for t in texts]

    direct_times: dict[str, list[float]] = {wide: [], narrow: []}
    with multiprocessing.get_context("spawn").Pool(cores, initializer=_load_engine) as pool:
        pool.map(int, range(cores))  # every process loaded before the clock starts

        def in_processes(texts: list[str]) -> list[tuple[np.ndarray, loudness.SegmentLevel]]:
            return list(pool.imap(_speak, texts, chunksize=1))

        for _ in range(args.repeats):  # interleaved: the machine's noise falls on both
            for label, speak_all in ((wide, in_one_process), (narrow, in_processes)):
                seconds, segment_count = direct(speak_all, rate, model, voice, body, args.format)
                direct_times[label].append(seconds)
    print(f"text: {source}: {len(body)} characters, {segment_count} segments; {cores} cores; format {args.format}")

    layouts = {narrow: WorkerSpec("piper-joe", count=cores, threads=1),
               wide: WorkerSpec("piper-joe", count=1, threads=cores)}
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

    best = {label: min(times) for label, times in direct_times.items()}
    best_direct_label = min(best, key=best.get)
    best_direct = best[best_direct_label]
    audio = results[narrow][1]
    print(f"\naudio: {audio:.1f} s")
    for label, times in direct_times.items():
        print(f"direct, {label}: {best[label]:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})")
    for label, (times, _) in results.items():
        fastest = min(times)
        overhead_ms = (fastest - best[label]) / segment_count * 1000
        print(
            f"pipeline, {label}: {fastest:7.2f} s  ratio to the best direct ({best_direct_label}) "
            f"{fastest / best_direct:.3f}  like for like {fastest / best[label]:.3f}  "
            f"overhead {overhead_ms:+.1f} ms/segment  (runs: {', '.join(f'{t:.2f}' for t in times)})"
        )
    print(f"\nreal-time factor, best direct: {best_direct / audio:.3f}; "
          f"median direct {best_direct_label}: {statistics.median(direct_times[best_direct_label]):.2f} s")

if __name__ == "__main__":
    main()
