"""Spoken sentences marked in an EPUB's own pages, in place.

The text nodes of the spine's documents, in reading order, are read as one
stream of letters and digits with a space at each word break (case, accents,
punctuation and the kind of white space set aside: the book's reader
normalised those). Each segment, as whole words and in order, is
looked for a bounded distance ahead of where the previous one matched, so
the whole costs time linear in the book. A match is wrapped in spans where it
lies: one span per text node it covers, the first carrying the segment's id
(``chorus-s{index}``). A segment not found (a title read from metadata, text
the reader changed) is left unmarked and gets no <par>; the text stays as it
was.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lxml import etree

from chorus.tasks.text.epub import _BLOCK_TAGS, _NOTE_MARK, _XML_UNSAFE_ENTITY, _dropped_by_markup, _numeric_entity

XHTML_NS = "http://www.w3.org/1999/xhtml"
LOOKAHEAD = 4096  # letters past the previous match where the next segment may start
# What stands between two letters: nothing, white space with a line break, anything else.
_NONE, _LINE_BREAK, _BREAK = 0, 1, 2


def segment_fragment(index: int) -> str:
    return f"chorus-s{index}"


@dataclass
class Document:
    """One spine document: its tree, or None where it is not well-formed XML (left as it is)."""

    path: str
    tree: etree._ElementTree | None
    marked: dict[int, str] = field(default_factory=dict)  # segment index -> fragment id


@dataclass(frozen=True)
class _Slot:
    """A run of text: an element's .text or .tail."""

    document: int
    element: etree._Element
    tail: bool

    def text(self) -> str:
        return (self.element.tail if self.tail else self.element.text) or ""

    def boundary(self) -> int:
        """What stands before the run: a block's edge is a word break, a <br> a line break."""
        if not isinstance(self.element.tag, str):
            return _NONE
        name = etree.QName(self.element).localname.lower()
        return _BREAK if name in _BLOCK_TAGS else _LINE_BREAK if name == "br" else _NONE


def parse(path: str, content: bytes) -> Document:
    """A spine document's tree; HTML named entities (undefined in XML) become
    numeric references first, as the book's reader reads them."""
    content = _XML_UNSAFE_ENTITY.sub(_numeric_entity, content)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_blank_text=False)
    try:
        return Document(path, etree.ElementTree(etree.fromstring(content, parser)))
    except etree.XMLSyntaxError:
        return Document(path, None)


def _key(character: str) -> str:
    """The letter or digit a character counts as (accents and case set aside), or ""."""
    base = unicodedata.normalize("NFD", character)[0] if not character.isascii() else character
    return base.lower() if base.isalnum() and len(base.lower()) == 1 else ""


def _skipped(element: etree._Element) -> bool:
    """Not read aloud: scripts, images, notes and note marks (as the book's reader has it)."""
    name = etree.QName(element).localname.lower()
    if _dropped_by_markup(name, element.attrib):
        return True
    if name in ("sup", "a") and (name == "sup" or "#" in (element.get("href") or "")):
        return bool(_NOTE_MARK.match("".join(element.itertext()).strip()))
    return False


def _slots(number: int, document: Document) -> list[_Slot]:
    """Text runs of the document's body in reading order, notes and scripts left out."""
    if document.tree is None:
        return []
    body = next(document.tree.getroot().iter(f"{{{XHTML_NS}}}body", "body"), None)
    if body is None:
        return []
    slots = [_Slot(number, body, False)]
    stack = [(body, iter(body))]  # the open elements and their children still to read
    while stack:
        parent, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if parent is not body:
                slots.append(_Slot(number, parent, True))
        elif isinstance(child.tag, str) and not _skipped(child):
            slots.append(_Slot(number, child, False))
            stack.append((child, iter(child)))
        else:  # a dropped element, a comment, a processing instruction: only the text after it is read
            slots.append(_Slot(number, child, True))
    return slots


def _is_cjk(character: str) -> bool:
    return "\u3000" <= character <= "\u9fff" or "\uf900" <= character <= "\ufaff" or "\uff00" <= character <= "\uffef"


