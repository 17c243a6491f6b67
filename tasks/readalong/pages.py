"""Content documents made for books that were not EPUBs (text, Markdown,
PDF): one XHTML page per chapter, a span per segment (``s{index}``) and, in a
word-timed segment, a span per word (``s{index}w{k}``); and the navigation
document that lists the chapters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

XHTML_NS = "http://www.w3.org/1999/xhtml"
EPUB_NS = "http://www.idpf.org/2007/ops"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_NO_SPACE_LANGUAGES = ("zh", "ja", "th", "lo", "km", "my")  # scripts written without spaces between sentences


@dataclass(frozen=True)
class PageSegment:
    """A segment as a page shows it: its manifest entry and whether a paragraph ends with it."""

    entry: dict
    paragraph_end: bool


def segment_id(index: int) -> str:
    return f"s{index}"


def word_id(index: int, word: int) -> str:
    return f"s{index}w{word}"


def _page(title: str, language: str, stylesheet: str | None) -> tuple[etree._Element, etree._Element]:
    html = etree.Element(f"{{{XHTML_NS}}}html", nsmap={None: XHTML_NS, "epub": EPUB_NS})
    html.set(XML_LANG, language)
    html.set("lang", language)
    head = etree.SubElement(html, f"{{{XHTML_NS}}}head")
    etree.SubElement(head, f"{{{XHTML_NS}}}meta", charset="utf-8")
    etree.SubElement(head, f"{{{XHTML_NS}}}title").text = title
    if stylesheet:
        etree.SubElement(head, f"{{{XHTML_NS}}}link", rel="stylesheet", type="text/css", href=stylesheet)
    return html, etree.SubElement(html, f"{{{XHTML_NS}}}body")


def _bytes(html: etree._Element) -> bytes:
    return etree.tostring(html, xml_declaration=True, encoding="utf-8", doctype="<!DOCTYPE html>")


def chapter_page(title: str, language: str, segments: Sequence[PageSegment], stylesheet: str) -> bytes:
    """One chapter: its segments in paragraphs, a paragraph that is the
    chapter's title shown as its heading."""
    html, body = _page(title, language, stylesheet)
    section = etree.SubElement(body, f"{{{XHTML_NS}}}section")
    section.set(f"{{{EPUB_NS}}}type", "chapter")
    separator = "" if language.lower().startswith(_NO_SPACE_LANGUAGES) else " "
    paragraph: list[PageSegment] = []
    for segment in segments:
        paragraph.append(segment)
        if segment.paragraph_end:
            _paragraph(section, paragraph, title, separator)
            paragraph = []
    if paragraph:
        _paragraph(section, paragraph, title, separator)
    return _bytes(html)


def _paragraph(section: etree._Element, segments: list[PageSegment], title: str, separator: str) -> None:
    is_title = bool(title) and separator.join(s.entry["text"] for s in segments) == title
    block = etree.SubElement(section, f"{{{XHTML_NS}}}{'h1' if is_title else 'p'}")
    previous = None
    for segment in segments:
        if previous is not None:
            previous.tail = separator
        previous = _segment_span(block, segment.entry)


def _segment_span(parent: etree._Element, entry: dict) -> etree._Element:
    """The segment's span; inside it, its words' spans where it is word-timed."""
    span = etree.SubElement(parent, f"{{{XHTML_NS}}}span", id=segment_id(entry["index"]))
    text: str = entry["text"]
    words = entry.get("words") if entry.get("timing") == "word" else None
    if not words:
        span.text = text
        return span
    span.text = text[: words[0]["offset"]]
    for number, word in enumerate(words):
        start = word["offset"]
        end = start + len(word["text"])
        following = words[number + 1]["offset"] if number + 1 < len(words) else len(text)
        inner = etree.SubElement(span, f"{{{XHTML_NS}}}span", id=word_id(entry["index"], number))
        inner.text = text[start:end]
        inner.tail = text[end:following]
    return span


def nav_page(title: str, language: str, chapters: Sequence[tuple[str, str]]) -> bytes:
    """The navigation document: (label, href) of each chapter, in order."""
    html, body = _page(title, language, None)
    nav = etree.SubElement(body, f"{{{XHTML_NS}}}nav", id="toc")
    nav.set(f"{{{EPUB_NS}}}type", "toc")
    etree.SubElement(nav, f"{{{XHTML_NS}}}h1").text = "Contents"
    listing = etree.SubElement(nav, f"{{{XHTML_NS}}}ol")
    for label, href in chapters:
        item = etree.SubElement(listing, f"{{{XHTML_NS}}}li")
        etree.SubElement(item, f"{{{XHTML_NS}}}a", href=href).text = label
    return _bytes(html)
