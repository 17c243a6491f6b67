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
  and the median of that ratio.

Never fails on timing.

    python bench/word_timings.py [--segments 40]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from common import CORPUS, read_text

from chorus.configs import Settings, load_registry
from chorus.tasks.audio import mastering, timings
from chorus.tasks.text.plain import parse_text
from chorus.tasks.text.plan import make_plan
from chorus.workers.engines.piper import PiperEngine

BOOKS = ("pride_and_prejudice.txt", "frankenstein.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=40, help="segments per book, from its first chapters")
    args = parser.parse_args()
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
        for number, segment in enumerate(segments[: args.segments]):
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


if __name__ == "__main__":
    main()
