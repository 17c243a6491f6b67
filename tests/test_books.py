"""EPUB, Markdown and plain-text books into chapters (``chorus.tasks.text.read`` and the readers it picks).

Real files, no mocks: the EPUBs are written with ebooklib inside the tests.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from ebooklib import epub

from chorus.tasks.errors import InputError, UnsupportedMedia
from chorus.tasks.text.book import Book, Chapter
from chorus.tasks.text.clean import has_speakable
from chorus.tasks.text.markdown import parse_markdown
from chorus.tasks.text.plain import parse_text
from chorus.tasks.text.read import read_book
from tests.epubs import one_page_epub


def titles(book: Book) -> list[str]:
    return [c.title for c in book.chapters]


def assert_clean(book: Book) -> None:
    """What every parsed book must satisfy."""
    assert book.chapters
    for chapter in book.chapters:
        assert isinstance(chapter, Chapter)
        assert has_speakable(chapter.text)
        assert chapter.text == chapter.text.strip()
        assert "\n\n\n" not in chapter.text
        assert "<" not in chapter.text and ">" not in chapter.text


# --------------------------------------------------------------------------- #
# EPUB
# --------------------------------------------------------------------------- #

CHAPTERS = [
    (
        "Chapter One: The Harbour",
        ("<p>The boats came in at <em>dawn</em>, heavy with fish.<sup><a epub:type=\"noteref\" "
        "href=\"#n1\">1</a></sup> Nobody spoke.</p>"
        "<p>Mara counted the <strong>crates</strong> twice.</p>"
        "<aside epub:type=\"footnote\" id=\"n1\"><p>A footnote about herring quotas.</p></aside>"
        "<p><img src=\"images/boat.png\" alt=\"A drawing of a boat\"/></p>"),
    ),
    (
        "Chapter Two: The Storm",
        ("<p>By noon the sky had turned the colour of slate.</p>"
        "<div><p>Wind tore at the sails.</p><p>Rain followed.</p></div>"
        "<span epub:type=\"pagebreak\" id=\"page7\" title=\"7\">7</span>"
        "<ul><li>First rope</li><li>Second rope</li></ul>"),
    ),
    (
        "Chapter Three: Home",
        ("<p>They reached the quay at last, and the lamps were lit.</p>"
        "<blockquote><p>Safe, said the harbour master.</p></blockquote>"
        "<script>alert('no');</script><style>p { color: red; }</style>"),
    ),
]


def make_epub(*, with_toc: bool = True, front_matter: bool = True) -> bytes:
    book = epub.EpubBook()
    book.set_identifier("chorus-test-book")
    book.set_title("The Quiet Harbour")
    book.set_language("en")
    book.add_author("Ada Fisher")

    image = epub.EpubImage(uid="boat", file_name="images/boat.png", media_type="image/png",
                           content=b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    book.add_item(image)

    spine: list[object] = []
    if front_matter:
        cover = epub.EpubHtml(title="Cover", file_name="cover.xhtml", lang="en")
        cover.content = "<html><body><h1>The Quiet Harbour</h1><p>Ada Fisher</p></body></html>"
        book.add_item(cover)
        spine.append(cover)

    items = []
    for i, (heading, body) in enumerate(CHAPTERS, start=1):
        item = epub.EpubHtml(title=heading, file_name=f"chap_{i}.xhtml", lang="en")
        item.content = f"<html><body><h1>{heading}</h1>{body}</body></html>"
        book.add_item(item)
        items.append(item)

    if with_toc:
        book.toc = [epub.Link(item.file_name, heading, f"chap{i}")
                    for i, (item, (heading, _)) in enumerate(zip(items, CHAPTERS), start=1)]
        book.add_item(epub.EpubNcx())
        book.add_item(epub.EpubNav())
        spine.append("nav")
    else:
        # ebooklib always names an NCX in the spine: give it one with no entries.
        book.add_item(epub.EpubNcx())
    book.spine = spine + items

    out = io.BytesIO()
    epub.write_epub(out, book, {})
    return out.getvalue()


def test_epub_metadata_and_chapters_from_toc() -> None:
    book = read_book(make_epub())
    assert (book.title, book.author, book.language) == ("The Quiet Harbour", "Ada Fisher", "en")
    # The cover is short and not in the TOC: dropped; the nav is not read aloud.
    assert titles(book) == [heading for heading, _ in CHAPTERS]
    assert_clean(book)

    one, two, three = (c.text for c in book.chapters)
    assert one == (
        "The boats came in at dawn, heavy with fish. Nobody spoke.\n\n"
        "Mara counted the crates twice."
    )
    assert two == (
        "By noon the sky had turned the colour of slate.\n\n"
        "Wind tore at the sails.\n\nRain followed.\n\nFirst rope\n\nSecond rope"
    )
    assert three == "They reached the quay at last, and the lamps were lit.\n\nSafe, said the harbour master."


def test_epub_drops_notes_images_scripts_and_repeated_heading() -> None:
    text = "\n".join(c.text for c in read_book(make_epub(), "harbour.epub").chapters)
    for gone in ("herring", "footnote", "boat.png", "drawing", "alert", "color", "Chapter One", "7"):
        assert gone not in text


def test_epub_without_toc_uses_first_heading() -> None:
    book = read_book(make_epub(with_toc=False, front_matter=False))
    assert titles(book) == [heading for heading, _ in CHAPTERS]
    assert book.chapters[2].text.startswith("They reached the quay")


def test_epub_detected_by_content_without_extension() -> None:
    assert read_book(make_epub(), "upload.bin").title == "The Quiet Harbour"


def test_corrupt_epub_is_unsupported() -> None:
    with pytest.raises(UnsupportedMedia, match="not a readable EPUB"):
        read_book(b"PK\x03\x04 this is not really a zip file", "broken.epub")
    # A valid zip that lacks the EPUB container files.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
        zf.writestr("hello.txt", "hello")
    with pytest.raises(UnsupportedMedia):
        read_book(buffer.getvalue())
    # Truncated download of a real EPUB.
    data = make_epub()
    with pytest.raises(UnsupportedMedia):
        read_book(data[: len(data) // 2], "half.epub")


# --------------------------------------------------------------------------- #
# Plain text
# --------------------------------------------------------------------------- #

ENGLISH = """\
The Lantern Keeper

