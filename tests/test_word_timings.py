"""Word timings without a voice: the written<->spoken correspondence, the
mapping of spoken-word times to written words in book seconds, the WebVTT
word tags, and Piper's phoneme words matched to the text's words."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st

from chorus.configs import load_registry
from chorus.tasks.audio import mastering, subtitles, timings
from chorus.tasks.text.plan import Plan
from chorus.tasks.text.spoken import spoken_form
from chorus.tasks.text.words import correspondence, spoken_ranges, words, words_with_offsets
from chorus.workers.engines import piper_words

# Written words the English reading rules rewrite, and plain ones.
VOCABULARY = [
    "the", "night", "of", "November", "Dr.", "Mr.", "St.", "Smith", "1818", "1818,", "12", "March", "7:30", "pm",
    "$3.50", "45%", "1st", "3/4", "e.g.", "etc.", "No.", "5", "1990–1995", "&", "“Yes,”", "(the", "one)", "—",
    "2024-05-06", "don't", "...", "-5", "3.14", "MP3", "#4", "10:00", "in", "1813", "°C", "~5", "x", "a.",
]


def check_partition(written: str, spoken: str, speak=None) -> None:
    ends = correspondence(written, spoken, speak)
    said, heard = words(written), words(spoken)
    ranges = spoken_ranges(ends, len(said))
    assert len(ranges) == len(said)  # every written word once
    position = 0
    for spoken_range in ranges:  # in order, no gaps, no overlaps
        assert spoken_range.start == position and spoken_range.stop >= spoken_range.start
        position = spoken_range.stop
    assert position == (len(heard) if said else 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=25))
def test_the_correspondence_covers_every_written_word_exactly_once(chosen: list[str]) -> None:
    written = " ".join(chosen)
    check_partition(written, spoken_form(written, "en-US"))
    check_partition(written, spoken_form(written, "en-US"), lambda word: spoken_form(word, "en-US"))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_the_correspondence_partitions_for_any_two_texts(written: str, spoken: str) -> None:
    check_partition(written, spoken)


def test_a_number_becomes_the_spoken_words_it_was_read_as() -> None:
    written = "On 12 March 1818, Dr. Smith said “Yes!”"
    spoken = spoken_form(written, "en-US")
    heard = words(spoken)
    became = {text: heard[r.start:r.stop] for (_, text), r in
              zip(words_with_offsets(written), spoken_ranges(correspondence(written, spoken), len(words(written))))}
    assert became["12"] == ["the", "twelfth", "of"]
    assert became["1818,"] == ["eighteen", "eighteen,"]
    assert became["Dr."] == ["Doctor"]
    assert became["Smith"] == ["Smith"]
    assert correspondence("It was night.", "It was night.") == ()
    # Several rewritten words in a row are shared by what each says alone.
    written = "In 1818, e.g. No. 5 was read."
    spoken = spoken_form(written, "en-US")
    ranges = spoken_ranges(correspondence(written, spoken, lambda word: spoken_form(word, "en-US")), 8)
    assert [" ".join(words(spoken)[r.start:r.stop]) for r in ranges][1:5] == [
        "eighteen eighteen,", "for example", "", "number five"]


def test_plans_keep_the_correspondence_and_read_plans_without_it() -> None:
    from chorus.tasks.text.book import Book, Chapter
    from chorus.tasks.text.plan import make_plan

    registry = load_registry(Path(__file__).parent.parent / "configs" / "voices.toml")
    model = registry.models["piper-joe"]
    voice = next(v for v in registry.voices.values() if v.model == "piper-joe")
    plan = make_plan(Book("", "", "en", [Chapter("", "In 1818 it rained. It was cold.")]), voice, model, "ns")
    by_text = {s.text: s for s in plan.segments}
    assert by_text["In 1818 it rained."].words == (1, 3, 4, 5)  # "1818" said as "eighteen eighteen"
    assert by_text["It was cold."].words == ()
    again = Plan.from_dict(plan.to_dict())
    assert again == plan
    old = plan.to_dict()
    for segment in old["segments"]:
        del segment["words"]
    old_plan = Plan.from_dict(old)
    assert old_plan.segments[0].words is None
    assert [s.word_ends() for s in old_plan.segments] == [s.words for s in plan.segments]


# -- spoken-word times to written words ------------------------------------


@st.composite
def timed_segments(draw: st.DrawFn) -> tuple[dict, str, tuple[int, ...], dict, float]:
    """A segment's text, its spoken form, a record whose spoken words tile the audio, and its duration."""
    written = " ".join(draw(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=15)))
    spoken = spoken_form(written, "en-US")
    count = len(words(spoken))
    cuts = sorted(draw(st.lists(st.integers(1, 10_000), min_size=count + 1, max_size=count + 1)))
    duration = cuts[-1] / 1000 + 0.04
    spans = [[round(a / 1000, 3), round(b / 1000, 3)] for a, b in zip(cuts, cuts[1:])]
    start = draw(st.floats(0, 5000, allow_nan=False)).__round__(3)
    entry = {"text": written, "start": start, "end": round(start + duration, 3)}
    return entry, spoken, correspondence(written, spoken), {timings.SPOKEN_WORDS: spans}, duration


