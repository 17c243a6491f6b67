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
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chorus.stack import Stack, StackConfig, WorkerSpec  # noqa: E402
from configs import Settings, load_registry  # noqa: E402
from tasks import audio, text  # noqa: E402
from workers.engines.piper import PiperEngine  # noqa: E402

CORPUS = Path(os.environ.get("CHORUS_BENCH_CORPUS", ROOT.parent / "shared" / "corpus"))


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252")  # the corpus's Pride and Prejudice is Windows-1252


def chapter(book: str, numeral: str) -> str:
    """One chapter of a Gutenberg-style book, without its illustration tags."""
    heads = list(re.finditer(r"^\s*\[?chapter\s+([ivxlc]+)\.\]?\s*$", book, re.I | re.M))
    for number, head in enumerate(heads):
        if head.group(1).upper() == numeral.upper():
            end = heads[number + 1].start() if number + 1 < len(heads) else len(book)
            body = book[head.end() : end]
            return re.sub(r"^\[Illustration[^\]]*\]\s*$", "", body, flags=re.M).strip()
    raise SystemExit(f"chapter {numeral} not found")


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


def pipeline(api: str, body: str, audio_format: str) -> tuple[float, dict]:
    started = time.perf_counter()
    job = httpx.post(f"{api}/v1/jobs", json={"text": body, "voice": "joe", "format": audio_format}, timeout=60).json()
    while True:
        status = httpx.get(f"{api}/v1/jobs/{job['id']}", timeout=30).json()
        if status["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if status["state"] != "done":
        raise SystemExit(f"pipeline job {status['state']}: {status['error']}")
    return elapsed, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, help="a UTF-8 text file (default: a chapter of Pride and Prejudice)")
    parser.add_argument("--chapter", default="III")
    parser.add_argument("--format", default="mp3", choices=audio.FORMATS)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    corpus_book = CORPUS / "pride_and_prejudice.txt"
    if args.text:
        body, source = read_text(args.text), str(args.text)
    elif corpus_book.exists():
        body, source = chapter(read_text(corpus_book), args.chapter), f"Pride and Prejudice, chapter {args.chapter}"
    else:
        body, source = read_text(ROOT / "examples" / "the-lighthouse-keeper.txt"), "examples/the-lighthouse-keeper.txt"

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
                pipeline(env["CHORUS_API_URL"], "Warm up the workers. Every one of them.", args.format)
                runs = [pipeline(env["CHORUS_API_URL"], body, args.format) for _ in range(args.repeats)]
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
