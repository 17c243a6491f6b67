"""Plain-text books: chapters start at heading lines ("Chapter IV.", "Letter 1",
"Prologue", "第一回 ...").

Page furniture (page numbers, illustration notes, separators), footnote marks,
a Gutenberg-style licence header and footer, a title block and a table of
contents are recognised and left out of what is spoken.

Linear time: the text is walked once, line by line; the patterns that look at
a whole line only ever see short ones (headings, page numbers, contents
entries), and none can rescan a run of spaces or dots from every position.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from chorus.tasks.text.book import Book, build_book, merge_empty
from chorus.tasks.text.clean import has_speakable

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
_EN_NUMBER = rf"(?:\d{{1,5}}|{_ROMAN}|{_WORD_NUMBERS}|the\s++{_ORDINALS}|{_ORDINALS})"
# The words that number the parts of a book: "Chapter IV.", "CHAPTER 1",
# "Chapter XII: The Ball", "Chapter the First", "Part 2 - Home", "Letter 1"
# (an epistolary novel), "Book III", "Volume Two".
_EN_DIVISIONS = r"(?:chapter|book|part|letter|volume)"
_EN_HEADING = re.compile(
    rf"^{_EN_DIVISIONS}\s++{_EN_NUMBER}\.?(?:(?P<sep>\s*+[.:—–-]\s*+|\s++)(?P<rest>\S.*))?$",
    re.IGNORECASE,
)
# Unnumbered parts, standing alone: "Prologue", "PREFACE.", "Epilogue: Ten Years On".
_EN_NAMED = re.compile(
    r"^(?:prologue|epilogue|preface|introduction|foreword|afterword)\.?(?:\s*+[.:—–-]\s*+\S.*)?$", re.IGNORECASE
)
_ZH_NUMBER = r"[〇零一二三四五六七八九十百千两兩\d０-９]++"
# 第一章 / 第十二章 标题 / 第一回 灵根育孕源流出 (no space needed before a title in Chinese).
_ZH_HEADING = re.compile(rf"^第{_ZH_NUMBER}[章回节節卷](?:[\s:：·.、].*|[^。！？!?]{{0,40}})?$")
_ZH_SENTENCE_END = re.compile(r"[。！？!?]$")
_MAX_HEADING = 100


def _is_heading(line: str) -> bool:
    """Is this stripped line, standing alone, a chapter heading?"""
    return _is_numbered_heading(line) or _is_named_heading(line)


def _mark_heading(para: _Para, line: str) -> None:
    """Make ``para`` a heading if ``line`` is one, and say which kind."""
    if _is_numbered_heading(line):
        para.heading, para.numbered = line, True
    elif _is_named_heading(line):
        para.heading = line


def _is_numbered_heading(line: str) -> bool:
    """"Chapter 4", "Letter 1", "第一回 ...": a heading that counts the book's parts."""
    if not line or len(line) > _MAX_HEADING:
        return False
    if _ZH_HEADING.match(line):
        return not _ZH_SENTENCE_END.search(line)
    match = _EN_HEADING.match(line)
    if match and match["rest"] and not match["sep"].strip():
        # "Chapter 3 The Storm" is a heading, "Chapter one was dull." is prose.
        rest = match["rest"]
        return not rest[0].islower() and rest[-1] not in ".!?,;:"
    return bool(match)


def _is_named_heading(line: str) -> bool:
    """"Prologue", "Preface": a heading that names a part without counting it."""
    return bool(line) and len(line) <= _MAX_HEADING and bool(_EN_NAMED.match(line))


# Anything naming a chapter inside a line: a table-of-contents entry.
_TOC_ENTRY = re.compile(rf"\b{_EN_DIVISIONS}\s++{_EN_NUMBER}\b|第{_ZH_NUMBER}[章回节節卷]", re.IGNORECASE)
# The page reference ending a contents line: "... Chapter I.      1", "Preface ....... ix".
_TOC_PAGE_NUMBER = re.compile(r"(?:\d{1,4}|[ivxlc]{1,7})$", re.IGNORECASE)
_TOC_TITLE = re.compile(r"^(?:table\s++of\s++)?contents\.?$|^目\s*+[录錄]$", re.IGNORECASE)
_MIN_TOC_ENTRIES = 3
# A contents entry is a short line; a longer one is prose that mentions a chapter.
_MAX_TOC_LINE = 150

