"""PDF books with a text layer: the words as printed, without the page around them.

A PDF knows glyphs at positions, not paragraphs. pypdf gives the text of each
line and where it starts (its text visitor); from that:

- **Page furniture goes.** A line among the two highest or two lowest of its
  page is a running header, footer or page number when it is a bare page
  number ("12", "xiv", "Page 3", "- 4 -", "5 of 200"), or when the same line,
  digits aside, is in that band on at least three pages and on at least a
  quarter of the pages from its first appearance to its last, and is seldom
  anywhere else on a page (half as often, at most). A line in a
  larger type than the body is never furniture: that is a chapter heading at
  the top of its opening page, however often "Chapter #" recurs.
- **Paragraphs come back.** A line starts a paragraph after a vertical gap
  wider than the usual line spacing, after a change of type size (a heading),
  when it starts further right than the line before (an indent), or after a
  short line that ends a sentence. Lines of a paragraph are joined by
  ``normalise`` (which knows CJK), across page breaks too.
- **Hyphenation is undone.** A line that ends in a letter and a hyphen, before
  a line that starts with a lower-case letter, was broken inside a word:
  "infor-" + "mation" is "information". The hyphen stays when the word had a
  hyphen already ("mother-in-" + "law"), when the book prints the joined
  pair with a hyphen inside a line elsewhere ("well-known"), and before a
  capital or a digit ("anti-American", "1914-1918"). A soft hyphen always
  goes.
- **Chapters come from the outline** (bookmarks): each entry starts a
  chapter at its page, or at its height on that page, and the heading printed
  there is announced as the title, not read twice. Without an outline the
  text goes to the plain-text reader, which finds "Chapter 1" headings.

Untrusted input, read in the API's planner processes: at most ``MAX_PAGES``
pages and ``MAX_PAGE_CHARS`` characters on a page; extraction stops as soon
as the text passes the caller's character limit, after ``MAX_OPERATIONS``
content-stream operators, or after ``MAX_SECONDS``; pypdf's own limits on
decompressed and parsed streams are lowered to what a book's text needs, and
no outside decoder program is ever started. A PDF without text (a scan:
Chorus does no OCR), one that needs a password, or one that cannot be parsed
is refused with an ``InputError``.
"""

from __future__ import annotations

import io
import itertools
import math
import re
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chorus.tasks.errors import ChorusError, NoTextLayer, PasswordProtected, TextTooLarge, UnsupportedMedia
from chorus.tasks.text.book import Book, build_book, merge_empty, one_line
from chorus.tasks.text.clean import has_speakable, strip_invisible
from chorus.tasks.text.plain import parse_text

# The longest books in print run to a few thousand pages.
MAX_PAGES = 10_000
# A page of prose is drawn with a few hundred operators, a page of dense
# vector art with tens of thousands: ten million is more than any book needs.
# (Pages may share one content stream, so the count is over the whole file.)
MAX_OPERATIONS = 10_000_000
# pypdf parses a content stream in Python, at some 100,000 tokens a second;
# this many tokens in one stream is a large map, not a page of a book.
MAX_STREAM_TOKENS = 1_000_000
# A 2 M-character book reads in well under a minute; this stops a file built
# to be slow in ways the counts do not see (many streams just under the limit).
MAX_SECONDS = 60.0
# A printed page holds a few thousand characters. pypdf's work on one page
# grows with the square of its text (it copies the page's text so far for
# each piece it adds), so a page of millions would take hours.
MAX_PAGE_CHARS = 100_000
# Running headers, footers and page numbers are counted against the character
# limit while reading (they are dropped after): this much per page is theirs.
FURNITURE_CHARS_PER_PAGE = 200

