"""Subtitles for an audiobook: SRT through the ``srt`` library, WebVTT through
``webvtt-py``. Times are seconds (floats) in, milliseconds in the files.

One cue per segment. Where a segment is timed by word, its WebVTT cue carries
a timestamp tag before each word after the first (``<00:00:01.200>word``, the
karaoke style of WebVTT: players highlight the words as they are said); a tag
is left out where it would not rise above the one before it or stay inside the
cue, as WebVTT requires. SRT has no such tags: its cues stay per sentence."""

from __future__ import annotations

import html
import io
import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import srt
import webvtt

LINE_CHARS = 42
MAX_LINES = 2


@dataclass(frozen=True)
class Cue:
    index: int
    start: float  # seconds
    end: float
    text: str
    # Seconds at which each word of ``text`` (``tasks/text/words.words``) starts; empty when timed by sentence.
    word_starts: tuple[float, ...] = ()


def wrap(text: str, width: int = LINE_CHARS, max_lines: int = MAX_LINES) -> list[str]:
    """Lines of at most ``width`` characters; text too long for ``max_lines``
    such lines is balanced over ``max_lines`` longer ones (never cut) -- use
    ``split_long_cues`` first to keep every line within ``width``."""
    text = " ".join(text.split()).replace("-->", "->")  # the cue timing arrow
    if not text:
        return []
    lines = textwrap.wrap(text, width, break_on_hyphens=False)  # long words: CJK, URLs
    if len(lines) <= max_lines:
        return lines
    balanced = math.ceil(len(text) / max_lines)
    while len(lines := textwrap.wrap(text, balanced, break_on_hyphens=False)) > max_lines:
        balanced += 1
    return lines


def split_long_cues(cues: Iterable[Cue], max_chars: int = LINE_CHARS * MAX_LINES) -> list[Cue]:
    """Break cues whose text does not fit ``max_chars`` into consecutive cues
    (at word boundaries), sharing the time in proportion to characters, and
    renumber from 1."""
    out: list[Cue] = []
    for cue in cues:
        pieces = textwrap.wrap(" ".join(cue.text.split()), max_chars, break_on_hyphens=False) or [""]
        total = sum(len(p) for p in pieces) or 1
        start = cue.start
        for number, piece in enumerate(pieces):
            end = cue.end if number == len(pieces) - 1 else start + (cue.end - cue.start) * len(piece) / total
            out.append(Cue(len(out) + 1, start, end, piece))
            start = end
    return out


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def to_srt(cues: Sequence[Cue]) -> str:
    subtitles = [
        srt.Subtitle(index=cue.index, start=timedelta(milliseconds=_ms(cue.start)),
                     end=timedelta(milliseconds=_ms(cue.end)), content="\n".join(wrap(cue.text)))
        for cue in cues
    ]
    return srt.compose(subtitles, reindex=False)


def _vtt_time(seconds: float) -> str:
    ms = _ms(seconds)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def _vtt_text(line: str) -> str:
    """Cue text is markup in WebVTT ("<b>", "&amp;"): a book's "&", "<" and ">"
    are escaped so that players show them (SRT stays plain text)."""
    return html.escape(line, quote=False)


def _vtt_lines(cue: Cue) -> list[str]:
    """The cue's wrapped lines, escaped, with a timestamp tag before each word after the first."""
    lines = wrap(cue.text)
    words_in_lines = sum(1 for line in lines for token in line.split(" ") if any(char.isalnum() for char in token))
    if words_in_lines != len(cue.word_starts):  # timed by sentence, or a word too long for a line was cut
        return [_vtt_text(line) for line in lines] or [""]
    starts = iter(cue.word_starts)
    last_ms, end_ms = _ms(cue.start), _ms(cue.end)
    first = True
    out = []
    for line in lines:
        tokens = []
        for token in line.split(" "):
            text = _vtt_text(token)
            if any(char.isalnum() for char in token):
                at = next(starts, None)
                if at is not None and not first and last_ms < _ms(at) < end_ms:
                    last_ms = _ms(at)
                    text = f"<{_vtt_time(at)}>{text}"
                first = False
            tokens.append(text)
        out.append(" ".join(tokens))
    return out or [""]


def to_vtt(cues: Sequence[Cue]) -> str:
    captions = [
        webvtt.Caption(start=_vtt_time(cue.start), end=_vtt_time(cue.end), text=_vtt_lines(cue),
                       identifier=str(cue.index))
        for cue in cues
    ]
    buffer = io.StringIO()
    webvtt.WebVTT(captions=captions).write(buffer)
    return buffer.getvalue()


def cues_from_segments(entries: Iterable[dict]) -> list[Cue]:
    """Cues from the assembler's manifest entries ({index, text, start, end},
    and ``words`` where timed by word)."""
    return [Cue(number + 1, float(e["start"]), float(e["end"]), str(e["text"]),
                tuple(float(w["start"]) for w in e.get("words", ())))
            for number, e in enumerate(entries)]
