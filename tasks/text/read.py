"""Read a book into a ``Book``, choosing the reader from its content and name.

- ``read_book(data, filename)``: an upload (bytes): EPUB, else text in any
  common encoding (``tasks.text.decode``), then as ``read_text``.
- ``read_text(text, filename)``: text already decoded (a JSON request body):
  Markdown for ``.md``/``.markdown``, plain text otherwise.
"""

from __future__ import annotations

from tasks.errors import UnsupportedMedia
from tasks.text.book import Book
from tasks.text.clean import strip_invisible
from tasks.text.decode import decode_text
from tasks.text.epub import is_epub_zip, parse_epub
from tasks.text.markdown import parse_markdown
from tasks.text.plain import parse_text

_MARKDOWN_SUFFIXES = (".md", ".markdown")


def read_book(data: bytes, filename: str = "") -> Book:
    """Parse an uploaded book, choosing the format from its content and name."""
    if is_epub_zip(data) or filename.lower().endswith(".epub"):
        return parse_epub(data)
    if data.startswith(b"PK\x03\x04"):
        # Any other zip (docx, a plain archive) would decode to garbage.
        raise UnsupportedMedia(f"{filename or 'the upload'!r} is a zip archive, not an EPUB")
    return read_text(decode_text(data, filename or "the upload"), filename)


def read_text(text: str, filename: str = "") -> Book:
    """Parse a decoded text: Markdown by its name, else plain text.

    Control, zero-width and bidirectional-override characters are removed
    first, so every reader sees (and every title carries) only visible text.
    """
    text = strip_invisible(text)
    if filename.lower().endswith(_MARKDOWN_SUFFIXES):
        return parse_markdown(text)
    return parse_text(text)
