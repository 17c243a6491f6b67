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


def check_bounds(data: bytes) -> None:
    """Refuse (``TextTooLarge``) an EPUB whose central directory declares more
    than a book could hold, before any entry is inflated."""
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
        total += entry.file_size
    if total > MAX_TOTAL_BYTES:
        raise TextTooLarge(f"the EPUB inflates to {total:,} bytes; the limit is {MAX_TOTAL_BYTES:,}")



_FRONT_MATTER_CHARS = 200  # untitled spine documents shorter than this before the first TOC entry are dropped

_BLOCK_TAGS = frozenset(
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
_NOTE_MARK = re.compile(r"^\W{0,2}(?:\d{1,3}|[*†‡§¶]{1,3}|[a-z]|[ivx]{1,4})\W{0,2}$", re.IGNORECASE)
# A line break between two CJK characters in the source vanishes. The match
# starts at the line break (a look-behind for the spaces before it would be
# variable-width): spaces before it are left to one_line, and the spaces
# after it are taken possessively, so no run is scanned twice.
_CJK = "\u3000-\u303f\u3400-\u9fff\uff00-\uffef"
_CJK_BREAK = re.compile(f"(?<=[{_CJK}])[^\\S\\n]*+\n\\s*+(?=[{_CJK}])")


@dataclass
class _Block:
    """One paragraph of an EPUB document."""

    text: str
    heading: int  # 1-6 for h1-h6, else 0
    ids: frozenset[str]  # element ids met since the previous block: TOC fragment targets


# epub:type as lxml names it (namespace declared), and as it is when not.
_EPUB_TYPE = ("{http://www.idpf.org/2007/ops}type", "epub:type")


def _name(element: Any) -> str:
    """The tag's local name, lower case ("{http://www.w3.org/1999/xhtml}P" -> "p")."""
    return element.tag.rpartition("}")[2].lower()


def _attr_words(element: Any, *names: str) -> set[str]:
    for name in names:
        value = element.get(name)
        if value:
            return set(value.lower().split())
    return set()


def _is_dropped(element: Any, name: str) -> bool:
    """Markup that is not part of the prose: scripts, images, notes, page breaks."""
    if name in _DROP_TAGS:
        return True
    if _attr_words(element, *_EPUB_TYPE) & _DROP_TYPES or _attr_words(element, "role") & _DROP_ROLES:
        return True
    if _attr_words(element, "class") & _DROP_CLASSES:
        return True
    # The text of a tag is read only for the two that can be note marks:
    # reading it for every tag would read nested markup once per level.
    if name == "sup" and (element.find(".//{*}a") is not None or _NOTE_MARK.match(_text_of(element))):
        return True
    if name == "a":
        # A link to a note inside the book, written as "1" or "[1]".
        href = element.get("href") or ""
        if "#" in href and "://" not in href and _NOTE_MARK.match(_text_of(element)):
            return True
    return False


def _text_of(element: Any) -> str:
    return "".join(element.itertext()).strip()


_XML_UNSAFE_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_ENTITIES = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})


def _numeric_entity(match: re.Match[bytes]) -> bytes:
    name = match.group(1)
    if name in _XML_ENTITIES:
        return match.group(0)
    code = html.entities.name2codepoint.get(name.decode("ascii"))
    return b"&#%d;" % code if code else match.group(0)


def _body(content: bytes) -> Any:
    """The <body> of an XHTML document (lxml); a malformed one is read by the
    forgiving HTML parser. None when there is nothing to read."""
    import lxml.etree

    # HTML named entities (&nbsp; &mdash;) are undefined in XML and the
    # recovering XML parser would silently delete them, gluing words together.
    content = _XML_UNSAFE_ENTITY.sub(_numeric_entity, content)
    xml = lxml.etree.XMLParser(recover=True, huge_tree=True, resolve_entities=False, no_network=True)
    try:
        root = lxml.etree.fromstring(content, xml)
    except lxml.etree.XMLSyntaxError:
        root = None
    body = root.find(".//{*}body") if root is not None else None
    if body is None:
        try:
            root = lxml.etree.fromstring(content, lxml.etree.HTMLParser(huge_tree=True))
        except (lxml.etree.XMLSyntaxError, ValueError):
            return None
        if root is None:
            return None
        body = root.find(".//body")
        if body is None:
            body = root
    return body


def _html_blocks(content: bytes) -> list[_Block]:
    """Paragraphs of one XHTML document, in order, with the ids that precede them.

    lxml parses (in C) and the walk keeps its own stack (any depth); each
    element is visited once. (BeautifulSoup, used before, took 5 s to build
    its tree for 50,000 inline tags.)
    """
    body = _body(content)
    blocks: list[_Block] = []
    if body is None:
        return blocks
    buffer: list[str] = [body.text or ""]
    pending: set[str] = set()

    def flush(heading: int) -> None:
        text = one_line(_CJK_BREAK.sub("", "".join(buffer)))
        if has_speakable(text):
            blocks.append(_Block(text, heading, frozenset(pending)))
            pending.clear()
        buffer.clear()

    stack = [(body, iter(body), 0)]  # element, its children still to visit, heading level inside it
    while stack:
        element, children, heading = stack[-1]
        child = next(children, None)
        if child is None:  # the element ends
            stack.pop()
            if element is not body:
                if _name(element) in _BLOCK_TAGS:
                    flush(heading)
                if element.tail:
                    buffer.append(element.tail)
            continue
        if not isinstance(child.tag, str):  # a comment or a processing instruction: only its tail is text
            if child.tail:
                buffer.append(child.tail)
            continue
        name = _name(child)
        if _is_dropped(child, name):
            if child.tail:
                buffer.append(child.tail)
            continue
        ident = child.get("id")
        if ident:
            pending.add(ident)
        if name == "br":
            buffer.append("\n")
            if child.tail:
                buffer.append(child.tail)
            continue
        if name in _BLOCK_TAGS:
            flush(heading)
            heading = int(name[1]) if name in _HEADING_TAGS else heading
        stack.append((child, iter(child), heading))
        if child.text:
            buffer.append(child.text)
    flush(0)
    return blocks


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


def parse_epub(data: bytes) -> Book:
    """Parse an EPUB 2/3: metadata, spine order, chapters from the TOC.
    ``TextTooLarge`` for an archive that would inflate beyond a book's bounds."""
    check_bounds(data)
    try:
        return _parse_epub(data)
    except (UnsupportedMedia, EmptyText):
        raise
    except Exception as exc:
        raise UnsupportedMedia(f"the upload is not a readable EPUB: {type(exc).__name__}: {exc}") from exc


def _parse_epub(data: bytes) -> Book:
    import ebooklib
    from ebooklib import epub

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ebooklib warns about its own future defaults
        book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": False})

    # Documents in reading order; linear="no" items (pop-up notes) are skipped.
    documents: list[tuple[str, list[_Block]]] = []
    for idref, linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or str(linear).lower() == "no":
            continue
        if item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue
        documents.append((posixpath.normpath(unquote(item.get_name())), _html_blocks(item.get_content())))

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
