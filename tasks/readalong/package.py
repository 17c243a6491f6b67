"""The read-along EPUB 3 package: content documents, one Media Overlay (SMIL)
per document, each chapter's audio (AAC in MP4), and the package document
that ties them together (``media-overlay`` on each document,
``media:duration`` per overlay and for the book, ``media:active-class``).

A book read from an EPUB keeps that EPUB's pages, styles, images and
navigation, its spoken sentences marked in place (``marks``); any other book
gets a page per chapter (``pages``) and a navigation document.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote

from lxml import etree

from chorus.tasks.readalong import marks, overlays, pages
from chorus.tasks.readalong.overlays import Par, TimedSegment
from chorus.tasks.text.plan import Plan

OPF_NS = "http://www.idpf.org/2007/opf"
DC_NS = "http://purl.org/dc/elements/1.1/"
CONTAINER_NS = "urn:oasis:names:tc:opendocument:xmlns:container"
MIMETYPE = b"application/epub+zip"
AUDIO_TYPE = "audio/mp4"


@dataclass(frozen=True)
class Readalong:
    """What the package is made from: the plan, the manifest's segment and
    chapter entries (book seconds), and each chapter's audio file."""

    plan: Plan
    identifier: str
    entries: Sequence[dict]
    chapters: Sequence[dict]
    audio: Mapping[int, Path]  # chapter index -> its AAC-in-MP4 file

    def language(self) -> str:
        return (self.plan.language or "und").replace("_", "-")


def write(path: Path, book: Readalong, original: bytes | None = None) -> None:
    """Write the read-along EPUB to ``path``; with ``original`` (the uploaded
    EPUB), its pages are kept and marked, else pages are made."""
    if original:
        _write_amended(path, book, original)
    else:
        _write_generated(path, book)


def _audio_name(chapter: int) -> str:
    return f"chapter-{chapter + 1:03d}.m4a"


def _modified() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _zip(path: Path, files: Sequence[tuple[str, bytes | Path]]) -> None:
    """The OCF container: ``mimetype`` first and stored, audio stored (already
    compressed), the rest deflated."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)
        for name, content in files:
            if isinstance(content, Path):
                archive.write(content, name, compress_type=zipfile.ZIP_STORED)
            else:
                archive.writestr(name, content, compress_type=zipfile.ZIP_DEFLATED)


def _container(opf_path: str) -> bytes:
    root = etree.Element(f"{{{CONTAINER_NS}}}container", nsmap={None: CONTAINER_NS}, version="1.0")
    files = etree.SubElement(root, f"{{{CONTAINER_NS}}}rootfiles")
    etree.SubElement(files, f"{{{CONTAINER_NS}}}rootfile", {"full-path": opf_path,
                                                           "media-type": "application/oebps-package+xml"})
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def _meta(metadata: etree._Element, prop: str, value: str, refines: str | None = None) -> None:
    element = etree.SubElement(metadata, f"{{{OPF_NS}}}meta", property=prop)
    if refines:
        element.set("refines", f"#{refines}")
    element.text = value


def _item(manifest: etree._Element, ident: str, href: str, media_type: str, **extra: str) -> etree._Element:
    attributes = {"id": ident, "href": quote(href), "media-type": media_type, **extra}
    return etree.SubElement(manifest, f"{{{OPF_NS}}}item", attributes)


def _overlay_metadata(metadata: etree._Element, overlays_by_id: Mapping[str, Sequence[Par]]) -> None:
    """media:duration of each overlay and of the book (their sum, so they
    agree to the millisecond), and the class reading systems give the active text."""
    durations = {ident: overlays.duration(pars) for ident, pars in overlays_by_id.items()}
    _meta(metadata, "media:duration", overlays.clock(sum(round(d * 1000) for d in durations.values()) / 1000))
    for ident, seconds in durations.items():
        _meta(metadata, "media:duration", overlays.clock(seconds), refines=ident)
    _meta(metadata, "media:active-class", overlays.ACTIVE_CLASS)


def _pars(timed: Sequence[TimedSegment], located: Mapping[int, tuple[str, str]], audio_dir: str,
          words: Mapping[int, Mapping[int, str]]) -> dict[str, list[Par]]:
    """<par>s per content document, in reading order: a segment located in a
    document (path, fragment) plays its clip of its chapter's audio; a
    word-timed one whose words are on the page (``words``: segment -> word
    number -> fragment), a <par> per word."""
    by_document: dict[str, list[Par]] = {}
    for segment in timed:
        if segment.index not in located:
            continue
        document, fragment = located[segment.index]
        audio = posixpath.join(audio_dir, _audio_name(segment.chapter))
        pars = by_document.setdefault(document, [])
        shown = words.get(segment.index)
        if segment.words and shown:
            pars.extend(Par(document, word, audio, clip, fragment)
                        for word, clip in _word_clips(segment, shown))
        else:
            pars.append(Par(document, fragment, audio, segment.clip))
    return by_document


def _word_clips(segment: TimedSegment, shown: Mapping[int, str]) -> list[tuple[str, overlays.Clip]]:
    """(fragment, clip) of each word on the page; a word that is not (no
    letters there) sounds within the clip of the word before it, or of the
    first word after it at the sentence's start, so the clips still tile the sentence."""
    placed: list[tuple[str, overlays.Clip]] = []
    begin = segment.clip.begin
    for number, clip in enumerate(segment.words):
        if number in shown:
            placed.append((shown[number], overlays.Clip(begin if not placed else clip.begin, clip.end)))
        elif placed:
            placed[-1] = (placed[-1][0], overlays.Clip(placed[-1][1].begin, clip.end))
    return placed


