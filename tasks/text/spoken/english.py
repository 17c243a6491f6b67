"""English reading rules (Piper voices); see ``chorus.tasks.text.spoken`` for the list.

Speed: a plan runs these rules on every segment of a book, so a rule whose
pattern needs a character the segment lacks (a digit, "&", "%", "/", ...) is
not run at all, and replacements are plain strings where they can be. No rule
looks at "the rest of the text" by slicing it: a look at what follows a match
is a pattern matched at that position.
"""

from __future__ import annotations

import functools
import re

from chorus.tasks.text.spoken.common import MONTH_RE, MONTHS, NUM, month_name, protect, restore

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


_SCALE_WORDS = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_DIGIT = re.compile(r"[0-9]")
_FOUR_DIGITS = re.compile(r"[0-9]{4}(?<![0-9]{5})(?![0-9])")  # exactly four: what a year rule needs
# Any quote or apostrophe: without one, neither quote rule has work.
_QUOTE_MARKS = re.compile("[\"'“”„‟«»‹›‘’‚‛`´「」『』《》〈〉]")
# What any of tidy's four punctuation fixes needs: one scan instead of four.
_PUNCTUATION_TO_FIX = re.compile(r" [,.;:!?]|[,;:]\s*[,;:.!?]|[.!?]\s*[,;:]")
_VERSUS = re.compile(r"vs", re.IGNORECASE)
_NOT_SPACE = re.compile(r"\S")
_SPACE_THEN_CAPITAL = re.compile(r"\s+[A-Z]")
_FIG_WORDS = {"Fig": "figure ", "fig": "figure ", "p": "page ", "pp": "pages "}


def _at_end(m: re.Match[str]) -> bool:
    """Nothing but spaces follows the match."""
    return _NOT_SPACE.search(m.string, m.end()) is None


def _end_dot(m: re.Match[str], words: str) -> str:
    """The abbreviation's period also ended the sentence: keep a period."""
    return words + "." if m.group(0).endswith(".") and _at_end(m) else words


