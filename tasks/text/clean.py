"""Clean text for speech and layout: one paragraph per block, nothing invisible.

- ``normalise(text)`` -> clean text, paragraphs separated by one blank line
- ``has_speakable(text)`` -> does the text contain a letter or digit?

Standard library only.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["has_speakable", "normalise"]

# --------------------------------------------------------------------------- #
# Character classes
# --------------------------------------------------------------------------- #

# Ideographs, kana, CJK punctuation and full-width forms. Hangul is left out on
# purpose: Korean separates words with spaces, like English.
_CJK_RANGES = (
    (0x2E80, 0x2FDF),  # radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation (。、「」…)
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3100, 0x312F),  # bopomofo
    (0x31A0, 0x31BF),  # bopomofo extended
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0x3200, 0x4DBF),  # enclosed / compatibility / extension A
    (0x4E00, 0x9FFF),  # unified ideographs
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # full-width forms (，！？：；（）)
    (0x20000, 0x3FFFF),  # extensions B and later
)

# Quotes are shared by English and Chinese, so they say nothing about the
# script of a line; they are looked through when joining hard-wrapped lines.
_QUOTES = "\"'“”‘’"

# Closing quotes / brackets that stay attached to the sentence they close.
CLOSERS = "\"'”’)]}」』）》〉»›"
OPENERS = "\"'“‘([{「『（《〈«‹"

# Invisible format characters that a TTS engine must not see.
_INVISIBLE = {"\ufeff", "\u200b", "\u00ad", "\u2060"}

def is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def has_speakable(text: str) -> bool:
    """True iff ``text`` has at least one letter or digit, in any script."""
    return any(ch.isalnum() for ch in text)


# --------------------------------------------------------------------------- #
# normalise
# --------------------------------------------------------------------------- #


def _edge_char(line: str, last: bool) -> str:
    """The first (or last) character of ``line`` that is not a quote."""
    chars = reversed(line) if last else iter(line)
    for ch in chars:
        if ch not in _QUOTES:
            return ch
    return line[-1] if last else line[0]


def _join_lines(lines: list[str]) -> str:
    """Join the hard-wrapped lines of one paragraph."""
    out = lines[0]
    for line in lines[1:]:
        # Chinese has no spaces between words, so a wrap between two CJK
        # characters must vanish; anywhere else it was a space.
        cjk = is_cjk(_edge_char(out, last=True)) and is_cjk(_edge_char(line, last=False))
        out += ("" if cjk else " ") + line
    return out


def normalise(text: str) -> str:
    """Clean ``text`` for speech and layout: one paragraph per block.

    NFC (not NFKC: full-width Chinese punctuation is kept), no BOM, no control
    characters, every kind of space turned into a plain single space, lines
    of a paragraph joined, paragraphs separated by exactly one blank line.
    """
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Unicode line/paragraph separators and NEL are line breaks, not spaces.
    text = text.replace("\u2029", "\n\n").replace("\u2028", "\n").replace("\x85", "\n")

    chars: list[str] = []
    for ch in text:
        if ch == "\n":
            chars.append(ch)
        elif ch.isspace():  # tab, NBSP, ideographic space, thin space, ...
            chars.append(" ")
        elif ch in _INVISIBLE or unicodedata.category(ch) == "Cc":
            continue
        else:
            chars.append(ch)

    paragraphs: list[str] = []
    current: list[str] = []
    for raw in "".join(chars).split("\n"):
        line = re.sub(" {2,}", " ", raw).strip()
        if line:
            current.append(line)
        elif current:  # a blank line closes the paragraph
            paragraphs.append(_join_lines(current))
            current = []
    if current:
        paragraphs.append(_join_lines(current))
    return "\n\n".join(paragraphs)


