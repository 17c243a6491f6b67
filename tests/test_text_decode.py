"""Books as people have them: text files in legacy encodings, with BOMs, with
CRLF, read as the text they are; only binary is refused, naming the file.

Short texts are written here and encoded in each codec; the corpus books (in
../shared/corpus, never copied into the project) are read when present.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chorus.tasks.errors import TextTooLarge, UnsupportedMedia
from chorus.tasks.text.decode import decode_text
from chorus.tasks.text.read import read_book

ENGLISH = "“Quite so,” said the café owner — naïve, perhaps, but right. ‘Yes.’ Œuvre, 10 €."
FRENCH = "Il était une fois à Paris, où l'été est chaud. Ça va très bien, merci, garçon."
SIMPLIFIED = "天下大势，分久必合，合久必分。周末七国分争，并入于秦。及秦灭之后，楚、汉分争，又并入于汉。"
TRADITIONAL = "天下大勢，分久必合，合久必分。周末七國分爭，並入於秦。及秦滅之後，楚、漢分爭，又並入於漢。"
JAPANESE = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
RUSSIAN = "Все счастливые семьи похожи друг на друга, каждая несчастливая семья несчастлива по-своему."


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        (ENGLISH, "utf-8"),
        (ENGLISH, "utf-8-sig"),
        (ENGLISH, "utf-16"),  # with a BOM, in the machine's byte order
        (ENGLISH, "utf-16-le"),  # no BOM
        (ENGLISH, "utf-16-be"),
        (ENGLISH, "utf-32"),
        (ENGLISH, "cp1252"),
        (FRENCH, "latin-1"),
        (SIMPLIFIED, "gb18030"),
        (SIMPLIFIED, "gbk"),
        (SIMPLIFIED, "utf-16"),
        (TRADITIONAL, "big5"),
        (JAPANESE, "shift_jis"),
        (RUSSIAN, "cp1251"),
    ],
)
def test_encodings_decode_to_the_text(text: str, codec: str) -> None:
    assert decode_text(text.encode(codec), "book.txt") == text


def test_boms_decide_before_any_guess() -> None:
    for codec, bom in (("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-32-le", b"\xff\xfe\x00\x00")):
        assert decode_text(bom + "Hi, 天下.".encode(codec), "hi.txt") == "Hi, 天下."


def test_line_ends_become_newlines() -> None:
    assert decode_text(b"one\r\ntwo\rthree\n\r\nfour", "x.txt") == "one\ntwo\nthree\n\nfour"
    assert decode_text(f"{ENGLISH}\r\n{ENGLISH}\r".encode("cp1252"), "x.txt") == f"{ENGLISH}\n{ENGLISH}\n"


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20,  # an image
        random.Random(8).randbytes(50_000),  # compressed data
        b"\x7fELF\x02\x01\x01" + b"\x00" * 4000 + bytes(range(256)) * 8,  # a program
    ],
    ids=["png", "random", "elf"],
)
def test_binary_is_refused_naming_the_file(data: bytes) -> None:
    with pytest.raises(UnsupportedMedia, match="'cover.txt' is binary"):
        decode_text(data, "cover.txt")
    with pytest.raises(UnsupportedMedia, match="'cover.txt' is binary"):
        read_book(data, "cover.txt")


def test_a_few_stray_control_bytes_do_not_make_text_binary() -> None:
    text = "A line of a long book, and another, and one more.\n" * 100
    text = text[:1000] + "\x00" + text[1000:3000] + "\x07\x1b" + text[3000:]
    assert decode_text(text.encode("utf-8"), "x.txt") == text


def test_read_book_reads_legacy_text_end_to_end() -> None:
    book = read_book(f"A Title\n\n{ENGLISH}\r\n".encode("cp1252"), "a.txt")
    assert book.title == "A Title"
    assert book.chapters[0].text == ENGLISH
    book = read_book(f"第一回 开端\n\n{SIMPLIFIED}\n".encode("gb18030"), "a.txt")
    assert book.chapters[0].title == "第一回 开端"
    assert book.chapters[0].text == SIMPLIFIED


@pytest.mark.parametrize("name", ["pride_and_prejudice.txt", "frankenstein.txt"])
def test_gutenberg_windows_1252_books_read_right(corpus: Path, name: str) -> None:
    """Both English corpus books are Windows-1252 with CRLF: smart quotes and
    accents must come out as themselves, not as Polish or as mojibake."""
    data = (corpus / name).read_bytes()
    text = decode_text(data, name)
    assert text == data.decode("cp1252").replace("\r\n", "\n")
    assert "\r" not in text and "\ufffd" not in text
    assert {"“", "”", "’", "é"} <= set(text)
    book = read_book(data, name)
    assert "“" in book.chapters[1].text and book.language == "en"


def test_chinese_corpus_in_gb18030_and_utf16_reads_back(corpus: Path) -> None:
    text = (corpus / "xiyouji_ch01-10.txt").read_bytes().decode("utf-8").replace("\r\n", "\n")
    assert decode_text(text.encode("gb18030"), "xiyouji.txt") == text
    assert decode_text(text.encode("utf-16"), "xiyouji.txt") == text
    book = read_book(text.encode("gb18030"), "xiyouji.txt")
    assert len(book.chapters) == 10 and book.chapters[0].title.startswith("第一回")


def test_read_book_measures_the_decoded_text_before_parsing() -> None:
    data = ("Words. " * 1000).encode("utf-16")  # 14,002 bytes, 7,000 characters
    assert read_book(data, "w.txt", max_chars=7000).chapters
    with pytest.raises(TextTooLarge, match="w.txt has 7,000 characters; the limit is 6,999"):
        read_book(data, "w.txt", max_chars=6999)
