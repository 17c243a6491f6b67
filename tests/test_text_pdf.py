"""PDF books: text as printed without the page around it (running headers,
footers, page numbers), words broken at line ends joined, paragraphs and
chapters kept; scans, locked files and garbage refused clearly, bombs and
books over the limit stopped while they are read.

Test PDFs are laid out line by line with fpdf2, so every line break, indent
and gap is where the test says; the adversarial ones are written by hand.
"""

from __future__ import annotations

import io
import time
import zlib

import httpx
import pytest
from fpdf import FPDF

from chorus.tasks.errors import NoTextLayer, PasswordProtected, TextTooLarge, UnsupportedMedia
from chorus.tasks.text import pdf as pdf_reader
from chorus.tasks.text.pdf import is_pdf, parse_pdf
from chorus.tasks.text.read import read_book
from tests.conftest import wait_for

_WORDS = ["river", "stone", "lantern", "harbour", "meadow", "orchard", "candle", "window", "shadow", "letter", "garden", "winter", "market", "kettle", "bridge", "ribbon", "thunder", "pocket", "silver", "morning", "ladder", "basket", "feather", "mirror"]


def prose(seed: int, words: int = 14) -> str:
    """A line of text that no other seed repeats (a book rarely repeats a line)."""
    picked = [_WORDS[(seed * 7 + i * (seed % 5 + 1)) % len(_WORDS)] for i in range(words - 1)]
    return " ".join([f"line{seed}", *picked])


class _Book(FPDF):
    """Running header (title and page number) at the top, page number at the foot."""

    running_head = "The Little Book of Tests"
    roman = False

    def header(self) -> None:
        if self.running_head and self.page_no() > 1:
            self.set_font("Helvetica", "I", 9)
            self.cell(0, 8, f"{self.page_no()}   {self.running_head}", align="C", new_x="LMARGIN", new_y="NEXT")
        self.set_y(25)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", "", 9)
        number = self.page_no()
        label = ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x"][number - 1] if self.roman else str(number)
        self.cell(0, 10, label, align="C")


def make_pdf(pages: list[list[object]], *, title: str = "", author: str = "", running_head: str = "The Little Book of Tests",
             roman: bool = False) -> bytes:
    """A PDF laid out exactly: each page a list of items.

    ``"text"``: a line of body text (11 pt) at the margin; ``("indent", text)``:
    a first line indented; ``("gap",)``: a blank half line; ``("heading", text)``:
    a 16 pt heading; ``("bookmark", title)``: an outline entry here.
    """
    document = _Book()
    document.running_head = running_head
    document.roman = roman
    document.set_auto_page_break(False)
    if title:
        document.set_title(title)
    if author:
        document.set_author(author)
    for items in pages:
        document.add_page()
        for item in items:
            kind, text = (("text", item) if isinstance(item, str) else (item[0], item[-1]))
            if kind == "bookmark":
                document.start_section(str(text))
                continue
            if kind == "gap":
                document.ln(3)
                continue
            document.set_font("Helvetica", "B" if kind == "heading" else "", 16 if kind == "heading" else 11)
            document.set_x(document.l_margin + (8 if kind == "indent" else 0))
            document.cell(0, 9 if kind == "heading" else 5, str(text), new_x="LMARGIN", new_y="NEXT")
    return bytes(document.output())


def paragraph(seed: int, lines: int = 4) -> list[object]:
    """An indented paragraph of ``lines`` lines; its last line is short and ends a sentence."""
    body: list[object] = [("indent", prose(seed))]
    body += [prose(seed * 100 + i) for i in range(1, lines - 1)]
    body.append(f"the end of paragraph {seed}.")
    return body


def text_of(book) -> str:
    return "\n\n".join(chapter.text for chapter in book.chapters)


# --------------------------------------------------------------------------- #
# Page furniture, hyphenation, paragraphs
# --------------------------------------------------------------------------- #


def _furnished_book(roman: bool = False) -> bytes:
    pages = []
    for page in range(5):
        pages.append([*paragraph(10 * page + 1), *paragraph(10 * page + 2), *paragraph(10 * page + 3)])
    return make_pdf(pages, roman=roman)


