"""Cut clean text into segments: what one TTS call speaks.

A segment is normally one sentence, never longer than ``max_chars``. English
and Chinese (and mixtures of both) are supported.

- ``split(text, max_chars)`` -> ``list[Segment]``

Standard library only.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from chorus.tasks.text.clean import CLOSERS, OPENERS, has_speakable, is_cjk, normalise

__all__ = ["Segment", "split"]

MIN_MAX_CHARS = 20


@dataclass(frozen=True)
class Segment:
    """One piece of the book, spoken in a single TTS call."""

    index: int  # 0-based position in the book
    text: str  # normalised, stripped, non-empty, has a letter or digit
    paragraph_end: bool  # last segment of its paragraph: a longer pause follows



# Compared case-insensitively against the word before a single period.
_ABBREVIATIONS = frozenset(
    """mr. mrs. ms. dr. prof. st. jr. sr. mt. vs. etc. e.g. i.e. no. fig.
    capt. col. gen. lt. rev. hon. gov. sgt. inc. ltd. co.""".split()
)


# --------------------------------------------------------------------------- #
# Sentences
# --------------------------------------------------------------------------- #

# A run of terminators and the closing quotes/brackets that stay with it.
_TERMINATOR = re.compile(f"([.!?。！？…]++)[{re.escape(CLOSERS)}]*+")
# Spaces and opening quotes/brackets before the next word.
_BEFORE_WORD = re.compile(f"\\s*+[{re.escape(OPENERS)}]*+")
_ZH_ENDS = frozenset("。！？")
_PAUSE_MARKS = frozenset("…!?")
# Only the last few characters before a period can make an abbreviation or
# an initial; looking no further keeps the scan of a long word from
# repeating at every period in it.
_ABBREVIATION_WINDOW = 16


def _word_before(par: str, start: int) -> str:
    """The word ending at ``start`` (at most the window), without its openers."""
    begin = par.rfind(" ", max(0, start - _ABBREVIATION_WINDOW), start) + 1
    if not begin and start > _ABBREVIATION_WINDOW:
        begin = start - _ABBREVIATION_WINDOW
    return par[begin:start].lstrip(OPENERS)


def _is_boundary(par: str, start: int, run: str, end: int) -> bool:
    """Does the terminator ``run`` at ``par[start:]`` (closers up to ``end``) end a sentence?"""
    prev = par[start - 1] if start else ""
    after = par[end : end + 1]
    word_at = _BEFORE_WORD.match(par, end).end()
    nxt = par[word_at : word_at + 1]  # first character of the next word

    # Chinese: 。！？ always end a sentence, no whitespace needed; so do …
    # and half-width !? written right after a CJK character.
    if not _ZH_ENDS.isdisjoint(run):
        return True
    if prev and is_cjk(prev) and _PAUSE_MARKS.issuperset(run):
        return True

    # English needs whitespace (or the end) after the mark: "3.14", "a.b.com".
    if after and not after.isspace():
        return False
    if not nxt:  # end of paragraph
        return True
    # "Wait!" he cried. / "Yes." she said: a lower-case word continues it.
    if nxt.islower():
        return False

    if "…" in run or (len(run) > 1 and run.count(".") == len(run)):
        # An ellipsis is a pause unless a new, capitalised sentence follows.
        return nxt.isupper() or is_cjk(nxt)
    if run == ".":
        # Inside a normalised paragraph the only whitespace is " ".
        word = _word_before(par, start)
        abbr = (word + ".").lower()
        # "No. 7" is a number sign, but "No. Maybe." is an answer.
        if abbr in _ABBREVIATIONS and (abbr != "no." or nxt.isdigit()):
            return False
        if len(word) == 1 and word.isupper():  # initial: J. R. R. Tolkien
            return False
    return True


def _sentences(par: str) -> list[str]:
    """Cut one paragraph into sentences; the pieces concatenate back to ``par``."""
    out: list[str] = []
    begin = 0
    for m in _TERMINATOR.finditer(par):
        if _is_boundary(par, m.start(), m.group(1), m.end()):
            out.append(par[begin : m.end()])
            begin = m.end()
    if begin < len(par):
        out.append(par[begin:])
    return out


# --------------------------------------------------------------------------- #
# Fitting long sentences into max_chars
# --------------------------------------------------------------------------- #

# Cut *after* clause punctuation. English marks need a following space so that
# "3,000" and "12:30" stay whole; an en dash between digits is a range.
_CLAUSE = re.compile(
    r"""[,;:][\"'”’)\]]*+(?=\s)"""
    r"""|[，；：、][”’」』）]*"""
    r"""|—|–(?!\d)"""
    r"""|(?<=\s)-(?=\s)"""
)