def _letters(runs: Iterable[tuple[str, int]]) -> tuple[str, list[tuple[int, int]]]:
    """The letters and digits of the runs of text (``_key``) with one space
    for each word break, and a space at each end (so a match can be asked to
    start and end at word breaks); and the (run, offset) of each (a space: of
    the letter before it).

    Anything but a letter or digit between two letters is a word break,
    except white space with a line break in it between two CJK characters:
    the book's reader removes that. Each run comes with what stands before
    it (``_Slot.boundary``)."""
    keys: list[str] = [" "]
    where: list[tuple[int, int]] = [(0, 0)]
    gap = _NONE
    previous = ""
    for number, (run, boundary) in enumerate(runs):
        gap = max(gap, boundary)
        for offset, character in enumerate(run):
            key = _key(character)
            if not key:
                if not character.isspace():
                    gap = _BREAK
                elif character == "\n" and gap != _BREAK:
                    gap = _LINE_BREAK
                elif gap == _NONE:
                    gap = _BREAK
                continue
            joined = gap == _LINE_BREAK and _is_cjk(previous) and _is_cjk(character)
            if gap != _NONE and not joined and keys[-1] != " ":
                keys.append(" ")
                where.append(where[-1])
            keys.append(key)
            where.append((number, offset))
            gap, previous = _NONE, character
    if keys[-1] != " ":
        keys.append(" ")
        where.append(where[-1])
    return "".join(keys), where


@dataclass(frozen=True)
class _Piece:
    """Characters [start, end) of a slot's text that belong to one segment."""

    start: int
    end: int
    segment: int
    first: bool  # the segment's first piece: it carries the id


def mark(documents: Sequence[Document], segments: Sequence[tuple[int, str]]) -> None:
    """Find each (index, written text) segment in the documents, in order, and
    wrap what matches in spans; ``Document.marked`` says where each went."""
    slots = [slot for number, document in enumerate(documents) for slot in _slots(number, document)]
    text, where = _letters((slot.text(), slot.boundary()) for slot in slots)
    pieces: dict[int, list[_Piece]] = {}
    cursor = 0  # where the next segment may start: the word break after the last match
    for index, written in segments:
        wanted = _letters([(written, _NONE)])[0]
        if wanted == " ":
            continue
        found = text.find(wanted, cursor, cursor + LOOKAHEAD + len(wanted))
        if found < 0:
            continue
        found += 1  # past the word break before it
        cursor = found + len(wanted) - 2
        first = True
        position = found
        while position < cursor:  # one piece per slot the match covers
            slot_number, begin = where[position]
            last = position
            while last + 1 < cursor and where[last + 1][0] == slot_number:
                last += 1
            pieces.setdefault(slot_number, []).append(_Piece(begin, where[last][1] + 1, index, first))
            first = False
            position = last + 1
    for slot_number, slot_pieces in pieces.items():
        _wrap(slots[slot_number], slot_pieces, documents[slots[slot_number].document])


def _wrap(slot: _Slot, pieces: list[_Piece], document: Document) -> None:
    """Replace the slot's text by its text around spans, one per piece; a
    piece takes the punctuation right after it (up to the next space)."""
    text = slot.text()
    bounds = []
    for number, piece in enumerate(pieces):
        limit = pieces[number + 1].start if number + 1 < len(pieces) else len(text)
        end = piece.end
        while end < limit and not text[end].isspace() and not _key(text[end]):
            end += 1
        bounds.append(end)
    namespace = etree.QName(document.tree.getroot()).namespace
    tag = f"{{{namespace}}}span" if namespace else "span"
    if slot.tail:
        slot.element.tail = text[: pieces[0].start]
    else:
        slot.element.text = text[: pieces[0].start]
    previous = None
    for number, (piece, end) in enumerate(zip(pieces, bounds)):
        span = etree.Element(tag)
        if piece.first:
            span.set("id", segment_fragment(piece.segment))
            document.marked[piece.segment] = segment_fragment(piece.segment)
        span.text = text[piece.start:end]
        span.tail = text[end : pieces[number + 1].start] if number + 1 < len(pieces) else text[end:]
        if previous is not None:
            previous.addnext(span)
        elif slot.tail:
            slot.element.addnext(span)
        else:
            slot.element.insert(0, span)
        previous = span
