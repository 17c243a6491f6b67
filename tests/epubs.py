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


def many_paragraphs_epub(paragraphs: int, seed: int = 1) -> bytes:
    """An EPUB whose one XHTML document holds ``paragraphs`` tiny paragraphs of
    random letters: deflate shrinks it only about four times, so it passes
    the zip-bomb ratio check, yet a tree of it would take gigabytes. Written
    with zipfile directly (ebooklib would build the document as a tree)."""
    import random
    import zipfile

    symbols = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_" * 4
    noise = random.Random(seed).randbytes(2 * paragraphs).translate(symbols)
    body = bytearray(b"<p>..</p>" * paragraphs)
    body[3::9] = noise[0::2]
    body[4::9] = noise[1::2]
    page = b'<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head>' \
           b"<title>One</title></head><body>" + bytes(body) + b"</body></html>"
    opf = (b'<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="2.0" unique-identifier="id">'
           b'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">many</dc:identifier>'
           b"<dc:title>Many</dc:title><dc:language>en</dc:language></metadata>"
           b'<manifest><item id="one" href="one.xhtml" media-type="application/xhtml+xml"/></manifest>'
           b'<spine><itemref idref="one"/></spine></package>')
    container = (b'<?xml version="1.0"?><container version="1.0" '
                 b'xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
                 b'<rootfiles><rootfile full-path="content.opf" media-type="application/oebps-package+xml"/>'
                 b"</rootfiles></container>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr("META-INF/container.xml", container, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("content.opf", opf, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("one.xhtml", page, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    return out.getvalue()
