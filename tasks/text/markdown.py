"""Markdown books: the top heading level that repeats starts chapters.

Code, HTML blocks, images and footnote definitions are not read; link text is;
table rows are read as comma-separated cells. Library: markdown-it-py with
mdit-py-plugins, imported where used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tasks.text.book import Book, finish, merge_empty, one_line
from tasks.text.clean import has_speakable

if TYPE_CHECKING:
    from markdown_it.token import Token

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n(?:---|\.\.\.)\n", re.DOTALL)
# The value is the rest of the line (stripped after): a lazy "(.+?)\s*$" would
# rescan trailing spaces once per character of the value.
_FRONT_FIELD = re.compile(r"^(title|author|lang|language):[^\S\n]*+(.+)$", re.MULTILINE | re.IGNORECASE)
# markdown-it stops reading a document whose containers (block quotes inside
# lists inside block quotes ...) nest deeper than this, silently dropping what
# is inside; 100 is its own default and keeps its recursion far from
# Python's limit. A document that deep is read again with its container
# marks removed: its words matter, not its shape.
_MAX_NESTING = 100
_CONTAINER_MARKS = re.compile(r"^(?:[ \t]*+(?:>|[-+*](?=[ \t])|\d{1,9}[.)](?=[ \t])))*+[ \t]*+", re.MULTILINE)
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

    md = MarkdownIt("commonmark", {"maxNesting": _MAX_NESTING})
    md.enable("table").enable("strikethrough").use(footnote_plugin)
    tokens = md.parse(text)
    if any(token.level >= _MAX_NESTING - 1 for token in tokens if token.nesting == 1):
        tokens = md.parse(_CONTAINER_MARKS.sub("", text))
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
                row.append(one_line(content))
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
    return finish(title, fields.get("author", ""), language, merge_empty(chapters))

