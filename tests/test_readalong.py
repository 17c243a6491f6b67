"""Read-along EPUB 3 with Media Overlays, built from real plans (TXT,
Markdown, PDF and EPUB inputs), synthetic timings and real AAC audio:
EPUBCheck finds nothing to report, each overlay ends where its audio does,
sentences and words are marked where the manifest says they are."""

from __future__ import annotations

import io
import posixpath
import zipfile
from pathlib import Path

import pytest
from ebooklib import epub
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from chorus.tasks.readalong import marks, overlays, package
from chorus.tasks.text.plan import Plan, make_plan
from chorus.tasks.text.read import read_book
from tests.conftest import JOE, JOE_MODEL, submission_of
from tests.readalong_books import epubcheck, readalong
from tests.test_text_pdf import make_pdf, paragraph

SMIL = "{http://www.w3.org/ns/SMIL}"
XHTML = "{http://www.w3.org/1999/xhtml}"

TEXT = """THE LANTERN

CHAPTER I

The lamp was lit at dusk. Its keeper, Mr. Hale, climbed 112 steps & never counted them twice.

"Who goes there?" he called. Nobody answered <him>.

CHAPTER II

Morning came grey. The sea was calm, and the boats went out.
"""

MARKDOWN = """# The Lantern

## Dusk

The lamp was lit at *dusk*. Its keeper climbed the **steps**.

## Dawn

Morning came grey. The boats went out.
"""


def plan_of(data: bytes, filename: str) -> Plan:
    return make_plan(read_book(data, filename), JOE, JOE_MODEL, "test")


def pdf_book() -> bytes:
    return make_pdf([[("bookmark", "First"), ("heading", "First"), *paragraph(1)],
                     [("bookmark", "Second"), ("heading", "Second"), *paragraph(2)]], title="Pages", author="Ann Print")


def chaptered_epub(version: int = 3) -> bytes:
    """An EPUB as publishing tools write them: a nav (EPUB 3) or only an NCX
    (an EPUB 2-style book), a stylesheet, an image, notes and inline markup."""
    book = epub.EpubBook()
    book.set_identifier("readalong-test")
    book.set_title("The Lantern")
    book.set_language("en")
    book.add_author("Ada Fisher")
    style = epub.EpubItem(uid="style", file_name="style/book.css", media_type="text/css",
                          content=b"p { text-indent: 1em; }")
    book.add_item(style)
    book.add_item(epub.EpubImage(uid="lamp", file_name="images/lamp.png", media_type="image/png",
                                 content=LAMP_PNG))
    chapters = [
        ("Dusk", "<h1>Dusk</h1><p>The lamp was lit at <em>dusk, and</em> the keeper climbed.<sup>"
                 "<a epub:type='noteref' href='#n1'>1</a></sup> He never counted the steps.</p>"
                 "<p><img src='images/lamp.png' alt='A lamp'/></p>"
                 "<aside epub:type='footnote' id='n1'><p>There were 112.</p></aside>"),
        ("Dawn", "<h1>Dawn</h1><p>Morning came grey.</p><p>The boats went out, one by one.</p>"),
    ]
    items = []
    for number, (title, body) in enumerate(chapters, start=1):
        item = epub.EpubHtml(title=title, file_name=f"chapter{number}.xhtml", lang="en")
        item.content = f"<html><body>{body}</body></html>"
        item.add_item(style)
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.add_item(epub.EpubNcx())
    if version == 3:
        book.add_item(epub.EpubNav())
    book.spine = [*(["nav"] if version == 3 else []), *items]
    out = io.BytesIO()
    epub.write_epub(out, book, {"epub3_pages": False})
    return out.getvalue()


LAMP_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8cfc0f01f0005000201e2f1e5d90000000049454e44ae426082")

