"""Spoken sentences marked in an EPUB's own pages, in place.

The text nodes of the spine's documents, in reading order, are read as one
stream of letters and digits with a space at each word break (case, accents,
punctuation and the kind of white space set aside: the book's reader
normalised those). Each segment, as whole words and in order, is
looked for a bounded distance ahead of where the previous one matched, so
the whole costs time linear in the book. A match is wrapped in spans where it
lies: one span per text node it covers, the first carrying the segment's id
(``chorus-s{index}``). In a word-timed segment each written word is wrapped
too, inside its sentence's span (``chorus-s{index}w{k}`` for the manifest's
word k; a word across inline markup: a span per piece, the first with the
id). A segment not found (a title read from metadata, text the reader
changed) is left unmarked and gets no <par>; the text stays as it was.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lxml import etree

from chorus.tasks.text.epub import BLOCK_TAGS, NOTE_MARK, dropped_by_markup, numeric_entities

XHTML_NS = "http://www.w3.org/1999/xhtml"
LOOKAHEAD = 4096  # letters past the previous match where the next segment may start
# What stands between two letters: nothing, white space with a line break, anything else.
_NONE, _LINE_BREAK, _BREAK = 0, 1, 2


def segment_fragment(index: int) -> str:
    return f"chorus-s{index}"


def word_fragment(index: int, word: int) -> str:
    return f"chorus-s{index}w{word}"


@dataclass
class Document:
    """One spine document: its tree, or None where it is not well-formed XML (left as it is)."""

    path: str
    tree: etree._ElementTree | None
    marked: dict[int, str] = field(default_factory=dict)  # segment index -> fragment id
    words: dict[int, dict[int, str]] = field(default_factory=dict)  # segment index -> word number -> fragment id


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
        return _BREAK if name in BLOCK_TAGS else _LINE_BREAK if name == "br" else _NONE


def parse(path: str, content: bytes) -> Document:
    """A spine document's tree; HTML named entities (undefined in XML) become
    numeric references first, as the book's reader reads them."""
    content = numeric_entities(content)
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
    if dropped_by_markup(name, element.attrib):
        return True
    if name in ("sup", "a") and (name == "sup" or "#" in (element.get("href") or "")):
        return bool(NOTE_MARK.match("".join(element.itertext()).strip()))
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
    """Characters [start, end) of a slot's text that belong to one segment, or to one of its words."""

    start: int
    end: int
    segment: int
    first: bool  # the segment's (or word's) first piece: it carries the id
    word: int = -1  # the word's number in the segment; -1: the segment itself


def _runs(start: int, stop: int, where: Sequence[tuple[int, int]]) -> Iterable[tuple[int, int, int]]:
    """(slot, first character, last character + 1) of each slot that letters [start, stop) of the book lie in."""
    position = start
    while position < stop:
        slot_number, begin = where[position]
        last = position
        while last + 1 < stop and where[last + 1][0] == slot_number:
            last += 1
        yield slot_number, begin, where[last][1] + 1
        position = last + 1


def _word_letters(wanted_where: Sequence[tuple[int, int]], wanted: str,
                  spans: Sequence[tuple[int, int]]) -> list[tuple[int, int] | None]:
    """For each written word (its [start, end) in the segment's text), the
    first and last of its letters in the segment's letters (``wanted``), or
    None where it has none; one pass over both, both in order."""
    found: list[tuple[int, int] | None] = [None] * len(spans)
    word = 0
    for position in range(1, len(wanted) - 1):
        if wanted[position] == " ":
            continue
        offset = wanted_where[position][1]
        while word < len(spans) and spans[word][1] <= offset:
            word += 1
        if word == len(spans):
            break
        if spans[word][0] <= offset:
            first = found[word]
            found[word] = (position if first is None else first[0], position)
    return found