def _write_generated(path: Path, book: Readalong) -> None:
    plan, language = book.plan, book.language()
    root_dir = "EPUB"
    timed = overlays.timed_segments(book.entries, book.chapters)
    entries_by_chapter: dict[int, list[dict]] = {}
    for entry in book.entries:
        entries_by_chapter.setdefault(entry["chapter"], []).append(entry)
    titles = {c["index"]: c["title"] for c in book.chapters}
    files: list[tuple[str, bytes | Path]] = []
    located: dict[int, tuple[str, str]] = {}
    documents: list[tuple[int, str]] = []
    for chapter, entries in entries_by_chapter.items():
        document = f"{root_dir}/chapter-{chapter + 1:03d}.xhtml"
        documents.append((chapter, document))
        segments = [pages.PageSegment(e, plan.segments[e["index"]].paragraph_end) for e in entries]
        files.append((document, pages.chapter_page(titles.get(chapter, ""), language, segments, "readalong.css")))
        located.update((e["index"], (document, pages.segment_id(e["index"]))) for e in entries)
    shown = {e["index"]: {k: pages.word_id(e["index"], k) for k in range(len(e["words"]))}
             for e in book.entries if e.get("timing") == "word" and e.get("words")}
    pars = _pars(timed, located, f"{root_dir}/audio", shown)

    package = etree.Element(f"{{{OPF_NS}}}package", nsmap={None: OPF_NS}, version="3.0",
                            attrib={"unique-identifier": "book-id"})
    package.set("{http://www.w3.org/XML/1998/namespace}lang", language)
    metadata = etree.SubElement(package, f"{{{OPF_NS}}}metadata", nsmap={"dc": DC_NS})
    etree.SubElement(metadata, f"{{{DC_NS}}}identifier", id="book-id").text = book.identifier
    etree.SubElement(metadata, f"{{{DC_NS}}}title").text = plan.title or "Untitled"
    etree.SubElement(metadata, f"{{{DC_NS}}}language").text = language
    if plan.author:
        etree.SubElement(metadata, f"{{{DC_NS}}}creator").text = plan.author
    _meta(metadata, "dcterms:modified", _modified())
    manifest = etree.SubElement(package, f"{{{OPF_NS}}}manifest")
    spine = etree.SubElement(package, f"{{{OPF_NS}}}spine")
    _item(manifest, "nav", "nav.xhtml", "application/xhtml+xml", properties="nav")
    _item(manifest, "style", "readalong.css", "text/css")
    overlay_ids: dict[str, list[Par]] = {}
    for chapter, document in documents:
        name = posixpath.basename(document)
        overlay = f"{root_dir}/chapter-{chapter + 1:03d}.smil"
        ident = f"c{chapter + 1:03d}"
        extra = {}
        if pars.get(document):
            overlay_ids[f"mo-{ident}"] = pars[document]
            files.append((overlay, overlays.smil(overlay, pars[document])))
            _item(manifest, f"mo-{ident}", posixpath.basename(overlay), "application/smil+xml")
            extra["media-overlay"] = f"mo-{ident}"
        _item(manifest, ident, name, "application/xhtml+xml", **extra)
        etree.SubElement(spine, f"{{{OPF_NS}}}itemref", idref=ident)
        _item(manifest, f"a{chapter + 1:03d}", f"audio/{_audio_name(chapter)}", AUDIO_TYPE)
        files.append((f"{root_dir}/audio/{_audio_name(chapter)}", book.audio[chapter]))
    _overlay_metadata(metadata, overlay_ids)
    nav = [(titles.get(chapter) or f"Part {chapter + 1}", posixpath.basename(document))
           for chapter, document in documents]
    files[:0] = [
        ("META-INF/container.xml", _container(f"{root_dir}/package.opf")),
        (f"{root_dir}/package.opf", etree.tostring(package, xml_declaration=True, encoding="utf-8")),
        (f"{root_dir}/nav.xhtml", pages.nav_page(plan.title or "Contents", language, nav)),
        (f"{root_dir}/readalong.css", overlays.STYLESHEET.encode()),
    ]
    _zip(path, files)