INPUTS = {
    "txt": lambda: (TEXT.encode("cp1252").replace(b"\n", b"\r\n"), "lantern.txt"),
    "markdown": lambda: (MARKDOWN.encode(), "lantern.md"),
    "pdf": lambda: (pdf_book(), "pages.pdf"),
    "epub": lambda: (chaptered_epub(), "lantern.epub"),
}


def build(tmp_path: Path, kind: str, words: bool = False) -> tuple[Path, package.Readalong]:
    data, filename = INPUTS[kind]()
    book = readalong(plan_of(data, filename), tmp_path, words)
    path = tmp_path / f"{kind}.epub"
    package.write(path, book, data if kind == "epub" else None)
    return path, book


def opf_of(archive: zipfile.ZipFile) -> tuple[str, etree._Element]:
    container = etree.fromstring(archive.read("META-INF/container.xml"))
    opf = container.find(".//{*}rootfile").get("full-path")
    return opf, etree.fromstring(archive.read(opf))


def overlays_of(archive: zipfile.ZipFile) -> dict[str, etree._Element]:
    opf, root = opf_of(archive)
    return {posixpath.join(posixpath.dirname(opf), item.get("href")): etree.fromstring(
        archive.read(posixpath.join(posixpath.dirname(opf), item.get("href"))))
        for item in root.iter("{*}item") if item.get("media-type") == "application/smil+xml"}


def seconds(clock: str) -> float:
    hours, minutes, rest = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def audio_seconds(data: bytes) -> float:
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base)


@pytest.mark.parametrize("kind", list(INPUTS))
def test_epubcheck_finds_nothing_in_books_from_every_input(tmp_path: Path, kind: str) -> None:
    path, _ = build(tmp_path, kind)
    assert epubcheck(path) == []


@pytest.mark.parametrize("kind", ["txt", "epub"])
def test_epubcheck_finds_nothing_in_a_word_timed_book(tmp_path: Path, kind: str) -> None:
    path, _ = build(tmp_path, kind, words=True)
    assert epubcheck(path) == []


def test_an_epub2_style_book_becomes_a_valid_epub3(tmp_path: Path) -> None:
    data = chaptered_epub(version=2)
    book = readalong(plan_of(data, "old.epub"), tmp_path)
    path = tmp_path / "old.epub"
    package.write(path, book, data)
    assert epubcheck(path) == []
    with zipfile.ZipFile(path) as archive:
        _, root = opf_of(archive)
        assert root.get("version") == "3.0"
        assert [i for i in root.iter("{*}item") if "nav" in (i.get("properties") or "")]


@pytest.mark.parametrize("kind", list(INPUTS))
def test_each_overlay_ends_where_its_audio_ends(tmp_path: Path, kind: str) -> None:
    path, book = build(tmp_path, kind)
    with zipfile.ZipFile(path) as archive:
        smils = overlays_of(archive)
        assert smils
        for smil_path, smil in smils.items():
            clips = smil.findall(f".//{SMIL}audio")
            audio = posixpath.normpath(posixpath.join(posixpath.dirname(smil_path), clips[-1].get("src")))
            assert abs(seconds(clips[-1].get("clipEnd")) - audio_seconds(archive.read(audio))) < 0.050
            ends = [seconds(c.get("clipEnd")) for c in clips]
            begins = [seconds(c.get("clipBegin")) for c in clips]
            assert begins == sorted(begins) and all(b < e for b, e in zip(begins, ends))


