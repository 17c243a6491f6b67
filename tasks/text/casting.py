"""Who reads what: a chapter's text cut into parts, each with its voice.

A job names a narrator (its voice) and may name more:

- a **dialogue voice** for quoted speech: English “…”, "…" and Chinese
  “…”, 「…」, 『…』 (a quotation still open at the end of its paragraph, as
  novels write a speech over several paragraphs, ends with the paragraph);
- a **character map**, speaker name → voice: a quotation whose speaker is
  named next to it by a speech verb ("…,” said Elizabeth.', 'Darcy replied,
  “…”', '伊丽莎白说：“…”') gets that speaker's voice; one with no speaker
  found, the dialogue voice (or the narrator's, without one);
- **inline tags** in the text, ``[voice:ID]…[/voice]``, which win over both
  (they do not nest: a new tag ends the one before).

Parts never cross a paragraph; the last part of a paragraph carries
``paragraph_end``. Everything here is one pass over the text, and the speaker
search looks at a bounded window on each side of a quotation, so the cost is
linear in the size of the chapter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from chorus.tasks.errors import InputError

MAX_CHARACTERS = 100  # names in a character map
MAX_NAME_CHARS = 60
SPEAKER_WINDOW = 80  # characters of narration searched for a quotation's speaker, on each side

TAG = re.compile(r"\[voice:([A-Za-z0-9_.-]{1,64})\]|\[/voice\]")
_OPENING_TAG = re.compile(r"\[voice:")
# Opening mark -> closing mark. The straight double quote closes itself.
QUOTES = {"“": "”", '"': '"', "「": "」", "『": "』"}
_QUOTE_OPENERS = re.compile("[“\"「『]")
SPEECH_VERBS_EN = (
    "said", "says", "asked", "asks", "replied", "replies", "answered", "cried", "whispered", "shouted",
    "called", "added", "continued", "exclaimed", "muttered", "murmured", "repeated", "returned", "observed",
    "remarked", "began", "went on", "interrupted", "insisted", "declared", "laughed", "sighed",
)
SPEECH_VERBS_ZH = ("说道", "笑道", "叫道", "喊道", "问道", "答道", "说", "道", "问", "答", "喊", "叫")


@dataclass(frozen=True)
class Casting:
    narrator: str
    dialogue: str | None = None
    characters: Mapping[str, str] = field(default_factory=dict)  # speaker name -> voice

    @property
    def plain(self) -> bool:
        """Nobody but the narrator, unless the text tags a voice."""
        return self.dialogue is None and not self.characters

    def voices(self) -> set[str]:
        return {self.narrator, *([self.dialogue] if self.dialogue else []), *self.characters.values()}


@dataclass(frozen=True)
class Part:
    voice: str
    text: str
    paragraph_end: bool


def has_tags(text: str) -> bool:
    return _OPENING_TAG.search(text) is not None


def tagged_voices(text: str) -> set[str]:
    """The voice ids the text's inline tags name (checked before anything is planned)."""
    return {match.group(1) for match in TAG.finditer(text) if match.group(1)}


class _Speakers:
    """Finds a quotation's speaker in the narration beside it, among the map's names."""

    def __init__(self, characters: Mapping[str, str]) -> None:
        if len(characters) > MAX_CHARACTERS:
            raise InputError(f"a character map names at most {MAX_CHARACTERS} speakers, not {len(characters)}")
        for name in characters:
            if not name.strip() or len(name) > MAX_NAME_CHARS:
                raise InputError(f"a speaker's name is 1 to {MAX_NAME_CHARS} characters: {name[:80]!r}")
        self.voice_of = {" ".join(name.split()).casefold(): voice for name, voice in characters.items()}
        if not self.voice_of:
            self.after = self.before = self.before_zh = self.after_zh = None
            return
        names = "|".join(re.escape(name) for name in sorted(self.voice_of, key=len, reverse=True))
        verbs = "|".join(re.escape(verb) for verb in SPEECH_VERBS_EN)
        verbs_zh = "|".join(re.escape(verb) for verb in SPEECH_VERBS_ZH)
        # '…,” said Anna' / '…,” Anna said' (right after the quotation)
        self.after = re.compile(rf"^[\s,.;:!?—–-]{{0,4}}(?:(?:{verbs})\s+(?P<a>{names})\b|(?P<b>{names})\s+(?:{verbs})\b)",
                                re.IGNORECASE)
        # 'Anna said, “…' / 'said Anna: “…' (right before it)
        self.before = re.compile(rf"(?:(?P<a>{names})\s+(?:{verbs})|(?:{verbs})\s+(?P<b>{names}))[\s,:;—–-]{{0,4}}$",
                                 re.IGNORECASE)
        self.before_zh = re.compile(rf"(?P<a>{names})(?:{verbs_zh})[：:，,\s]{{0,2}}$")
        self.after_zh = re.compile(rf"^[，,。\s]{{0,2}}(?P<a>{names})(?:{verbs_zh})")

    def find(self, before: str, after: str) -> str | None:
        if self.after is None:
            return None
        for pattern, text in ((self.after, after), (self.after_zh, after), (self.before, before),
                              (self.before_zh, before)):
            match = pattern.search(text)
            if match:
                name = match.group("a") or match.groupdict().get("b")
                return self.voice_of.get(" ".join(name.split()).casefold())
        return None


def _quotations(paragraph: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each quotation in a paragraph, its marks included."""
    position = 0
    while True:
        opening = _QUOTE_OPENERS.search(paragraph, position)
        if opening is None:
            return
        start = opening.start()
        close = paragraph.find(QUOTES[opening.group()], start + 1)
        end = len(paragraph) if close < 0 else close + 1
        yield start, end
        position = end


def _tagged_spans(text: str) -> Iterator[tuple[str | None, str]]:
    """(voice named by a tag, or None for untagged text, text) in order, tags removed."""
    voice: str | None = None
    position = 0
    for match in TAG.finditer(text):
        if match.start() > position:
            yield voice, text[position : match.start()]
        voice = match.group(1)  # None for [/voice]
        position = match.end()
    if position < len(text):
        yield voice, text[position:]


def cast(text: str, casting: Casting) -> list[Part]:
    """The parts of a chapter's text (paragraphs separated by blank lines), in order."""
    speakers = _Speakers(casting.characters)
    parts: list[Part] = []
    pending: list[tuple[str, str]] = []  # (voice, text) of the paragraph so far

    def add(voice: str, piece: str) -> None:
        if not piece.strip():
            return
        if pending and pending[-1][0] == voice:
            pending[-1] = (voice, pending[-1][1] + piece)
        else:
            pending.append((voice, piece))

    def end_paragraph() -> None:
        kept = [(voice, piece.strip()) for voice, piece in pending if piece.strip()]
        for number, (voice, piece) in enumerate(kept):
            parts.append(Part(voice, piece, number == len(kept) - 1))
        pending.clear()

    for tagged, span in _tagged_spans(text):
        paragraphs = span.split("\n\n")
        for number, paragraph in enumerate(paragraphs):
            if number:
                end_paragraph()
            if tagged is not None:
                add(tagged, paragraph)
                continue
            position = 0
            for start, end in _quotations(paragraph) if not casting.plain else ():
                add(casting.narrator, paragraph[position:start])
                speaker = speakers.find(paragraph[max(0, start - SPEAKER_WINDOW) : start], paragraph[end : end + SPEAKER_WINDOW])
                add(speaker or casting.dialogue or casting.narrator, paragraph[start:end])
                position = end
            add(casting.narrator, paragraph[position:])
    end_paragraph()
    return parts