# pypdf's limits (its Configuration) for one upload. A page's content stream is
# tens of KiB, a font's character map a few hundred; images are never decoded
# to read text. The defaults (75 MB per stream, 300 MB of decoding work) fit a
# viewer, not a planner process that reads many books.
# pypdf parses a content stream in Python at a few MB a second (a string of
# spaces, slower still): inflating stops at MAX_STREAM_BYTES, before pypdf
# parses any of it, and the content of all pages together is bounded by
# MAX_CONTENT_BYTES (CHORUS_PDF_MAX_STREAM_BYTES and _CONTENT_BYTES set the API's).
MAX_STREAM_BYTES = 4 * 1024 * 1024
MAX_CONTENT_BYTES = 64 * 1024 * 1024
_PYPDF_LIMITS: dict[str, Any] = {
    "stream_parsing_work_maximum_count": MAX_STREAM_TOKENS,
    "jbig2dec_binary": None,  # never start an outside program on an upload
}


def _stream_limits(max_stream_bytes: int) -> dict[str, int]:
    """pypdf's bounds on what one stream may inflate to."""
    return {
        "maximum_declared_stream_length": max_stream_bytes,
        "array_based_stream_maximum_output_length": max_stream_bytes,
        "zlib_maximum_output_length": max_stream_bytes,
        "lzw_maximum_output_length": max_stream_bytes,
        "run_length_maximum_output_length": max_stream_bytes,
        "brotli_maximum_output_length": max_stream_bytes,
        "jbig2_maximum_output_length": max_stream_bytes,
        "image_maximum_buffer_size": max_stream_bytes,
        "stream_decoding_work_maximum_length": 2 * max_stream_bytes,
    }

_MAGIC = b"%PDF-"

_BAND = 2  # lines at the top and at the bottom of a page that may be furniture
_MIN_REPEATS = 3
_MIN_DENSITY = 0.25
_ROMAN = r"(?=[mdclxvi])m{0,4}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"
_PAGE_NUMBER = re.compile(
    rf"^[\[(\-–—\s]*+(?:page\s++|p\.\s*+)?(?:\d{{1,5}}|{_ROMAN})(?:\s*+(?:/|of)\s*+\d{{1,5}})?[\])\-–—\s]*+$",
    re.IGNORECASE,
)
_MAX_PAGE_NUMBER_LINE = 30
_DIGITS = re.compile(r"\d++")
_SPACES = re.compile(r"\s++")
# A word with a hyphen inside a line: the book's own spelling of a compound.
_HYPHENATED = re.compile(r"\b[^\W\d_]++-[^\W\d_]++")
_HYPHENS = "-\u2010"
_SOFT_HYPHEN = "\u00ad"
_LEADING_LETTERS = re.compile(r"[^\W\d_]++")
_OPENERS = "\"'“‘([{«"
_SENTENCE_END = frozenset(".!?…:;\"'”’)»。！？")
# Typographic ligatures that a PDF font often maps to one character (NFC keeps them).
_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})

# Paragraph rules, in units of the line's type size or of the usual spacing.
_GAP = 1.3  # a gap this many usual line spacings wide ends a paragraph
_INDENT = 0.8  # starting this many em further right is an indent
_SHORT = 0.6  # a line shorter than this share of the usual length can end a paragraph
_SIZE_CHANGE = 0.15
_TOP_SLACK = 2.0  # points: a heading's baseline sits just under its bookmark's /Top
_FRONT_MATTER_CHARS = 200  # text before the first bookmark shorter than this is dropped (title page)


@dataclass
class _Line:
    text: str
    x: float
    y: float
    size: float  # type size in points, as drawn
    page: int


class _Stop(Exception):
    """Raised inside pypdf's visitors to end extraction early."""

    def __init__(self, error: ChorusError) -> None:
        self.error = error


def is_pdf(data: bytes) -> bool:
    """Does the upload start with a PDF header? (Viewers also accept one after
    up to a KiB of junk; such a file is read as a PDF when its name says so,
    but a text that quotes "%PDF-" is still a text.)"""
    return data[:64].lstrip().startswith(_MAGIC)


