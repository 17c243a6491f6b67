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
from tests.epubs import many_paragraphs_epub, one_page_epub

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


# --------------------------------------------------------------------------- #
# Readers stop at the limit: a document of millions of tiny paragraphs
# --------------------------------------------------------------------------- #

_READ_IN_A_CHILD = """
import resource, sys
from chorus.tasks.errors import InputError
from chorus.tasks.text.read import read_book
try:
    read_book(open(sys.argv[1], "rb").read(), "many.epub", max_chars=2_000_000)
    print("read")
except InputError as exc:
    print(type(exc).__name__, exc)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def plan_in_a_child(path: str, **environment: str) -> tuple[str, float, float]:
    """(what reading said, seconds, peak MB) of ``read_book`` on the file, in a
    process of its own so that its peak memory is its own."""
    import os
    import subprocess
    import sys

    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _READ_IN_A_CHILD, path], capture_output=True, text=True,
                          env={**os.environ, **environment}, timeout=600, check=True)
    seconds = time.monotonic() - started
    said, peak_kb = done.stdout.strip().rsplit("\n", 1)
    return said, seconds, int(peak_kb) / 1024


@pytest.fixture(scope="module")
def six_million_paragraphs(tmp_path_factory: pytest.TempPathFactory) -> str:
    data = many_paragraphs_epub(6_000_000)
    path = tmp_path_factory.mktemp("bomb") / "many.epub"
    path.write_bytes(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entry = zf.getinfo("one.xhtml")
    print(f"EPUB of {len(data) / 2**20:.1f} MiB; its document inflates {entry.file_size / entry.compress_size:.1f} "
          f"times to {entry.file_size / 2**20:.1f} MiB")
    return str(path)


def test_six_million_paragraphs_are_refused_at_the_document_bound(six_million_paragraphs: str) -> None:
    said, seconds, peak_mb = plan_in_a_child(six_million_paragraphs)
    print(f"refused in {seconds:.1f} s, peak {peak_mb:.0f} MB: {said}")
    assert said.startswith("TextTooLarge") and "one document of a book may have at most 16,777,216" in said
    assert seconds <= 10 and peak_mb <= 1500


def test_six_million_paragraphs_under_a_larger_document_bound_stop_at_the_character_limit(
    six_million_paragraphs: str,
) -> None:
    # The document bound raised past the document: the reader meets every
    # paragraph as it parses and stops where the paragraphs pass the limit.
    said, seconds, peak_mb = plan_in_a_child(six_million_paragraphs, CHORUS_EPUB_MAX_DOCUMENT_BYTES=str(64 * 2**20))
    print(f"refused in {seconds:.1f} s, peak {peak_mb:.0f} MB: {said}")
    assert said.startswith("TextTooLarge") and "paragraphs; that is the limit" in said
    assert seconds <= 10 and peak_mb <= 1500