# Page furniture, matched against a short stripped line.
_PAGE_NUMBER = re.compile(
    r"^(?:\[?\s*+(?:page|p\.)\s*+\d+\s*+\]?|[-–—]?\s*+\d{1,4}\s*+[-–—]?|\[\d{1,4}\])$", re.IGNORECASE
)
_MAX_PAGE_NUMBER_LINE = 24
_PAGE_NUMBER_ENDS = frozenset("0123456789]-–—")  # a cheap look before the pattern, on every line
_BRACKET_NOTE = re.compile(r"\[\s*(?:illustration|footnote|sidenote|transcriber'?s note)\b", re.IGNORECASE)
# A footnote marker glued to the word before it: "word[1]", "word.[12]", "word¹²".
_FOOTNOTE_MARK = re.compile(r"(?<=\S)\[\d{1,3}\]|(?<=[^\s\d⁰¹²³⁴-⁹])[⁰¹²³⁴-⁹]+")
# Plain-text e-book italics: _word_ (underscores touching a word edge).
_UNDERSCORE_EMPHASIS = re.compile(r"(?<![\w])_(?=\S)|(?<=\S)_(?![\w])")

# Spaces only, never newlines: "\s*" after "^" would eat the blank lines
# that follow, again from every line start (quadratic on blank lines).
_GUTENBERG_START = re.compile(
    r"^[^\S\n]*+\*{3}[^\S\n]*+START OF (?:THE|THIS) PROJECT GUTENBERG.*$", re.IGNORECASE | re.MULTILINE
)
_GUTENBERG_END = re.compile(
    r"^[^\S\n]*+\*{3}[^\S\n]*+END OF (?:THE|THIS) PROJECT GUTENBERG.*$", re.IGNORECASE | re.MULTILINE
)
_GUTENBERG_FIELD = re.compile(r"^(Title|Author|Language):[^\S\n]*+(.+)$", re.MULTILINE)
# A run of blank (or whitespace-only) lines is one paragraph break.
# Possessive throughout: a lazy or greedy group keeps a backtracking frame per
# repetition, and over a million blank lines that stack alone made the pass 4x
# slower for twice the input.
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*+\n)++")
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
    numbered: bool = False  # the heading counts the parts ("Chapter 4"), not names one ("Preface")


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


def _remove_marks(text: str) -> str:
    """Footnote marks and underscore emphasis, over the whole text at once
    (their look-arounds see a line end as they would a line's edge)."""
    return _UNDERSCORE_EMPHASIS.sub("", _FOOTNOTE_MARK.sub("", text))


_MAX_NOTE_LINES = 40


class _Brackets:
    """Where bracketed notes close, for every note of a book in linear time.

    ``depth[k]`` is how many "[" are open before line ``k``. A note open
    ``level`` deep after line ``i`` closes at the first line ``k`` with
    ``depth[k + 1] <= depth[i + 1] - level``; whether one is near is a
    ``min`` over a slice (in C), so a book of unclosed "[Illustration" lines
    does not walk 40 lines from each of them in Python.
    """

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self._depth: list[int] | None = None  # counted on first use: most books have no multi-line note

    def note_end(self, start: int, level: int) -> int | None:
        """Index of the line closing a note open ``level`` deep before line
        ``start``; None when it does not close soon (a stray "[" must not
        swallow the rest of the book)."""
        if self._depth is None:
            deltas = (line.count("[") - line.count("]") for line in self.lines)
            self._depth = list(itertools.accumulate(deltas, initial=0))
        depth = self._depth
        end = min(len(self.lines), start + _MAX_NOTE_LINES)
        target = depth[start] - level
        if start >= end or min(depth[start + 1 : end + 1]) > target:
            return None
        return next(index for index in range(start, end) if depth[index + 1] <= target)


