"""Helpers every language's reading rules share: URL protection, numbers, months."""

from __future__ import annotations

import re

_URL = re.compile(
    r"(?:(?<![A-Za-z0-9])(?:https?|ftp)://|(?<![A-Za-z0-9.])www\.)[^\s<>\"“”\u2e80-\uffff]++"  # web address
    # An e-mail address starts where its run of address characters starts;
    # without the look-behind, a long word with no "@" would be rescanned
    # from each of its letters.
    r"|(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)+"  # e-mail
)
_URL_TRAIL = ".,;:!?)]}'\"’”。，；：！？）】"
_PUA = 0xF0000  # supplementary private use area: one placeholder character per URL


def protect(text: str) -> tuple[str, list[str]]:
    """Replace URLs and e-mails by placeholder characters no rule touches."""
    saved: list[str] = []
    if "@" not in text and "://" not in text and "www." not in text:
        return text, saved  # most sentences: nothing to protect, no scan

    def keep(m: re.Match[str]) -> str:
        url = m.group(0).rstrip(_URL_TRAIL)  # the sentence's punctuation after it is not part of it
        tail = m.group(0)[len(url) :]
        if not url:
            return m.group(0)
        saved.append(url)
        return chr(_PUA + len(saved) - 1) + tail

    return _URL.sub(keep, text), saved


def restore(text: str, saved: list[str]) -> str:
    for i, url in enumerate(saved):
        text = text.replace(chr(_PUA + i), url)
    return text


# A number as written: "1,234" or "1234", optionally with decimals.
NUM = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?"

MONTHS = (
    "January February March April May June July August September October November December".split()
)
_MONTH_ABBR = {m[:3]: m for m in MONTHS} | {"Sept": "September"}
MONTH_RE = (
    r"(?:" + "|".join(MONTHS) + r"|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?)"
)


def month_name(word: str) -> str:
    word = word.rstrip(".")
    return word if word in MONTHS else _MONTH_ABBR[word]