Chapter 1

Tom lit the lantern every night.[1] The wind
did not care.

12

CHAPTER IV.

[Illustration: A lantern on a
hill at night]

He climbed the stairs¹ slowly.

- 13 -

Page 14

* * *

The stairs were old.

Chapter XII: The Ball

Everyone danced.

[Illustration]

Epilogue

It ended well.
"""


def test_plain_text_english_headings_and_furniture() -> None:
    book = read_book(ENGLISH.encode(), "lantern.txt")
    assert book.title == "The Lantern Keeper"
    assert titles(book) == ["Chapter 1", "CHAPTER IV.", "Chapter XII: The Ball", "Epilogue"]
    assert [c.text for c in book.chapters] == [
        "Tom lit the lantern every night. The wind did not care.",
        "He climbed the stairs slowly.\n\nThe stairs were old.",
        "Everyone danced.",
        "It ended well.",
    ]
    assert_clean(book)


def test_plain_text_more_heading_forms() -> None:
    text = ("Chapter the First\n\nOne.\n\nBOOK II\n\nPart 2\n\nTwo.\n\nPrologue\n\nThree.\n\n"
            "Chapter 7. A Long Day\n\nFour.\n\nPART 3 The Return\n\nFive.\n")
    book = parse_text(text)
    # An empty "BOOK II" lends its title to the chapter under it.
    assert titles(book) == ["Chapter the First", "BOOK II — Part 2", "Prologue", "Chapter 7. A Long Day",
                            "PART 3 The Return"]
    assert [c.text for c in book.chapters] == ["One.", "Two.", "Three.", "Four.", "Five."]


def test_plain_text_not_headings() -> None:
    text = ("Chapter one was dull, and the second chapter was worse, as everyone knows.\n\n"
            "She turned to Chapter 3 and read on.\n")
    book = parse_text(text)
    assert titles(book) == [""]
    assert book.title == ""


def test_plain_text_chinese_headings() -> None:
    text = (
        "山中记\n\n"
        "第一章\n\n"
        "　　山上有一座庙。[2]庙里有个老和尚。\n\n"
        "第二回 老和尚讲故事\n\n"
        "　　从前有座山，\n山上有座庙。\n\n"
        "第十二章 结尾\n\n"
        "　　故事讲完了。\n"
    )
    book = read_book(("\ufeff" + text).encode("utf-8"))
    assert book.title == "山中记"
    assert titles(book) == ["第一章", "第二回 老和尚讲故事", "第十二章 结尾"]
    assert [c.text for c in book.chapters] == ["山上有一座庙。庙里有个老和尚。", "从前有座山，山上有座庙。", "故事讲完了。"]


def test_plain_text_without_headings_is_one_chapter() -> None:
    text = "It was a quiet evening. The cat slept.\n\nLater, it rained.\r\n"
    book = parse_text(text)
    assert book.title == ""
    assert book.chapters == [Chapter("", "It was a quiet evening. The cat slept.\n\nLater, it rained.")]


def test_plain_text_title_line_detection() -> None:
    # Short line followed by a blank line: the title, not spoken in chapter text.
    book = parse_text("A Small Book\n\nThe first words of it.\n")
    assert (book.title, book.chapters[0].text) == ("A Small Book", "The first words of it.")
    # Title and author lines.
    book = parse_text("A Small Book\nby Jo Reed\n\nThe first words of it.\n")
    assert (book.title, book.author) == ("A Small Book", "Jo Reed")
    # A sentence is not a title; neither is a line running into the paragraph.
    assert parse_text("It rained.\n\nThen it stopped.\n").title == ""
    assert parse_text("It rained all day\nand all night long, the end of summer\nwas here at last\n\nYes.").title == ""
    # Text before the first heading is kept as an untitled chapter.
    book = parse_text("Some Title\n\nA few words before it all.\n\nChapter 1\n\nThe start.\n")
    assert book.title == "Some Title"
    assert titles(book) == ["", "Chapter 1"]


def test_text_before_heading_without_speech_is_dropped() -> None:
    book = parse_text("\n\n* * *\n\n- 1 -\n\nChapter 1\n\nBegin.\n")
    assert titles(book) == ["Chapter 1"]


# --------------------------------------------------------------------------- #
# Markdown
# --------------------------------------------------------------------------- #

MARKDOWN = """\
# The Garden Book

