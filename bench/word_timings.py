"""Word timings from the real Piper voice on the corpus's English books.

For the first segments of each book's first chapters (as a job plans them),
speaks each segment twice on one onnxruntime thread (how a Piper worker runs):
once with the model as it is, once with the model patched for alignments and
the words found in them, in alternating order. Prints, per book and overall:

* the share of segments timed word by word (the voice's words match the
  spoken form's and the plan's correspondence maps them to written words);
* the cost of alignments: total time with them over total time without,
  both including espeak-ng and the ONNX run, minus one; and the same per
  second of audio made (Piper's durations vary from call to call);
* the acoustic check without speech recognition: the share of segments whose
  audio within 10 ms of their words' edges is quieter than the segment's mean,
  and the median of that ratio;
* the pauses, in a real book: the first paragraphs of each book's first
  chapter read through the real stack (one Piper worker) to FLAC, decoded;
  the share of the manifest's pauses (an entry's end to the next's start)
  heard within 20 ms of where it says (``timings.silent_gaps`` /
  ``pause_offsets``), and the worst offset. ``--paragraphs 0`` leaves it out.

Never fails on timing.

    python bench/word_timings.py [--segments 40] [--paragraphs 6]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf
from common import CORPUS, read_text, run_job

from chorus.configs import Settings, load_registry
from chorus.stack import Stack, StackConfig
from chorus.tasks.audio import mastering, timings
from chorus.tasks.text.plain import parse_text
from chorus.tasks.text.plan import make_plan
from chorus.worker_plan import WorkerSpec
from chorus.workers.engines.piper import PiperEngine

BOOKS = ("pride_and_prejudice.txt", "frankenstein.txt")
PAUSE_TOLERANCE_S = 0.020


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=40, help="segments per book, from its first chapters (0: none)")
    parser.add_argument("--paragraphs", type=int, default=6,
                        help="paragraphs of each book's first chapter read through the stack for the pauses (0: none)")
    args = parser.parse_args()
    if args.segments:
        segment_timings(args.segments)
    if args.paragraphs:
        pauses(args.paragraphs)


def segment_timings(count: int) -> None:
    registry = load_registry(Settings().registry_file)
    model, voice = registry.models["piper-joe"], registry.voices["joe"]
    plain = PiperEngine.load(model, threads=1, word_timings=False)
    aligned = PiperEngine.load(model, threads=1)
    aligned.synthesize_words("Ready.", voice)
    plain.synthesize("Ready.", voice)
    totals = tally()
    for name in BOOKS:
        book = parse_text(read_text(CORPUS / name))
        segments = [s for s in make_plan(book, voice, model, namespace="bench").segments if s.chapter > 0]
        counts = tally()
        reasons: list[str] = []
        loud: list[str] = []
        for number, segment in enumerate(segments[: count]):
            for first in ((plain, aligned) if number % 2 else (aligned, plain)):
                started = time.perf_counter()
                if first is aligned:
                    raw, spans = aligned.synthesize_words(segment.spoken, voice)
                    counts["aligned_s"] += time.perf_counter() - started
                    counts["aligned_audio_s"] += raw.size / aligned.sample_rate
                else:
                    counts["plain_audio_s"] += plain.synthesize(segment.spoken, voice).size / plain.sample_rate
                    counts["plain_s"] += time.perf_counter() - started
            samples, trimmed = mastering.prepare_segment_at(raw, aligned.sample_rate)
            record = {} if spans is None else {
                timings.SPOKEN_WORDS: timings.recorded_spans(spans, trimmed, samples.size, aligned.sample_rate)}
            entry = {"text": segment.text, "start": 0.0, "end": round(samples.size / aligned.sample_rate, 3)}
            timing = timings.written_timings(entry, segment.spoken, segment.word_ends(), record)
            counts["segments"] += 1
            if timing["timing"] == "word":
                counts["word"] += 1
                mean = float(np.mean(samples.astype(np.float64) ** 2))
                ratio = timings.edge_energy(samples, aligned.sample_rate, record[timings.SPOKEN_WORDS]) / mean
                counts["ratios"].append(ratio)
                counts["quieter"] += ratio < 1.0
                if ratio >= 1.0:
                    loud.append(f"{segment.spoken[:60]!r}: edge/mean energy {ratio:.2f}")
            else:
                reasons.append(f"{segment.spoken[:60]!r}: {timing.get('timing_reason', 'no alignments')}")
        report(name, counts)
        for reason in reasons[:5]:
            print(f"    sentence timing: {reason}")
        for line in loud[:5]:
            print(f"    edges not quieter: {line}")
        for key in totals:
            totals[key] += counts[key]
    report("all", totals)


def tally() -> dict:
    return {"segments": 0, "word": 0, "plain_s": 0.0, "aligned_s": 0.0, "plain_audio_s": 0.0,
            "aligned_audio_s": 0.0, "quieter": 0, "ratios": []}


def report(name: str, counts: dict) -> None:
    segments, word = counts["segments"], counts["word"]
    ratios = counts["ratios"]
    per_audio = (counts["aligned_s"] / max(1e-9, counts["aligned_audio_s"])) / (
        counts["plain_s"] / max(1e-9, counts["plain_audio_s"]))
    print(f"{name}: {segments} segments, timed by word {word / max(1, segments):.1%}; "
          f"alignments cost {counts['aligned_s'] / max(1e-9, counts['plain_s']) - 1:+.1%} "
          f"({counts['aligned_s']:.1f} s against {counts['plain_s']:.1f} s), per second of audio "
          f"{per_audio - 1:+.1%}; "
          f"edges quieter than the segment in {counts['quieter']}/{len(ratios)} "
          f"(median edge/mean energy {statistics.median(ratios) if ratios else float('nan'):.2f})")


def first_chapter(name: str, paragraphs: int) -> str:
    book = parse_text(read_text(CORPUS / name))
    chapter = next(c for c in book.chapters if c.title.lower().startswith("chapter"))
    return "\n\n".join(chapter.text.split("\n\n")[:paragraphs])


def pauses(paragraphs: int) -> None:
    """Pauses heard against the manifest, in FLAC books made by the real stack."""
    with tempfile.TemporaryDirectory(prefix="chorus-bench-") as tmp:
        stack = Stack(StackConfig.on_free_ports(Path(tmp), workers=[WorkerSpec("piper-joe", count=1, threads=1)],
                                                jobs_concurrency=1))
        env = stack.up()
        headers = {"Authorization": f"Bearer {env['CHORUS_API_KEY']}"}
        offsets: list[float] = []
        try:
            for name in BOOKS:
                _, status = run_job(env, first_chapter(name, paragraphs), "flac")
                audio = httpx.get(status["result_url"], timeout=60).content
                samples, rate = sf.read(io.BytesIO(audio), dtype="float32")
                manifest = httpx.get(f"{env['CHORUS_API_URL']}/v1/jobs/{status['id']}/manifest", timeout=60,
                                     headers=headers).json()
                found = timings.pause_offsets(manifest["segments"], timings.silent_gaps(samples, rate))
                report_pauses(f"{name}, first {paragraphs} paragraphs of its first chapter", found)
                offsets += found
        finally:
            stack.down()
    report_pauses("all", offsets)


def report_pauses(name: str, offsets: list[float]) -> None:
    within = sum(offset <= PAUSE_TOLERANCE_S for offset in offsets)
    worst = max(offsets, default=0.0)
    print(f"pauses, {name}: {len(offsets)} between sentences, heard within 20 ms of the manifest "
          f"{within}/{len(offsets)} ({within / max(1, len(offsets)):.1%}); worst {worst * 1000:.1f} ms")


if __name__ == "__main__":
    main()