def mark(documents: Sequence[Document], segments: Sequence[tuple[int, str]],
         words: Mapping[int, Sequence[tuple[int, int]]] | None = None) -> None:
    """Find each (index, written text) segment in the documents, in order, and
    wrap what matches in spans; ``words`` gives, for a word-timed segment, its
    words' [start, end) in its text, each wrapped in a span of its own inside
    the segment's. ``Document.marked`` and ``Document.words`` say where each went."""
    words = words or {}
    slots = [slot for number, document in enumerate(documents) for slot in _slots(number, document)]
    text, where = _letters((slot.text(), slot.boundary()) for slot in slots)
    pieces: dict[int, list[_Piece]] = {}
    cursor = 0  # where the next segment may start: the word break after the last match
    for index, written in segments:
        wanted, wanted_where = _letters([(written, _NONE)])
        if wanted == " ":
            continue
        found = text.find(wanted, cursor, cursor + LOOKAHEAD + len(wanted))
        if found < 0:
            continue
        found += 1  # past the word break before it: letter j of ``wanted`` is the book's found + j - 1
        cursor = found + len(wanted) - 2
        for number, (slot_number, begin, end) in enumerate(_runs(found, cursor, where)):
            pieces.setdefault(slot_number, []).append(_Piece(begin, end, index, number == 0))
        for word, letters in enumerate(_word_letters(wanted_where, wanted, words.get(index, ()))):
            if letters is not None:
                runs = _runs(found + letters[0] - 1, found + letters[1], where)
                for number, (slot_number, begin, end) in enumerate(runs):
                    pieces[slot_number].append(_Piece(begin, end, index, number == 0, word))
    for slot_number, slot_pieces in pieces.items():
        _wrap(slots[slot_number], slot_pieces, documents[slots[slot_number].document])


def _extend(text: str, end: int, limit: int) -> int:
    """A piece's end moved over the punctuation right after it (up to the next space or ``limit``)."""
    while end < limit and not text[end].isspace() and not _key(text[end]):
        end += 1
    return end


def _wrap(slot: _Slot, pieces: list[_Piece], document: Document) -> None:
    """Replace the slot's text by its text around spans, one per segment's
    piece, each holding a span per word piece in it; a piece takes the
    punctuation right after it (up to the next space)."""
    text = slot.text()
    sentences = [piece for piece in pieces if piece.word < 0]
    inside: list[list[_Piece]] = [[] for _ in sentences]
    owner = -1
    for piece in pieces:  # a segment's word pieces follow its own piece in this slot
        if piece.word < 0:
            owner += 1
        else:
            inside[owner].append(piece)
    namespace = etree.QName(document.tree.getroot()).namespace
    tag = f"{{{namespace}}}span" if namespace else "span"
    if slot.tail:
        slot.element.tail = text[: sentences[0].start]
    else:
        slot.element.text = text[: sentences[0].start]
    previous = None
    for number, piece in enumerate(sentences):
        following = sentences[number + 1].start if number + 1 < len(sentences) else len(text)
        end = _extend(text, piece.end, following)
        span = etree.Element(tag)
        if piece.first:
            span.set("id", segment_fragment(piece.segment))
            document.marked[piece.segment] = segment_fragment(piece.segment)
        _fill(span, text, piece.start, end, inside[number], tag, document)
        span.tail = text[end:following]
        if previous is not None:
            previous.addnext(span)
        elif slot.tail:
            slot.element.addnext(span)
        else:
            slot.element.insert(0, span)
        previous = span


def _fill(span: etree._Element, text: str, start: int, end: int, words: list[_Piece], tag: str,
          document: Document) -> None:
    """The text [start, end) into ``span``, its words' pieces in spans of their own."""
    span.text = text[start: words[0].start if words else end]
    for number, word in enumerate(words):
        following = words[number + 1].start if number + 1 < len(words) else end
        stop = _extend(text, word.end, following)
        inner = etree.SubElement(span, tag)
        if word.first:
            fragment = word_fragment(word.segment, word.word)
            inner.set("id", fragment)
            document.words.setdefault(word.segment, {})[word.word] = fragment
        inner.text = text[word.start:stop]
        inner.tail = text[stop:following]