@pytest.mark.parametrize("roman", [False, True])
def test_running_headers_and_page_numbers_are_dropped(roman: bool) -> None:
    text = text_of(parse_pdf(_furnished_book(roman)))
    assert "Little Book of Tests" not in text
    for line in text.split("\n"):
        assert line.strip() not in {"1", "2", "3", "4", "5", "i", "ii", "iii", "iv", "v"}
    # Nothing of the book itself went with them.
    for page in range(5):
        for k in (1, 2, 3):
            seed = 10 * page + k
            assert f"line{seed} " in text and f"the end of paragraph {seed}." in text


def test_paragraphs_are_kept_across_pages_and_lines_joined() -> None:
    # A paragraph that runs over a page break, then one set off by a gap, not an indent.
    pages = [
        [*paragraph(1), ("indent", prose(2)), prose(3)],
        [prose(4), "and so it ended.", ("gap",), prose(5), "a block paragraph after a gap."],
        [*paragraph(6)],
        [*paragraph(7)],
        [*paragraph(8)],
    ]
    paragraphs = text_of(parse_pdf(make_pdf(pages))).split("\n\n")
    assert [p.split()[0] for p in paragraphs] == ["line1", "line2", "line5", "line6", "line7", "line8"]
    assert paragraphs[1] == f"{prose(2)} {prose(3)} {prose(4)} and so it ended."


def test_words_broken_at_line_ends_are_joined() -> None:
    pages = [[
        ("indent", "The old map held more infor-"),
        "mation than anyone had hoped, a well-known fact.",
        "It was a well-",
        "known story, told by his mother-in-",
        "law and fore-",
        "told by a seer; the year was 1914-",
        "1918, and the list ran A-",
        "Z over-",
        "\u00adlong.",
    ], [prose(1)], [prose(2)], [prose(3)]]
    text = text_of(parse_pdf(make_pdf(pages)))
    assert "more information than" in text  # a broken word joined
    assert "a well-known story" in text  # the book prints "well-known" in a line elsewhere
    assert "mother-in-law and foretold by" in text  # a compound keeps its hyphen; "fore-told" does not
    assert "was 1914-1918, and the list ran A-Z over-" in text  # before a capital or a digit: a hyphen


def test_soft_hyphen_at_a_line_end_always_goes() -> None:
    pages = [[("indent", "The spec\u00ad"), "ification was read aloud."], [prose(1)], [prose(2)], [prose(3)]]
    assert "The specification was read aloud." in text_of(parse_pdf(make_pdf(pages)))


# --------------------------------------------------------------------------- #
# Chapters
# --------------------------------------------------------------------------- #


def test_chapters_come_from_the_outline() -> None:
    pages = [
        ["A Book of Tests", "by Somebody"],  # a title page before the first bookmark: dropped
        [("bookmark", "Part One"), ("heading", "PART ONE")],
        [("bookmark", "Chapter 1: Arrival"), ("heading", "Chapter 1"), ("heading", "Arrival"), *paragraph(1)],
        [*paragraph(2)],
        # Two bookmarks on one page: each starts at its own height.
        [("bookmark", "Chapter 2: Short"), ("heading", "Chapter 2: Short"), *paragraph(3),
         ("gap",), ("bookmark", "Chapter 3: Shorter"), ("heading", "Chapter 3: Shorter"), *paragraph(4)],
    ]
    book = parse_pdf(make_pdf(pages, title="A Book of Tests", author="Somebody"))
    assert (book.title, book.author) == ("A Book of Tests", "Somebody")
    assert [c.title for c in book.chapters] == ["Part One — Chapter 1: Arrival", "Chapter 2: Short", "Chapter 3: Shorter"]
    first = book.chapters[0].text
    assert first.startswith("line1 ") and "line2 " in first  # the heading is the title, not read twice
    assert "line3 " in book.chapters[1].text and "line4 " not in book.chapters[1].text
    assert book.chapters[2].text.startswith("line4 ")
    assert "A Book of Tests" not in text_of(book)


def test_without_an_outline_headings_in_the_text_make_the_chapters() -> None:
    pages = [
        [("heading", "Chapter 1"), *paragraph(1)],
        [*paragraph(2)],
        [("heading", "Chapter 2"), *paragraph(3)],
        [("heading", "Chapter 3"), *paragraph(4)],
    ]
    book = parse_pdf(make_pdf(pages))
    assert [c.title for c in book.chapters] == ["Chapter 1", "Chapter 2", "Chapter 3"]
    assert "line2 " in book.chapters[0].text


