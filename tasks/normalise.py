"""Spoken form of a segment: what the TTS engine is given instead of the text.

``spoken_form(text, language)`` rewrites numbers, ordinals, dates, times,
currency, percentages, common abbreviations and typographic punctuation into
words an engine reads well. The original text stays for subtitles; the spoken
form goes to the engine and is part of the audio cache key, so it is a pure,
deterministic function of its arguments.

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
numbers; "Dr." is always "Doctor" (never "Drive"); a year without one of the
context words above is read as a cardinal; scores like "3:2" are left to the
engine; Chinese readings are Mandarin (Cantonese voices get the same text).
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Callable

__all__ = ["spoken_form"]

log = logging.getLogger(__name__)

_CHINESE_LANGUAGES = frozenset({"zh", "yue", "cmn"})


def spoken_form(text: str, language: str) -> str:
    """What the TTS engine should say for ``text`` in ``language`` ("en-US", "zh", ...)."""
    code = (language or "").split("-")[0].split("_")[0].strip().lower()
    kind = "zh" if code in _CHINESE_LANGUAGES else "en"
    text = unicodedata.normalize("NFC", text)
    try:
        out = _normaliser(kind)(text)
    except Exception:  # never fail a job because of a reading rule
        log.exception("spoken_form failed for %r; using the text as it is", text)
        out = text.strip()
    # Never lose the only speakable content.
    if not any(ch.isalnum() for ch in out) and any(ch.isalnum() for ch in text):
        out = text.strip()
    return out


@functools.lru_cache(maxsize=None)
def _normaliser(kind: str) -> Callable[[str], str]:
    """Build the rules of one language once per process (imports are lazy)."""
    return _Chinese() if kind == "zh" else _English()


# --------------------------------------------------------------------------- #
# Shared helpers
# --------------------------------------------------------------------------- #

_URL = re.compile(
    r"(?:(?<![A-Za-z0-9])(?:https?|ftp)://|(?<![A-Za-z0-9.])www\.)[^\s<>\"“”\u2e80-\uffff]+"  # web address
    r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"  # e-mail
)
_URL_TRAIL = ".,;:!?)]}'\"’”。，；：！？）】"
_PUA = 0xF0000  # supplementary private use area: one placeholder character per URL


def _protect(text: str) -> tuple[str, list[str]]:
    """Replace URLs and e-mails by placeholder characters no rule touches."""
    saved: list[str] = []

    def keep(m: re.Match[str]) -> str:
        url = m.group(0)
        tail = ""
        while url and url[-1] in _URL_TRAIL:
            url, tail = url[:-1], url[-1] + tail
        if not url:
            return m.group(0)
        saved.append(url)
        return chr(_PUA + len(saved) - 1) + tail

    return _URL.sub(keep, text), saved


def _restore(text: str, saved: list[str]) -> str:
    for i, url in enumerate(saved):
        text = text.replace(chr(_PUA + i), url)
    return text


# A number as written: "1,234" or "1234", optionally with decimals.
_NUM = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?"

_MONTHS = (
    "January February March April May June July August September October November December".split()
)
_MONTH_ABBR = {m[:3]: m for m in _MONTHS} | {"Sept": "September"}
_MONTH_RE = (
    r"(?:" + "|".join(_MONTHS) + r"|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?)"
)


def _month_name(word: str) -> str:
    word = word.rstrip(".")
    return word if word in _MONTHS else _MONTH_ABBR[word]


# --------------------------------------------------------------------------- #
# English
# --------------------------------------------------------------------------- #

_DIGITS_EN = "zero one two three four five six seven eight nine".split()

_FULLWIDTH_EN = {i: i - 0xFEE0 for i in range(0xFF01, 0xFF5F)} | {
    0x3000: " ",
    ord("，"): ", ",
    ord("、"): ", ",
    ord("。"): ". ",
    ord("！"): "! ",
    ord("？"): "? ",
    ord("："): ": ",
    ord("；"): "; ",
    ord("（"): " (",
    ord("）"): ") ",
    ord("【"): " [",
    ord("】"): "] ",
    ord("〔"): " [",
    ord("〕"): "] ",
    ord("～"): "~",
    ord("￥"): "¥",
    ord("￡"): "£",
}

_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "", ""),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}
_SCALES = {"k": "thousand", "K": "thousand", "m": "million", "M": "million", "bn": "billion", "B": "billion"}

_YEAR_CONTEXT = (
    r"in|of|since|from|by|until|till|to|before|after|around|circa|during|between|year|"
    r"summer|winter|spring|autumn|fall|early|late|mid|AD|A\.D\."
)

# (pattern, replacement): titles expand only before a capitalised name.
_TITLES = {
    "Mr": "Mister",
    "Mrs": "Missus",
    "Ms": "Miz",
    "Dr": "Doctor",
    "Prof": "Professor",
    "Capt": "Captain",
    "Col": "Colonel",
    "Gen": "General",
    "Lt": "Lieutenant",
    "Sgt": "Sergeant",
    "Rev": "Reverend",
    "Gov": "Governor",
    "Hon": "Honourable",
    "Mt": "Mount",
}


class _English:
    """English reading rules; see the module docstring."""

    def __init__(self) -> None:
        from num2words import num2words  # lazy: only processes that speak English

        self._n2w = num2words
        c = re.compile
        self.apostrophe = c(r"(?<=[A-Za-z0-9])[’'‘`´](?=[A-Za-z])")
        self.quotes = c(r"[\"“”„‟«»‹›‘’‚‛`´「」『』《》〈〉]|'")
        self.plural_s = c(r"(?<=[A-Za-z])\((s|es)\)")
        self.open_br = c(r"[(\[{]")
        self.close_br = c(r"[)\]}]")
        self.ellipsis = c(r"\s*(?:\.{3,}|(?:\.\s){2,}\.|…+)\s*")
        self.amp = c(r"\s*&\s*")
        self.titles = c(r"\b(" + "|".join(_TITLES) + r")(?:\.\s*|\s+)(?=[A-Z])")
        self.titles_dot = c(r"\b(Mr|Mrs|Ms|Dr|Prof)\.")
        self.drive = c(r"\b([A-Z][a-z]+) Dr\.(?!\s*[A-Z][a-z])")
        self.saint = c(r"\bSt\.\s*(?=[A-Z])")
        self.street = c(r"\bSt\.")
        self.jr = c(r"\b(Jr|Sr)\.")
        self.latin = c(r"(?i)\b(?:(etc)\.|(e)\.\s?g\.|(i)\.\s?e\.|(vs)\.?(?=\s)|(approx)\.)")
        self.number_sign = c(r"(?:\b[Nn]o\.|\b[Nn]os\.|#)\s*(?=[0-9])")
        self.fig = c(r"\b(Fig|fig|pp|p)\.\s*(?=[0-9])")
        self.iso_date = c(r"\b([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})\b")
        self.day_month = c(
            r"\b([0-9]{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(" + _MONTH_RE + r")(?:,?\s+([0-9]{4})\b)?"
        )
        self.month_day = c(
            r"\b(" + _MONTH_RE + r")\s+([0-9]{1,2})(?:st|nd|rd|th)?\b(?![:.,]?[0-9])(?:(,?)\s+([0-9]{4})\b)?"
        )
        ampm = r"(?:\s*([AaPp])\.?\s?[Mm]\b\.?)"
        self.time = c(r"\b([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?(?![0-9])" + ampm + "?")
        self.hour_ampm = c(r"\b([0-9]{1,2})" + ampm)
        self.money = c(
            r"(?<![\w.])([-−]\s?)?([$£€¥₹])\s?(" + _NUM + r")"
            r"(?:(\s?(?:thousand|million|billion|trillion)\b)|(k|K|m|M|bn|B)\b)?"
        )
        self.percent = c(r"(?<![\w.])([-−])?(" + _NUM + r")\s?%")
        self.permille = c(r"(?<![\w.])(" + _NUM + r")\s?‰")
        self.dash_range = c(r"(?<![\w.,])([0-9]+)\s?[–—]\s?([0-9]+)\b(?![.,][0-9])")
        self.hyphen_range = c(r"(?<![\w.,-])([0-9]{1,4})-([0-9]{1,4})\b(?![.,-]?[0-9])")
        self.digit_groups = c(r"(?<![\w.,-])[0-9]+(?:-[0-9]+)+(?![\w-]|[.,][0-9])")
        self.decade = c(r"\b([0-9]{4}|[0-9]0)s\b")
        self.ordinal = c(r"\b([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(st|nd|rd|th)\b")
        self.year_before = c(r"(?i)\b(" + _YEAR_CONTEXT + r"|" + _MONTH_RE + r")(\s+)([0-9]{4})\b(?![.,]?[0-9])")
        self.year_after = c(r"\b([0-9]{4})(\s?)(AD|BC|BCE|CE|A\.D\.|B\.C\.)(?![A-Za-z])")
        self.fraction = c(r"(?<![0-9/.,])([0-9]{1,2})/([0-9]{1,2})(?![0-9/])")
        self.negative = c(r"(?<![\w.,)\]%])[-−](?=[0-9])")
        self.dotted = c(r"\b[0-9]+(?:\.[0-9]+){2,}\b")
        self.number = c(_NUM)
        self.degrees = c(r"\s?°\s?([CF])\b|\s?°")
        self.tilde_num = c(r"~\s*(?=[0-9])")
        self.symbols = c(r"\s*(%|@)\s*")
        self.plus_eq = c(r"\s([+=])\s")
        self.markup = c(r"[*_|^~]+")
        self.slash = c(r"(?<=[A-Za-z0-9])/(?=[A-Za-z0-9])")
        self.spaces = c(r"\s+")
        self.space_punct = c(r" +([,.;:!?])")
        self.comma_runs = c(r"([,;:])(?:\s*[,;:])+")
        self.comma_stop = c(r"[,;:]\s*([.!?])")
        self.stop_comma = c(r"([.!?])\s*[,;:]")
        self.dots = c(r"\.{2,}")
        self.comma_glued = c(r"([,;:!?])(?=[A-Za-z])")
        self.edges = c(r"^[\s,;:.]+|[\s,;:]+$")

    # -- words for numbers ------------------------------------------------ #

    def cardinal(self, digits: str) -> str:
        """An integer written with digits (and maybe commas)."""
        digits = digits.replace(",", "")
        if len(digits) > 15 or (len(digits) > 1 and digits[0] == "0"):
            return " ".join(_DIGITS_EN[int(d)] for d in digits)
        return self._n2w(int(digits))

    def number_words(self, written: str) -> str:
        """ "1,234.5" -> "one thousand, two hundred and thirty-four point five"."""
        whole, _, frac = written.partition(".")
        words = self.cardinal(whole)
        if frac:
            words += " point " + " ".join(_DIGITS_EN[int(d)] for d in frac)
        return words

    def ordinal_words(self, digits: str) -> str:
        n = int(digits.replace(",", ""))
        return self._n2w(n, to="ordinal") if n < 10**15 else self.cardinal(digits) + "th"

    def year_words(self, digits: str) -> str:
        n = int(digits)
        if len(digits) == 4 and 1000 <= n <= 2099:
            return self._n2w(n, to="year").replace("oh-", "oh ")
        return self.cardinal(digits)

    @staticmethod
    def is_year(digits: str) -> bool:
        return len(digits) == 4 and 1100 <= int(digits) <= 2099

    # -- rules ------------------------------------------------------------ #

    def __call__(self, text: str) -> str:
        text, saved = _protect(text)
        text = text.translate(_FULLWIDTH_EN)
        text = self.punctuation(text)
        text = self.abbreviations(text)
        text = self.numbers(text)
        text = self.tidy(text)
        return _restore(text, saved)

    def punctuation(self, text: str) -> str:
        text = self.apostrophe.sub("'", text)
        text = self.quotes.sub(lambda m: m.group(0) if self._intra_word(m) else "", text)
        text = self.plural_s.sub(r"\1", text)
        text = self.open_br.sub(", ", text)
        text = self.close_br.sub(", ", text)

        def ellipsis(m: re.Match[str]) -> str:
            rest = text[m.end() :]
            if not rest.strip():
                return "."
            if rest.lstrip()[0] in ".?!,;:":
                return ""
            return ", "

        text = self.ellipsis.sub(ellipsis, text)
        return self.amp.sub(" and ", text)

    def _intra_word(self, m: re.Match[str]) -> bool:
        """An apostrophe between letters ("don't") is not a quote."""
        s, i = m.string, m.start()
        return m.group(0) == "'" and 0 < i < len(s) - 1 and s[i - 1].isalnum() and s[i + 1].isalpha()

    def abbreviations(self, text: str) -> str:
        def end_dot(m: re.Match[str], words: str) -> str:
            # The abbreviation's period also ended the sentence.
            return words + "." if m.group(0).endswith(".") and not m.string[m.end() :].strip() else words

        text = self.drive.sub(lambda m: m.group(1) + end_dot(m, " Drive"), text)
        text = self.titles.sub(lambda m: _TITLES[m.group(1)] + " ", text)
        text = self.titles_dot.sub(lambda m: end_dot(m, _TITLES[m.group(1)]), text)
        text = self.saint.sub("Saint ", text)
        text = self.street.sub(lambda m: end_dot(m, "Street"), text)
        text = self.jr.sub(lambda m: end_dot(m, "Junior" if m.group(1) == "Jr" else "Senior"), text)

        def latin(m: re.Match[str]) -> str:
            if m.group(1):
                rest = m.string[m.end() :]
                stop = not rest.strip() or re.match(r"\s+[A-Z]", rest)
                return "et cetera." if stop else "et cetera"
            if m.group(2):
                return end_dot(m, "for example")
            if m.group(3):
                return end_dot(m, "that is")
            if m.group(4):
                return end_dot(m, "versus")
            return end_dot(m, "approximately")

        text = self.latin.sub(latin, text)
        text = self.number_sign.sub("number ", text)
        words = {"Fig": "figure ", "fig": "figure ", "p": "page ", "pp": "pages "}
        return self.fig.sub(lambda m: words[m.group(1)], text)

    def numbers(self, text: str) -> str:
        text = self.iso_date.sub(self._iso_date, text)
        text = self.day_month.sub(self._day_month, text)
        text = self.month_day.sub(self._month_day, text)
        text = self.time.sub(self._time, text)
        text = self.hour_ampm.sub(self._hour_ampm, text)
        text = self.money.sub(self._money, text)
        text = self.percent.sub(
            lambda m: ("minus " if m.group(1) else "") + self.number_words(m.group(2)) + " percent", text
        )
        text = self.permille.sub(lambda m: self.number_words(m.group(1)) + " per mille", text)
        text = self.dash_range.sub(self._range, text)
        text = self.hyphen_range.sub(self._hyphen_range, text)
        text = self.digit_groups.sub(self._digit_groups, text)
        text = self.decade.sub(self._decade, text)
        text = self.ordinal.sub(lambda m: self.ordinal_words(m.group(1)), text)
        text = self.year_before.sub(
            lambda m: m.group(1) + m.group(2) + (self.year_words(m.group(3)) if self.is_year(m.group(3)) else m.group(3)),
            text,
        )
        text = self.year_after.sub(
            lambda m: (self.year_words(m.group(1)) if self.is_year(m.group(1)) else m.group(1)) + " " + m.group(3), text
        )
        text = self.fraction.sub(self._fraction, text)
        text = self.negative.sub("minus ", text)
        text = self.dotted.sub(lambda m: " point ".join(self.cardinal(p) for p in m.group(0).split(".")), text)
        text = self.degrees.sub(
            lambda m: " degrees" + {"C": " Celsius", "F": " Fahrenheit", None: ""}[m.group(1)], text
        )
        text = self.tilde_num.sub("about ", text)
        return self.number.sub(self._number, text)

    def _number(self, m: re.Match[str]) -> str:
        words = self.number_words(m.group(0))
        s = m.string
        before = s[m.start() - 1] if m.start() else " "
        after = s[m.end()] if m.end() < len(s) else " "
        return (" " if before.isalpha() else "") + words + (" " if after.isalpha() else "")

    def _iso_date(self, m: re.Match[str]) -> str:
        year, month, day = m.group(1), int(m.group(2)), int(m.group(3))
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return m.group(0)
        return f"the {self.ordinal_words(str(day))} of {_MONTHS[month - 1]}, {self.year_words(year)}"

    def _day_month(self, m: re.Match[str]) -> str:
        day = int(m.group(1))
        if not 1 <= day <= 31:
            return m.group(0)
        out = f"the {self.ordinal_words(str(day))} of {_month_name(m.group(2))}"
        if m.group(3):
            out += " " + self.year_words(m.group(3))
        elif m.group(2).endswith(".") and not m.string[m.end() :].strip():
            out += "."
        return out

    def _month_day(self, m: re.Match[str]) -> str:
        day = int(m.group(2))
        if not 1 <= day <= 31:
            return m.group(0)
        out = f"{_month_name(m.group(1))} {self.ordinal_words(str(day))}"
        if m.group(4):
            out += "," + " " + self.year_words(m.group(4))
        return out

    @staticmethod
    def _ampm(letter: str | None) -> str:
        return "" if not letter else (" a.m." if letter in "Aa" else " p.m.")

    def _time(self, m: re.Match[str]) -> str:
        hour, minute = int(m.group(1)), int(m.group(2))
        second = int(m.group(3)) if m.group(3) else 0
        if hour > 24 or minute > 59 or second > 59:
            return m.group(0)
        ampm = self._ampm(m.group(4))
        if minute == 0 and not second:
            if ampm:
                words = self.cardinal(str(hour))
            elif hour == 0:
                words = "midnight"
            elif hour > 12:
                words = self.cardinal(str(hour)) + " hundred"
            else:
                words = self.cardinal(str(hour)) + " o'clock"
        else:
            mins = ("oh " if minute < 10 else "") + self.cardinal(str(minute))
            words = f"{self.cardinal(str(hour))} {mins}"
        if second:
            words += f" and {self.cardinal(str(second))} second" + ("s" if second != 1 else "")
        return words + ampm

    def _hour_ampm(self, m: re.Match[str]) -> str:
        hour = int(m.group(1))
        if not 1 <= hour <= 12:
            return m.group(0)
        return self.cardinal(str(hour)) + self._ampm(m.group(2))

    def _money(self, m: re.Match[str]) -> str:
        sign = "minus " if m.group(1) else ""
        one, many, sub_one, sub_many = _CURRENCIES[m.group(2)]
        amount = m.group(3)
        scale = (m.group(4) or "").strip() or _SCALES.get(m.group(5) or "", "")
        if scale:
            return f"{sign}{self.number_words(amount)} {scale} {many}"
        whole, _, frac = amount.partition(".")
        n = int(whole.replace(",", ""))
        if frac and (len(frac) > 2 or not sub_many):
            return f"{sign}{self.number_words(amount)} {many}"
        cents = int(frac.ljust(2, "0")) if frac else 0
        parts = []
        if n or not cents:
            parts.append(f"{self.cardinal(whole)} {one if n == 1 else many}")
        if cents:
            parts.append(f"{self.cardinal(str(cents))} {sub_one if cents == 1 else sub_many}")
        return sign + " and ".join(parts)

    def _range(self, m: re.Match[str]) -> str:
        a, b = m.group(1), m.group(2)
        if self.is_year(a) and (self.is_year(b) or len(b) == 2):
            return f"{self.year_words(a)} to {self.year_words(b) if len(b) == 4 else self.cardinal(b)}"
        return f"{self.cardinal(a)} to {self.cardinal(b)}"

    def _hyphen_range(self, m: re.Match[str]) -> str:
        a, b = m.group(1), m.group(2)
        if (self.is_year(a) and self.is_year(b)) or (len(a) <= 3 and len(b) <= 3):
            return self._range(m)
        return m.group(0)

    def _digit_groups(self, m: re.Match[str]) -> str:
        """ "555-1234" (a phone number, a code): each group digit by digit."""
        groups = m.group(0).split("-")
        if max(len(g) for g in groups) < 3:
            return m.group(0)
        return ", ".join(" ".join(_DIGITS_EN[int(d)] for d in g) for g in groups)

    def _decade(self, m: re.Match[str]) -> str:
        digits = m.group(1)
        if len(digits) == 4 and not (self.is_year(digits) and digits.endswith("0")):
            return m.group(0)
        words = self.year_words(digits) if len(digits) == 4 else self.cardinal(digits)
        return words[:-1] + "ies" if words.endswith("y") else words + "s"

    def _fraction(self, m: re.Match[str]) -> str:
        num, den = int(m.group(1)), int(m.group(2))
        if not (2 <= den <= 10 and 0 < num < den):
            return m.group(0)
        if den == 2:
            name = "half" if num == 1 else "halves"
        elif den == 4:
            name = "quarter" if num == 1 else "quarters"
        else:
            name = self.ordinal_words(str(den)) + ("" if num == 1 else "s")
        return f"{self.cardinal(str(num))} {name}"

    def tidy(self, text: str) -> str:
        text = self.symbols.sub(lambda m: {"%": " percent ", "@": " at "}[m.group(1)], text)
        text = self.plus_eq.sub(lambda m: " plus " if m.group(1) == "+" else " equals ", text)
        text = self.markup.sub(" ", text)
        text = self.slash.sub(" ", text)
        text = self.spaces.sub(" ", text)
        text = self.space_punct.sub(r"\1", text)
        text = self.comma_runs.sub(r"\1", text)
        text = self.comma_stop.sub(r"\1", text)
        text = self.stop_comma.sub(r"\1", text)
        text = self.dots.sub(".", text)
        text = self.comma_glued.sub(r"\1 ", text)
        text = self.edges.sub("", text)
        return self.spaces.sub(" ", text).strip()


# --------------------------------------------------------------------------- #
# Chinese
# --------------------------------------------------------------------------- #

_FULLWIDTH_ALNUM = {i: i - 0xFEE0 for i in range(0xFF10, 0xFF1A)} | {
    i: i - 0xFEE0 for i in (*range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B))
} | {ord("％"): "%", ord("＄"): "$", ord("￡"): "£"}

_ZH_CURRENCY = {"￥": "元", "¥": "元", "$": "美元", "€": "欧元", "£": "英镑", "₹": "卢比"}
# Measure words after which a lone 2 is read 两.
_LIANG_AFTER = set("人个只本位次天年件张条种倍份辆台名家层杯碗斤米周间部双对句岁块元分秒公克口头匹棵把根瓶箱")
_ZH_PUNCT = {",": "，", ".": "。", "?": "？", "!": "！", ";": "；", ":": "："}


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0xF900 <= cp <= 0xFAFF
        or 0x3000 <= cp <= 0x303F
        or 0xFF00 <= cp <= 0xFFEF
        or 0x20000 <= cp <= 0x3FFFF
        or cp in (0x2026, 0x201C, 0x201D, 0x2018, 0x2019)  # … “ ” ‘ ’
    )


class _Chinese:
    """Chinese reading rules; see the module docstring."""

    def __init__(self) -> None:
        import cn2an  # lazy: only processes that speak Chinese

        self._an2cn = cn2an.an2cn
        c = re.compile
        n = _NUM
        self.fw_colon = c(r"(?<=[0-9])[：．](?=[0-9])")
        self.iso_date = c(r"(?<![0-9])([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})(?![0-9])(\s*[日号])?")
        self.year = c(r"(?<![0-9.])([0-9]{4})(?=\s*年)")
        self.time = c(r"(?<![0-9])([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?(?![0-9])")
        self.money = c(r"([￥¥$€£₹])\s?(" + n + r")(\s?[万亿千百])?")
        self.percent = c(r"(?<![A-Za-z0-9.])([-−])?(" + n + r")\s?%")
        self.permille = c(r"(?<![A-Za-z0-9.])(" + n + r")\s?‰")
        self.degrees = c(r"(" + n + r")\s?(℃|°\s?C|°\s?F|°)")
        self.range = c(r"(?<![A-Za-z0-9.])(" + n + r")\s?([~～〜–—]|-(?=[0-9]))\s?(" + n + r")(?![0-9])")
        self.fraction = c(r"(?<![0-9/.])([0-9]+)/([0-9]+)(?![0-9/])")
        self.negative = c(r"(?<![A-Za-z0-9.)\]%])[-−](?=[0-9])")
        self.number = c(n)
        self.ellipsis = c(r"\s*(?:\.{3,}|…+)\s*")
        self.half_punct = c(r"(?<=\S)\s*([,.?!;:])(?![0-9])\s*")
        self.parens = c(r"\(([^()]*)\)")
        self.quotes = c(r"\"([^\"]*)\"")
        self.spaces = c(r"\s+")

    def integer(self, digits: str, allow_liang: bool = True) -> str:
        digits = digits.replace(",", "")
        if (len(digits) > 1 and digits[0] == "0") or len(digits) > 16 or (len(digits) == 11 and digits[0] == "1"):
            return self._an2cn(digits, "direct")
        words = self._an2cn(str(int(digits)), "low")
        if allow_liang and words[:2] in ("二千", "二万", "二亿"):
            words = "两" + words[1:]
        return words

    def number_words(self, written: str) -> str:
        whole, _, frac = written.partition(".")
        words = self.integer(whole)
        if frac:
            words += "点" + self._an2cn(frac, "direct")
        return words

    def __call__(self, text: str) -> str:
        text, saved = _protect(text)
        text = text.translate(_FULLWIDTH_ALNUM)
        text = self.fw_colon.sub(lambda m: ":" if m.group(0) == "：" else ".", text)
        text = self.iso_date.sub(self._iso_date, text)
        text = self.year.sub(lambda m: self._an2cn(m.group(1), "direct"), text)
        text = self.time.sub(self._time, text)
        text = self.negative.sub("负", text)
        text = self.money.sub(self._money, text)
        text = self.percent.sub(
            lambda m: ("负" if m.group(1) else "") + "百分之" + self.number_words(m.group(2)), text
        )
        text = self.permille.sub(lambda m: "千分之" + self.number_words(m.group(1)), text)
        text = self.degrees.sub(self._degrees, text)
        text = self.range.sub(self._range, text)
        text = self.fraction.sub(
            lambda m: self.integer(m.group(2), False) + "分之" + self.integer(m.group(1), False)
            if int(m.group(2))
            else m.group(0),
            text,
        )
        text = self.number.sub(self._number, text)
        text = self.punctuation(text)
        return _restore(text, saved).strip()

    def _number(self, m: re.Match[str]) -> str:
        s, written = m.string, m.group(0)
        if written == "2":
            before = s[m.start() - 1] if m.start() else ""
            after = s[m.end()] if m.end() < len(s) else ""
            if after in _LIANG_AFTER and before not in "第.-":
                return "两"
        return self.number_words(written)

    def _iso_date(self, m: re.Match[str]) -> str:
        year, month, day = m.group(1), int(m.group(2)), int(m.group(3))
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return m.group(0)
        mark = (m.group(4) or "日").strip()
        return f"{self._an2cn(year, 'direct')}年{self.integer(str(month))}月{self.integer(str(day))}{mark}"

    def _time(self, m: re.Match[str]) -> str:
        hour, minute = int(m.group(1)), int(m.group(2))
        second = int(m.group(3)) if m.group(3) else 0
        if hour > 24 or minute > 59 or second > 59:
            return m.group(0)
        out = ("两" if hour == 2 else self.integer(str(hour), False)) + "点"
        if minute:
            out += ("零" if minute < 10 else "") + self.integer(str(minute), False) + "分"
        elif second:
            out += "零分"
        if second:
            out += self.integer(str(second), False) + "秒"
        return out

    def _money(self, m: re.Match[str]) -> str:
        unit = _ZH_CURRENCY[m.group(1)]
        scale = (m.group(3) or "").strip()
        rest = m.string[m.end() :].lstrip()
        if rest.startswith(unit) or (unit == "元" and rest[:1] in ("元", "块")):
            unit = ""  # "￥20元": the unit is already written
        return self.number_words(m.group(2)) + scale + unit

    def _degrees(self, m: re.Match[str]) -> str:
        sign = m.group(2).replace(" ", "")
        unit = {"℃": "摄氏度", "°C": "摄氏度", "°F": "华氏度"}.get(sign, "度")
        return self.number_words(m.group(1)) + unit

    def _range(self, m: re.Match[str]) -> str:
        a, dash, b = m.group(1), m.group(2), m.group(3)
        if dash == "-" and (len(a) > 4 or len(b) > 4 or a.startswith("0")):
            return m.group(0)  # a phone number or code, not a range
        return self.number_words(a) + "到" + self.number_words(b)

    def punctuation(self, text: str) -> str:
        def ellipsis(m: re.Match[str]) -> str:
            return "……"

        text = self.ellipsis.sub(ellipsis, text)

        def half(m: re.Match[str]) -> str:
            s = m.string
            before = s[: m.start()].rstrip()[-1:]
            if before and _is_cjk(before):
                return _ZH_PUNCT[m.group(1)]
            return m.group(0)

        text = self.parens.sub(
            lambda m: "（" + m.group(1) + "）" if any(_is_cjk(ch) for ch in m.group(1)) else m.group(0), text
        )
        text = self.quotes.sub(
            lambda m: "“" + m.group(1) + "”" if any(_is_cjk(ch) for ch in m.group(1)) else m.group(0), text
        )
        text = self.half_punct.sub(half, text)
        return self.spaces.sub(" ", text)