def test_generated_pages_mark_every_sentence_and_overlays_play_them_contiguously(tmp_path: Path) -> None:
    path, book = build(tmp_path, "markdown")
    with zipfile.ZipFile(path) as archive:
        page = etree.fromstring(archive.read("EPUB/chapter-001.xhtml"))
        smil = etree.fromstring(archive.read("EPUB/chapter-001.smil"))
        opf = archive.read("EPUB/package.opf").decode()
    chapter_entries = [e for e in book.entries if e["chapter"] == 0]
    for entry in chapter_entries:
        assert "".join(page.find(f".//{XHTML}span[@id='s{entry['index']}']").itertext()) == entry["text"]
    pars = smil.findall(f".//{SMIL}par")
    expected = [f"chapter-001.xhtml#s{e['index']}" for e in chapter_entries]
    assert [p.find(f"{SMIL}text").get("src") for p in pars] == expected
    clips = [p.find(f"{SMIL}audio") for p in pars]
    assert all(c.get("src") == "audio/chapter-001.m4a" for c in clips)
    # Each clip runs to the next one's start: the pauses are played too.
    assert [c.get("clipEnd") for c in clips[:-1]] == [c.get("clipBegin") for c in clips[1:]]
    assert seconds(clips[0].get("clipBegin")) == 0.0
    assert 'media-overlay="mo-c001"' in opf and "media:active-class" in opf


def test_word_timed_segments_get_a_span_and_a_par_per_word(tmp_path: Path) -> None:
    path, book = build(tmp_path, "txt", words=True)
    with zipfile.ZipFile(path) as archive:
        page = etree.fromstring(archive.read("EPUB/chapter-001.xhtml"))
        smil = etree.fromstring(archive.read("EPUB/chapter-001.smil"))
    entries = [e for e in book.entries if e["chapter"] == 0]
    for entry in entries:
        sentence = page.find(f".//{XHTML}span[@id='s{entry['index']}']")
        assert "".join(sentence.itertext()) == entry["text"]
        for number, word in enumerate(entry["words"]):
            assert page.find(f".//{XHTML}span[@id='s{entry['index']}w{number}']").text == word["text"]
    sources = [p.find(f"{SMIL}text").get("src") for p in smil.iter(f"{SMIL}par")]
    assert sources == [f"chapter-001.xhtml#s{e['index']}w{k}" for e in entries for k in range(len(e["words"]))]
    # A word's clip starts where the manifest says the word starts (the first at its sentence's start).
    second = entries[1]
    clip = smil.findall(f".//{SMIL}audio")[len(entries[0]["words"]) + 1]
    expected = second["words"][1]["start"] - book.chapters[0]["start"]
    assert seconds(clip.get("clipBegin")) == pytest.approx(expected, abs=0.001)


def test_an_epub_keeps_its_files_and_text_with_sentences_marked_in_place(tmp_path: Path) -> None:
    data = chaptered_epub()
    path, book = build(tmp_path, "epub")
    with zipfile.ZipFile(io.BytesIO(data)) as original, zipfile.ZipFile(path) as made:
        for name in ("EPUB/images/lamp.png", "EPUB/style/book.css", "EPUB/nav.xhtml", "EPUB/toc.ncx"):
            assert made.read(name) == original.read(name)
        before = etree.fromstring(original.read("EPUB/chapter1.xhtml"))
        after = etree.fromstring(made.read("EPUB/chapter1.xhtml"))
        smils = overlays_of(made)
        smil = next(s for p, s in smils.items() if p.endswith("overlay-001.smil"))
    fragments = {text.get("src").partition("#")[2] for s in smils.values() for text in s.iter(f"{SMIL}text")}
    assert "".join(before.find(f"{XHTML}body").itertext()) == "".join(after.find(f"{XHTML}body").itertext())
    by_text = {e["text"]: e["index"] for e in book.entries}
    # A sentence across an inline element: a span per piece, the first with the id.
    climbed = by_text["The lamp was lit at dusk, and the keeper climbed."]
    crossing = after.find(f".//{XHTML}span[@id='chorus-s{climbed}']")
    assert crossing.text == "The lamp was lit at"
    assert after.find(f".//{XHTML}em/{XHTML}span").text == "dusk, and"
    # The note mark and the note are not inside any sentence.
    assert after.find(f".//{XHTML}sup").getparent().tag == f"{XHTML}p"
    assert not after.findall(f".//{XHTML}aside//{XHTML}span")
    sources = [p.find(f"{SMIL}text").get("src") for p in smil.iter(f"{SMIL}par")]
    assert sources == [f"../chapter1.xhtml#chorus-s{by_text[t]}" for t in
                       ("Dusk", "The lamp was lit at dusk, and the keeper climbed.", "He never counted the steps.")]
    # The spoken title ("The Lantern, by Ada Fisher") is on no page: it has no span and no <par>.
    assert book.entries[0]["text"].startswith("The Lantern")
    assert f"chorus-s{book.entries[0]['index']}" not in fragments