class English:
    """English reading rules; see the module docstring."""

    def __init__(self) -> None:
        from num2words import num2words  # lazy: only processes that speak English

        # Books repeat their numbers (years, chapters, small counts), and
        # num2words takes 50-100 µs a call: remember the answers.
        self._n2w = functools.lru_cache(maxsize=4096)(num2words)
        c = re.compile
        # Patterns start with the character they are about, so the regex
        # engine skips to it instead of trying every position of the text.
        self.apostrophe = c(r"[’'‘`´](?<=[A-Za-z0-9].)(?=[A-Za-z])")
        # Every quote mark goes, but an apostrophe between a letter or digit
        # and a letter ("don't") stays.
        self.quotes = c(r"[\"“”„‟«»‹›‘’‚‛`´「」『』《》〈〉]|'(?:(?<![^\W_]')|(?![^\W\d_]))")
        self.plural_s = c(r"(?<=[A-Za-z])\((s|es)\)")
        self.open_br = c(r"[(\[{]")
        self.close_br = c(r"[)\]}]")
        # (The spaces before it are left to tidy, which removes spaces before punctuation.)
        self.ellipsis = c(r"(?:\.{3,}|(?:\.\s){2,}\.|…+)\s*")
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
            r"\b([0-9]{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(" + MONTH_RE + r")(?:,?\s+([0-9]{4})\b)?"
        )
        self.month_day = c(
            r"\b(" + MONTH_RE + r")\s+([0-9]{1,2})(?:st|nd|rd|th)?\b(?![:.,]?[0-9])(?:(,?)\s+([0-9]{4})\b)?"
        )
        ampm = r"(?:\s*([AaPp])\.?\s?[Mm]\b\.?)"
        self.time = c(r"\b([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?(?![0-9])" + ampm + "?")
        self.hour_ampm = c(r"\b([0-9]{1,2})" + ampm)
        self.money = c(
            r"(?<![\w.])([-−]\s?)?([$£€¥₹])\s?(" + NUM + r")"
            r"(?:(\s?(?:thousand|million|billion|trillion)\b)|(k|K|m|M|bn|B)\b)?"
        )
        self.percent = c(r"(?<![\w.])([-−])?(" + NUM + r")\s?%")
        self.permille = c(r"(?<![\w.])(" + NUM + r")\s?‰")
        self.dash_range = c(r"(?<![\w.,])([0-9]+)\s?[–—]\s?([0-9]+)\b(?![.,][0-9])")
        self.hyphen_range = c(r"(?<![\w.,-])([0-9]{1,4})-([0-9]{1,4})\b(?![.,-]?[0-9])")
        self.digit_groups = c(r"(?<![\w.,-])[0-9]+(?:-[0-9]+)+(?![\w-]|[.,][0-9])")
        self.decade = c(r"\b([0-9]{4}|[0-9]0)s\b")
        self.number_suffix = c(r"[0-9](?:s|st|nd|rd|th)\b")  # what decade and ordinal need
        self.month = c(MONTH_RE)
        self.ordinal = c(r"\b([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(st|nd|rd|th)\b")
        self.year_before = c(r"(?i)\b(" + _YEAR_CONTEXT + r"|" + MONTH_RE + r")(\s+)([0-9]{4})\b(?![.,]?[0-9])")
        self.year_after = c(r"\b([0-9]{4})(\s?)(AD|BC|BCE|CE|A\.D\.|B\.C\.)(?![A-Za-z])")
        self.fraction = c(r"(?<![0-9/.,])([0-9]{1,2})/([0-9]{1,2})(?![0-9/])")
        self.negative = c(r"(?<![\w.,)\]%])[-−](?=[0-9])")
        self.dotted = c(r"\b[0-9]+(?:\.[0-9]+){2,}\b")
        self.number = c(NUM)
        self.degrees = c(r"\s?°\s?([CF])\b|\s?°")
        self.tilde_num = c(r"~\s*(?=[0-9])")
        self.symbols = c(r"\s*(%|@)\s*")
        self.plus_eq = c(r"\s([+=])\s")
        self.markup = c(r"[*_|^~]+")
        self.slash = c(r"(?<=[A-Za-z0-9])/(?=[A-Za-z0-9])")
        self.spaces = c(r"\s(?:\s+|(?<=[^ ]))")  # runs, and any whitespace but a plain space
        self.space_punct = c(r" +([,.;:!?])")
        self.comma_runs = c(r"([,;:])(?:\s*[,;:])+")
        self.comma_stop = c(r"[,;:]\s*([.!?])")
        self.stop_comma = c(r"([.!?])\s*[,;:]")
        self.dots = c(r"\.{2,}")
        self.comma_glued = c(r"([,;:!?])(?=[A-Za-z])")
        self.punctuation_fixes = [(p, r"\1") for p in (self.space_punct, self.comma_runs, self.comma_stop, self.stop_comma)]

    def forget(self) -> None:
        """Forget the number words remembered so far."""
        self._n2w.cache_clear()

    # -- words for numbers ------------------------------------------------ #

    def cardinal(self, digits: str) -> str:
        """An integer written with digits (and maybe commas)."""
        digits = digits.replace(",", "")
        if len(digits) > 15 or (len(digits) > 1 and digits[0] == "0"):
            return " ".join(_DIGITS_EN[int(d)] for d in digits)
        return self.integer_words(int(digits))

    def integer_words(self, n: int) -> str:
        """num2words' English cardinal, put together from its words for each
        group of three digits the way num2words joins them ("twelve thousand,
        three hundred and forty-five"): a thousand distinct answers to cache
        instead of one per number."""
        for scale, name in _SCALE_WORDS:
            if n >= scale:
                head, rest = divmod(n, scale)
                words = f"{self.integer_words(head)} {name}"
                if not rest:
                    return words
                return words + (" and " if rest < 100 else ", ") + self.integer_words(rest)
        return self._n2w(n)

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
        text, saved = protect(text)
        text = text.translate(_FULLWIDTH_EN)
        text = self.punctuation(text)
        text = self.abbreviations(text)
        if _DIGIT.search(text):
            text = self.numbers(text)
        elif "°" in text:
            text = self.degrees.sub(self._degrees, text)
        text = self.tidy(text)
        return restore(text, saved)

    def punctuation(self, text: str) -> str:
        if _QUOTE_MARKS.search(text):
            text = self.apostrophe.sub("'", text)
            text = self.quotes.sub("", text)
        if "(" in text or "[" in text or "{" in text:
            text = self.plural_s.sub(r"\1", text)
            text = self.open_br.sub(", ", text)
        if ")" in text or "]" in text or "}" in text:
            text = self.close_br.sub(", ", text)
        if "." in text or "…" in text:
            text = self.ellipsis.sub(self._ellipsis, text)
        if "&" in text:
            text = self.amp.sub(" and ", text)
        return text

    @staticmethod
    def _ellipsis(m: re.Match[str]) -> str:
        """A pause inside a sentence, a full stop at its end."""
        after = _NOT_SPACE.search(m.string, m.end())
        if after is None:
            return "."
        return "" if after.group(0) in ".?!,;:" else ", "

    def abbreviations(self, text: str) -> str:
        if "Dr." in text:
            text = self.drive.sub(lambda m: m.group(1) + _end_dot(m, " Drive"), text)
        text = self.titles.sub(lambda m: _TITLES[m.group(1)] + " ", text)
        if "." not in text:
            if _VERSUS.search(text):
                text = self.latin.sub(self._latin, text)
            return text if "#" not in text else self.number_sign.sub("number ", text)
        text = self.titles_dot.sub(lambda m: _end_dot(m, _TITLES[m.group(1)]), text)
        if "St." in text:
            text = self.saint.sub("Saint ", text)
            text = self.street.sub(lambda m: _end_dot(m, "Street"), text)
        if "r." in text:
            text = self.jr.sub(lambda m: _end_dot(m, "Junior" if m.group(1) == "Jr" else "Senior"), text)
        text = self.latin.sub(self._latin, text)
        if _DIGIT.search(text):
            text = self.number_sign.sub("number ", text)
            text = self.fig.sub(lambda m: _FIG_WORDS[m.group(1)], text)
        return text

    @staticmethod
    def _latin(m: re.Match[str]) -> str:
        if m.group(1):
            stop = _at_end(m) or _SPACE_THEN_CAPITAL.match(m.string, m.end())
            return "et cetera." if stop else "et cetera"
        if m.group(2):
            return _end_dot(m, "for example")
        if m.group(3):
            return _end_dot(m, "that is")
        if m.group(4):
            return _end_dot(m, "versus")
        return _end_dot(m, "approximately")

    def numbers(self, text: str) -> str:
        """Every rule that reads digits; only called when the text has one.
        Each rule runs only if the mark it needs (":" "%" "/" ...) is there."""
        has = text.__contains__
        if has("-"):
            text = self.iso_date.sub(self._iso_date, text)
        if self.month.search(text):
            text = self.day_month.sub(self._day_month, text)
            text = self.month_day.sub(self._month_day, text)
        if has(":"):
            text = self.time.sub(self._time, text)
        if has("m") or has("M"):
            text = self.hour_ampm.sub(self._hour_ampm, text)
        if any(map(has, _CURRENCIES)):
            text = self.money.sub(self._money, text)
        if has("%"):
            text = self.percent.sub(
                lambda m: ("minus " if m.group(1) else "") + self.number_words(m.group(2)) + " percent", text
            )
        if has("‰"):
            text = self.permille.sub(lambda m: self.number_words(m.group(1)) + " per mille", text)
        if has("–") or has("—"):
            text = self.dash_range.sub(self._range, text)
        if has("-"):
            text = self.hyphen_range.sub(self._hyphen_range, text)
            text = self.digit_groups.sub(self._digit_groups, text)
        if self.number_suffix.search(text):
            text = self.decade.sub(self._decade, text)
            text = self.ordinal.sub(lambda m: self.ordinal_words(m.group(1)), text)
        if _FOUR_DIGITS.search(text):
            text = self.year_before.sub(
                lambda m: m.group(1) + m.group(2) + (self.year_words(m.group(3)) if self.is_year(m.group(3)) else m.group(3)),
                text,
            )
            text = self.year_after.sub(
                lambda m: (self.year_words(m.group(1)) if self.is_year(m.group(1)) else m.group(1)) + " " + m.group(3),
                text,
            )
        if has("/"):
            text = self.fraction.sub(self._fraction, text)
        if has("-") or has("−"):
            text = self.negative.sub("minus ", text)
        if has("."):
            text = self.dotted.sub(lambda m: " point ".join(self.cardinal(p) for p in m.group(0).split(".")), text)
        if has("°"):
            text = self.degrees.sub(self._degrees, text)
        if has("~"):
            text = self.tilde_num.sub("about ", text)
        return self.number.sub(self._number, text)

    @staticmethod
    def _degrees(m: re.Match[str]) -> str:
        return " degrees" + {"C": " Celsius", "F": " Fahrenheit", None: ""}[m.group(1)]

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
        return f"the {self.ordinal_words(str(day))} of {MONTHS[month - 1]}, {self.year_words(year)}"

    def _day_month(self, m: re.Match[str]) -> str:
        day = int(m.group(1))
        if not 1 <= day <= 31:
            return m.group(0)
        out = f"the {self.ordinal_words(str(day))} of {month_name(m.group(2))}"
        if m.group(3):
            out += " " + self.year_words(m.group(3))
        elif m.group(2).endswith(".") and _at_end(m):
            out += "."
        return out

    def _month_day(self, m: re.Match[str]) -> str:
        day = int(m.group(2))
        if not 1 <= day <= 31:
            return m.group(0)
        out = f"{month_name(m.group(1))} {self.ordinal_words(str(day))}"
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
        if "%" in text or "@" in text:
            text = self.symbols.sub(lambda m: {"%": " percent ", "@": " at "}[m.group(1)], text)
        if "+" in text or "=" in text:
            text = self.plus_eq.sub(lambda m: " plus " if m.group(1) == "+" else " equals ", text)
        text = self.markup.sub(" ", text)
        if "/" in text:
            text = self.slash.sub(" ", text)
        text = self.spaces.sub(" ", text)
        # A search is cheaper than a substitution with a template; most
        # sentences need none of these.
        if _PUNCTUATION_TO_FIX.search(text):
            for pattern, replacement in self.punctuation_fixes:
                if pattern.search(text):
                    text = pattern.sub(replacement, text)
        if ".." in text:
            text = self.dots.sub(".", text)
        if self.comma_glued.search(text):
            text = self.comma_glued.sub(r"\1 ", text)
        if "  " in text:
            text = self.spaces.sub(" ", text)
        # Spaces are single by now: the edges are plain strips.
        return text.lstrip(" ,;:.").rstrip(" ,;:")