def test_a_chapter_heading_at_the_top_of_its_page_is_not_furniture() -> None:
    # "Chapter #" recurs at the top of five pages, but in a larger type than the body.
    pages = [[("heading", f"Chapter {n}"), *paragraph(n)] for n in range(1, 6)]
    book = parse_pdf(make_pdf(pages))
    assert [c.title for c in book.chapters] == [f"Chapter {n}" for n in range(1, 6)]


# --------------------------------------------------------------------------- #
# Refused: scans, passwords, garbage
# --------------------------------------------------------------------------- #


def scanned_pdf() -> bytes:
    """Three pages of pictures, as a scanner makes them: no text at all."""
    from PIL import Image

    document = FPDF()
    for shade in (40, 120, 200):
        document.add_page()
        image = Image.new("L", (60, 80), shade)
        document.image(image, x=10, y=10, w=190)
    return bytes(document.output())


def test_a_scan_without_text_is_refused_as_no_text_layer() -> None:
    with pytest.raises(NoTextLayer, match="no text layer"):
        parse_pdf(scanned_pdf())


def _encrypted(user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([paragraph(1), paragraph(2)]))))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_pdf_that_needs_a_password_is_refused() -> None:
    with pytest.raises(PasswordProtected, match="password"):
        parse_pdf(_encrypted("secret"))


def test_a_pdf_locked_only_against_copying_is_read() -> None:
    assert "line1 " in text_of(parse_pdf(_encrypted("")))


@pytest.mark.parametrize("data", [
    b"%PDF-1.7\n" + bytes(range(256)) * 40,
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
    b"\x00\x01 this is not a PDF at all",
    b"",
])
def test_garbage_is_refused_as_unreadable_not_a_crash(data: bytes) -> None:
    with pytest.raises((UnsupportedMedia, NoTextLayer)):
        read_book(data, "broken.pdf")


@pytest.mark.parametrize("kept", [1 / 3, 1 / 2, 0.95])
def test_a_truncated_pdf_is_refused_as_unreadable(kept: float) -> None:
    """A PDF cut short (an upload broken off) has lost its end, where the
    trailer names the document's root: no reader finds its pages. It is
    refused as unreadable, not taken for a scan without text, not a crash."""
    data = _furnished_book()
    with pytest.raises(UnsupportedMedia, match="not a readable PDF"):
        read_book(data[:int(len(data) * kept)], "cut.pdf")


# --------------------------------------------------------------------------- #
# Detection and bounds
# --------------------------------------------------------------------------- #


def test_read_book_knows_a_pdf_by_its_header_or_its_name() -> None:
    data = _furnished_book()
    assert is_pdf(data) and not is_pdf(b"A text about the %PDF-1.7 header.")
    assert "line1 " in text_of(read_book(data))  # no name: the header says PDF
    assert "line1 " in text_of(read_book(data, "book.pdf"))
    assert "%PDF-1.7" in text_of(read_book(b"A text about the %PDF-1.7 header.", "notes.txt"))


def test_a_book_over_the_character_limit_stops_being_read_early(monkeypatch: pytest.MonkeyPatch) -> None:
    from pypdf import PageObject

    pages = [[*paragraph(3 * n + 1, 8), *paragraph(3 * n + 2, 8)] for n in range(60)]
    data = make_pdf(pages)
    read = 0
    extract = PageObject.extract_text

    def counting(self, *args, **kwargs):
        nonlocal read
        read += 1
        return extract(self, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", counting)
    with pytest.raises(TextTooLarge):
        read_book(data, "long.pdf", max_chars=3_000)
    assert read <= 4  # of 60 pages
    read = 0
    assert read_book(data, "long.pdf", max_chars=1_000_000).chapters
    assert read == 60


def test_too_many_pages_are_refused_before_any_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_reader, "MAX_PAGES", 3)
    with pytest.raises(TextTooLarge, match="pages"):
        parse_pdf(_furnished_book())


def hand_made_pdf(content: bytes, pages: int = 1, compress: bool = True) -> bytes:
    """A minimal PDF whose pages all draw ``content`` (one stream, shared), in Helvetica."""
    stream = zlib.compress(content, 9) if compress else content
    kids = " ".join(f"{4 + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids.encode() + b"] /Count " + str(pages).encode() + b" >>",
        b"<< /Length " + str(len(stream)).encode() + (b" /Filter /FlateDecode" if compress else b"") + b" >>\nstream\n"
        + stream + b"\nendstream",
    ]
    font = b"<< /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R /Resources " + font + b" >>"
                for _ in range(pages)]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_a_hand_made_pdf_reads() -> None:
    content = b"BT /F1 12 Tf 72 700 Td (Hello from a hand-made page.) Tj ET"
    assert text_of(parse_pdf(hand_made_pdf(content))) == "Hello from a hand-made page."


