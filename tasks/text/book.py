"""A book as Chorus reads it: metadata and speakable chapters.

Readers per format (``plain``, ``markdown``, ``epub``) build a ``Book`` with the
helpers here; ``chorus.tasks.text.read`` picks the reader for an upload.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chorus.tasks.errors import EmptyText
from chorus.tasks.text.clean import has_speakable, normalise, strip_invisible


@dataclass(frozen=True)
class Chapter:
    """One chapter: the unit a listener navigates by."""

    title: str  # "" when the book has no chapter structure
    text: str  # plain text, paragraphs separated by one blank line, markup removed


@dataclass(frozen=True)
class Book:
    """A parsed book. ``chapters`` is never empty and every chapter is speakable."""

    title: str  # "" if unknown
    author: str  # "" if unknown
    language: str  # code from metadata (EPUB dc:language), else ""
    chapters: list[Chapter]


def build_book(title: str, author: str, language: str, chapters: Iterable[Chapter]) -> Book:
    """Build the Book; a book with nothing to speak is an input error."""
    kept = [c for c in chapters if has_speakable(c.text)]
    if not kept:
        raise EmptyText("the book has no speakable text")
    return Book(title=one_line(title), author=one_line(author), language=language.strip(), chapters=kept)


def one_line(text: str) -> str:
    """A title or an author on one line, with nothing invisible in it."""
    return " ".join(strip_invisible(text).split())


def make_chapter(title: str, paragraphs: Iterable[str]) -> Chapter:
    return Chapter(one_line(title), normalise("\n\n".join(p for p in paragraphs if p.strip())))


def merge_empty(chapters: list[tuple[str, list[str]]]) -> list[Chapter]:
    """Chapters from (title, paragraphs); a heading with no text of its own
    ("BOOK II" right before "Chapter 1") lends its title to the next one."""
    out: list[Chapter] = []
    carry: list[str] = []  # titles of the empty headings so far (joined once: a run of them is linear)
    for title, paragraphs in chapters:
        chapter = make_chapter(title, paragraphs)
        if not has_speakable(chapter.text):
            if chapter.title:
                carry.append(chapter.title)
            continue
        if carry:
            chapter = Chapter(" — ".join([*carry, chapter.title] if chapter.title else carry), chapter.text)
            carry = []
        out.append(chapter)
    return out
