"""Word timings: from an engine's spoken-word spans to written words in book seconds.

A worker whose engine aligns its output keeps, in the segment's cached WAV
record (``takes.wav_with_record``), one ``[start_s, end_s]`` pair per spoken
word of the segment's spoken form, in seconds from the start of the cached
(trimmed, faded) audio: ``recorded_spans`` makes them from the engine's
sample spans and the trim. The assembly maps them to the written words of the
segment through the plan's correspondence (``tasks/text/words.py``) and
places them in the book: ``written_timings`` gives the manifest entry's
``timing``, its ``words`` and, when an aligned segment cannot be timed word by
word, its ``timing_reason``.

Times stay ordered and inside their segment: a word starts no earlier than the
word before it and ends no earlier than it starts; a written word whose spoken
range is empty (a mark the reading rules dropped) takes no time, at the end of
the word before it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chorus.tasks.text import words as word_lists

WORD = "word"
SENTENCE = "sentence"
SPOKEN_WORDS = "spoken_words"  # the record's key of the spoken words' times
UNALIGNED = "unaligned"  # the record's key of why an aligning engine gave no times for this take


def recorded_spans(spans: Sequence[tuple[int, int]], trim_start: int, length: int, rate: int) -> list[list[float]]:
    """Sample spans of the engine's raw output as ``[start_s, end_s]`` in the
    cached audio, which starts ``trim_start`` samples into the raw output and
    is ``length`` samples long (3 decimals, ordered, inside the audio)."""
    out: list[list[float]] = []
    floor, top = 0.0, round(length / rate, 3)
    for start, end in spans:
        begin = min(top, max(floor, round((start - trim_start) / rate, 3)))
        finish = min(top, max(begin, round((end - trim_start) / rate, 3)))
        out.append([begin, finish])
        floor = begin
    return out


def written_timings(
    entry: dict, spoken: str, ends: Sequence[int], record: dict | None,
) -> dict:
    """What the manifest entry of a segment says of its timing: ``timing``, and
    ``words`` (``text``, ``offset`` in the entry's text, ``start``, ``end`` in
    book seconds) or, for an aligned segment timed by sentence, ``timing_reason``.
    ``entry`` has the segment's ``text``, ``start`` and ``end``."""
    record = record or {}
    spans = record.get(SPOKEN_WORDS)
    if spans is None:
        reason = record.get(UNALIGNED)
        return {"timing": SENTENCE, "timing_reason": reason} if reason else {"timing": SENTENCE}
    heard = word_lists.words(spoken)
    if len(spans) != len(heard):
        return {"timing": SENTENCE,
                "timing_reason": f"the voice gave times for {len(spans)} words, the spoken form has {len(heard)}"}
    written = word_lists.words_with_offsets(entry["text"])
    if not written:  # marks alone ("&" said as "and"): nothing to show word by word
        return {"timing": SENTENCE}
    ranges = word_lists.spoken_ranges(ends, len(written))
    if len(ranges) != len(written) or (ranges and ranges[-1].stop != len(heard)):
        return {"timing": SENTENCE, "timing_reason": "the plan's word correspondence does not fit the spoken form"}
    begin, finish = float(entry["start"]), float(entry["end"])
    placed: list[dict] = []
    previous_end = previous_start = begin
    for (offset, text), spoken_range in zip(written, ranges):
        if spoken_range:
            start = begin + float(spans[spoken_range.start][0])
            end = begin + float(spans[spoken_range.stop - 1][1])
        else:
            start = end = previous_end
        start = min(finish, max(previous_start, round(start, 3)))
        end = min(finish, max(start, round(end, 3)))
        placed.append({"text": text, "offset": offset, "start": start, "end": end})
        previous_start, previous_end = start, end
    return {"timing": WORD, "words": placed}


def words_document(entries: Sequence[dict]) -> dict:
    """The ``words.json`` artefact for players: each segment's place in the book
    and, where timed by word, its words (the manifest's entries, less the rest)."""
    kept = ("index", "chapter", "start", "end", "text", "timing", "words")
    return {"segments": [{name: entry[name] for name in kept if name in entry} for entry in entries]}


def edge_energy(samples: np.ndarray, rate: int, spans: Sequence[Sequence[float]], around_s: float = 0.010) -> float:
    """The mean square of the audio within ``around_s`` of each word's start and
    end: a check of timings without speech recognition (speech is quieter
    between words than inside them, so good edges score below the segment's mean)."""
    reach = max(1, round(rate * around_s))
    edges = {round(t * rate) for span in spans for t in span}
    parts = [samples[max(0, e - reach) : e + reach] for e in sorted(edges)]
    parts = [p for p in parts if p.size]
    if not parts:
        return 0.0
    joined = np.concatenate(parts).astype(np.float64)
    return float(np.mean(joined * joined))


def silent_gaps(samples: np.ndarray, rate: int, threshold_db: float = -90.0, min_s: float = 0.1) -> list[tuple[float, float]]:
    """The runs of at least ``min_s`` whose every sample is quieter than
    ``threshold_db`` dBFS, as ``(start_s, end_s)`` in order. At the default
    (about one step of 16-bit audio) these are the pauses the assembly puts
    between segments, which are digital silence, in a losslessly decoded
    book: a segment's own trimmed ends are quiet, not silent, so a gap found
    away from the manifest's pause means its times left the audio."""
    mono = samples if samples.ndim == 1 else samples.mean(axis=1)
    quiet = np.abs(mono) < 10 ** (threshold_db / 20)
    edges = np.diff(quiet.astype(np.int8), prepend=0, append=0)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    shortest = round(min_s * rate)
    return [(a / rate, b / rate) for a, b in zip(starts, ends) if b - a >= shortest]


def pause_offsets(entries: Sequence[dict], gaps: Sequence[tuple[float, float]]) -> list[float]:
    """For each pause the manifest gives between two entries (one's ``end`` to
    the next's ``start``, in book order), how far the measured silent gap that
    overlaps it lies from it in seconds: the larger of the two ends' offsets;
    infinity where no gap overlaps it. ``gaps`` in order, as ``silent_gaps``
    gives them; one pass over both."""
    offsets: list[float] = []
    at = 0
    for before, after in zip(entries, entries[1:]):
        begin, finish = float(before["end"]), float(after["start"])
        while at < len(gaps) and gaps[at][1] < begin:
            at += 1
        if at < len(gaps) and gaps[at][0] <= finish:
            offsets.append(max(abs(gaps[at][0] - begin), abs(gaps[at][1] - finish)))
        else:
            offsets.append(float("inf"))
    return offsets
