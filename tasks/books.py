"""Read a book (EPUB, Markdown or plain text) into metadata and chapters.

Each chapter's text is plain prose ready for ``tasks.text.split``: markup,
page furniture (page numbers, illustration notes, separators) and footnotes
are removed, paragraphs are separated by one blank line.

Public API:

- ``read_book(data, filename)`` -> ``Book`` (dispatches on content and name)
- ``parse_text(text)``, ``parse_markdown(text)``, ``parse_epub(data)``

Errors: ``UnsupportedMedia`` for something that is not a readable book (a
corrupt EPUB, text that is not UTF-8), ``EmptyText`` (an ``InputError``) for a
book with nothing to speak.

Third-party: ebooklib, beautifulsoup4 + lxml (EPUB), markdown-it-py +
mdit-py-plugins (Markdown).
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

from tasks.errors import EmptyText, UnsupportedMedia
from tasks.text import has_speakable, normalise

if TYPE_CHECKING:  # the parsers are imported where used: the rest of Chorus runs without them
    from bs4 import Tag
    from ebooklib.epub import EpubBook
    from markdown_it.token import Token

__all__ = ["Book", "Chapter", "parse_epub", "parse_markdown", "parse_text", "read_book"]


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


# --------------------------------------------------------------------------- #
# Dispatch
# --------------------------------------------------------------------------- #

EPUB_MIMETYPE = b"application/epub+zip"


def _is_epub_zip(data: bytes) -> bool:
    """A zip whose ``mimetype`` member says EPUB (the OCF container rule)."""
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return zf.read("mimetype").strip() == EPUB_MIMETYPE
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError, ValueError):
        return False


def read_book(data: bytes, filename: str = "") -> Book:
    """Parse an uploaded book, choosing the format from its content and name."""
    name = filename.lower()
    if _is_epub_zip(data) or name.endswith(".epub"):
        return parse_epub(data)
    if data.startswith(b"PK\x03\x04"):
        # Any other zip (docx, a plain archive) would decode to garbage.
        raise UnsupportedMedia(f"{filename or 'the upload'} is a zip archive, not an EPUB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedMedia(
            f"{filename or 'the text'} is not UTF-8 (byte {exc.start}); save it as UTF-8 or upload an EPUB"
        ) from None
    if "\x00" in text:  # valid UTF-8 can still be binary (UTF-16 without BOM, images)
        raise UnsupportedMedia(f"{filename or 'the upload'} is binary, not text")
    if name.endswith((".md", ".markdown")):
        return parse_markdown(text)
    return parse_text(text)


def _finish(title: str, author: str, language: str, chapters: Iterable[Chapter]) -> Book:
    """Build the Book; a book with nothing to speak is an input error."""
    kept = [c for c in chapters if has_speakable(c.text)]
    if not kept:
        raise EmptyText("the book has no speakable text")
    return Book(title=_one_line(title), author=_one_line(author), language=language.strip(), chapters=kept)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _chapter(title: str, paragraphs: Iterable[str]) -> Chapter:
    return Chapter(_one_line(title), normalise("\n\n".join(p for p in paragraphs if p.strip())))


def _merge_empty(chapters: list[tuple[str, list[str]]]) -> list[Chapter]:
    """Chapters from (title, paragraphs); a heading with no text of its own
    ("BOOK II" right before "Chapter 1") lends its title to the next one."""
    out: list[Chapter] = []
    carry = ""
    for title, paragraphs in chapters:
        chapter = _chapter(title, paragraphs)
        if not has_speakable(chapter.text):
            carry = f"{carry} — {chapter.title}" if carry and chapter.title else (carry or chapter.title)
            continue
        if carry:
            chapter = Chapter(f"{carry} — {chapter.title}" if chapter.title else carry, chapter.text)
            carry = ""
        out.append(chapter)
    return out


# --------------------------------------------------------------------------- #
# Plain text
# --------------------------------------------------------------------------- #

_ROMAN = r"(?=[MDCLXVI])M{0,4}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})"
_WORD_NUMBERS = (
    r"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?"
    r"|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen"
    r"|sixteen|seventeen|eighteen|nineteen)"
)
_ORDINALS = (
    r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth"
    r"|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|last)"
)
_EN_NUMBER = rf"(?:\d{{1,4}}|{_ROMAN}|{_WORD_NUMBERS}|the\s+{_ORDINALS}|{_ORDINALS})"
# "Chapter IV.", "CHAPTER 1", "Chapter XII: The Ball", "Chapter the First", "Part 2 - Home".
_EN_HEADING = re.compile(
    rf"^(?:chapter|book|part)\s+{_EN_NUMBER}\.?(?:(?P<sep>\s*[.:—–-]\s*|\s+)(?P<rest>\S.*))?$",
    re.IGNORECASE,
)
_EN_SPECIAL = re.compile(r"^(?:prologue|epilogue)\.?(?:\s*[.:—–-]\s*\S.*)?$", re.IGNORECASE)
_ZH_NUMBER = r"[〇零一二三四五六七八九十百千两兩\d０-９]+"
# 第一章 / 第十二章 标题 / 第一回 灵根育孕源流出 (no space needed before a title in Chinese).
_ZH_HEADING = re.compile(rf"^第{_ZH_NUMBER}[章回节節卷](?:[\s:：·.、].*|[^。！？!?]{{0,40}})?$")
_ZH_SENTENCE_END = re.compile(r"[。！？!?]$")
_MAX_HEADING = 100


def _is_heading(line: str) -> bool:
    """Is this stripped line, standing alone, a chapter heading?"""
    if not line or len(line) > _MAX_HEADING:
        return False
    if _ZH_HEADING.match(line):
        return not _ZH_SENTENCE_END.search(line)
    match = _EN_HEADING.match(line)
    if match and match["rest"] and not match["sep"].strip():
        # "Chapter 3 The Storm" is a heading, "Chapter one was dull." is prose.
        rest = match["rest"]
        return not rest[0].islower() and not re.search(r"[.!?,;:]$", rest)
    return bool(match or _EN_SPECIAL.match(line))


# Anything naming a chapter inside a line: a table-of-contents entry.
_TOC_ENTRY = re.compile(rf"\b(?:chapter|book|part)\s+{_EN_NUMBER}\b|第{_ZH_NUMBER}[章回节節卷]", re.IGNORECASE)
# "Heading to Chapter I.      1", "Preface ....... ix": a line ending in a page reference.
_TOC_PAGE_REF = re.compile(r"\S(?:\s{3,}|\s*\.{3,}\s*)(?:\d{1,4}|[ivxlc]{1,7})$", re.IGNORECASE)
_TOC_TITLE = re.compile(r"^(?:table\s+of\s+)?contents\.?$|^目\s*[录錄]$", re.IGNORECASE)
_MIN_TOC_ENTRIES = 3

# Page furniture, matched against a stripped line.
_PAGE_NUMBER = re.compile(r"^(?:\[?\s*(?:page|p\.)\s*\d+\s*\]?|[-–—]?\s*\d{1,4}\s*[-–—]?|\[\d{1,4}\])$", re.IGNORECASE)
_BRACKET_NOTE = re.compile(r"\[\s*(?:illustration|footnote|sidenote|transcriber'?s note)\b", re.IGNORECASE)
# A footnote marker glued to the word before it: "word[1]", "word.[12]", "word¹²".
_FOOTNOTE_MARK = re.compile(r"(?<=\S)\[\d{1,3}\]|(?<=[^\s\d⁰¹²³⁴-⁹])[⁰¹²³⁴-⁹]+")
# Plain-text e-book italics: _word_ (underscores touching a word edge).
_UNDERSCORE_EMPHASIS = re.compile(r"(?<![\w])_(?=\S)|(?<=\S)_(?![\w])")

_GUTENBERG_START = re.compile(r"^\s*\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG.*$", re.IGNORECASE | re.MULTILINE)
_GUTENBERG_END = re.compile(r"^\s*\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG.*$", re.IGNORECASE | re.MULTILINE)
_GUTENBERG_FIELD = re.compile(r"^(Title|Author|Language):\s*(.+)$", re.MULTILINE)
_LANGUAGE_NAMES = {"english": "en", "chinese": "zh", "french": "fr", "german": "de", "spanish": "es",
                   "italian": "it", "portuguese": "pt", "russian": "ru", "japanese": "ja", "dutch": "nl"}

_SENTENCE_END = re.compile(r"[.。!?！？]$")
_MAX_TITLE = 100
_MAX_AUTHOR = 60


@dataclass
class _Para:
    """A paragraph of the plain-text book before chapters are cut."""

    lines: list[str]
    heading: str = ""  # set when the paragraph is a chapter heading


def _strip_gutenberg(text: str) -> tuple[str, dict[str, str]]:
    """Cut the licence header and footer of a Gutenberg-style e-book (never part of the book)
    and read the fields the header carries."""
    start = _GUTENBERG_START.search(text)
    if not start:
        return text, {}
    fields = {k.lower(): v.strip() for k, v in _GUTENBERG_FIELD.findall(text[: start.start()])}
    body = text[start.end():]
    end = _GUTENBERG_END.search(body)
    return (body[: end.start()] if end else body), fields


def _clean_line(line: str) -> str:
    line = _FOOTNOTE_MARK.sub("", line)
    return _UNDERSCORE_EMPHASIS.sub("", line)


_MAX_NOTE_LINES = 40


def _note_end(lines: list[str], start: int, depth: int) -> int | None:
    """Index of the line closing a bracketed note open ``depth`` levels at
    ``start``; None when it does not close soon (a stray "[" must not swallow
    the rest of the book)."""
    for index in range(start, min(len(lines), start + _MAX_NOTE_LINES)):
        depth += lines[index].count("[") - lines[index].count("]")
        if depth <= 0:
            return index
    return None


def _text_paragraphs(text: str) -> list[_Para]:
    """Split into paragraphs, dropping page furniture and marking headings."""
    paras: list[_Para] = []
    current: list[str] = []

    def close(heading: str = "") -> None:
        nonlocal current
        if current:
            paras.append(_Para(current))
            current = []
        if heading:
            paras.append(_Para([heading], heading=heading))

    lines = [raw.strip() for raw in text.split("\n")]
    skip_to = -1  # index of the line closing a multi-line "[Illustration: ..." note
    for index, line in enumerate(lines):
        if index <= skip_to:
            if index == skip_to:
                # Gutenberg sometimes puts a heading inside the picture's note:
                # "[Illustration: ...\n\nChapter I.]". The closing line is it.
                inner = line.rstrip("]").strip()
                close(inner if _is_heading(inner) else "")
            continue
        note = _BRACKET_NOTE.search(line)
        if note:
            before, rest = line[: note.start()].strip(), line[note.start():]
            level, end = 0, len(rest)
            for i, ch in enumerate(rest):
                level += (ch == "[") - (ch == "]")
                if level == 0:
                    end = i + 1
                    break
            if level:  # the note goes on over the next lines
                closing = _note_end(lines, index + 1, level)
                if closing is not None:
                    skip_to = closing
                    if before:
                        current.append(_clean_line(before))
                    close()
                    continue
                # Never closed: a stray bracket, not a note; keep the text.
            else:
                line = (before + " " + rest[end:]).strip()
                if not line:
                    close()
                    continue
        if not line:
            close()
        elif _PAGE_NUMBER.match(line):
            continue  # a page number inside a paragraph must not split it
        elif not has_speakable(line):
            close()  # "* * *", "-----": a scene break is a paragraph break
        else:
            current.append(_clean_line(line))
    close()

    # A heading is a line standing alone between blank lines.
    for para in paras:
        if not para.heading and len(para.lines) == 1 and _is_heading(para.lines[0]):
            para.heading = para.lines[0]
    return paras


def _title_block(paras: list[_Para]) -> tuple[str, str, int]:
    """(title, author, paragraphs used) from the opening of the book.

    The first paragraph is the title when it is a short line that does not end
    a sentence; a second short line right under it is the author ("by ..."
    or a bare name, as in Chinese books). Nothing is taken when the book would
    be left with nothing else to speak.
    """
    if len(paras) < 2 or paras[0].heading or len(paras[0].lines) > 2:
        return "", "", 0
    lines = paras[0].lines
    if any(_SENTENCE_END.search(line) for line in lines):
        return "", "", 0
    if len(lines[0]) >= _MAX_TITLE or (len(lines) == 2 and len(lines[1]) > _MAX_AUTHOR):
        return "", "", 0
    if not any(has_speakable(" ".join(p.lines)) for p in paras[1:] if not p.heading):
        return "", "", 0
    author = re.sub(r"^(?:by|作者[:：]?)\s*", "", lines[1], flags=re.IGNORECASE) if len(lines) == 2 else ""
    return lines[0], author, 1


def _drop_contents(front: list[_Para]) -> list[_Para]:
    """Front matter before the first heading: if it holds a table of contents,
    everything up to the end of the contents (title page, contents, an
    editor's preface) is front matter, not the story."""
    last = -1
    entries = 0
    for i, para in enumerate(front):
        for line in para.lines:
            if _TOC_TITLE.match(line):
                last, entries = i, max(entries, _MIN_TOC_ENTRIES)
            elif _TOC_ENTRY.search(line) or _TOC_PAGE_REF.search(line):
                last, entries = i, entries + 1
    return front[last + 1:] if entries >= _MIN_TOC_ENTRIES else front


def parse_text(text: str) -> Book:
    """Parse a plain-text book; chapters start at heading lines."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    text, fields = _strip_gutenberg(text)
    paras = _text_paragraphs(text)

    title, author, used = _title_block(paras)
    paras = paras[used:]
    title = fields.get("title", title)
    author = fields.get("author", author)
    language = _LANGUAGE_NAMES.get(fields.get("language", "").lower(), "")

    first = next((i for i, p in enumerate(paras) if p.heading), len(paras))
    front = paras[:first] if first == len(paras) else _drop_contents(paras[:first])
    chapters: list[tuple[str, list[str]]] = [("", ["\n".join(p.lines) for p in front])]
    for para in paras[first:]:
        if para.heading:
            chapters.append((para.heading, []))
        else:
            chapters[-1][1].append("\n".join(para.lines))
    if not has_speakable("".join(chapters[0][1])):
        chapters.pop(0)
    return _finish(title, author, language, _merge_empty(chapters))


# --------------------------------------------------------------------------- #
# Markdown
# --------------------------------------------------------------------------- #

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n(?:---|\.\.\.)\n", re.DOTALL)
_FRONT_FIELD = re.compile(r"^(title|author|lang|language):\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)
# Inline tokens whose content is markup, not words.
_MD_SKIP_INLINE = {"image", "html_inline", "footnote_ref"}


def _md_inline(token: Token) -> str:
    """The readable text of an inline token: link text kept, images dropped."""
    out: list[str] = []
    for child in token.children or []:
        kind = child.type
        if kind in _MD_SKIP_INLINE:
            continue
        if kind in ("text", "code_inline"):
            out.append(child.content)
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
    return "".join(out)


def _md_blocks(text: str) -> Iterator[tuple[int, str]]:
    """(heading level or 0, text) for each block of the document, in order."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.footnote import footnote_plugin

    md = MarkdownIt("commonmark").enable("table").enable("strikethrough").use(footnote_plugin)
    tokens = md.parse(text)
    skip_depth = 0  # inside footnote definitions
    row: list[str] = []
    for i, token in enumerate(tokens):
        kind = token.type
        if kind in ("footnote_block_open", "footnote_open"):
            skip_depth += 1
        elif kind in ("footnote_block_close", "footnote_close"):
            skip_depth -= 1
        elif skip_depth or kind != "inline" and kind not in ("tr_open", "tr_close"):
            # fence, code_block, html_block, hr: nothing to read aloud.
            continue
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close":
            yield 0, ", ".join(cell for cell in row if cell.strip())
        else:
            parent = tokens[i - 1].type if i else ""
            content = _md_inline(token)
            if parent in ("th_open", "td_open"):
                row.append(_one_line(content))
            elif parent == "heading_open":
                yield int(tokens[i - 1].tag[1:]), content
            else:
                yield 0, content


def parse_markdown(text: str) -> Book:
    """Parse a Markdown book; the top heading level that repeats starts chapters."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    fields: dict[str, str] = {}
    front = _FRONT_MATTER.match(text)
    if front:  # YAML-style front matter (Pandoc, static sites): read the simple fields
        fields = {k.lower(): v.strip("\"'") for k, v in _FRONT_FIELD.findall(front.group(1))}
        text = text[front.end():]

    blocks = [(level, t) for level, t in _md_blocks(text) if has_speakable(t)]
    levels = [level for level, _ in blocks if level]
    title = fields.get("title", "")
    if levels:
        top = min(levels)
        # One top heading opening the document names the book, not a chapter.
        if levels.count(top) == 1 and blocks[0][0] == top:
            title = title or blocks[0][1]
            blocks = blocks[1:]
            levels = levels[1:]
        chapter_level = min(levels) if levels else 0
    else:
        chapter_level = 0

    chapters: list[tuple[str, list[str]]] = [("", [])]
    for level, content in blocks:
        if level and level == chapter_level:
            chapters.append((content, []))
        else:
            chapters[-1][1].append(content)  # deeper headings are read as text
    if not chapters[0][1]:
        chapters.pop(0)
    language = fields.get("lang", fields.get("language", ""))
    return _finish(title, fields.get("author", ""), language, _merge_empty(chapters))


# --------------------------------------------------------------------------- #
# EPUB
# --------------------------------------------------------------------------- #

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
_CJK_BREAK = re.compile(r"(?<=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])\s*\n\s*(?=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])")


@dataclass
class _Block:
    """One paragraph of an EPUB document."""

    text: str
    heading: int  # 1-6 for h1-h6, else 0
    ids: frozenset[str]  # element ids met since the previous block: TOC fragment targets


def _attr_words(tag: Tag, name: str) -> set[str]:
    value = tag.get(name)
    if isinstance(value, list):
        value = " ".join(value)
    return set(value.lower().split()) if value else set()


def _is_dropped(tag: Tag) -> bool:
    """Markup that is not part of the prose: scripts, images, notes, page breaks."""
    name = tag.name.lower()
    if name in _DROP_TAGS:
        return True
    if _attr_words(tag, "epub:type") & _DROP_TYPES or _attr_words(tag, "role") & _DROP_ROLES:
        return True
    if _attr_words(tag, "class") & _DROP_CLASSES:
        return True
    text = tag.get_text().strip()
    if name == "sup" and (tag.find("a") is not None or _NOTE_MARK.match(text)):
        return True
    if name == "a":
        # A link to a note inside the book, written as "1" or "[1]".
        href = str(tag.get("href") or "")
        if "#" in href and "://" not in href and _NOTE_MARK.match(text):
            return True
    return False


_XML_UNSAFE_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_ENTITIES = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})


def _numeric_entity(match: re.Match[bytes]) -> bytes:
    name = match.group(1)
    if name in _XML_ENTITIES:
        return match.group(0)
    code = html.entities.name2codepoint.get(name.decode("ascii"))
    return b"&#%d;" % code if code else match.group(0)


def _html_blocks(content: bytes) -> list[_Block]:
    """Paragraphs of one XHTML document, in order, with the ids that precede them."""
    from bs4 import BeautifulSoup, NavigableString, Tag

    # HTML named entities (&nbsp; &mdash;) are undefined in XML and the
    # recovering XML parser would silently delete them, gluing words together.
    content = _XML_UNSAFE_ENTITY.sub(_numeric_entity, content)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            soup = BeautifulSoup(content, "lxml-xml")
            body = soup.find("body")
        except Exception:  # noqa: BLE001 - malformed XHTML: fall back to the forgiving HTML parser
            body = None
        if body is None:
            soup = BeautifulSoup(content, "lxml")
            body = soup.find("body") or soup

    blocks: list[_Block] = []
    buffer: list[str] = []
    pending: set[str] = set()
    heading = 0

    def flush() -> None:
        nonlocal heading
        text = _CJK_BREAK.sub("", "".join(buffer))
        text = _one_line(text)
        if has_speakable(text):
            blocks.append(_Block(text, heading, frozenset(pending)))
            pending.clear()
        buffer.clear()

    def walk(node: Tag) -> None:
        nonlocal heading
        for child in node.children:
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not comments, CDATA, doctypes
                    buffer.append(str(child))
                continue
            if not isinstance(child, Tag) or _is_dropped(child):
                continue
            name = child.name.lower()
            ident = child.get("id")
            if ident:
                pending.add(str(ident))
            if name == "br":
                buffer.append("\n")
            elif name in _BLOCK_TAGS:
                flush()
                outer = heading
                if name in _HEADING_TAGS:
                    heading = int(name[1])
                walk(child)
                flush()
                heading = outer
            else:
                walk(child)

    walk(body)
    flush()
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
    values = [_one_line(str(v)) for v, _ in book.get_metadata("DC", name) if v and str(v).strip()]
    if name == "creator":
        return ", ".join(values)
    return values[0] if values else ""


def parse_epub(data: bytes) -> Book:
    """Parse an EPUB 2/3: metadata, spine order, chapters from the TOC."""
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
        while blocks and blocks[0].heading and _same_heading(blocks[0].text, title):
            blocks = blocks[1:]
        result.append((title, [b.text for b in blocks]))

    return _finish(
        _epub_metadata(book, "title"),
        _epub_metadata(book, "creator"),
        _epub_metadata(book, "language"),
        _merge_empty(result),
    )


def _titled_by_heading(blocks: list[_Block]) -> tuple[str, list[_Block]]:
    """A chapter without a TOC entry: its first h1-h3 is its title."""
    for block in blocks:
        if 1 <= block.heading <= 3:
            return block.text, blocks
    return "", blocks
