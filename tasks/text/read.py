"""Read a book into a ``Book``, choosing the reader from its content and name.

- ``read_book(data, filename)``: an upload (bytes): EPUB, PDF (with a text
  layer), else text in any common encoding (``chorus.tasks.text.decode``), then as
  ``read_text``.
- ``read_text(text, filename)``: text already decoded (a JSON request body):
  Markdown for ``.md``/``.markdown``, plain text otherwise.
"""

from __future__ import annotations

from chorus.configs import get_settings
from chorus.tasks.errors import TextTooLarge, UnsupportedMedia
from chorus.tasks.text.book import Book
from chorus.tasks.text.clean import strip_invisible
from chorus.tasks.text.decode import decode_text
from chorus.tasks.text.epub import is_epub_zip, parse_epub
from chorus.tasks.text.markdown import parse_markdown
from chorus.tasks.text.pdf import is_pdf, parse_pdf
from chorus.tasks.text.plain import parse_text

_MARKDOWN_SUFFIXES = (".md", ".markdown")


def read_book(data: bytes, filename: str = "", max_chars: int | None = None) -> Book:
    """Parse an uploaded book, choosing the format from its content and name.

    With ``max_chars``, a text longer than that is refused (``TextTooLarge``)
    as soon as it is decoded, before it is parsed; an EPUB or a PDF, as soon
    as its text passes the limit while it is read. The byte bounds of the
    readers (an EPUB's documents, a PDF's streams) are the settings'.
    """
    settings = get_settings()
    name = filename or "the upload"
    if is_epub_zip(data) or filename.lower().endswith(".epub"):
        book = parse_epub(data, max_chars, settings.epub_max_document_bytes)
        _check_size(name, sum(len(chapter.text) for chapter in book.chapters), max_chars)
        return book
    if is_pdf(data) or filename.lower().endswith(".pdf"):
        book = parse_pdf(data, max_chars, settings.pdf_max_stream_bytes, settings.pdf_max_content_bytes)
        _check_size(name, sum(len(chapter.text) for chapter in book.chapters), max_chars)
        return book
    if data.startswith(b"PK\x03\x04"):
        # Any other zip (docx, a plain archive) would decode to garbage.
        raise UnsupportedMedia(f"{name!r} is a zip archive, not an EPUB")
    text = decode_text(data, name)
    _check_size(name, len(text), max_chars)
    return read_text(text, filename)


def _check_size(name: str, characters: int, max_chars: int | None) -> None:
    if max_chars is not None and characters > max_chars:
        raise TextTooLarge(f"{name} has {characters:,} characters; the limit is {max_chars:,}")


def read_text(text: str, filename: str = "") -> Book:
    """Parse a decoded text: Markdown by its name, else plain text.

    Control, zero-width and bidirectional-override characters are removed
    first, so every reader sees (and every title carries) only visible text.
    """
    text = strip_invisible(text)
    if filename.lower().endswith(_MARKDOWN_SUFFIXES):
        return parse_markdown(text)
    return parse_text(text)
