"""EPUB bounds, checked in the zip's central directory before anything is
inflated: a zip bomb is refused at once and without memory growing."""

from __future__ import annotations

import io
import time
import tracemalloc
import zipfile

import pytest

from chorus.tasks.errors import TextTooLarge
from chorus.tasks.text import epub as epub_reader
from chorus.tasks.text.read import read_book
from tests.epubs import one_page_epub

CONTAINER = (
    '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
    '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
    "</rootfiles></container>"
)


def bomb_epub(inflated_bytes: int) -> bytes:
    """A small EPUB whose one XHTML entry inflates to ``inflated_bytes`` of
    blank lines, written in chunks so that building it takes no memory."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr("META-INF/container.xml", CONTAINER)
        info = zipfile.ZipInfo("OEBPS/chapter.xhtml")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as entry:
            entry.write(b"<html><body><p>")
            chunk = b"\n" * (1 << 20)
            for _ in range(inflated_bytes // len(chunk)):
                entry.write(chunk)
            entry.write(b"</p></body></html>")
    return out.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return bomb_epub(400 * 1024 * 1024)


def small_epub() -> bytes:
    return one_page_epub("<h1>One</h1><p>" + "Words of the book. " * 200 + "</p>", title="Small")


def test_zip_bomb_is_refused_before_inflating(bomb: bytes) -> None:
    assert len(bomb) < 600 * 1024  # about 400 KiB on the wire
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(TextTooLarge, match="inflates"):
            read_book(bomb, "bomb.epub")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5
    assert peak < 10 * 1024 * 1024  # nothing near the 400 MB it would inflate to


def test_zip_bomb_is_not_even_inflated_to_find_its_mimetype() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        info = zipfile.ZipInfo("mimetype")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as entry:
            entry.write(b"application/epub+zip" + b" " * (50 * 1024 * 1024))
    started = time.perf_counter()
    assert not epub_reader.is_epub_zip(out.getvalue())
    assert time.perf_counter() - started < 0.2


def test_too_many_entries_are_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
        for number in range(epub_reader.MAX_ENTRIES + 1):
            zf.writestr(f"OEBPS/{number}.xhtml", b"")
    with pytest.raises(TextTooLarge, match="files"):
        read_book(out.getvalue(), "many.epub")


def test_entry_and_total_sizes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    data = small_epub()
    assert read_book(data, "small.epub").title == "Small"  # within every bound
    monkeypatch.setattr(epub_reader, "MAX_ENTRY_BYTES", 1000)
    with pytest.raises(TextTooLarge, match="the limit is 1,000"):
        read_book(data, "small.epub")
    monkeypatch.setattr(epub_reader, "MAX_ENTRY_BYTES", 64 * 1024 * 1024)
    monkeypatch.setattr(epub_reader, "MAX_TOTAL_BYTES", 2000)
    with pytest.raises(TextTooLarge, match="inflates to"):
        read_book(data, "small.epub")


def test_compression_ratio_is_bounded() -> None:
    """An entry within the size bounds that inflates a thousand times is a bomb all the same."""
    with pytest.raises(TextTooLarge, match="times"):
        read_book(bomb_epub(8 * 1024 * 1024), "ratio.epub")