def parse_pdf(data: bytes, max_chars: int | None = None, max_stream_bytes: int = MAX_STREAM_BYTES,
              max_content_bytes: int = MAX_CONTENT_BYTES) -> Book:
    """Parse a PDF with a text layer: metadata, chapters from the outline
    (else from headings in the text). ``TextTooLarge`` as soon as the text
    passes ``max_chars``, a stream inflates past ``max_stream_bytes``, the
    pages' content past ``max_content_bytes``, or the file passes a bound
    above; ``NoTextLayer``, ``PasswordProtected``, ``UnsupportedMedia`` for
    what cannot be read."""
    import pypdf

    with pypdf.apply_configuration(**_stream_limits(max_stream_bytes), **_PYPDF_LIMITS):
        try:
            return _parse_pdf(data, max_chars, max_content_bytes)
        except ChorusError:
            raise
        except _Stop as stop:
            raise stop.error from None
        except pypdf.errors.FileNotDecryptedError as exc:
            raise PasswordProtected("the PDF is encrypted and needs a password to open") from exc
        except pypdf.errors.LimitReachedError as exc:
            raise TextTooLarge(f"the PDF is beyond what a book needs (a stream may inflate to at most "
                               f"{max_stream_bytes:,} bytes): {exc}") from exc
        except Exception as exc:
            raise UnsupportedMedia(f"the upload is not a readable PDF: {type(exc).__name__}: {exc}") from exc


def _parse_pdf(data: bytes, max_chars: int | None, max_content_bytes: int) -> Book:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
        # An empty user password opens files that only restrict printing or copying.
        raise PasswordProtected("the PDF is encrypted and needs a password to open")
    count = len(reader.pages)
    if count > MAX_PAGES:
        raise TextTooLarge(f"the PDF has {count:,} pages; a book may have at most {MAX_PAGES:,}")

    pages, failed = _extract(reader, count, max_chars, max_content_bytes)
    if not any(has_speakable(line.text) for page in pages for line in page):
        if failed:
            raise UnsupportedMedia(f"the text of the PDF could not be read ({failed} of {count} pages failed)")
        raise NoTextLayer("the PDF has no text layer (a scan?); Chorus reads text and does no OCR")

    body_size = _body_size(pages)
    lines = [line for page in _drop_furniture(pages, body_size) for line in page]
    layout = _Layout.of(lines, body_size)
    title, author, language = _metadata(reader)
    starts = _outline(reader, count)
    if not starts:
        # No bookmarks: the plain-text reader finds "Chapter 1" headings.
        book = parse_text("\n\n".join(_paragraphs(lines, layout)))
        return Book(one_line(title) or book.title, one_line(author) or book.author, language or book.language,
                    book.chapters)

    chapters: list[tuple[str, list[str]]] = []
    for chapter_title, chapter_lines in _by_outline(lines, starts):
        paragraphs = _paragraphs(chapter_lines, layout)
        if chapter_title is None:  # before the first bookmark: a title page, unless long
            if sum(map(len, paragraphs)) >= _FRONT_MATTER_CHARS:
                chapters.append(("", paragraphs))
            continue
        first = 0  # the heading is announced as the title: don't read it twice
        while first < len(paragraphs) and _same_heading(paragraphs[first], chapter_title):
            first += 1
        chapters.append((chapter_title, paragraphs[first:]))
    return build_book(title, author, language, merge_empty(chapters))


# --------------------------------------------------------------------------- #
# Lines with their positions
# --------------------------------------------------------------------------- #


