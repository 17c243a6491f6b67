"""Nothing invisible reaches the engine, a title or a subtitle: control,
zero-width and bidirectional characters are removed wherever text comes in."""

from __future__ import annotations

import unicodedata

import pytest

from chorus.tasks.text.book import one_line
from chorus.tasks.text.clean import normalise, strip_invisible
from chorus.tasks.text.read import read_book, read_text
from chorus.tasks.text.sentences import split
from tests.epubs import one_page_epub

INVISIBLE = {
    "NUL": "\x00",
    "bell": "\x07",
    "escape": "\x1b",
    "delete": "\x7f",
    "C1 control": "\x9b",
    "soft hyphen": "\u00ad",
    "zero-width space": "\u200b",
    "zero-width non-joiner": "\u200c",
    "zero-width joiner": "\u200d",
    "word joiner": "\u2060",
    "byte-order mark": "\ufeff",
    "left-to-right mark": "\u200e",
    "right-to-left mark": "\u200f",
    "left-to-right embedding": "\u202a",
    "right-to-left override": "\u202e",
    "left-to-right isolate": "\u2066",
    "pop directional isolate": "\u2069",
    "Arabic letter mark": "\u061c",
    "lone surrogate": "\ud800",
}


def visible(text: str) -> bool:
    """No control (but newline), format or surrogate character."""
    return all(ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs") for ch in text)


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_normalise_removes_each_invisible_character(char: str) -> None:
    assert normalise(f"Hel{char}lo wor{char}ld.\n\n{char}Next.") == "Hello world.\n\nNext."
    assert strip_invisible(f"a{char}b") == "ab"


def test_whitespace_controls_are_spaces_and_line_ends_are_kept() -> None:
    assert normalise("a\tb\x0bc\x0cd\x1fe") == "a b c d e"
    assert strip_invisible("a\tb\r\nc\rd\x85e\u2028f\u2029g") == "a\tb\nc\nd\ne\nf\n\ng"


def test_json_text_with_nul_and_controls_is_a_valid_book() -> None:
    """The text of a JSON body goes through read_text: its control characters
    are cleaned, not taken for binary."""
    text = "Chapter 1\n\nThe \x00door\x07 opened.\x1b[0m \u202eIt was late.\u202c\n"
    book = read_text(text, "input.txt")
    assert book.chapters[0].title == "Chapter 1"
    assert book.chapters[0].text == "The door opened.[0m It was late."
    assert all(visible(s.text) for c in book.chapters for s in split(c.text, 200))


def test_titles_and_authors_carry_nothing_invisible() -> None:
    assert one_line("\u202eThe\u200b Title\x00\n") == "The Title"
    book = read_text("A \u2066Small\u2069 Book\nby Jo\u200d Reed\n\nThe first words of it.\n")
    assert (book.title, book.author) == ("A Small Book", "Jo Reed")


def test_epub_metadata_is_cleaned() -> None:
    data = one_page_epub("<h1>One</h1><p>Some\u200b text\u2066 here.</p>", title="The \u202eLantern\u202c\u200b Keeper",
                         authors=("Ann\u200f Other\u2069",))
    parsed = read_book(data, "book.epub")
    assert (parsed.title, parsed.author) == ("The Lantern Keeper", "Ann Other")
    assert parsed.chapters[0].text == "Some text here."