@settings(max_examples=300, deadline=None)
@given(timed_segments())
def test_word_timings_are_ordered_inside_their_segment_and_cover_its_speech(case) -> None:
    entry, spoken, ends, record, _ = case
    timing = timings.written_timings(entry, spoken, ends, record)
    if not words(spoken) or not words(entry["text"]):
        assert timing == {"timing": "sentence"}
        return
    assert timing["timing"] == "word", timing
    placed = timing["words"]
    assert [w["text"] for w in placed] == words(entry["text"])
    for word in placed:
        assert entry["text"][word["offset"]:word["offset"] + len(word["text"])] == word["text"]
        assert entry["start"] <= word["start"] <= word["end"] <= entry["end"]
    assert all(a["start"] <= b["start"] and a["end"] <= b["end"] for a, b in zip(placed, placed[1:]))
    spans = record[timings.SPOKEN_WORDS]
    # The written words together span the speech: from the first spoken word to the last.
    said = [w for w, r in zip(placed, spoken_ranges(ends, len(placed))) if r]
    assert said[0]["start"] == min(entry["end"], round(entry["start"] + spans[0][0], 3))
    assert said[-1]["end"] == min(entry["end"], round(entry["start"] + spans[-1][1], 3))


def test_a_count_that_does_not_match_falls_back_to_sentence_timing_and_says_why() -> None:
    entry = {"text": "It was night.", "start": 1.0, "end": 2.0}
    timing = timings.written_timings(entry, "It was night.", (), {timings.SPOKEN_WORDS: [[0.0, 0.2], [0.3, 0.5]]})
    assert timing["timing"] == "sentence"
    assert "2 words" in timing["timing_reason"] and "3" in timing["timing_reason"]
    assert timings.written_timings(entry, "It was night.", (), {"takes": 1}) == {"timing": "sentence"}
    unaligned = timings.written_timings(entry, "It was night.", (), {timings.UNALIGNED: "no match"})
    assert unaligned == {"timing": "sentence", "timing_reason": "no match"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50_000), st.integers(0, 50_000)), max_size=30),
       st.integers(0, 5000), st.integers(0, 60_000))
def test_recorded_spans_are_ordered_and_inside_the_cached_audio(pairs, trim_start, length) -> None:
    spans = sorted((min(a, b), max(a, b)) for a, b in pairs)
    recorded = timings.recorded_spans(spans, trim_start, length, 22050)
    assert len(recorded) == len(spans)
    top = round(length / 22050, 3)
    for (begin, end), (next_begin, _) in zip(recorded, recorded[1:] + [[top, top]]):
        assert 0.0 <= begin <= end <= top and begin <= next_begin


def test_the_trim_offset_is_where_the_prepared_segment_starts() -> None:
    rate = 22050
    raw = np.zeros(rate, dtype=np.float32)
    raw[4400:14400] = 0.3 * np.sin(np.arange(10_000) / 5)  # from a 10 ms window's start
    prepared, start = mastering.prepare_segment_at(raw, rate)
    assert start == 4400 - round(rate * 0.040)  # the trim keeps 40 ms before the sound
    assert np.array_equal(prepared, mastering.prepare_segment(raw, rate))
    assert prepared.size == mastering.trim_silence(raw, rate).size