def _text_paragraphs(text: str) -> list[_Para]:
    """Split into paragraphs, dropping page furniture and marking headings."""
    paras: list[_Para] = []
    current: list[str] = []

    def close(candidate: str = "") -> None:
        """End the paragraph; ``candidate``, if it is a heading, follows as its own."""
        nonlocal current
        if current:
            paras.append(_Para(current))
            current = []
        if candidate:
            para = _Para([candidate])
            _mark_heading(para, candidate)
            if para.heading:
                paras.append(para)

    lines = [raw.strip() for raw in text.split("\n")]
    brackets = _Brackets(lines)
    skip_to = -1  # index of the line closing a multi-line "[Illustration: ..." note
    for index, line in enumerate(lines):
        if index <= skip_to:
            if index == skip_to:
                # Gutenberg sometimes puts a heading inside the picture's note:
                # "[Illustration: ...\n\nChapter I.]". The closing line is it.
                close(line.rstrip("]").strip())
            continue
        note = _BRACKET_NOTE.search(line) if "[" in line else None
        if note:
            before, rest = line[: note.start()].strip(), line[note.start():]
            level, end = 0, len(rest)
            for i, ch in enumerate(rest):
                level += (ch == "[") - (ch == "]")
                if level == 0:
                    end = i + 1
                    break
            if level:  # the note goes on over the next lines
                closing = brackets.note_end(index + 1, level)
                if closing is not None:
                    skip_to = closing
                    if before:
                        current.append(before)
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
        elif len(line) <= _MAX_PAGE_NUMBER_LINE and line[-1] in _PAGE_NUMBER_ENDS and _PAGE_NUMBER.match(line):
            continue  # a page number inside a paragraph must not split it
        elif not has_speakable(line):
            close()  # "* * *", "-----": a scene break is a paragraph break
        else:
            current.append(line)
    close()

    # A heading is a line standing alone between blank lines.
    for para in paras:
        if not para.heading and len(para.lines) == 1:
            _mark_heading(para, para.lines[0])
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
            if len(line) > _MAX_TOC_LINE:
                continue
            if _TOC_TITLE.match(line):
                last, entries = i, max(entries, _MIN_TOC_ENTRIES)
            elif _TOC_ENTRY.search(line) or _ends_in_page_reference(line):
                last, entries = i, entries + 1
    return front[last + 1:] if entries >= _MIN_TOC_ENTRIES else front


def _ends_in_page_reference(line: str) -> bool:
    """"Heading to Chapter I.      1", "Preface ....... ix": an entry, then three
    spaces or a dot leader, then a page number or a roman page."""
    page = _TOC_PAGE_NUMBER.search(line)
    if not page:
        return False
    leader = line[: page.start()]
    entry = leader.rstrip()
    if len(leader) - len(entry) >= 3:
        return bool(entry)
    dots = entry.rstrip(".")
    return len(entry) - len(dots) >= 3 and bool(dots.rstrip())


def parse_text(text: str) -> Book:
    """Parse a plain-text book; chapters start at heading lines."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    text, fields = _strip_gutenberg(text)
    paras = _text_paragraphs(_remove_marks(_BLANK_LINES.sub("\n\n", text)))

    title, author, used = _title_block(paras)
    paras = paras[used:]
    title = fields.get("title", title)
    author = fields.get("author", author)
    language = _LANGUAGE_NAMES.get(fields.get("language", "").lower(), "")

    # The story starts at the first numbered heading (else the first of any
    # kind); a table of contents before it ends the front matter, and a
    # preface placed before the contents goes with it.
    first = next((i for i, p in enumerate(paras) if p.numbered), None)
    if first is None:
        first = next((i for i, p in enumerate(paras) if p.heading), None)
    if first is not None:
        paras = _drop_contents(paras[:first]) + paras[first:]
    chapters: list[tuple[str, list[str]]] = [("", [])]
    for para in paras:
        if para.heading:
            chapters.append((para.heading, []))
        else:
            chapters[-1][1].append("\n".join(para.lines))
    if not has_speakable("".join(chapters[0][1])):
        chapters.pop(0)
    return build_book(title, author, language, merge_empty(chapters))

