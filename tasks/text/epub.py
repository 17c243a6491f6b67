"""EPUB 2/3 books: metadata, spine order, chapters from the table of contents.

Notes, page-break markers, images and scripts are dropped; a chapter's heading
is announced as its title, not read twice. Libraries: ebooklib and lxml,
imported where used.
"""

from __future__ import annotations

import html.entities
import io
import posixpath
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from chorus.tasks.errors import EmptyText, TextTooLarge, UnsupportedMedia
from chorus.tasks.text.book import Book, build_book, merge_empty, one_line
from chorus.tasks.text.clean import has_speakable

if TYPE_CHECKING:
    from ebooklib.epub import EpubBook

EPUB_MIMETYPE = b"application/epub+zip"

# Bounds on an EPUB, checked in the zip's central directory before anything is
# inflated. Python's zipfile never returns more than an entry's declared
# size (it stops there, and a lying entry fails its CRC check), so the
# declared sizes bound what reading the book can take in memory.
#
# A long illustrated novel has a few hundred files (chapters, images, fonts,
# styles); ten thousand is far beyond any real book.
MAX_ENTRIES = 10_000
# The largest single file of a real EPUB is a high-resolution image or an
# audio clip of a few MiB; a chapter's XHTML is well under one.
MAX_ENTRY_BYTES = 64 * 1024 * 1024
# What the whole book may inflate to: ebooklib holds every file in memory, in
# the API and again in the worker.
MAX_TOTAL_BYTES = 256 * 1024 * 1024
# Deflate shrinks XHTML 3-10 times, repetitive markup up to about 30; zip
# bombs reach a thousand. Checked on entries large enough to matter.
MAX_RATIO = 100
RATIO_FROM_BYTES = 1024 * 1024
# One markup document, inflated (CHORUS_EPUB_MAX_DOCUMENT_BYTES sets the
# API's): a whole novel in one XHTML file is a few MiB.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
# Paragraphs in one document: each is read as at least one segment, and a
# job has at most tens of thousands (max_segments_per_job); counting them
# stops a document of millions of empty-looking paragraphs early.
MAX_PARAGRAPHS = 250_000
# The mimetype file holds "application/epub+zip" and nothing more.
MAX_MIMETYPE_BYTES = 1024


def is_epub_zip(data: bytes) -> bool:
    """A zip whose ``mimetype`` member says EPUB (the OCF container rule)."""
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if zf.getinfo("mimetype").file_size > MAX_MIMETYPE_BYTES:
                return False
            return zf.read("mimetype").strip() == EPUB_MIMETYPE
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError, ValueError, EOFError):
        return False


# Files that are parsed as markup (chapters, the package, its tables of contents).
_MARKUP_SUFFIXES = (".xhtml", ".html", ".htm", ".xml", ".opf", ".ncx")


