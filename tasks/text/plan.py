"""One plan per job, made once: a book cut into chapters and segments.

The API makes the plan when a job is submitted, checks it against the caller's
limits, and stores it; ``chorus.split`` and ``chorus.assemble`` read the
stored plan and never read the book again. So a job the API accepted cannot
fail later for a reason that was visible in its input.

Each segment carries its text as written (manifest, subtitles), its spoken
form (what the engine says, after the job's pronunciation lexicon and the
language's reading rules) and its cache key: a hash of everything that
decides its audio, inside the namespace of the API key that owns the job, so
one tenant's cache never answers for another's text.

The job's speed and its lexicon (the key's entries as they were at submission,
overridden by the job's own) are made part of the plan: later edits of the
key's lexicon never change a job already planned. Speed enters the cache key
only when it is not 1.0, so keys of jobs at normal speed are those of plans
made before speed existed (their cached audio still answers).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from chorus.configs import Model, Voice
from chorus.configs.mastering import Mastering
from chorus.tasks.text import sentences
from chorus.tasks.text.book import Book
from chorus.tasks.text.casting import Casting, cast, has_tags
from chorus.tasks.text.spoken import spoken_form
from chorus.tasks.text.spoken.lexicon import Entry, Lexicon
from chorus.tasks.text.words import correspondence

PLAN_VERSION = 1
NORMAL_SPEED = 1.0
SPEED_RANGE = (0.5, 2.0)  # what every engine does well: Piper's length scale, CosyVoice2's mel stretch


@dataclass(frozen=True)
class PlannedSegment:
    index: int
    chapter: int
    text: str  # as written: for the manifest and subtitles
    spoken: str  # what the engine says
    paragraph_end: bool  # a paragraph pause follows
    cache_key: str
    voice: str = ""  # who reads it, when not the narrator (the plan's voice)
    # Which spoken words each written word became (``tasks/text/words.py``:
    # ends, () when one for one); None in plans made before it was kept.
    words: tuple[int, ...] | None = None

    def word_ends(self) -> tuple[int, ...]:
        """The written<->spoken correspondence, made now for a plan without it."""
        return correspondence(self.text, self.spoken) if self.words is None else self.words


@dataclass(frozen=True)
class PlannedChapter:
    index: int
    title: str
    first: int  # index of its first segment
    count: int  # its segments

    def segment_range(self) -> range:
        return range(self.first, self.first + self.count)


@dataclass(frozen=True)
class Plan:
    voice: str
    model: str
    language: str
    title: str
    author: str
    characters: int  # of the book's text, as the limits count them
    chapters: tuple[PlannedChapter, ...]
    segments: tuple[PlannedSegment, ...]
    speed: float = NORMAL_SPEED  # of speech: 2.0 says it in half the time
    lexicon: tuple[Entry, ...] = ()  # what respelled the spoken forms (for the record)
    cast: dict[str, str] = field(default_factory=dict)  # voice -> model of every voice besides the narrator's

    def voice_of(self, segment: PlannedSegment) -> str:
        return segment.voice or self.voice

    def model_of(self, segment: PlannedSegment) -> str:
        return self.cast[segment.voice] if segment.voice else self.model

    def chapter_segments(self, chapter: int) -> tuple[PlannedSegment, ...]:
        info = self.chapters[chapter]
        return self.segments[info.first : info.first + info.count]

    def to_dict(self) -> dict[str, Any]:
        return {"version": PLAN_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        fields = {k: v for k, v in data.items() if k != "version"}
        return cls(
            **{**fields, "chapters": tuple(PlannedChapter(**c) for c in data["chapters"]),
               "segments": tuple(_segment(s) for s in data["segments"]),
               "lexicon": tuple(Entry(**e) for e in data.get("lexicon", ()))}
        )


def _segment(data: dict[str, Any]) -> PlannedSegment:
    words = data.get("words")
    return PlannedSegment(**{**data, "words": None if words is None else tuple(words)})


def job_speed(speed: float) -> float:
    """A requested speed as the plan keeps it: three decimals, so that the
    engine, the take check and the cache key all see one and the same number."""
    return round(float(speed), 3)


def synthesis_settings(model: Model, speed: float = NORMAL_SPEED) -> dict[str, Any]:
    """What, besides text and voice, decides a segment's audio (the worker trims
    and fades each segment with these settings, the engine speaks at ``speed``).
    Normal speed adds nothing: the keys of jobs at 1.0 stay what they were."""
    config = Mastering()
    settings = {"options": model.options, "trim_db": config.trim_threshold_db, "trim_keep_ms": config.trim_keep_ms,
                "fade_ms": config.fade_ms}
    if speed != NORMAL_SPEED:
        settings["speed"] = speed
    return settings


def segment_key(spoken: str, voice: Voice, model: Model, namespace: str, speed: float = NORMAL_SPEED) -> str:
    """The cache key of a segment's audio: a pure function of what decides it."""
    return segment_keys(voice, model, namespace, speed)(spoken)


