"""Chinese reading rules (CosyVoice2 voices); see ``chorus.tasks.text.spoken`` for the list.

No rule slices "the rest of the text" around a match: what follows a match is a
pattern matched at that position, what precedes it the character before it.
"""

from __future__ import annotations

import re

from chorus.tasks.text.spoken.common import NUM, protect, restore

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


class Chinese:
    """Chinese reading rules; see the module docstring."""

    def __init__(self) -> None:
        import cn2an  # lazy: only processes that speak Chinese

        self._an2cn = cn2an.an2cn
        c = re.compile
        n = NUM
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
        # Preceded by a non-space: so the character before the match is the one to judge.
        self.half_punct = c(r"(?<=\S)\s*+([,.?!;:])(?![0-9])\s*+")
        self.unit_after = c(r"\s*+(\S?)")
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
        text, saved = protect(text)
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
        return restore(text, saved).strip()

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
        after = self.unit_after.match(m.string, m.end())
        if m.string.startswith(unit, after.start(1)) or (unit == "元" and after.group(1) in ("元", "块")):
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
            if _is_cjk(m.string[m.start() - 1]):  # the look-behind made sure it is there
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