READALONG_DIR = "readalong"  # beside the package document: what the read-along adds to an EPUB


def _write_amended(path: Path, book: Readalong, original: bytes) -> None:
    """The uploaded EPUB with its spoken sentences marked, an overlay per
    document that has any, the chapters' audio, and the package document
    amended to match; every other file is kept byte for byte."""
    with zipfile.ZipFile(io.BytesIO(original)) as source:
        container = etree.fromstring(source.read("META-INF/container.xml"), _parser())
        opf_path = container.find(f".//{{{CONTAINER_NS}}}rootfile").get("full-path")
        opf_dir = posixpath.dirname(opf_path)
        package = etree.fromstring(source.read(opf_path), _parser())
        manifest = package.find(f"{{{OPF_NS}}}manifest")
        items = {item.get("id"): item for item in manifest.iter(f"{{{OPF_NS}}}item")}

        def full(href: str) -> str:  # a manifest href as a name in the zip
            return posixpath.normpath(posixpath.join(opf_dir, unquote(href)))

        document_items = {full(item.get("href")): item for item in _reading_order(package, items)}
        documents = [marks.parse(name, source.read(name)) for name in document_items]
        word_spans = {entry["index"]: [(w["offset"], w["offset"] + len(w["text"])) for w in entry["words"]]
                      for entry in book.entries if entry.get("timing") == "word" and entry.get("words")}
        marks.mark(documents, [(entry["index"], entry["text"]) for entry in book.entries], word_spans)
        located = {index: (document.path, fragment) for document in documents
                   for index, fragment in document.marked.items()}
        shown = {index: numbers for document in documents for index, numbers in document.words.items()}
        own_dir = posixpath.join(opf_dir, READALONG_DIR)
        pars = _pars(overlays.timed_segments(book.entries, book.chapters), located,
                     posixpath.join(own_dir, "audio"), shown)

        added: list[tuple[str, bytes | Path]] = []
        replaced: dict[str, bytes] = {}
        stylesheet = posixpath.join(own_dir, "readalong.css")
        added.append((stylesheet, overlays.STYLESHEET.encode()))
        _item(manifest, "chorus-style", posixpath.relpath(stylesheet, opf_dir or "."), "text/css")
        overlay_ids: dict[str, list[Par]] = {}
        for number, document in enumerate(documents, start=1):
            if not pars.get(document.path):
                continue
            overlay = posixpath.join(own_dir, f"overlay-{number:03d}.smil")
            ident = f"chorus-mo-{number:03d}"
            overlay_ids[ident] = pars[document.path]
            added.append((overlay, overlays.smil(overlay, pars[document.path])))
            _item(manifest, ident, posixpath.relpath(overlay, opf_dir or "."), "application/smil+xml")
            document_items[document.path].set("media-overlay", ident)
            _link_stylesheet(document, posixpath.relpath(stylesheet, posixpath.dirname(document.path) or "."))
            replaced[document.path] = _html5(document)
        for chapter, audio in sorted(book.audio.items()):
            audio_path = posixpath.join(own_dir, "audio", _audio_name(chapter))
            added.append((audio_path, audio))
            _item(manifest, f"chorus-audio-{chapter + 1:03d}", posixpath.relpath(audio_path, opf_dir or "."),
                  AUDIO_TYPE)
        metadata = package.find(f"{{{OPF_NS}}}metadata")
        if _upgrade(package, book):
            for document in documents:  # EPUB 3 pages are HTML5: their doctype says so
                if document.tree is not None:
                    replaced[document.path] = _html5(document)
        if not any("nav" in (item.get("properties") or "").split() for item in items.values()):
            nav = posixpath.join(own_dir, "nav.xhtml")
            added.append((nav, _nav(book, located, documents, nav)))
            _item(manifest, "chorus-nav", posixpath.relpath(nav, opf_dir or "."), "application/xhtml+xml",
                  properties="nav")
        _overlay_metadata(metadata, overlay_ids)
        replaced[opf_path] = etree.tostring(package, xml_declaration=True, encoding="utf-8")

        kept: list[tuple[str, bytes | Path]] = [
            (info.filename, replaced.get(info.filename) or source.read(info.filename))
            for info in source.infolist() if info.filename != "mimetype" and not info.is_dir()
        ]
    _zip(path, kept + added)


