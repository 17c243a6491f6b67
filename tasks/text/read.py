"""Read an upload into a ``Book``, choosing the reader from its content and name."""

from __future__ import annotations

from tasks.errors import TextTooLarge, UnsupportedMedia
from tasks.text.book import Book
from tasks.text.decode import decode_text
from tasks.text.epub import is_epub_zip, parse_epub
from tasks.text.markdown import parse_markdown
from tasks.text.plain import parse_text


def read_book(data: bytes, filename: str = "", max_chars: int | None = None) -> Book:
    """Parse an uploaded book, choosing the format from its content and name.
    A text longer than ``max_chars`` is refused once decoded, before it is parsed."""
    name = filename.lower()
    if is_epub_zip(data) or name.endswith(".epub"):
        return parse_epub(data)
    if data.startswith(b"PK\x03\x04"):
        # Any other zip (docx, a plain archive) would decode to garbage.
        raise UnsupportedMedia(f"{filename or 'the upload'} is a zip archive, not an EPUB")
    text = decode_text(data, filename or "the upload")
    if max_chars is not None and len(text) > max_chars:
        raise TextTooLarge(f"{filename or 'the upload'} has {len(text)} characters; the limit is {max_chars}")
    return read_text(text, filename)


def read_text(text: str, filename: str = "") -> Book:
    """A decoded text: Markdown by its file name, else plain text."""
    if filename.lower().endswith((".md", ".markdown")):
        return parse_markdown(text)
    return parse_text(text)