# -- WebVTT word tags ----------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(VOCABULARY + ["<b>", "a&b", "-->", "supercalifragilisticexpialidocious" * 2]),
                min_size=1, max_size=20),
       st.lists(st.integers(0, 4000), min_size=40, max_size=40))
def test_vtt_word_tags_stay_valid_webvtt(chosen, steps) -> None:
    text = " ".join(chosen)
    count = len(words(text))
    starts, at = [], 10.0
    for step in steps[:count]:
        starts.append(round(at, 3))
        at += step / 1000
    cue = subtitles.Cue(1, 10.0, round(at + 0.5, 3), text, tuple(starts))
    document = subtitles.to_vtt([cue])
    parsed = webvtt.from_buffer(io.StringIO(document)).captions
    assert len(parsed) == 1
    tags = [part.split(">")[0] for part in "\n".join(parsed[0].lines).split("<")[1:]]
    times = [_seconds(tag) for tag in tags if tag[:1].isdigit()]
    assert times == sorted(set(times))  # strictly rising
    assert all(cue.start < t < cue.end for t in times)
    assert all(tag[:1].isdigit() for tag in tags)  # no other markup got in: "<b>" is escaped
    srt_document = subtitles.to_srt([cue])
    assert "<0" not in srt_document  # SRT stays plain, per sentence


def test_vtt_word_tags_follow_the_words() -> None:
    cue = subtitles.Cue(1, 1.0, 3.0, "It was night.", (1.0, 1.25, 1.6))
    assert "It <00:00:01.250>was <00:00:01.600>night." in subtitles.to_vtt([cue])
    plain = subtitles.Cue(1, 1.0, 3.0, "It was night.")
    assert "\nIt was night.\n" in subtitles.to_vtt([plain])


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


# -- Piper's phoneme words matched to the text's words --------------------------


def letters(word: str) -> int:
    """A stand-in phonemiser for the matching: one sound per letter."""
    return sum(char.isalpha() for char in word)


def test_phoneme_words_split_at_spaces_and_leave_out_punctuation() -> None:
    sentence = [("^", 100), ("a", 10), ("b", 10), (",", 50), (" ", 20), ("ˈ", 5), ("c", 10), (".", 30), ("$", 40)]
    assert piper_words.phoneme_words([sentence, [("^", 1), ("d", 9), ("$", 1)]]) == [
        (100, 120, 2), (190, 205, 1), (276, 285, 1)]


def test_words_said_as_one_are_shared_by_their_lengths() -> None:
    # "of the" said as one phoneme word, as espeak-ng does.
    found = [(0, 100, 5), (100, 200, 4), (200, 400, 5)]
    spans = piper_words.word_spans(found, ["night", "of", "the", "rains"], letters)
    assert spans == [(0, 100), (100, 140), (140, 200), (200, 400)]
    assert piper_words.word_spans([(0, 10, 1)], ["a", "b", "c", "d", "e"], letters) is None


def test_silent_gaps_find_the_pauses_and_pause_offsets_measure_them() -> None:
    """Noise for speech, digital silence for pauses: the gaps are found to the
    sample, a manifest placed right is 0 off, one 50 ms late is 0.05 off, and
    a pause with no silence under it is infinitely off."""
    rate = 1000
    noise = np.random.default_rng(7).uniform(0.1, 0.5, 3000).astype(np.float32)
    samples = np.concatenate([noise[:1000], np.zeros(250, np.float32), noise[1000:2000],
                              np.zeros(700, np.float32), noise[2000:]])
    gaps = timings.silent_gaps(samples, rate)
    assert gaps == [(1.0, 1.25), (2.25, 2.95)]
    entries = [{"start": 0.0, "end": 1.0}, {"start": 1.25, "end": 2.25}, {"start": 2.95, "end": 3.95}]
    assert timings.pause_offsets(entries, gaps) == [0.0, 0.0]
    late = [{**e, "end": e["end"] + 0.05, "start": e["start"] + 0.05} for e in entries]
    assert timings.pause_offsets(late, gaps) == pytest.approx([0.05, 0.05])
    assert timings.pause_offsets(entries, gaps[:1]) == [0.0, float("inf")]
    assert timings.silent_gaps(noise, rate) == []
