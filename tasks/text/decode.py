"""Bytes of an uploaded text file -> str, in whatever encoding people saved it.

Order: a byte-order mark decides (UTF-8, UTF-16, UTF-32); else strict UTF-8;
else charset-normalizer detects the legacy encoding (Windows-1252 as Project
Gutenberg ships it, Latin-1, GB18030/GBK, Big5, Shift-JIS, UTF-16 without a
BOM, ...). Line ends come back as "\\n" whatever they were. Only what no
encoding reads as text is refused, naming the file.
"""

from __future__ import annotations

import codecs
import re

from chorus.tasks.errors import UnsupportedMedia

__all__ = ["decode_text"]

# UTF-32 first: its little-endian BOM begins with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# When the detector finds several encodings equally likely (English prose in
# Windows-1252 reads just as well as Windows-1250, where "à" is "ŕ"), the one
# most text in the world was saved in wins. Windows-1252 is what HTML and
# most software mean by "Latin-1"; the CJK ones are the supersets of their
# families.
_PREFERRED = ("utf_8", "ascii", "cp1252", "gb18030", "big5", "shift_jis", "euc_kr", "cp1251")
# A detected encoding whose superset decodes the same bytes the same way and more.
_SUPERSET = {"gb2312": "gb18030", "gbk": "gb18030", "ascii": "utf_8"}

# Control characters that never appear in text files, even careless ones
# (tab, line ends, form feed and escape are left to the cleaning step). A
# decoded "text" with more of them than this share is an image or an archive.
_BINARY_CONTROLS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_MAX_CONTROL_SHARE = 0.01
_LINE_ENDS = re.compile(r"\r\n?")


def decode_text(data: bytes, filename: str) -> str:
    """The text of an uploaded file, line ends as "\\n"; ``UnsupportedMedia`` for binary."""
    text = _decode(data, filename)
    if _BINARY_CONTROLS.search(text):  # most text has none: skip the count
        controls = len(_BINARY_CONTROLS.findall(text))
        if controls > _MAX_CONTROL_SHARE * len(text):
            raise _binary(filename)
    return _LINE_ENDS.sub("\n", text)


def _decode(data: bytes, filename: str) -> str:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                break  # a BOM followed by something else: let the detector judge
    if b"\x00" not in data:  # NUL bytes: UTF-16/32 without a BOM, or binary
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return _detected(data, filename)


def _detected(data: bytes, filename: str) -> str:
    from charset_normalizer import from_bytes  # only for files that are not UTF-8

    matches = list(from_bytes(data))
    if not matches:
        raise _binary(filename)
    best = matches[0]
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    codec = _preferred(tied) or best.encoding
    codec = _SUPERSET.get(codec, codec)
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        # Detection reads a sample of a large file; a rare byte outside the
        # codec further on becomes U+FFFD rather than refusing the book.
        return data.decode(codec, errors="replace")


def _preferred(tied: list) -> str | None:
    """The most common encoding that decodes the text as well as the best guess."""
    candidates = {name for match in tied for name in match.could_be_from_charset}
    return next((name for name in _PREFERRED if name in candidates), None)


def _binary(filename: str) -> UnsupportedMedia:
    return UnsupportedMedia(
        f"{filename!r} is binary, not text: save it as plain text (any common encoding), Markdown or EPUB"
    )