def _cut_after(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Split ``text`` after each match of ``pattern``; pieces concatenate back."""
    pieces, begin = [], 0
    for m in pattern.finditer(text):
        if m.end() > begin:
            pieces.append(text[begin : m.end()])
            begin = m.end()
    if begin < len(text):
        pieces.append(text[begin:])
    return pieces


def _cut_long(clause: str, max_chars: int) -> list[str]:
    """Cut a clause too long for one piece: as many words as fit, then the
    next piece; a word longer than ``max_chars`` (CJK, a URL) is cut every
    ``max_chars`` characters. Pieces concatenate back to ``clause``; each
    keeps the space before it (the text is normalised: spaces are single).

    One step per piece (``rfind`` looks back for the last space that fits),
    never one per word. A cut never separates an accent from its letter,
    unless the letter carries more marks than half a piece (every piece still
    moves on by at least half of ``max_chars``).
    """
    pieces: list[str] = []
    begin = 0
    while True:
        start = begin + 1 if clause.startswith(" ", begin) else begin  # its space does not count
        if len(clause) - start <= max_chars:
            pieces.append(clause[begin:])
            return pieces
        limit = start + max_chars
        cut = clause.rfind(" ", start + 1, limit + 1)
        if cut == -1:  # a word longer than a piece
            cut = limit
            floor = max(start + 1, cut - max_chars // 2)
            while cut > floor and unicodedata.combining(clause[cut]):
                cut -= 1
        pieces.append(clause[begin:cut])
        begin = cut


def _pack(parts: list[str], max_chars: int) -> list[str]:
    """Greedily join consecutive parts while the stripped result fits."""
    chunks: list[str] = []
    current = ""
    for part in parts:
        if current.strip() and len((current + part).strip()) > max_chars:
            chunks.append(current)
            current = part
        else:
            current += part
    if current:
        chunks.append(current)
    return chunks


def _fit(sentence: str, max_chars: int) -> list[str]:
    """Cut a sentence into pieces of at most ``max_chars`` (stripped)."""
    if len(sentence.strip()) <= max_chars:
        return [sentence]
    parts: list[str] = []
    for clause in _cut_after(sentence, _CLAUSE):
        if len(clause.strip()) <= max_chars:
            parts.append(clause)  # a clause that fits is never broken
            continue
        parts.extend(_cut_long(clause, max_chars))
    return _pack(parts, max_chars)


# --------------------------------------------------------------------------- #
# split
# --------------------------------------------------------------------------- #


def split(text: str, max_chars: int) -> list[Segment]:
    """Normalise ``text`` and cut it into speakable segments.

    One sentence per segment (short sentences are not merged); a sentence
    longer than ``max_chars`` is cut at clause punctuation, then at spaces,
    then, for a space-less run, every ``max_chars`` characters. Pieces with
    nothing to speak are dropped. ``paragraph_end`` marks the last kept
    segment of each paragraph.
    """
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars must be >= {MIN_MAX_CHARS}, got {max_chars}")

    segments: list[Segment] = []
    for par in normalise(text).split("\n\n"):
        pieces = [
            piece.strip()
            for sentence in _sentences(par)
            for piece in _fit(sentence, max_chars)
            if has_speakable(piece)
        ]
        for i, piece in enumerate(pieces):
            segments.append(Segment(len(segments), piece, i == len(pieces) - 1))
    return segments