def _extract(reader: Any, count: int, max_chars: int | None,
             max_content_bytes: int = MAX_CONTENT_BYTES) -> tuple[list[list[_Line]], int]:
    """The lines of every page, and how many pages could not be read."""
    import pypdf

    budget = _Budget(max_chars)
    content_bytes = 0
    pages: list[list[_Line]] = []
    failed = 0
    for number in range(count):
        budget.pages = number + 1
        budget.check()
        builder = _PageLines(number, budget)
        try:
            # Inflated (once: pypdf keeps it) and counted before pypdf parses it.
            content_bytes += _content_bytes(reader.pages[number])
            if content_bytes > max_content_bytes:
                raise TextTooLarge(f"the pages of the PDF inflate to more than {max_content_bytes:,} bytes of "
                                   "drawing; that is the limit")
            reader.pages[number].extract_text(visitor_operand_before=budget.operation, visitor_text=builder.visit)
        except (_Stop, ChorusError, pypdf.errors.FileNotDecryptedError, pypdf.errors.LimitReachedError):
            raise
        except Exception:  # noqa: BLE001 - pypdf fails on a damaged page in many ways
            failed += 1  # one broken page (a bad font, a damaged stream) does not lose the book
            builder.lines.clear()
        # pypdf goes on after an error inside a form (an XObject), ours too:
        # what the visitors refused is refused again here.
        budget.check()
        pages.append(builder.done())
    return pages, failed


def _content_bytes(page: Any) -> int:
    """The inflated size of a page's content streams."""
    contents = page.get("/Contents")
    if contents is None:
        return 0
    contents = contents.get_object()
    streams = contents if isinstance(contents, list) else [contents]
    return sum(len(stream.get_object().get_data()) for stream in streams if hasattr(stream.get_object(), "get_data"))


class _Budget:
    """What reading has used so far: operators, characters, time."""

    def __init__(self, max_chars: int | None) -> None:
        self.deadline = time.monotonic() + MAX_SECONDS
        self.max_chars = max_chars
        self.operations = 0
        self.characters = 0
        self.pages = 0  # pages begun

    def operation(self, operator: Any, operands: Any, cm: Any, tm: Any) -> None:
        """pypdf's visitor before every operator."""
        self.operations += 1
        if self.operations > MAX_OPERATIONS or not self.operations & 0xFFF:  # the clock every 4,096
            self.check()

    def text(self, characters: int) -> None:
        self.characters += characters
        if self.max_chars is not None and self.characters > self.max_chars:
            self.check()

    def check(self) -> None:
        if self.operations > MAX_OPERATIONS:
            raise _Stop(TextTooLarge(f"the PDF draws more than {MAX_OPERATIONS:,} operations; too much for a book"))
        if self.max_chars is not None and self.characters > self.max_chars + FURNITURE_CHARS_PER_PAGE * self.pages:
            raise _Stop(TextTooLarge(f"the PDF has more than {self.max_chars:,} characters of text; that is the limit"))
        if time.monotonic() > self.deadline:
            raise _Stop(TextTooLarge(f"the PDF took more than {MAX_SECONDS:.0f} s to read; too much for a book"))