def _reading_order(package: etree._Element, items: Mapping[str, etree._Element]) -> list[etree._Element]:
    """The manifest items of the spine's XHTML documents that are read (linear; not the nav)."""
    chosen = []
    for itemref in package.find(f"{{{OPF_NS}}}spine").iter(f"{{{OPF_NS}}}itemref"):
        item = items.get(itemref.get("idref"))
        if item is None or itemref.get("linear", "yes") == "no" or item.get("media-type") != "application/xhtml+xml":
            continue
        if "nav" not in (item.get("properties") or "").split():
            chosen.append(item)
    return chosen


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True)


def _link_stylesheet(document: marks.Document, href: str) -> None:
    root = document.tree.getroot()
    namespace = etree.QName(root).namespace
    head = root.find(f"{{{namespace}}}head" if namespace else "head")
    if head is not None:
        etree.SubElement(head, f"{{{namespace}}}link" if namespace else "link", rel="stylesheet", type="text/css",
                         href=quote(href))


def _html5(document: marks.Document) -> bytes:
    """A page as EPUB 3 has it: XHTML with the HTML5 doctype (EPUB 2's XHTML 1.1 one is an error there)."""
    return etree.tostring(document.tree.getroot(), xml_declaration=True, encoding="utf-8", doctype="<!DOCTYPE html>")


_EPUB2_ATTRIBUTES = tuple(f"{{{OPF_NS}}}{name}" for name in ("role", "file-as", "scheme", "event"))


def _upgrade(package: etree._Element, book: Readalong) -> bool:
    """Make the package document an EPUB 3 one where it is not (Media
    Overlays are EPUB 3): version 3.0, the metadata EPUB 3 requires, and
    none of the EPUB 2 attributes it forbids. True when it was EPUB 2."""
    metadata = package.find(f"{{{OPF_NS}}}metadata")
    was_epub2 = not (package.get("version") or "").startswith("3")
    package.set("version", "3.0")
    if metadata.find(f"{{{DC_NS}}}language") is None or not (metadata.findtext(f"{{{DC_NS}}}language") or "").strip():
        for empty in metadata.findall(f"{{{DC_NS}}}language"):
            metadata.remove(empty)
        language = etree.SubElement(metadata, f"{{{DC_NS}}}language")
        language.text = book.language()
    if not any(meta.get("property") == "dcterms:modified" for meta in metadata.iter(f"{{{OPF_NS}}}meta")):
        _meta(metadata, "dcterms:modified", _modified())
    for element in metadata:
        for name in _EPUB2_ATTRIBUTES:
            element.attrib.pop(name, None)
    return was_epub2


def _nav(book: Readalong, located: Mapping[int, tuple[str, str]], documents: Sequence[marks.Document],
         path: str) -> bytes:
    """A navigation document for an EPUB that has none: each chapter links to
    its first marked sentence (a book with none marked, to its first page)."""
    base = posixpath.dirname(path)
    first: dict[int, str] = {}
    for entry in book.entries:
        if entry["index"] in located and entry["chapter"] not in first:
            document, fragment = located[entry["index"]]
            first[entry["chapter"]] = f"{quote(posixpath.relpath(document, base))}#{fragment}"
    chapters = [(c["title"] or f"Part {c['index'] + 1}", first[c["index"]])
                for c in book.chapters if c["index"] in first]
    if not chapters and documents:
        chapters = [(book.plan.title or "Start", quote(posixpath.relpath(documents[0].path, base)))]
    return pages.nav_page(book.plan.title or "Contents", book.language(), chapters)