def test_an_epub_upload_gets_a_span_per_word_inside_its_sentences_and_a_seq_per_sentence(tmp_path: Path) -> None:
    path, book = build(tmp_path, "epub", words=True)
    with zipfile.ZipFile(path) as archive:
        page = etree.fromstring(archive.read("EPUB/chapter1.xhtml"))
        smil = etree.fromstring(archive.read("EPUB/readalong/overlay-001.smil"))
    by_text = {e["text"]: e for e in book.entries}
    climbed = by_text["The lamp was lit at dusk, and the keeper climbed."]
    sentence = page.find(f".//{XHTML}span[@id='chorus-s{climbed['index']}']")
    assert [w.text for w in sentence.iter(f"{XHTML}span") if w is not sentence] == ["The", "lamp", "was", "lit", "at"]
    # Words are wrapped where they stand, inside the inline element they are in.
    for number, word in enumerate(climbed["words"]):
        assert page.find(f".//{XHTML}span[@id='chorus-s{climbed['index']}w{number}']").text == word["text"]
    assert page.find(f".//{XHTML}em/{XHTML}span/{XHTML}span").get("id") == f"chorus-s{climbed['index']}w5"
    sequences = smil.findall(f"{SMIL}body/{SMIL}seq")
    assert [s.get("{http://www.idpf.org/2007/ops}textref") for s in sequences] == [
        f"../chapter1.xhtml#chorus-s{by_text[t]['index']}"
        for t in ("Dusk", "The lamp was lit at dusk, and the keeper climbed.", "He never counted the steps.")]
    words = [p.find(f"{SMIL}text").get("src") for p in sequences[1].iter(f"{SMIL}par")]
    assert words == [f"../chapter1.xhtml#chorus-s{climbed['index']}w{k}" for k in range(len(climbed["words"]))]
    clips = [c for s in sequences for c in s.iter(f"{SMIL}audio")]
    assert [c.get("clipEnd") for c in clips[:-1]] == [c.get("clipBegin") for c in clips[1:]]


def test_a_word_with_no_letters_on_the_page_sounds_within_its_neighbours_clip() -> None:
    page = '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>Salt &amp; pepper.</p></body></html>'
    document = marks.parse("a.xhtml", page.encode())
    marks.mark([document], [(0, "Salt & pepper.")], {0: [(0, 4), (5, 6), (7, 14)]})
    assert document.words == {0: {0: "chorus-s0w0", 2: "chorus-s0w2"}}
    segment = overlays.TimedSegment(0, 0, overlays.Clip(1.0, 2.5), (
        overlays.Clip(1.0, 1.5), overlays.Clip(1.5, 1.8), overlays.Clip(1.8, 2.5)))
    pars = package._pars([segment], {0: ("a.xhtml", "chorus-s0")}, "audio", document.words)["a.xhtml"]
    assert [(p.fragment, p.clip.begin, p.clip.end, p.sentence) for p in pars] == [
        ("chorus-s0w0", 1.0, 1.8, "chorus-s0"), ("chorus-s0w2", 1.8, 2.5, "chorus-s0")]


def test_marking_looks_a_bounded_distance_ahead() -> None:
    """A segment that is nowhere on the page costs one bounded search, and
    does not move the place where the next one is looked for."""
    body = "".join(f"<p>Sentence number {n} is here.</p>" for n in range(3000))
    document = marks.parse("a.xhtml", f'<html xmlns="http://www.w3.org/1999/xhtml"><body>{body}</body></html>'.encode())
    segments = [(0, "Sentence number 0 is here."), (1, "Not on the page at all."),
                (2, "Sentence number 1 is here."), (3, "Sentence number 2999 is here.")]
    marks.mark([document], segments)
    assert set(document.marked) == {0, 2}  # the last is too far ahead of the one before


