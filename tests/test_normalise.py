"""Spoken forms (``chorus.tasks.text.spoken``): the text a TTS engine is given."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from chorus.tasks.text.spoken import forget, spoken_form
from tests.conftest import best_time

# --------------------------------------------------------------------------- #
# English: (input, expected spoken form)
# --------------------------------------------------------------------------- #

EN_CASES = [
    # numbers
    ("I have 3 apples.", "I have three apples."),
    ("It cost 1,234 dollars.", "It cost one thousand, two hundred and thirty-four dollars."),
    ("Pi is 3.14.", "Pi is three point one four."),
    ("It was -5 outside.", "It was minus five outside."),
    ("Agent 007 arrived.", "Agent zero zero seven arrived."),
    ("Version 1.2.3 is out.", "Version one point two point three is out."),
    ("Buy 3/4 of a cake.", "Buy three quarters of a cake."),
    ("An MP3 player.", "An MP three player."),
    ("Call 555-1234 now.", "Call five five five, one two three four now."),
    # ordinals
    ("The 1st, 2nd and 23rd runners.", "The first, second and twenty-third runners."),
    # years
    ("In 1813 she wrote it.", "In eighteen thirteen she wrote it."),
    ("In 2005 it rained.", "In two thousand and five it rained."),
    ("Born in March 2020.", "Born in March twenty twenty."),
    ("He sold 1813 copies.", "He sold one thousand, eight hundred and thirteen copies."),
    ("Music of the 1990s and the 80s.", "Music of the nineteen nineties and the eighties."),
    ("It fell in 476 AD.", "It fell in four hundred and seventy-six AD."),
    # dates
    ("On 12 March 1813 they met.", "On the twelfth of March eighteen thirteen they met."),
    ("On March 12, 1813 they met.", "On March twelfth, eighteen thirteen they met."),
    ("It opened 2024-05-06.", "It opened the sixth of May, twenty twenty-four."),
    ("Due Jan. 5 at noon.", "Due January fifth at noon."),
    # times
    ("Breakfast at 7:30.", "Breakfast at seven thirty."),
    ("Dinner at 7:30 pm sharp.", "Dinner at seven thirty p.m. sharp."),
    ("The train left at 19:05.", "The train left at nineteen oh five."),
    ("We start at 10:00.", "We start at ten o'clock."),
    ("Meet me at 7 PM.", "Meet me at seven p.m."),
    # currency
    ("It costs $5.", "It costs five dollars."),
    ("It costs $3.50.", "It costs three dollars and fifty cents."),
    ("It costs £20.", "It costs twenty pounds."),
    ("A deal worth €1.5 million.", "A deal worth one point five million euros."),
    ("Only $0.99 or $1.", "Only ninety-nine cents or one dollar."),
    # percentages
    ("Sales rose 45%.", "Sales rose forty-five percent."),
    ("Sales rose 3.5%.", "Sales rose three point five percent."),
    ("The % sign.", "The percent sign."),
    # abbreviations
    ("Mr. Smith met Mrs. Jones and Dr. Watson.", "Mister Smith met Missus Jones and Doctor Watson."),
    ("They prayed at St. Paul's.", "They prayed at Saint Paul's."),
    ("He lived on Baker St.", "He lived on Baker Street."),
    ("Fruit, e.g. apples, i.e. food.", "Fruit, for example apples, that is food."),
    ("Apples, pears, etc. are fruit.", "Apples, pears, et cetera are fruit."),
    ("Cats vs. dogs.", "Cats versus dogs."),
    ("See No. 5 and #1.", "See number five and number one."),
    ("Salt & pepper.", "Salt and pepper."),
    # ranges
    ("From 1990–1995 it grew.", "From nineteen ninety to nineteen ninety-five it grew."),
    ("Read pages 10-20.", "Read pages ten to twenty."),
    # punctuation
    ("Wait... what?", "Wait, what?"),
    ("Wait… what?", "Wait, what?"),
    ("And then…", "And then."),
    ("“Hello,” she said. ‘Hi,’ he said.", "Hello, she said. Hi, he said."),
    ('He said "yes" and \'no\'.', "He said yes and no."),
    ("I don't know, it's 5 o'clock.", "I don't know, it's five o'clock."),
    ("He (the tall one) left.", "He, the tall one, left."),
    ("Bring the book(s).", "Bring the books."),
    ("Hello，world！Fine？", "Hello, world! Fine?"),
    ("It's a 50/50 chance, 24/7, and/or more.", "It's a fifty fifty chance, twenty-four seven, and or more."),
    ("Go to 4 Privet Dr. now.", "Go to four Privet Drive now."),
    ("It was 20°C.", "It was twenty degrees Celsius."),
    # left alone
    ("Visit https://example.com/a?b=1 or mail a.b@example.org now.",
     "Visit https://example.com/a?b=1 or mail a.b@example.org now."),
    ("No. Maybe later.", "No. Maybe later."),
]

# --------------------------------------------------------------------------- #
# Chinese
# --------------------------------------------------------------------------- #

ZH_CASES = [
    ("2024年5月6日", "二零二四年五月六日"),
    ("会议在2024-05-06举行。", "会议在二零二四年五月六日举行。"),
    ("圆周率是3.14。", "圆周率是三点一四。"),
    ("增长了45%。", "增长了百分之四十五。"),
    ("共1,234人", "共一千二百三十四人"),
    ("第3章", "第三章"),
    ("7:30起床", "七点三十分起床"),
    ("10:00开会", "十点开会"),
    ("那是2:05", "那是两点零五分"),
    ("￥20", "二十元"),
    ("20元", "二十元"),
    ("￥20元", "二十元"),
    ("用了$5和€3.5", "用了五美元和三点五欧元"),
    ("气温-5度", "气温负五度"),
    ("气温25℃", "气温二十五摄氏度"),
    ("气温-3.5℃", "气温负三点五摄氏度"),
    ("下降了-5%", "下降了负百分之五"),
    ("3-5人", "三到五人"),
    ("1/2的人", "二分之一的人"),
    ("我有2个苹果，第2个坏了。", "我有两个苹果，第二个坏了。"),
    ("2000人", "两千人"),
    ("电话13812345678", "电话一三八一二三四五六七八"),
    ("你好,世界!真的?", "你好，世界！真的？"),
    ("他说“你好”。", "他说“你好”。"),
    ('他说"你好"', "他说“你好”"),
    ("「你好」", "「你好」"),
    ("（括号）内容【标题】", "（括号）内容【标题】"),
    ("这是(真的).", "这是（真的）。"),
    ("等等……好吧", "等等……好吧"),
    ("等等...好吧", "等等……好吧"),
    ("等等…好吧", "等等……好吧"),
    ("我用iPhone拍照。", "我用iPhone拍照。"),
    ("Ｈｅｌｌｏ，你好", "Hello，你好"),
    ("１２３", "一百二十三"),
    ("我们去玩儿吧啊。", "我们去玩儿吧啊。"),
    ("網址是https://example.com/a1。", "網址是https://example.com/a1。"),
]


@pytest.mark.parametrize(("text", "expected"), EN_CASES)
def test_english(text: str, expected: str) -> None:
    assert spoken_form(text, "en-US") == expected


@pytest.mark.parametrize(("text", "expected"), ZH_CASES)
def test_chinese(text: str, expected: str) -> None:
    assert spoken_form(text, "zh-CN") == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "three"), ("en-GB", "three"), ("fr", "three"), ("", "three"),
     ("zh", "三"), ("zh-TW", "三"), ("yue", "三"), ("ZH-cn", "三")],
)
def test_language_dispatch(language: str, expected: str) -> None:
    assert spoken_form("3", language) == expected


# --------------------------------------------------------------------------- #
# Invariants over a corpus
# --------------------------------------------------------------------------- #

EN_CORPUS = [t for t, _ in EN_CASES] + [
    "It was the best of times, it was the worst of times.",
    "On 5 Nov. 1605 the plot failed; by 1606 it was history.",
    "The 3rd act (of 5) starts at 8:15 p.m. on Dec. 24th.",
    "She paid $12,000.75 for 2 cars... and 1 bike!",
    "“Is it 4 o'clock?” asked Mr. Brown. ‘No,’ said Mrs. Brown.",
    "Chapter 12: The 100-Year Flood",
    "In the summer of 1969, 600 million people watched.",
    "Temperatures hit 40°C; i.e. very hot, approx. 104°F.",
    "AT&T, P&G and Johnson & Johnson fell 2.5% vs. 1.1% for the index.",
    "Room 101, No. 7 Privet Dr. — go there!",
    "It’s a 50/50 chance, 24/7.",
    "[Laughs] Well, that's that.",
    "He scored 3-2 in the 90th minute.",
    "The year 2099 and the year 1100 and 999 and 2100.",
    "Hmm……",
    "1",
    "A",
    "-",
    "100%",
    "#",
    "e.g.",
]

ZH_CORPUS = [t for t, _ in ZH_CASES] + [
    "他在2024年5月6日花了￥20，买了45%的股份。",
    "第12章 1/3的人在7:05到达，气温-3.5℃。",
    "“你好，”他说，“我叫Tom，今年25岁。”",
    "这本书（共3卷）售价$19.99……真贵！",
    "2008年8月8日晚上8:00，北京奥运会开幕。",
    "我们班有30~40人,其中2人缺席.",
    "哈哈",
    "A",
    "5",
]

# Words the rules themselves produce; they may appear more often than in the input.
_GENERATED = set(
    """zero one two three four five six seven eight nine ten eleven twelve thirteen
    fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty
    sixty seventy eighty ninety hundred thousand million billion and point minus
    percent the of to oh o'clock a m p number et cetera for example that is versus
    dollars dollar cents cent pounds euros degrees celsius fahrenheit first second
    third fifth eighth twelfth twentieth twenty-fourth quarters quarter half page
    pages figure mister missus doctor saint street approximately at seconds""".split()
)
# Abbreviations and suffixes of the input that are expected to change.
_ABBR = re.compile(
    r"\b(?:Mr|Mrs|Ms|Dr|St|etc|e\.g|i\.e|vs|No|approx|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)(?:\.|\b)"
    r"|(?<=[0-9])(?:st|nd|rd|th|s)\b|(?<=[0-9])\s?(?:[ap]\.?m\.?|[AP]\.?M\.?)|°[CF]|\bx(?=[0-9])"
)


def _en_words(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)*", text.replace("’", "'"))]


def _is_subsequence(needles: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(n == h for h in it) for n in needles)


def check_nothing_dropped(text: str, out: str, chinese: bool) -> None:
    """Every word of the input that is not a number, symbol or abbreviation is
    in the output, in the same order."""
    if chinese:
        kept = [ch for ch in text.translate({i: i - 0xFEE0 for i in range(0xFF21, 0xFF5B)}) if ch.isalpha()]
        assert _is_subsequence(kept, list(out)), (text, out)
    else:
        text = re.sub(r"(?<=[A-Za-z])\((e?s)\)", r"\1", text)  # "book(s)" -> "books"
        kept = _en_words(_ABBR.sub(" ", text))
        assert _is_subsequence(kept, _en_words(out)), (text, out, kept)


def check_nothing_twice(text: str, out: str, chinese: bool) -> None:
    """No digit survives outside URLs, and no input word is said more often than written."""
    no_urls = re.sub(r"https?://\S+|\S+@\S+", "", out)
    assert not re.search(r"[0-9]", no_urls), (text, out)
    if not chinese:
        have, said = Counter(_en_words(text)), Counter(_en_words(out))
        for word, n in said.items():
            if word not in _GENERATED and word in have:
                assert n <= have[word], (text, out, word)


@pytest.mark.parametrize(("corpus", "language"), [(EN_CORPUS, "en"), (ZH_CORPUS, "zh")])
def test_invariants(corpus: list[str], language: str) -> None:
    chinese = language == "zh"
    for text in corpus:
        out = spoken_form(text, language)
        speakable = any(ch.isalnum() for ch in text)
        assert out.strip() or not speakable, text  # never empty for speakable input
        if speakable:
            assert any(ch.isalnum() for ch in out), (text, out)
        assert spoken_form(text, language) == out  # deterministic
        assert spoken_form(out, language) == out, (text, out)  # stable
        assert out == out.strip() and "  " not in out
        check_nothing_dropped(text, out, chinese)
        check_nothing_twice(text, out, chinese)
        if not chinese:
            assert "dot" not in _en_words(out), (text, out)
            assert not re.search(r"[“”‘’\"«»()\[\]…]|\.\.", re.sub(r"https?://\S+|\S+@\S+", "", out)), out
            assert not re.search(r"[\u3000-\u303f\uff00-\uffef]", out), out


def test_checkers_catch_mistakes() -> None:
    """The invariant helpers themselves fail on a dropped or repeated word."""
    with pytest.raises(AssertionError):
        check_nothing_dropped("the tall man", "the man", chinese=False)
    with pytest.raises(AssertionError):
        check_nothing_twice("45%", "forty-five percent 45", chinese=False)
    with pytest.raises(AssertionError):
        check_nothing_twice("big cat", "big big cat", chinese=False)
    with pytest.raises(AssertionError):
        check_nothing_dropped("你好世界", "你好", chinese=True)


def test_on_real_segments() -> None:
    """Spoken forms of the segments ``chorus.tasks.text.sentences.split`` makes are speakable and stable."""
    from chorus.tasks.text.sentences import split

    book = "\n\n".join(EN_CORPUS)
    for seg in split(book, 200):
        out = spoken_form(seg.text, "en")
        assert out and spoken_form(out, "en") == out, (seg.text, out)
    for seg in split("\n\n".join(ZH_CORPUS), 100):
        out = spoken_form(seg.text, "zh")
        assert out and spoken_form(out, "zh") == out, (seg.text, out)


def test_odd_input_does_not_crash() -> None:
    for text in ["", " ", "...", "…", "%%%", "$", "€", "12:99", "99:00", "2024-13-45", "0/0", "1/0",
                 "9" * 40, "$" + "9" * 40, "1e10", "--5", "5--", "((()))", "\u200b", "𝟙𝟚𝟛", "٣"]:
        for lang in ("en", "zh"):
            out = spoken_form(text, lang)
            assert isinstance(out, str)
            if any(ch.isalnum() for ch in text):
                assert any(ch.isalnum() for ch in out), (text, lang, out)


@pytest.mark.parametrize(("language", "corpus", "joiner"), [("en", EN_CORPUS, " "), ("zh", ZH_CORPUS, "")])
def test_linear_time_and_fast(language: str, corpus: list[str], joiner: str) -> None:
    """Cold (nothing remembered), four times the text takes about four times
    as long: at most 8x, where quadratic work would take 16x. And a sentence
    takes well under a millisecond of CPU."""
    small, large = joiner.join(corpus * 5), joiner.join(corpus * 20)
    spoken_form(small, language)  # the rules are built on first use: out of the timings
    for _ in range(3):  # a busy machine may spoil one round of timings, not three
        t_small = best_time(lambda: spoken_form(small, language), before=forget)
        t_large = best_time(lambda: spoken_form(large, language), before=forget)
        if t_large < 8 * t_small:
            break
    assert t_large < 8 * t_small, (t_small, t_large)
    per_sentence = t_large / (len(corpus) * 20)
    assert per_sentence < 0.001, f"{per_sentence * 1000:.3f} ms a sentence"