## Spring

Plant the *seeds* early and **water** them. See [the almanac](https://example.org/almanac)
for dates.[^1]

![A tulip](tulip.png)

```python
print("not spoken")
```

- Tulips
- Daffodils

> Patience is a gardener's tool.

<div class="note">html is dropped</div>

### Soil

Use compost.

## Summer

Water at `dusk`.

[^1]: Footnote text that should vanish.
"""


def test_markdown_title_and_chapters() -> None:
    book = read_book(MARKDOWN.encode(), "garden.md")
    assert book.title == "The Garden Book"
    assert titles(book) == ["Spring", "Summer"]
    assert book.chapters[0].text == (
        "Plant the seeds early and water them. See the almanac for dates.\n\n"
        "Tulips\n\nDaffodils\n\n"
        "Patience is a gardener's tool.\n\n"
        "Soil\n\nUse compost."
    )
    assert book.chapters[1].text == "Water at dusk."
    assert_clean(book)


def test_markdown_repeated_top_headings_are_chapters() -> None:
    book = parse_markdown("Intro words.\n\n# One\n\nFirst.\n\n# Two\n\nSecond.\n")
    assert book.title == ""
    assert titles(book) == ["", "One", "Two"]


def test_markdown_single_heading_is_the_title() -> None:
    book = parse_markdown("# Notes\n\nJust _one_ chapter here.\n")
    assert (book.title, titles(book), book.chapters[0].text) == ("Notes", [""], "Just one chapter here.")


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #


def test_legacy_encodings_are_read() -> None:
    """Text saved in Windows-1252 or UTF-16 without a BOM is read, not refused."""
    book = read_book("Caf\u00e9 cr\u00e8me, s\u2019il vous pla\u00eet.".encode("cp1252"), "menu.txt")
    assert book.chapters[0].text == "Caf\u00e9 cr\u00e8me, s\u2019il vous pla\u00eet."
    assert read_book("Hello".encode("utf-16-le"), "hello.txt").chapters[0].text == "Hello"


def test_binary_is_unsupported_naming_the_file() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10
    with pytest.raises(UnsupportedMedia, match="'cover.txt' is binary"):
        read_book(png, "cover.txt")


def test_book_without_speech_is_input_error() -> None:
    for data, name in [(b"", "a.txt"), (b"\n* * *\n\n- 12 -\n\n[Illustration]\n", "b.txt"),
                       (b"# \n\n```\ncode only\n```\n", "c.md")]:
        with pytest.raises(InputError) as info:
            read_book(data, name)
        assert not isinstance(info.value, UnsupportedMedia)


def test_epub_without_speech_is_input_error() -> None:
    data = one_page_epub("<p>   </p><img src='x.png'/>", title="Empty", in_toc=False)
    with pytest.raises(InputError) as info:
        read_book(data, "empty.epub")
    assert not isinstance(info.value, UnsupportedMedia)


# --------------------------------------------------------------------------- #
# Shared corpus (real books), when present
# --------------------------------------------------------------------------- #


def test_corpus_pride_and_prejudice(corpus: Path) -> None:
    book = parse_text((corpus / "pride_and_prejudice.txt").read_bytes().decode("cp1252"))
    assert len(book.chapters) == 61
    assert "Chapter I" in book.chapters[0].title
    assert book.chapters[-1].title.upper() == "CHAPTER LXI."
    assert book.title == "Pride and Prejudice"
    text = "\n".join(c.text for c in book.chapters)
    assert "[Illustration" not in text and "Copyright 1894" not in text
    assert "PROJECT GUTENBERG" not in text.upper()
    assert_clean(book)


def test_corpus_xiyouji(corpus: Path) -> None:
    book = read_book((corpus / "xiyouji_ch01-10.txt").read_bytes(), "xiyouji.txt")
    assert len(book.chapters) == 10
    assert book.chapters[0].title.startswith("第一回")
    assert book.chapters[-1].title.startswith("第十回")
    assert_clean(book)


def test_epub_toc_fragments_sections_and_untargeted_documents() -> None:
    """Two chapters in one file (TOC entries with #fragments), a nested part,
    and a spine document no TOC entry points at (it continues the chapter)."""
    book = epub.EpubBook()
    book.set_identifier("parts")
    book.set_title("Two Parts")
    book.set_language("zh-CN")
    part = epub.EpubHtml(title="Part", file_name="text/part1.xhtml")
    part.content = (
        "<html><body><h1 id='p1'>Part One</h1><p>A short introduction to the first part.</p>"
        "<section id='c1'><h2>Chapter 1</h2><p>Alpha&nbsp;text.</p></section>"
        "<section id='c2'><h2>Chapter 2</h2><p>Beta text.</p></section></body></html>"
    )
    more = epub.EpubHtml(title="More", file_name="text/more.xhtml")
    more.content = "<html><body><p>Beta continues here.</p></body></html>"
    for item in (part, more):
        book.add_item(item)
    book.toc = [(epub.Section("Part One", href="text/part1.xhtml#p1"),
                 [epub.Link("text/part1.xhtml#c1", "Chapter 1", "c1"),
                  epub.Link("text/part1.xhtml#c2", "Chapter 2", "c2")])]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", part, more]
    out = io.BytesIO()
    epub.write_epub(out, book, {})

    parsed = read_book(out.getvalue())
    assert parsed.language == "zh-CN"
    assert titles(parsed) == ["Part One", "Chapter 1", "Chapter 2"]
    assert [c.text for c in parsed.chapters] == [
        "A short introduction to the first part.",
        "Alpha text.",
        "Beta text.\n\nBeta continues here.",
    ]


def test_plain_text_heading_inside_illustration_and_stray_bracket() -> None:
    text = (
        "Chapter 1\n\nFirst part.\n\n"
        "[Illustration: A HOUSE\n\n[_Drawn by hand._]\n\nChapter 2.]\n\n"
        "Second part, with a [bracket] note.\n\n"
        "[Illustration: never closed\n\nThe story goes on here.\n"
    )
    book = parse_text(text)
    assert titles(book) == ["Chapter 1", "Chapter 2."]
    assert book.chapters[1].text == (
        "Second part, with a [bracket] note.\n\n[Illustration: never closed\n\nThe story goes on here."
    )
