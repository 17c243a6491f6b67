"""Properties of the text path on any text at all (Hypothesis): nothing raises
but the input errors, nothing speakable is lost, nothing invisible survives,
and every segment fits."""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chorus.tasks.errors import EmptyText
from chorus.tasks.text.clean import has_speakable, normalise
from chorus.tasks.text.read import read_text
from chorus.tasks.text.sentences import MIN_MAX_CHARS, split
from chorus.tasks.text.spoken import spoken_form

# Pieces that stress the text path, mixed with anything unicode has.
PIECES = st.sampled_from(
    [" ", "\n", "\n\n", "\t", "\r\n", "\r", ".", "...", "。", "!", "?", "…", ",", "，", "“", "”", "'", "\"", "(", ")",
     "\u0301", "\u0316", "\u200b", "\u202e", "\u2066", "\x00", "\x07", "\x85", "\u2028", "\u2029", "\ufeff",
     "中", "文", "a", "B", "é", "3", "42", "1999", "Mr.", "No.", "$5", "50%", "Chapter 1", "第一回", "#", "*", "_",
     "> ", "- ", "http://x.org/a", "a@b.co"]
)
TEXTS = st.lists(st.one_of(PIECES, st.text(max_size=12)), max_size=40).map("".join)
MAX_CHARS = st.integers(min_value=MIN_MAX_CHARS, max_value=120)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

INVISIBLE_CATEGORIES = ("Cc", "Cs")
# Format characters that hide or reorder text; others (tags in emoji flags,
# Arabic number signs) are visible parts of what they belong to.
INVISIBLE_FORMAT = set("\u00ad\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                       "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff")


def letters(text: str) -> str:
    """Letters and digits in order, decomposed, marks left out: what must
    survive cleaning and cutting (NFC may compose, a cap on marks may drop)."""
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if ch.isalnum())


def invisible(ch: str) -> bool:
    return ch != "\n" and (unicodedata.category(ch) in INVISIBLE_CATEGORIES or ch in INVISIBLE_FORMAT)


@FAST
@given(TEXTS)
def test_normalise_is_idempotent_and_clean(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once
    assert not any(invisible(ch) for ch in once)
    assert "\n\n\n" not in once and once == once.strip()
    assert letters(once) == letters(text)  # cleaning loses no letter or digit
    assert has_speakable(once) == bool(letters(text))


@FAST
@given(TEXTS, MAX_CHARS)
def test_split_keeps_every_letter_in_order_and_fits(text: str, max_chars: int) -> None:
    segments = split(text, max_chars)
    for segment in segments:
        assert 0 < len(segment.text) <= max_chars
        assert has_speakable(segment.text)
        assert not any(invisible(ch) for ch in segment.text)
    assert letters("".join(s.text for s in segments)) == letters(text)
    assert [s.index for s in segments] == list(range(len(segments)))


@FAST
@given(TEXTS, st.sampled_from(["en-US", "zh-CN"]))
def test_spoken_form_never_raises_and_keeps_something_to_say(text: str, language: str) -> None:
    for segment in split(text, 80):
        spoken = spoken_form(segment.text, language)
        assert has_speakable(spoken)


@FAST
@given(TEXTS, st.sampled_from(["input.txt", "book.md"]))
def test_read_text_gives_a_clean_book_or_says_it_is_empty(text: str, filename: str) -> None:
    try:
        book = read_text(text, filename)
    except EmptyText:
        return
    assert book.chapters
    for chapter in book.chapters:
        assert has_speakable(chapter.text)
        assert not any(invisible(ch) for ch in chapter.text + chapter.title)
    assert not any(invisible(ch) for ch in book.title + book.author)


# Letters that cannot spell a heading word, a roman numeral after one, an
# author's "by" or a contents title: plain text made of them is all prose.
PROSE = st.text(alphabet="acezé中文 \n.,!?", max_size=300)


@FAST
@given(PROSE)
def test_plain_text_loses_no_letter_of_its_prose(text: str) -> None:
    try:
        book = read_text(text, "input.txt")
    except EmptyText:
        assert not letters(text)
        return
    spoken = " ".join([book.title, book.author] + [c.title + " " + c.text for c in book.chapters])
    assert letters(spoken) == letters(text)