def check_bounds(data: bytes, max_document_bytes: int = MAX_DOCUMENT_BYTES) -> None:
    """Refuse (``TextTooLarge``) an EPUB whose central directory declares more
    than a book could hold, before any entry is inflated: a markup file over
    ``max_document_bytes`` too."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            entries = zf.infolist()
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError, EOFError) as exc:
        raise UnsupportedMedia(f"the upload is not a readable EPUB: {type(exc).__name__}: {exc}") from exc
    if len(entries) > MAX_ENTRIES:
        raise TextTooLarge(f"the EPUB has {len(entries):,} files; a book may have at most {MAX_ENTRIES:,}")
    total = 0
    for entry in entries:
        if entry.file_size > MAX_ENTRY_BYTES:
            raise TextTooLarge(
                f"{entry.filename!r} in the EPUB inflates to {entry.file_size:,} bytes; the limit is {MAX_ENTRY_BYTES:,}"
            )
        if entry.file_size >= RATIO_FROM_BYTES and entry.file_size > MAX_RATIO * max(entry.compress_size, 1):
            raise TextTooLarge(
                f"{entry.filename!r} in the EPUB inflates {entry.file_size // max(entry.compress_size, 1):,} times; "
                f"the limit is {MAX_RATIO} (a zip bomb?)"
            )
        if entry.file_size > max_document_bytes and entry.filename.lower().endswith(_MARKUP_SUFFIXES):
            raise TextTooLarge(
                f"{entry.filename!r} in the EPUB inflates to {entry.file_size:,} bytes; one document of a book "
                f"may have at most {max_document_bytes:,}"
            )
        total += entry.file_size
    if total > MAX_TOTAL_BYTES:
        raise TextTooLarge(f"the EPUB inflates to {total:,} bytes; the limit is {MAX_TOTAL_BYTES:,}")



_FRONT_MATTER_CHARS = 200  # untitled spine documents shorter than this before the first TOC entry are dropped

BLOCK_TAGS = frozenset(
    ["p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "section", "article", "header", "footer", "main", "body", "dd", "dt", "pre", "tr", "table", "ul", "ol", "dl", "hr", "address", "center", "caption"]
)
_HEADING_TAGS = frozenset(["h1", "h2", "h3", "h4", "h5", "h6"])
_DROP_TAGS = frozenset(
    ["script", "style", "nav", "head", "title", "img", "image", "svg", "picture", "video", "audio", "object", "iframe", "figcaption", "math", "noscript", "template", "button", "input", "select", "textarea"]
)
_DROP_TYPES = frozenset(
    ["footnote", "footnotes", "endnote", "endnotes", "rearnote", "rearnotes", "note", "noteref", "pagebreak", "toc", "landmarks", "page-list"]
)
_DROP_ROLES = frozenset(["doc-footnote", "doc-endnote", "doc-endnotes", "doc-noteref", "doc-pagebreak", "doc-toc", "doc-backlink"])
_DROP_CLASSES = frozenset(["pagenum", "pagenumber", "page-number", "pageno", "footnote", "footnotes", "noteref"])
NOTE_MARK = re.compile(r"^\W{0,2}(?:\d{1,3}|[*†‡§¶]{1,3}|[a-z]|[ivx]{1,4})\W{0,2}$", re.IGNORECASE)
# A line break between two CJK characters in the source vanishes. The match
# starts at the line break (a look-behind for the spaces before it would be
# variable-width): spaces before it are left to one_line, and the spaces
# after it are taken possessively, so no run is scanned twice.
_CJK = "\u3000-\u303f\u3400-\u9fff\uff00-\uffef"
_CJK_BREAK = re.compile(f"(?<=[{_CJK}])[^\\S\\n]*+\n\\s*+(?=[{_CJK}])")


@dataclass(slots=True)
class _Block:
    """One paragraph of an EPUB document."""

    text: str
    heading: int  # 1-6 for h1-h6, else 0
    ids: frozenset[str]  # element ids met since the previous block: TOC fragment targets


# epub:type as lxml names it (namespace declared), and as it is when not.
_EPUB_TYPE = ("{http://www.idpf.org/2007/ops}type", "epub:type")


def _attr_words(attributes: Any, *names: str) -> set[str]:
    for name in names:
        value = attributes.get(name)
        if value:
            return set(value.lower().split())
    return set()


def dropped_by_markup(name: str, attributes: Any) -> bool:
    """Markup that is not part of the prose, known at its start tag: scripts,
    images, notes, page breaks. (Note marks written as a bare "1" or "[1]"
    are known only at their end: ``_Reader.end``.)"""
    if name in _DROP_TAGS:
        return True
    if _attr_words(attributes, *_EPUB_TYPE) & _DROP_TYPES or _attr_words(attributes, "role") & _DROP_ROLES:
        return True
    return bool(_attr_words(attributes, "class") & _DROP_CLASSES)


_XML_UNSAFE_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_ENTITIES = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})


def _numeric_entity(match: re.Match[bytes]) -> bytes:
    name = match.group(1)
    if name in _XML_ENTITIES:
        return match.group(0)
    code = html.entities.name2codepoint.get(name.decode("ascii"))
    return b"&#%d;" % code if code else match.group(0)


def numeric_entities(content: bytes) -> bytes:
    """The document with HTML's named entities (undefined in XML) as numeric
    references; XML's own five and unknown names are left as they are."""
    return _XML_UNSAFE_ENTITY.sub(_numeric_entity, content)


_NO_IDS: frozenset[str] = frozenset()


@dataclass
class _Mark:
    """A <sup> or an inner link being read: a note mark ("1", "[1]", "*") is
    dropped at its end, with its text. ``start``: where its text begins in the
    paragraph's buffer (-1 once a paragraph ended inside it: then it stays)."""

    name: str
    depth: int
    start: int
    has_link: bool = False


