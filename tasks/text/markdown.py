"""Markdown books: the top heading level that repeats starts chapters.

Code, HTML, images and footnotes are not read; link text is; table rows are
read as comma-separated cells.

Libraries: cmarkgfm (GitHub's cmark-gfm: the CommonMark reference parser in
C, tested against pathological input for linear time, with GFM tables,
strikethrough and footnotes) turns the book into HTML, and lxml walks it. markdown-it-py, the
pure-Python parser used before, spent 40-90 µs on every block and several on
every delimiter: 2 M characters of short paragraphs, nested lists or block
quotes took 5-20 s; cmark and lxml take well under one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from chorus.tasks.text.book import Book, build_book, merge_empty, one_line
from chorus.tasks.text.clean import has_speakable

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n(?:---|\.\.\.)\n", re.DOTALL)
# The value is the rest of the line (stripped after): a lazy "(.+?)\s*$" would
# rescan trailing spaces once per character of the value.
_FRONT_FIELD = re.compile(r"^(title|author|lang|language):[^\S\n]*+(.+)$", re.MULTILINE | re.IGNORECASE)

# HTML from cmark, as blocks: these start and end one.
_BLOCK_TAGS = frozenset(
    ("p", "li", "blockquote", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "hr",
     "div", "section", "dl", "dt", "dd")
)
_HEADING_LEVELS = {f"h{n}": n for n in range(1, 7)}
_CELL_TAGS = frozenset(("td", "th"))
_LEAF_TAGS = frozenset(("p", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th"))  # hold no block
# Never read: code blocks, images (their alt text describes a picture), the
# footnotes and the marks pointing at them. Raw HTML is a comment already.
_SKIP_TAGS = frozenset(("pre", "img", "script", "style"))
_SKIP_CLASSES = frozenset(("footnotes", "footnote-ref"))
_NOTE_TAGS = frozenset(("section", "sup"))  # the tags cmark gives them
# libxml2 reads HTML at most 2,048 elements deep, dropping what is deeper. A
# document nested that deep (block quotes in lists in block quotes ...) is
# read again with its container marks removed: its words matter, not its shape.
_CONTAINER_MARKS = re.compile(r"^(?:[ \t]*+(?:>|[-+*](?=[ \t])|\d{1,9}[.)](?=[ \t])))*+[ \t]*+", re.MULTILINE)


def _html_body(text: str, flattened: bool = False) -> Any:
    """The book as HTML (an lxml element)."""
    import cmarkgfm
    import lxml.etree
    from cmarkgfm.cmark import Options

    # Safe mode (the default): raw HTML becomes a comment, which is not read.
    html = cmarkgfm.markdown_to_html_with_extensions(
        text, options=Options.CMARK_OPT_FOOTNOTES, extensions=["table", "strikethrough"]
    )
    # lxml.etree's parser, not lxml.html's: that one picks a Python class for every element.
    parser = lxml.etree.HTMLParser(huge_tree=True)
    root = lxml.etree.fromstring(f"<html><body>{html}</body></html>", parser=parser)
    if not flattened and any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        return _html_body(_CONTAINER_MARKS.sub("", text), flattened=True)
    return root.find("body")


def _is_skipped(element: Any) -> bool:
    tag = element.tag
    if tag in _SKIP_TAGS:
        return True
    return tag in _NOTE_TAGS and not _SKIP_CLASSES.isdisjoint((element.get("class") or "").split())


def _plain_inline(element: Any) -> bool:
    """Inline markup whose text is all to be read (no footnote mark or code
    block in it): read in one call (``_text``), skipping comments."""
    return element.find(".//sup") is None and element.find(".//pre") is None


def _text(element: Any) -> str:
    """The text inside an element, comments left out: serialised by libxml2 in
    C, 17 times faster than joining ``itertext()`` on a paragraph of 400,000
    inline elements."""
    import lxml.etree

    return lxml.etree.tostring(element, method="text", encoding="unicode", with_tail=False)


def _md_blocks(text: str) -> Iterator[tuple[int, str]]:
    """(heading level or 0, text) for each block of the document, in order.

    A walk with an explicit stack (any depth, no recursion); each element is
    visited once, and the text of plain inline markup is read in one call.
    """
    body = _html_body(text)
    buffer: list[str] = [body.text or ""]
    row: list[str] = []
    stack = [(body, iter(body), 0)]  # element, its children still to visit, heading level
    while stack:
        element, children, level = stack[-1]
        child = next(children, None)
        if child is None:  # the element ends
            stack.pop()
            tag = element.tag
            if tag in _CELL_TAGS:
                row.append(one_line("".join(buffer)))
                buffer.clear()
            elif tag == "tr":
                yield 0, ", ".join(cell for cell in row if cell.strip())
                row = []
            elif tag in _BLOCK_TAGS and (content := _take(buffer)):
                yield level, content
            if element.tail and stack:
                buffer.append(element.tail)
            continue
        tag = child.tag
        if not isinstance(tag, str) or _is_skipped(child):  # a comment, a code block, a picture, a note
            pass
        elif tag in _BLOCK_TAGS or tag in _CELL_TAGS:
            if tag in _BLOCK_TAGS and (content := _take(buffer)):
                yield level, content
            if tag in _CELL_TAGS:
                buffer.clear()
            if tag in _LEAF_TAGS and _plain_inline(child):  # a paragraph, a heading, a cell: read at once
                buffer.append(_text(child))
                if tag in _CELL_TAGS:
                    row.append(one_line("".join(buffer)))
                    buffer.clear()
                elif content := _take(buffer):
                    yield _HEADING_LEVELS.get(tag, 0), content
            else:
                stack.append((child, iter(child), _HEADING_LEVELS.get(tag, 0)))
                buffer.append(child.text or "")
                continue  # its tail is read when it ends
        elif tag == "br":
            buffer.append("\n")
        elif _plain_inline(child):
            buffer.append(_text(child))
        else:
            stack.append((child, iter(child), level))
            buffer.append(child.text or "")
            continue
        if child.tail:
            buffer.append(child.tail)
    if content := _take(buffer):
        yield 0, content


def _take(buffer: list[str]) -> str:
    """The text gathered so far (emptied), or "" when it has nothing but spaces."""
    if not buffer:
        return ""
    content = "".join(buffer)
    buffer.clear()
    return content if not content.isspace() else ""


def parse_markdown(text: str) -> Book:
    """Parse a Markdown book; the top heading level that repeats starts chapters."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    fields: dict[str, str] = {}
    front = _FRONT_MATTER.match(text)
    if front:  # YAML-style front matter (Pandoc, static sites): read the simple fields
        fields = {k.lower(): v.strip().strip("\"'") for k, v in _FRONT_FIELD.findall(front.group(1))}
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
    return build_book(title, fields.get("author", ""), language, merge_empty(chapters))