def test_a_decompression_bomb_is_refused_quickly() -> None:
    # 64 MB of spaces inside one text operator: about 64 KB on the wire.
    content = b"BT /F1 12 Tf 72 700 Td (" + b" " * (64 * 1024 * 1024) + b"Hi) Tj ET"
    data = hand_made_pdf(content)
    assert len(data) < 200_000
    started = time.monotonic()
    with pytest.raises(TextTooLarge):
        parse_pdf(data, max_chars=1_000_000)
    assert time.monotonic() - started < 10


def test_a_page_with_more_text_than_a_page_can_hold_is_refused() -> None:
    lines = b"".join(b"1 0 0 1 72 %d Tm (%s) Tj " % (700 - i % 60 * 10, b"word " * 8) for i in range(3_000))
    started = time.monotonic()
    with pytest.raises(TextTooLarge, match="page 1 "):
        parse_pdf(hand_made_pdf(b"BT /F1 10 Tf " + lines + b"ET"))
    assert time.monotonic() - started < 15


def test_pages_that_share_a_stream_of_empty_operators_are_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    # A hundred pages draw one stream of operators that show nothing: each
    # page costs pypdf a full parse. The file is small; reading it would not be.
    data = hand_made_pdf(b"BT /F1 12 Tf 72 700 Td (Hi) Tj ET " + b"q Q " * 30_000, pages=100)
    monkeypatch.setattr(pdf_reader, "MAX_OPERATIONS", 100_000)
    with pytest.raises(TextTooLarge, match="operations"):
        parse_pdf(data)
    monkeypatch.setattr(pdf_reader, "MAX_OPERATIONS", 10**9)
    monkeypatch.setattr(pdf_reader, "MAX_SECONDS", 1.0)
    started = time.monotonic()
    with pytest.raises(TextTooLarge, match="to read"):
        parse_pdf(data)
    assert time.monotonic() - started < 10


def test_one_stream_of_endless_tokens_is_stopped_by_pypdf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_reader, "_PYPDF_LIMITS", {**pdf_reader._PYPDF_LIMITS,
                                                      "stream_parsing_work_maximum_count": 50_000})
    with pytest.raises(TextTooLarge):
        parse_pdf(hand_made_pdf(b"BT /F1 12 Tf 72 700 Td (Hi) Tj ET " + b"q Q " * 40_000))


def test_reading_time_grows_linearly_with_the_book() -> None:
    def seconds(pages: int) -> float:
        data = make_pdf([[*paragraph(3 * n + 1, 8), *paragraph(3 * n + 2, 8)] for n in range(pages)])
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            parse_pdf(data)
            best = min(best, time.perf_counter() - started)
        return best

    small, large = seconds(10), seconds(80)
    assert large < 8 * small * 3, (small, large)  # 8 times the pages; a quadratic step would be 64 times


# --------------------------------------------------------------------------- #
# Through the running service
# --------------------------------------------------------------------------- #


@pytest.mark.stack
def test_a_pdf_upload_becomes_an_audiobook_and_a_scan_is_refused(api: httpx.Client, jobs) -> None:
    pages = [
        [("bookmark", "The First Chapter"), ("heading", "The First Chapter"), *paragraph(1, 3)],
        [*paragraph(2, 3)],
        [("bookmark", "The Second Chapter"), ("heading", "The Second Chapter"), *paragraph(3, 3)],
    ]
    data = make_pdf(pages, title="A Small PDF Book")
    response = api.post("/v1/jobs", files={"file": ("small.pdf", data, "application/pdf")}, data={"voice": "tone"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    before = set(jobs.active_ids())
    refused = api.post("/v1/jobs", files={"file": ("scan.pdf", scanned_pdf(), "application/pdf")},
                       data={"voice": "tone"})
    assert refused.status_code == 422, refused.text
    assert "no text layer" in refused.json()["detail"]
    assert set(jobs.active_ids()) <= before | {job_id}

    status = wait_for(api, job_id)
    assert status["state"] == "done", status
    assert status["title"] == "A Small PDF Book"
    assert [c["title"] for c in status["chapters"]] == ["The First Chapter", "The Second Chapter"]