class _Reader:
    """An lxml parser target: the paragraphs of one XHTML document as the
    parser meets them, never a tree. Each element costs a few calls and its
    text; reading stops (``TextTooLarge``) as soon as the paragraphs passed
    ``max_chars``, the caller's limit left for this document."""

    def __init__(self, max_chars: int | None) -> None:
        self.max_chars = max_chars
        self.characters = 0
        self.blocks: list[_Block] = []
        self.saw_body = False
        self._buffer: list[str] = []
        self._pending: set[str] = set()
        self._headings: list[int] = []  # per open element inside <body>: the heading level in it
        self._blocks_open: list[bool] = []  # per open element inside <body>: is it a block
        self._in_body = False
        self._dropped = 0  # depth inside a dropped element: nothing in it is read
        self._marks: list[_Mark] = []

    def start(self, tag: str, attributes: Any, _nsmap: Any = None) -> None:
        name = tag.rpartition("}")[2].lower()
        if not self._in_body:
            if name == "body":
                self._in_body = self.saw_body = True
                self._headings, self._blocks_open = [0], [False]
            return
        if self._dropped or name in _DROP_TAGS:
            self._dropped += 1
            return
        if attributes:  # most tags of a book have none
            attributes = dict(attributes)
            if dropped_by_markup(name, attributes):
                self._dropped += 1
                return
            ident = attributes.get("id")
            if ident:
                self._pending.add(ident)
        heading = self._headings[-1]
        if name == "br":
            self._buffer.append("\n")
        is_block = name in BLOCK_TAGS
        if is_block:
            self._flush(heading)
            heading = int(name[1]) if name in _HEADING_TAGS else heading
        if name == "a":
            for mark in self._marks:
                mark.has_link = True
            href = (attributes.get("href") if attributes else "") or ""
            if "#" in href and "://" not in href:  # a link to a note inside the book
                self._marks.append(_Mark(name, len(self._headings), len(self._buffer)))
        elif name == "sup":
            self._marks.append(_Mark(name, len(self._headings), len(self._buffer)))
        self._headings.append(heading)
        self._blocks_open.append(is_block)

    def end(self, tag: str) -> None:
        if not self._in_body:
            return
        if self._dropped:
            self._dropped -= 1
            return
        depth = len(self._headings) - 1
        heading = self._headings.pop()
        is_block = self._blocks_open.pop()
        if not self._headings:  # </body>
            self._flush(0)
            self._in_body = False
            return
        if self._marks and self._marks[-1].depth == depth:
            mark = self._marks.pop()
            if mark.start >= 0:
                text = "".join(self._buffer[mark.start:]).strip()
                if (mark.name == "sup" and mark.has_link) or NOTE_MARK.match(text):
                    del self._buffer[mark.start:]
        if is_block:
            self._flush(heading)

    def data(self, text: str) -> None:
        if self._in_body and not self._dropped:
            self._buffer.append(text)

    def close(self) -> None:
        if self._in_body:
            self._flush(0)

    def _flush(self, heading: int) -> None:
        if not self._buffer:
            return
        text = "".join(self._buffer)
        self._buffer.clear()
        if "\n" in text:
            text = _CJK_BREAK.sub("", text)
        text = one_line(text)
        for mark in self._marks:
            mark.start = -1
        if has_speakable(text):
            self.characters += len(text) + 2  # and the blank line between paragraphs
            if self.max_chars is not None and self.characters > self.max_chars:
                raise TextTooLarge(f"the EPUB has more than {self.max_chars:,} characters of text; that is the limit")
            if len(self.blocks) >= MAX_PARAGRAPHS:
                raise TextTooLarge(f"the EPUB has more than {MAX_PARAGRAPHS:,} paragraphs; that is the limit")
            self.blocks.append(_Block(text, heading, frozenset(self._pending) if self._pending else _NO_IDS))
            self._pending.clear()


_FEED_BYTES = 256 * 1024  # the parser is fed this much at a time, so that reading stops soon after a limit


def _html_blocks(content: bytes, max_chars: int | None = None) -> list[_Block]:
    """Paragraphs of one XHTML document, in order, with the ids that precede them.

    lxml parses (in C) and calls ``_Reader`` for each tag and each run of
    text, in document order: memory holds the paragraphs, never a tree, and
    a document of millions of elements is read only until the text passes
    ``max_chars``. A malformed document without a <body> that the forgiving
    XML parser can find is read again by the HTML parser.
    """
    import lxml.etree

    # HTML named entities (&nbsp; &mdash;) are undefined in XML and the
    # recovering XML parser would silently delete them, gluing words together.
    content = numeric_entities(content)
    reader = _Reader(max_chars)
    xml = lxml.etree.XMLParser(target=reader, recover=True, huge_tree=True, resolve_entities=False, no_network=True)
    if _feed(xml, content) and reader.saw_body:
        return reader.blocks
    reader = _Reader(max_chars)
    _feed(lxml.etree.HTMLParser(target=reader, huge_tree=True), content)
    return reader.blocks


def _feed(parser: Any, content: bytes) -> bool:
    """Feed ``content`` to ``parser`` in pieces; False when it could not be parsed at all."""
    import lxml.etree

    try:
        for offset in range(0, len(content), _FEED_BYTES):
            parser.feed(content[offset : offset + _FEED_BYTES])
        parser.close()
    except (lxml.etree.XMLSyntaxError, ValueError):
        return False
    return True