class _PageLines:
    """Collects pypdf's text pieces of one page into lines with a position.

    Pieces arrive in drawing order with the matrices of where each began; a
    "\\n" in a piece ends a line (pypdf's own line breaking). A line is placed
    where its first visible piece began.
    """

    def __init__(self, page: int, budget: _Budget) -> None:
        self.page = page
        self.budget = budget
        self.characters = 0
        self.lines: list[_Line] = []
        self._parts: list[str] = []
        self._where: tuple[float, float, float] | None = None

    def visit(self, text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        """pypdf's visitor for every piece of text."""
        if not text:
            return
        self.budget.text(len(text))
        self.characters += len(text)
        if self.characters > MAX_PAGE_CHARS:
            raise _Stop(TextTooLarge(f"page {self.page + 1} of the PDF holds more than {MAX_PAGE_CHARS:,} "
                                     "characters; a book's page holds a few thousand"))
        for index, piece in enumerate(text.split("\n")):
            if index:
                self._end_line()
            if piece:
                if self._where is None and piece.strip():
                    self._where = _position(cm, tm, size)
                self._parts.append(piece)

    def _end_line(self) -> None:
        text = "".join(self._parts)
        self._parts.clear()
        if text.strip() and self._where is not None:
            x, y, size = self._where
            self.lines.append(_Line(text.translate(_LIGATURES), x, y, size, self.page))
        self._where = None

    def done(self) -> list[_Line]:
        self._end_line()
        return self.lines


def _position(cm: Any, tm: Any, size: Any) -> tuple[float, float, float]:
    """(x, y, type size) on the page, from pypdf's text and current matrices."""
    try:
        a, b, c, d, e, f = (float(v) for v in cm)
        _, _, tc, td, te, tf = (float(v) for v in tm)
        x = te * a + tf * c + e
        y = te * b + tf * d + f
        scale = math.hypot(tc * a + td * c, tc * b + td * d)
        points = abs(float(size)) * scale
    except (TypeError, ValueError):
        return 0.0, 0.0, 0.0
    if not all(math.isfinite(v) for v in (x, y, points)):
        return 0.0, 0.0, 0.0
    return x, y, round(points, 1)


def _body_size(pages: list[list[_Line]]) -> float:
    """The type size of most of the text."""
    sizes: Counter[float] = Counter()
    for page in pages:
        for line in page:
            sizes[line.size] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


# --------------------------------------------------------------------------- #
# Running headers, footers, page numbers
# --------------------------------------------------------------------------- #


def _band(page: list[_Line]) -> list[int]:
    """Indexes of the lines highest and lowest on the page."""
    order = sorted(range(len(page)), key=lambda i: -page[i].y)  # stable: drawing order among equals
    if len(order) <= 2 * _BAND:
        return order
    return order[:_BAND] + order[-_BAND:]


def _furniture_key(text: str) -> str:
    return _SPACES.sub(" ", _DIGITS.sub("#", text.casefold())).strip()


def _drop_furniture(pages: list[list[_Line]], body_size: float) -> list[list[_Line]]:
    """The pages without running headers, footers and page numbers (rule in
    the module's docstring)."""
    larger = body_size * (1 + _SIZE_CHANGE)
    seen: dict[str, list[int]] = {}  # key -> pages it is in the band of
    bands: list[list[tuple[int, str | None]]] = []
    for number, page in enumerate(pages):
        band: list[tuple[int, str | None]] = []
        for index in _band(page):
            line = page[index]
            text = line.text.strip()
            if body_size and line.size > larger:
                continue
            if len(text) <= _MAX_PAGE_NUMBER_LINE and _PAGE_NUMBER.match(text):
                band.append((index, None))  # None: a page number, always furniture
                continue
            key = _furniture_key(text)
            band.append((index, key))
            pages_of = seen.setdefault(key, [])
            if not pages_of or pages_of[-1] != number:
                pages_of.append(number)
        bands.append(band)

    # A line that recurs in the body of pages too is the book's own text (a
    # refrain), not a running head; a heading printed once mid-page is allowed.
    elsewhere: Counter[str] = Counter()
    for page, band in zip(pages, bands):
        in_band = {index for index, _ in band}
        for index, line in enumerate(page):
            if index not in in_band:
                key = _furniture_key(line.text)
                if key in seen:
                    elsewhere[key] += 1

    def repeated(key: str) -> bool:
        pages_of = seen[key]
        span = pages_of[-1] - pages_of[0] + 1
        return (
            len(pages_of) >= _MIN_REPEATS
            and len(pages_of) >= _MIN_DENSITY * span
            and elsewhere[key] * 2 < len(pages_of)
        )

    furniture = {key for key in seen if repeated(key)}
    kept: list[list[_Line]] = []
    for page, band in zip(pages, bands):
        drop = {index for index, key in band if key is None or key in furniture}
        kept.append([line for index, line in enumerate(page) if index not in drop] if drop else page)
    return kept


# --------------------------------------------------------------------------- #
# Paragraphs
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Layout:
    """What is usual in this book, measured once over all of it."""

    spacing: float  # between two lines of body text
    length: float  # characters in a line of body text
    margins: dict[int, float]  # page -> where most of its lines start
    compounds: frozenset[str]  # words printed with a hyphen inside a line ("well-known")

    @classmethod
    def of(cls, lines: list[_Line], body_size: float) -> _Layout:
        gaps = [
            a.y - b.y
            for a, b in itertools.pairwise(lines)
            if a.page == b.page and a.size == b.size == body_size and 0 < a.y - b.y < 4 * max(body_size, 1)
        ]
        lengths = [len(line.text.strip()) for line in lines if line.size == body_size]
        starts: dict[int, Counter[float]] = {}
        for line in lines:
            starts.setdefault(line.page, Counter())[round(line.x)] += 1
        return cls(
            spacing=statistics.median(gaps) if gaps else 1.2 * body_size,
            length=statistics.median(lengths) if lengths else 0.0,
            margins={page: counter.most_common(1)[0][0] for page, counter in starts.items()},
            compounds=frozenset(m.group().casefold() for line in lines for m in _HYPHENATED.finditer(line.text)),
        )


def _paragraphs(lines: list[_Line], layout: _Layout) -> list[str]:
    """The paragraphs of a run of lines (rules in the module's docstring),
    their lines joined by "\\n", hyphenation undone."""
    paragraphs: list[list[str]] = []
    previous: _Line | None = None
    for line in lines:
        if previous is None or _starts_paragraph(previous, line, layout):
            paragraphs.append([])
        paragraphs[-1].append(line.text.strip())
        previous = line
    joined = (strip_invisible(_join_lines(texts, layout.compounds)) for texts in paragraphs)
    return [paragraph for paragraph in joined if paragraph.strip()]


def _starts_paragraph(previous: _Line, line: _Line, layout: _Layout) -> bool:
    size = max(line.size, previous.size, 1.0)
    if abs(line.size - previous.size) > _SIZE_CHANGE * size:
        return True  # a heading, or the text after one
    if line.text.startswith("  "):
        return True  # indented with spaces
    left = previous.x
    if line.page == previous.page and line.y < previous.y:
        if previous.y - line.y > _GAP * layout.spacing + 0.5:
            return True
    else:  # a new page or column: compare with where lines there start
        left = layout.margins.get(line.page, line.x)
    if line.x - left > _INDENT * size:
        return True
    tail = previous.text.rstrip()
    return bool(tail) and tail[-1] in _SENTENCE_END and len(tail) < _SHORT * layout.length


def _join_lines(texts: list[str], compounds: frozenset[str]) -> str:
    """A paragraph's lines, with a line break between them or, where a word
    was broken, nothing (the hyphen kept or taken back, by the rule in the
    module's docstring)."""
    parts = [_line_end(before, after, compounds) for before, after in itertools.pairwise(texts)]
    parts.append(texts[-1])
    return "".join(parts)


def _line_end(before: str, after: str, compounds: frozenset[str]) -> str:
    """``before`` as it joins ``after``: with "\\n", or glued to it."""
    if before.endswith(_SOFT_HYPHEN):
        return before[:-1]
    head = before[:-1]
    if before[-1] not in _HYPHENS or not head or not head[-1].isalnum() or not after[0].isalnum():
        return before + "\n"  # not a hyphen between two words: " - " is a dash
    if not (head[-1].isalpha() and after[0].islower()):
        return before  # "anti-" + "American", "1914-" + "1918": a hyphen, never a break
    word = head.rsplit(None, 1)[-1].lstrip(_OPENERS)
    following = _LEADING_LETTERS.match(after)
    pair = f"{word}-{following.group() if following else ''}".casefold()
    if "-" in word or pair in compounds:
        return before  # "mother-in-" + "law", "well-" + "known": the hyphen is the word's own
    return head


# --------------------------------------------------------------------------- #
# Chapters and metadata
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Start:
    """Where a bookmark points: a page, and a height on it when it gives one."""

    title: str
    page: int
    top: float | None


def _outline(reader: Any, count: int) -> list[_Start]:
    """The outline's entries at every depth, in the order of the places they
    point to; [] when there is none, or none that points into the book."""
    try:
        outline = reader.outline
    except Exception:  # noqa: BLE001
        return []  # a broken outline is no reason to refuse the text
    starts: list[_Start] = []
    for entry in _flatten(outline):
        try:
            page = reader.get_destination_page_number(entry)
        except Exception:  # noqa: BLE001, S112 - an entry that points nowhere is skipped
            continue
        if page is None or not 0 <= page < count:
            continue
        top = entry.get("/Top") if entry.get("/Type") in ("/XYZ", "/FitH", "/FitBH") else None
        try:
            height = float(top) if top is not None else None
        except (TypeError, ValueError):
            height = None
        if height is not None and not math.isfinite(height):
            height = None
        starts.append(_Start(one_line(str(entry.title or "")), page, height))
    # Stable: entries at one place keep the outline's order ("Part I", "Chapter 1").
    starts.sort(key=lambda s: (s.page, -(s.top if s.top is not None else math.inf)))
    return starts


def _flatten(outline: Any) -> Iterator[Any]:
    """Destinations of a pypdf outline (nested lists), depth first, with a stack
    of our own: pypdf bounds the depth, but no recursion is needed."""
    stack = [iter(outline)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
        elif isinstance(entry, list):
            stack.append(iter(entry))
        else:
            yield entry


def _by_outline(lines: list[_Line], starts: list[_Start]) -> Iterator[tuple[str | None, list[_Line]]]:
    """(title, lines) of each chapter; title None for the lines before the first."""
    title: str | None = None
    current: list[_Line] = []
    following = 0  # the next start not reached yet
    for line in lines:
        reached = following
        while reached < len(starts) and _reaches(line, starts[reached]):
            reached += 1
        if reached != following:
            yield title, current
            # Starts passed without a line of their own become empty chapters:
            # merge_empty lends their titles to the next.
            for start in starts[following : reached - 1]:
                yield start.title, []
            title, current, following = starts[reached - 1].title, [], reached
        current.append(line)
    yield title, current
    for start in starts[following:]:
        yield start.title, []


def _reaches(line: _Line, start: _Start) -> bool:
    """Is ``line`` at or past the place ``start`` points to?"""
    if line.page != start.page:
        return line.page > start.page
    return start.top is None or line.y <= start.top + _TOP_SLACK


def _same_heading(paragraph: str, title: str) -> bool:
    """Does a short paragraph repeat (part of) the chapter's title? Whole words only:
    "Chapter 1" does not repeat "Chapter 10"."""
    if len(paragraph) > 2 * len(title) + 20:
        return False
    a = " " + re.sub(r"\W+", " ", paragraph.casefold()).strip() + " "
    b = " " + re.sub(r"\W+", " ", title.casefold()).strip() + " "
    return bool(a.strip() and b.strip()) and (a in b or b in a)


# Titles that are a file's name, as office programs write them.
_FILE_TITLE = re.compile(r"^microsoft \w+ - |\.(?:docx?|odt|rtf|pdf|tex|indd|pages|txt|qxp)$", re.IGNORECASE)


def _metadata(reader: Any) -> tuple[str, str, str]:
    """(title, author, language) from the document information and the catalog."""
    try:
        info = reader.metadata
        title = str(info.title or "") if info else ""
        author = str(info.author or "") if info else ""
    except Exception:  # noqa: BLE001 - damaged metadata is no reason to refuse the text
        title = author = ""
    if _FILE_TITLE.search(title.strip()):
        title = ""
    try:
        language = str(reader.root_object.get("/Lang") or "")
    except Exception:  # noqa: BLE001
        language = ""
    return title, author, one_line(language)[:35]
