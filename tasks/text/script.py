"""Which writing system a text is mostly in, and whether a voice can read it.

Scripts, not languages: telling English from French needs a model, but telling
Chinese from English needs only the characters, and that is the mistake that
produces hours of garbage audio (a Latin-only voice spelling out nothing).
"""

from __future__ import annotations

from collections import Counter

# Script of each voice language (ISO 639-1 codes; "zh-CN" counts as "zh").
LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    "zh": frozenset({"han"}),
    "yue": frozenset({"han"}),
    "ja": frozenset({"han", "kana"}),
    "ko": frozenset({"hangul", "han"}),
    "ru": frozenset({"cyrillic"}),
    "uk": frozenset({"cyrillic"}),
    "el": frozenset({"greek"}),
    "ar": frozenset({"arabic"}),
    "he": frozenset({"hebrew"}),
}
DEFAULT_SCRIPTS = frozenset({"latin"})  # en, fr, de, es, ... and anything unlisted
SCRIPT_NAMES = {"han": "Chinese characters", "kana": "Japanese kana", "hangul": "Korean hangul",
                "cyrillic": "Cyrillic", "greek": "Greek", "arabic": "Arabic", "hebrew": "Hebrew", "latin": "Latin"}
SAMPLE_CHARS = 50_000  # enough to judge a book by its opening


def script_of(char: str) -> str | None:
    if not char.isalpha():
        return None
    code = ord(char)
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x2FA1F:
        return "han"
    if 0x3040 <= code <= 0x30FF:
        return "kana"
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
        return "hangul"
    if 0x0400 <= code <= 0x04FF:
        return "cyrillic"
    if 0x0370 <= code <= 0x03FF:
        return "greek"
    if 0x0600 <= code <= 0x06FF:
        return "arabic"
    if 0x0590 <= code <= 0x05FF:
        return "hebrew"
    if code < 0x0250 or 0x1E00 <= code <= 0x1EFF:
        return "latin"
    return "other"


def dominant_script(text: str) -> str | None:
    """The script most letters of the text are in; None when it has no letters."""
    counts = Counter(script for script in map(script_of, text[:SAMPLE_CHARS]) if script)
    return counts.most_common(1)[0][0] if counts else None


def scripts_of(language: str) -> frozenset[str]:
    return LANGUAGE_SCRIPTS.get(language.split("-")[0].lower(), DEFAULT_SCRIPTS)


def can_read(language: str, script: str | None) -> bool:
    return script is None or script in scripts_of(language)