def _flatten_toc(toc: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """(label, href) of every TOC entry, depth first, in reading order."""
    for entry in toc:
        if isinstance(entry, tuple):
            section, children = entry
            if getattr(section, "href", None):
                yield section.title or "", section.href
            yield from _flatten_toc(children)
        elif getattr(entry, "href", None):
            yield getattr(entry, "title", "") or "", entry.href


def _same_heading(heading: str, label: str) -> bool:
    """Does a heading repeat (part of) the TOC label?"""
    # Whole words only: "Chapter 1" does not repeat "Chapter 10".
    a = " " + re.sub(r"\W+", " ", heading.lower()).strip() + " "
    b = " " + re.sub(r"\W+", " ", label.lower()).strip() + " "
    return bool(a.strip() and b.strip()) and (a in b or b in a)


def _epub_metadata(book: EpubBook, name: str) -> str:
    """A Dublin Core field; several creators are joined, other fields take the first."""
    values = [one_line(str(v)) for v, _ in book.get_metadata("DC", name) if v and str(v).strip()]
    if name == "creator":
        return ", ".join(values)
    return values[0] if values else ""


def parse_epub(data: bytes, max_chars: int | None = None, max_document_bytes: int = MAX_DOCUMENT_BYTES) -> Book:
    """Parse an EPUB 2/3: metadata, spine order, chapters from the TOC.
    ``TextTooLarge`` for an archive that would inflate beyond a book's bounds,
    and as soon as the text read passes ``max_chars``."""
    check_bounds(data, max_document_bytes)
    try:
        return _parse_epub(data, max_chars)
    except (UnsupportedMedia, EmptyText, TextTooLarge):
        raise
    except Exception as exc:
        raise UnsupportedMedia(f"the upload is not a readable EPUB: {type(exc).__name__}: {exc}") from exc


def _parse_epub(data: bytes, max_chars: int | None) -> Book:
    import ebooklib
    from ebooklib import epub

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ebooklib warns about its own future defaults
        book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": False})

    # Documents in reading order; linear="no" items (pop-up notes) are skipped.
    documents: list[tuple[str, list[_Block]]] = []
    read = 0  # characters of text so far, counted against max_chars
    for idref, linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or str(linear).lower() == "no":
            continue
        if item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue
        left = None if max_chars is None else max_chars - read
        # The stored bytes: ebooklib's get_content() of a document parses it whole into a tree.
        blocks = _html_blocks(item.content, left)
        read += sum(len(block.text) + 2 for block in blocks)
        documents.append((posixpath.normpath(unquote(item.get_name())), blocks))

    # TOC targets: (document, fragment) -> label; the first entry for a spot wins.
    known = {path for path, _ in documents}
    by_base = {posixpath.basename(path): path for path, _ in documents}
    starts: dict[tuple[str, str], str] = {}
    # An NCX with an empty navMap comes back from ebooklib as one bare Link.
    toc = book.toc if isinstance(book.toc, (list, tuple)) else [book.toc]
    for label, href in _flatten_toc(toc):
        path, _, fragment = unquote(href).partition("#")
        path = posixpath.normpath(path)
        if path not in known:  # NCX hrefs are relative to the NCX, not the OPF
            path = by_base.get(posixpath.basename(path), path)
        if path in known:
            starts.setdefault((path, fragment), label)

    chapters: list[tuple[str, list[_Block]]] = []
    if starts:
        started = False
        for path, blocks in documents:
            doc_start = (path, "") in starts
            if not started and not doc_start and not any((path, f) in starts for b in blocks for f in b.ids):
                # Cover, title page, copyright: dropped unless long enough to be prose.
                if sum(len(b.text) for b in blocks) >= _FRONT_MATTER_CHARS:
                    chapters.append(_titled_by_heading(blocks))
                continue
            if doc_start and not blocks:  # a title page with no text: its label still counts
                started = True
                chapters.append((starts[(path, "")], []))
            for index, block in enumerate(blocks):
                keys = ([(path, "")] if index == 0 else []) + [(path, f) for f in sorted(block.ids)]
                start_label = next((starts[key] for key in keys if key in starts), None)
                if start_label is not None:
                    started = True
                    chapters.append((start_label, []))
                elif not chapters:  # text before the first target inside the first target's document
                    chapters.append(("", []))
                chapters[-1][1].append(block)
    else:
        chapters = [_titled_by_heading(blocks) for _, blocks in documents if blocks]

    result: list[tuple[str, list[str]]] = []
    for title, blocks in chapters:
        # The chapter's heading is announced as its title: don't read it twice.
        first = 0
        while first < len(blocks) and blocks[first].heading and _same_heading(blocks[first].text, title):
            first += 1
        result.append((title, [b.text for b in blocks[first:]]))

    return build_book(
        _epub_metadata(book, "title"),
        _epub_metadata(book, "creator"),
        _epub_metadata(book, "language"),
        merge_empty(result),
    )


def _titled_by_heading(blocks: list[_Block]) -> tuple[str, list[_Block]]:
    """A chapter without a TOC entry: its first h1-h3 is its title."""
    for block in blocks:
        if 1 <= block.heading <= 3:
            return block.text, blocks
    return "", blocks
