"""Media Overlays: when each sentence (or word) sounds in its chapter's audio,
and the SMIL document that says so for one content document.

A word-timed sentence is a <seq> whose ``epub:textref`` names the sentence,
holding a <par> per word: reading systems that play words highlight each
word, those that skip or escape by structure see sentences.

Clips are chapter-relative and contiguous: a sentence's clip runs on to the
next sentence's start (the pause after it belongs to it), and the chapter's
last one ends where its audio ends (the chapter's ``end``: a chapter file
may end with padding to a whole codec frame), so a reading system plays the
chapter's audio from its first sentence on, pauses included. A chapter's
``start`` is where its file begins: a chapter after the first begins with
the chapter pause, before its first sentence.
"""

from __future__ import annotations

import posixpath
from urllib.parse import quote
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lxml import etree

SMIL_NS = "http://www.w3.org/ns/SMIL"
EPUB_NS = "http://www.idpf.org/2007/ops"
ACTIVE_CLASS = "-epub-media-overlay-active"
STYLESHEET = f".{ACTIVE_CLASS} {{ background-color: #ffe98a; color: inherit; }}\n"


@dataclass(frozen=True)
class Clip:
    """Where one piece of text sounds: seconds into its chapter's audio."""

    begin: float
    end: float


@dataclass(frozen=True)
class TimedSegment:
    """A manifest segment on its chapter's clock, and its words' clips when it is word-timed."""

    index: int
    chapter: int
    clip: Clip
    words: tuple[Clip, ...] = ()


def clock(seconds: float) -> str:
    """A SMIL full clock value, milliseconds exact: 0:01:02.345."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def timed_segments(entries: Sequence[dict], chapters: Sequence[dict]) -> list[TimedSegment]:
    """Each manifest entry's clip in its chapter's audio (entries in book
    seconds, in order), and its words' clips where it carries word timings."""
    bounds = {chapter["index"]: (chapter["start"], chapter["end"]) for chapter in chapters}
    timed = []
    for position, entry in enumerate(entries):
        origin, chapter_end = bounds[entry["chapter"]]
        following = entries[position + 1] if position + 1 < len(entries) else None
        last = following is None or following["chapter"] != entry["chapter"]
        end = max(entry["end"], chapter_end) if last else following["start"]
        clip = Clip(_seconds(entry["start"] - origin), _seconds(end - origin))
        words: tuple[Clip, ...] = ()
        if entry.get("timing") == "word" and entry.get("words"):
            words = _word_clips(entry["words"], origin, clip)
        timed.append(TimedSegment(entry["index"], entry["chapter"], clip, words))
    return timed


def _word_clips(words: Sequence[dict], origin: float, segment: Clip) -> tuple[Clip, ...]:
    """Word clips that tile the segment's clip: each runs to the next word's start."""
    begins = [segment.begin] + [min(max(_seconds(w["start"] - origin), segment.begin), segment.end) for w in words[1:]]
    for position in range(1, len(begins)):
        begins[position] = max(begins[position], begins[position - 1])
    ends = begins[1:] + [segment.end]
    return tuple(Clip(b, e) for b, e in zip(begins, ends))


def _seconds(value: float) -> float:
    return round(max(0.0, value), 3)


@dataclass(frozen=True)
class Par:
    """One <par>: a fragment of a content document and its audio clip (paths
    from the package root); a word's <par> names its sentence's fragment too."""

    document: str
    fragment: str
    audio: str
    clip: Clip
    sentence: str = ""


def duration(pars: Iterable[Par]) -> float:
    """What an overlay plays, in seconds (its media:duration)."""
    return round(sum(par.clip.end - par.clip.begin for par in pars), 3)


def smil(path: str, pars: Sequence[Par]) -> bytes:
    """The SMIL document at ``path`` (from the package root) for one content document."""
    base = posixpath.dirname(path)
    relative: dict[str, str] = {}  # a few documents and audio files, each named by many <par>s

    def href(target: str) -> str:
        if target not in relative:
            relative[target] = quote(posixpath.relpath(target, base or "."))
        return relative[target]

    root = etree.Element(f"{{{SMIL_NS}}}smil", nsmap={None: SMIL_NS, "epub": EPUB_NS}, version="3.0")
    body = etree.SubElement(root, f"{{{SMIL_NS}}}body")
    parent, sentence = body, ""
    for number, par in enumerate(pars):
        if par.sentence != sentence:  # a sentence's words in a <seq> that names the sentence
            sentence = par.sentence
            parent = body
            if sentence:
                parent = etree.SubElement(body, f"{{{SMIL_NS}}}seq", id=f"seq{number}")
                parent.set(f"{{{EPUB_NS}}}textref", f"{href(par.document)}#{sentence}")
        element = etree.SubElement(parent, f"{{{SMIL_NS}}}par", id=f"par{number}")
        etree.SubElement(element, f"{{{SMIL_NS}}}text", src=f"{href(par.document)}#{par.fragment}")
        etree.SubElement(element, f"{{{SMIL_NS}}}audio", src=href(par.audio),
                         clipBegin=clock(par.clip.begin), clipEnd=clock(par.clip.end))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