def test_clock_values() -> None:
    assert overlays.clock(0) == "0:00:00.000"
    assert overlays.clock(3723.4567) == "1:02:03.457"


def test_an_epub_upload_is_kept_only_for_an_epub_job() -> None:
    from chorus.api.submission import Received

    data = chaptered_epub()
    kept = submission_of(Received("upload", data, "lantern.epub", {"format": "epub"}))
    assert kept.original == data and kept.format == "epub"
    assert submission_of(Received("upload", data, "lantern.epub", {"format": "m4b"})).original == b""
    text = submission_of(Received("upload", TEXT.encode(), "lantern.txt", {"format": "epub"}))
    assert text.original == b"" and text.format == "epub"


def test_marking_matches_whole_words_and_joins_cjk_lines_as_the_reader_does() -> None:
    page = ('<html xmlns="http://www.w3.org/1999/xhtml"><body><p>This is it.</p><p>Hi. Then</p>'
            "<p>他走了。\n她来了。</p><p>中\n文。</p></body></html>")
    document = marks.parse("a.xhtml", page.encode())
    # "Hi" is not looked for inside "This": it is found where it stands, whole.
    marks.mark([document], [(0, "Hi."), (1, "Then"), (2, "他走了。"), (3, "她来了。"), (4, "中文。")])
    body = document.tree.getroot()[0]
    spans = [span.text for span in body.iter(f"{XHTML}span")]
    assert spans == ["Hi.", "Then", "他走了。", "她来了。", "中\n文。"]
    assert set(document.marked) == {0, 1, 2, 3, 4}


def test_marking_reads_past_comments_and_named_entities() -> None:
    page = ('<html xmlns="http://www.w3.org/1999/xhtml"><body><p>One <!-- a comment --> two.<?pi x?> Three'
            " four.</p><p>Five&nbsp;six.</p></body></html>")
    document = marks.parse("a.xhtml", page.encode())
    marks.mark([document], [(0, "One two."), (1, "Three four."), (2, "Five six.")])
    assert set(document.marked) == {0, 1, 2}
    assert "".join(document.tree.getroot().itertext()) == "One  two. Three four.Five\u00a0six."


WORDS = st.text(alphabet="abcdefgXYZé中文0123456789", min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.lists(WORDS, min_size=1, max_size=5), min_size=1, max_size=4), min_size=1, max_size=4),
       st.randoms(use_true_random=False))
def test_marking_finds_every_sentence_wherever_inline_markup_cuts_it(paragraphs: list, random) -> None:
    """Sentences cut by inline elements at random places are all found, the
    page's text stays what it was, and each id is on the sentence's first piece."""
    sentences = [(" ".join(words) + ".") for block in paragraphs for words in block]
    body = []
    for block in paragraphs:
        text = " ".join(" ".join(words) + "." for words in block)
        cuts = sorted(random.sample(range(len(text) + 1), min(4, len(text) + 1)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        body.append("<p>" + "".join(f"<em>{p}</em>" if n % 2 else p for n, p in enumerate(pieces)) + "</p>")
    page = f'<html xmlns="http://www.w3.org/1999/xhtml"><body>{"".join(body)}</body></html>'
    document = marks.parse("a.xhtml", page.encode())
    before = "".join(document.tree.getroot().itertext())
    marks.mark([document], list(enumerate(sentences)))
    assert "".join(document.tree.getroot().itertext()) == before
    assert set(document.marked) == set(range(len(sentences)))
    for index, sentence in enumerate(sentences):
        first = document.tree.getroot().find(f".//{XHTML}span[@id='chorus-s{index}']")
        assert sentence.startswith(first.text)
