"""EPUBs built in the tests with ebooklib, the way publishing tools write them."""

from __future__ import annotations

import io

from ebooklib import epub


def one_page_epub(body: str, title: str = "Book", authors: tuple[str, ...] = (), in_toc: bool = True) -> bytes:
    """An EPUB of one XHTML page whose <body> holds ``body``."""
    book = epub.EpubBook()
    book.set_identifier(title.lower().replace(" ", "-") or "book")
    book.set_title(title)
    for author in authors:
        book.add_author(author)
    page = epub.EpubHtml(title="One", file_name="one.xhtml")
    page.content = f"<html><body>{body}</body></html>"
    book.add_item(page)
    book.add_item(epub.EpubNcx())
    if in_toc:
        book.toc = [page]
    book.spine = [page]
    out = io.BytesIO()
    epub.write_epub(out, book, {})
    return out.getvalue()