def segment_keys(voice: Voice, model: Model, namespace: str, speed: float = NORMAL_SPEED) -> Callable[[str], str]:
    """``segment_key`` for one voice, model, namespace and speed, fast: the JSON of
    [namespace, spoken, voice, model, version, settings] around the spoken
    text is made once, not once per segment (same bytes, same keys)."""
    before = json.dumps([namespace], ensure_ascii=False)[:-1] + ", "
    after = ", " + json.dumps(
        [voice.id, model.name, model.version, synthesis_settings(model, speed)], sort_keys=True, ensure_ascii=False
    )[1:]
    encode = json.JSONEncoder(ensure_ascii=False).encode

    def key(spoken: str) -> str:
        return hashlib.sha256((before + encode(spoken) + after).encode("utf-8")).hexdigest()

    return key


def make_plan(
    book: Book, voice: Voice, model: Model, namespace: str, title: str = "", author: str = "",
    speed: float = NORMAL_SPEED, lexicon: tuple[Entry, ...] = (), casting: Casting | None = None,
    cast_voices: Mapping[str, tuple[Voice, Model]] | None = None,
) -> Plan:
    """Chapters and segments of a book, at one speed, with one lexicon (already
    merged and checked: ``lexicon.merge``). The book's title (and author) open
    it, and each chapter's title is spoken before the chapter, by the narrator
    (``voice``). With a ``casting`` (a dialogue voice, a character map) or
    inline voice tags in the text, a chapter's parts go to their voices
    (``tasks/text/casting.py``); ``cast_voices`` has every voice they name."""
    speed = job_speed(speed)
    respell = Lexicon(lexicon)
    casting = casting or Casting(voice.id)
    cast_voices = {voice.id: (voice, model), **(cast_voices or {})}
    keys = {v: segment_keys(known, m, namespace, speed) for v, (known, m) in cast_voices.items()}
    title = title or book.title
    author = author or book.author
    chapters: list[PlannedChapter] = []
    segments: list[PlannedSegment] = []
    used: dict[str, str] = {}
    opening = ", by ".join(part for part in (title, author) if part) if title else ""

    def add(number: int, text: str, reader: str, last_ends_paragraph: bool | None = None) -> None:
        spoken_by, its_model = cast_voices[reader]
        pieces = sentences.split(text, its_model.max_segment_chars)
        for position, piece in enumerate(pieces):
            spoken = spoken_form(piece.text, spoken_by.language, respell)
            paragraph_end = piece.paragraph_end
            if last_ends_paragraph is not None:  # a part of a paragraph: only its end may end it
                paragraph_end = last_ends_paragraph and position == len(pieces) - 1
            if reader != voice.id:
                used[reader] = its_model.name
            segments.append(PlannedSegment(
                index=len(segments), chapter=number, text=piece.text, spoken=spoken, paragraph_end=paragraph_end,
                cache_key=keys[reader](spoken), voice="" if reader == voice.id else reader,
                words=correspondence(piece.text, spoken, functools.partial(
                    spoken_form, language=spoken_by.language, lexicon=respell)),
            ))

    for number, chapter in enumerate(book.chapters):
        first = len(segments)
        heading = [opening if number == 0 else "", chapter.title]
        if casting.plain and not has_tags(chapter.text):
            add(number, "\n\n".join(p for p in [*heading, chapter.text] if p), voice.id)
        else:
            if any(heading):
                add(number, "\n\n".join(p for p in heading if p), voice.id)
            for part in cast(chapter.text, casting):
                add(number, part.text, part.voice, part.paragraph_end)
        chapters.append(PlannedChapter(number, chapter.title, first, len(segments) - first))
    return Plan(
        voice=voice.id, model=model.name, language=voice.language, title=title, author=author,
        characters=sum(len(c.text) for c in book.chapters), chapters=tuple(chapters), segments=tuple(segments),
        speed=speed, lexicon=tuple(lexicon), cast=used,
    )
