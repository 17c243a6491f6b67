"""Spoken form of a segment: what the TTS engine is given instead of the text.

``spoken_form(text, language)`` rewrites numbers, ordinals, dates, times,
currency, percentages, common abbreviations and typographic punctuation into
words an engine reads well. The original text stays for subtitles; the spoken
form goes to the engine and is part of the audio cache key, so it is a pure,
deterministic function of its arguments.

Pronunciation lexicon: a job's lexicon (``tasks/text/spoken/lexicon.py``:
matching rules, bounds) respells words in the text as written, before any rule
below.

Languages: the part of ``language`` before "-" picks the rules: "zh", "yue"
and "cmn" get the Chinese rules (CosyVoice2), anything else the English rules
(Piper). Libraries: ``num2words`` (English cardinals, ordinals, years) and
``cn2an`` (Chinese numerals), both pure Python, imported lazily; everything
else is regular expressions. Nothing is downloaded, ever.

English rules (in the order they run):

- URLs and e-mail addresses are left exactly as they are.
- Full-width punctuation and letters become ASCII ("，" -> ", ").
- Quotes (straight and curly, single and double, «», 「」) are removed; an
  apostrophe inside a word ("don't", "o'clock") stays.
- Brackets become commas around their content: "He (the tall one) left." ->
  "He, the tall one, left."; "book(s)" -> "books".
- An ellipsis ("...", ". . .", "…") becomes ", " inside a sentence and "." at
  its end, so the engine never says "dot dot dot".
- "&" -> "and"; "Mr." "Mrs." "Ms." "Dr." "Prof." "Jr." "Sr." "Mt." and, before
  a capitalised name, "Capt." "Col." "Gen." "Lt." "Sgt." "Rev." "Gov."
  "Hon." are expanded; "St." is "Saint" before a capitalised word and
  "Street" otherwise; "etc." "e.g." "i.e." "vs." "approx." are expanded;
  "No. 5" / "#5" -> "number five", "Fig. 3" -> "figure three", "p. 5" /
  "pp. 5-9" -> "page(s) ...". An abbreviation whose period also ended the
  sentence leaves a "." behind.
- Dates: "2024-05-06" -> "the sixth of May, twenty twenty-four";
  "12 March 1813" -> "the twelfth of March eighteen thirteen";
  "March 12, 1813" -> "March twelfth, eighteen thirteen".
- Times: "7:30" -> "seven thirty", "7:30 pm" -> "seven thirty p.m.",
  "19:05" -> "nineteen oh five", "10:00" -> "ten o'clock", "7 pm" ->
  "seven p.m.".
- Currency ($ £ € ¥ ₹ before the amount): "$3.50" -> "three dollars and
  fifty cents", "€1.5 million" -> "one point five million euros".
- Percentages: "45%" -> "forty-five percent".
- Ranges with an en or em dash (or a hyphen between two numbers of at most
  three digits, or between two years): "1990–1995" -> "nineteen ninety to
  nineteen ninety-five".
- Years. A four-digit number from 1100 to 2099 is read as a year ("eighteen
  thirteen", "two thousand and five") when it is part of a date or range of
  years, follows a month name or one of the words in, of, since, from, by,
  until, till, to, before, after, around, circa, during, between, year,
  summer, winter, spring, autumn, fall, early, late, mid, or AD, or is
  followed by AD/BC/BCE/CE, or is a decade ("1990s" -> "nineteen nineties").
  Anywhere else it is a cardinal ("one thousand, eight hundred and thirteen").
- Ordinals "1st" "2nd" "23rd" -> "first" "second" "twenty-third"; simple
  fractions with a denominator up to ten ("3/4" -> "three quarters");
  negative numbers "-5" -> "minus five"; "3.14" -> "three point one four";
  "1,234" -> "one thousand, two hundred and thirty-four"; a number with a
  leading zero ("007") or more than fifteen digits is read digit by digit;
  "1.2.3" -> "one point two point three"; digits glued to letters are
  separated ("MP3" -> "MP three").
- "%" -> "percent", "@" -> "at", "°C" -> "degrees Celsius", " + " -> "plus",
  " = " -> "equals", "~5" -> "about five"; markup characters * _ | ^ ~ go.

Chinese rules: Arabic numerals are read in Chinese ("2024年5月6日" ->
"二零二四年五月六日", "45%" -> "百分之四十五", "7:30" -> "七点三十分",
"￥20" -> "二十元", "-5" -> "负五", "3-5人" -> "三到五人", "1/2" -> "二分之一",
"2个" -> "两个"); a four-digit number before 年 is read digit by digit, as are
numbers with a leading zero and 11-digit mobile numbers. Full-width
punctuation is kept; half-width , . ? ! ; : ( ) after a Chinese character
become full-width, "..." and "…" become "……". Quotes (“” 「」 『』) and
brackets (（） 【】) are kept: CosyVoice2 does not speak them and uses them
for phrasing. English words inside Chinese text are kept.

Known limits: numeric dates like "5/6/2024" are ambiguous and read as
numbers; "Dr." is always "Doctor" (never "Drive"; a pronunciation lexicon
entry, applied before these rules, can say otherwise); a year without one of the
context words above is read as a cardinal; scores like "3:2" are left to the
engine; Chinese readings are Mandarin (Cantonese voices get the same text).
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from collections.abc import Callable

from chorus.tasks.text.clean import has_speakable
from chorus.tasks.text.spoken.lexicon import Lexicon

__all__ = ["Lexicon", "forget", "spoken_form"]

log = logging.getLogger(__name__)

_CHINESE_LANGUAGES = frozenset({"zh", "yue", "cmn"})


def spoken_form(text: str, language: str, lexicon: Lexicon | None = None) -> str:
    """What the TTS engine should say for ``text`` in ``language`` ("en-US", "zh", ...).

    A ``lexicon`` (``chorus.tasks.text.spoken.lexicon``) respells its words first, in
    the text as written, so that the reading rules below never get to expand
    an abbreviation or a number the lexicon names; its respellings are then
    read by those rules like any text."""
    code = (language or "").split("-")[0].split("_")[0].strip().lower()
    if lexicon:
        text = lexicon.apply(text)
    return _spoken("zh" if code in _CHINESE_LANGUAGES else "en", text)


# Books repeat short segments ("“Yes.”", "Chapter 1", a refrain): the rules
# are pure, so a repeated segment costs a look-up.
@functools.lru_cache(maxsize=8192)
def _spoken(kind: str, text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    try:
        out = _normaliser(kind)(text)
    except Exception:  # never fail a job because of a reading rule
        log.exception("spoken_form failed for %r; using the text as it is", text)
        out = text.strip()
    # Never lose the only speakable content.
    if not has_speakable(out) and has_speakable(text):
        out = text.strip()
    return out


def forget() -> None:
    """Forget every spoken form and number word remembered so far (a
    benchmark's runs each start cold)."""
    _spoken.cache_clear()
    for rules in _BUILT.values():
        forget_numbers = getattr(rules, "forget", None)
        if forget_numbers:
            forget_numbers()


_BUILT: dict[str, Callable[[str], str]] = {}


def _normaliser(kind: str) -> Callable[[str], str]:
    """Build the rules of one language once per process (imports are lazy)."""
    if kind not in _BUILT:
        if kind == "zh":
            from chorus.tasks.text.spoken.chinese import Chinese

            _BUILT[kind] = Chinese()
        else:
            from chorus.tasks.text.spoken.english import English

            _BUILT[kind] = English()
    return _BUILT[kind]
