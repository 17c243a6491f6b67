"""Text cleaning and sentence segmentation (``chorus.tasks.text.clean``, ``chorus.tasks.text.sentences``)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from chorus.tasks.text.clean import has_speakable, normalise
from chorus.tasks.text.sentences import Segment, split

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "the-lighthouse-keeper.txt"


def texts(segments: list[Segment]) -> list[str]:
    return [s.text for s in segments]


def speakable(text: str) -> str:
    """The letters and digits of ``text``, in order."""
    return "".join(ch for ch in text if ch.isalnum())


def assert_invariants(source: str, segments: list[Segment], max_chars: int) -> None:
    """What every split() result must satisfy, whatever the input."""
    assert [s.index for s in segments] == list(range(len(segments)))
    for s in segments:
        assert s.text == s.text.strip()
        assert s.text
        assert len(s.text) <= max_chars
        assert has_speakable(s.text)
    # No letter or digit is lost, added or reordered.
    assert speakable("".join(texts(segments))) == speakable(normalise(source))
    # One paragraph_end per paragraph that has anything to say.
    speaking = [p for p in normalise(source).split("\n\n") if has_speakable(p)]
    assert sum(s.paragraph_end for s in segments) == len(speaking)
    if segments:
        assert segments[-1].paragraph_end


# --------------------------------------------------------------------------- #
# has_speakable
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "...!?", "—", "。", "* * *", "“”"])
def test_has_speakable_false(text: str) -> None:
    assert has_speakable(text) is False


@pytest.mark.parametrize("text", ["a", "3", "中", "É", "...a...", " 。中 "])
def test_has_speakable_true(text: str) -> None:
    assert has_speakable(text) is True


# --------------------------------------------------------------------------- #
# normalise
# --------------------------------------------------------------------------- #


def test_normalise_line_endings_and_paragraphs() -> None:
    assert normalise("One.\r\n\r\nTwo.\rThree.\n\n\n\nFour.") == "One.\n\nTwo. Three.\n\nFour."


def test_normalise_bom_nbsp_tabs_and_spaces() -> None:
    raw = "\ufeffHello,\u00a0world!\tHow   are\u2009you?   \n"
    assert normalise(raw) == "Hello, world! How are you?"


def test_normalise_drops_control_characters() -> None:
    assert normalise("a\x00b\x07c\x1bd") == "abcd"


def test_normalise_strips_trailing_spaces_and_outer_blank_lines() -> None:
    assert normalise("\n\n  Title   \n\n   \n  Body text.  \n\n") == "Title\n\nBody text."


def test_normalise_is_nfc_not_nfkc() -> None:
    decomposed = "Cafe\u0301"  # e + combining acute
    assert normalise(decomposed) == "Caf\u00e9"
    # NFKC would turn these full-width marks into ASCII ones.
    assert normalise("你好，世界！（真的）") == "你好，世界！（真的）"


def test_normalise_joins_hard_wrapped_english_with_space() -> None:
    raw = "It was a dark and\nstormy night; the rain\nfell in torrents.\n"
    assert normalise(raw) == "It was a dark and stormy night; the rain fell in torrents."


def test_normalise_joins_hard_wrapped_chinese_without_space() -> None:
    assert normalise("孙悟空大闹\n天宫。玉帝\n大怒！") == "孙悟空大闹天宫。玉帝大怒！"
    # A closing quote at the wrap does not hide that both sides are Chinese.
    assert normalise("他说：“好。”\n她笑了。") == "他说：“好。”她笑了。"


def test_normalise_mixed_wrap_uses_space() -> None:
    assert normalise("我喜欢\nPython 语言。") == "我喜欢 Python 语言。"


def test_normalise_is_idempotent() -> None:
    raw = "\ufeffTitle\r\n\r\nLine one\r\nline two.\t\u00a0\n\n\n中文\n中文。"
    once = normalise(raw)
    assert normalise(once) == once


# --------------------------------------------------------------------------- #
# split: sentences
# --------------------------------------------------------------------------- #


def test_english_sentences() -> None:
    segs = split("The sea was calm. Was it? It was! Nobody spoke.", 100)
    assert texts(segs) == ["The sea was calm.", "Was it?", "It was!", "Nobody spoke."]
    assert [s.paragraph_end for s in segs] == [False, False, False, True]


def test_english_closing_quotes_stay_with_sentence() -> None:
    segs = split('"Come in." She opened the door. (It was late.) He sat.', 100)
    assert texts(segs) == ['"Come in."', "She opened the door.", "(It was late.)", "He sat."]


def test_chinese_sentences() -> None:
    assert texts(split("孙悟空大闹天宫。玉帝大怒！谁能降他？", 100)) == [
        "孙悟空大闹天宫。",
        "玉帝大怒！",
        "谁能降他？",
    ]


def test_chinese_closing_quotes_after_full_stop() -> None:
    assert texts(split("他说：“我来了。”她笑了。「好啊！」他走了。", 100)) == [
        "他说：“我来了。”",
        "她笑了。",
        "「好啊！」",
        "他走了。",
    ]


def test_chinese_ellipsis_ends_sentence_and_semicolon_does_not() -> None:
    assert texts(split("他想了想……还是算了。风很大；雨也大。", 100)) == [
        "他想了想……",
        "还是算了。",
        "风很大；雨也大。",
    ]


def test_mixed_english_and_chinese() -> None:
    text = "He said hello. 他说你好。Then he left! 然后他走了。"
    assert texts(split(text, 100)) == ["He said hello.", "他说你好。", "Then he left!", "然后他走了。"]


def test_abbreviations_and_decimals_do_not_end_sentence() -> None:
    text = "Mr. Darcy and Dr. Watson met Mrs. Bennet at 3.14 p.m."
    assert texts(split(text, 100)) == [text]


@pytest.mark.parametrize(
    "abbr", ["Prof.", "St.", "Capt.", "Gen.", "Rev.", "Fig.", "vs.", "etc.", "e.g.", "i.e.", "Co."]
)
def test_each_abbreviation_keeps_sentence_whole(abbr: str) -> None:
    text = f"See {abbr} Twelve for more. Next sentence."
    assert texts(split(text, 100)) == [f"See {abbr} Twelve for more.", "Next sentence."]


def test_no_is_an_abbreviation_only_before_a_number() -> None:
    assert texts(split("Room No. 7 was empty. No. It was full.", 100)) == [
        "Room No. 7 was empty.",
        "No.",
        "It was full.",
    ]


def test_initials_do_not_end_sentence() -> None:
    segs = split("J. R. R. Tolkien wrote it. George R. R. Martin read it.", 100)
    assert texts(segs) == ["J. R. R. Tolkien wrote it.", "George R. R. Martin read it."]


def test_english_ellipsis_ends_sentence_only_before_capital() -> None:
    segs = split("I waited... and waited... Nobody came. It ended...", 100)
    assert texts(segs) == ["I waited... and waited...", "Nobody came.", "It ended..."]
    assert texts(split("Well… Maybe.", 100)) == ["Well…", "Maybe."]


def test_dialogue_tag_after_exclamation_continues_sentence() -> None:
    assert texts(split('"Wait!" he cried. "Stop!" She ran.', 100)) == [
        '"Wait!" he cried.',
        '"Stop!"',
        "She ran.",
    ]


def test_urls_and_numbers_are_not_cut() -> None:
    text = "Visit www.example.com today. It costs 3,000.50 dollars."
    assert texts(split(text, 100)) == ["Visit www.example.com today.", "It costs 3,000.50 dollars."]


def test_short_sentences_are_not_merged() -> None:
    assert len(split("Yes. No. Maybe. Go.", 200)) == 4


# --------------------------------------------------------------------------- #
# split: paragraphs
# --------------------------------------------------------------------------- #


def test_paragraph_end_flags_across_paragraphs() -> None:
    segs = split("First one. First two.\n\nSecond one. Second two. Second three.", 100)
    assert [(s.index, s.text, s.paragraph_end) for s in segs] == [
        (0, "First one.", False),
        (1, "First two.", True),
        (2, "Second one.", False),
        (3, "Second two.", False),
        (4, "Second three.", True),
    ]


def test_hard_wrapped_lines_in_split() -> None:
    segs = split("The keeper climbed\nthe stairs.\n\n孙悟空大闹\n天宫。", 100)
    assert texts(segs) == ["The keeper climbed the stairs.", "孙悟空大闹天宫。"]
    assert all(s.paragraph_end for s in segs)


def test_punctuation_only_pieces_are_dropped() -> None:
    text = "Chapter one.\n\n* * *\n\nHe stopped. —\n\n...\n\nShe waited. ……"
    segs = split(text, 100)
    assert [(s.text, s.paragraph_end) for s in segs] == [
        ("Chapter one.", True),
        ("He stopped.", True),
        ("She waited.", True),
    ]
    assert [s.index for s in segs] == [0, 1, 2]


def test_empty_and_blank_input() -> None:
    assert split("", 50) == []
    assert split(" \n\n\t\r\n ", 50) == []
    assert split("... — 。", 50) == []


# --------------------------------------------------------------------------- #
# split: long sentences
# --------------------------------------------------------------------------- #

LONG_COMMAS = (
    "When the storm came in from the west, the keeper climbed the iron stairs, "
    "lit the great lamp above the rocks, wound the heavy brass clockwork, "
    "checked the oil in the reservoir, and sat down beside the cold glass, "
    "watching the ships pass slowly in the dark."
)


def assert_words_intact(source: str, segments: list[Segment]) -> None:
    """Every word of ``source`` is whole in exactly one segment, in order."""
    source_words = source.split()
    segment_words = [w for s in segments for w in s.text.split()]
    assert segment_words == source_words


def test_long_sentence_split_at_commas() -> None:
    max_chars = 80
    segs = split(LONG_COMMAS, max_chars)
    assert len(segs) > 1
    assert all(len(s.text) <= max_chars for s in segs)
    # Cut at clause marks only: every piece but the last ends on a comma.
    assert all(s.text.endswith(",") for s in segs[:-1])
    assert_words_intact(LONG_COMMAS, segs)
    # Packed greedily: not one segment per comma.
    assert len(segs) < LONG_COMMAS.count(",") + 1
    assert [s.paragraph_end for s in segs] == [False] * (len(segs) - 1) + [True]


def test_long_sentence_without_commas_split_at_spaces() -> None:
    text = (
        "The old keeper walked along the narrow path above the grey rocks and the "
        "foaming water until he reached the small white house where his sister lived."
    )
    max_chars = 40
    segs = split(text, max_chars)
    assert len(segs) >= len(text) // max_chars
    assert all(len(s.text) <= max_chars for s in segs)
    assert_words_intact(text, segs)
    assert " ".join(texts(segs)) == text


def test_long_chinese_sentence_without_punctuation_cut_at_max_chars() -> None:
    text = "一二三四五六七八九十" * 5  # 50 characters, no punctuation
    segs = split(text, 20)
    assert texts(segs) == [text[:20], text[20:40], text[40:]]


def test_long_chinese_sentence_split_at_commas() -> None:
    clause = "孙悟空在花果山上看着远方的云彩"  # 15 characters
    text = "，".join([clause] * 6) + "。"
    segs = split(text, 40)
    # Two clauses (plus their commas) fit in 40, three do not.
    assert texts(segs) == [f"{clause}，{clause}，"] * 2 + [f"{clause}，{clause}。"]


def test_long_word_is_cut_as_last_resort() -> None:
    url = "https://example.com/" + "a" * 60
    segs = split(f"See {url} now.", 30)
    assert all(len(s.text) <= 30 for s in segs)
    assert speakable("".join(texts(segs))) == speakable(f"See {url} now.")


def test_max_chars_below_20_raises() -> None:
    with pytest.raises(ValueError):
        split("Hello.", 19)
    with pytest.raises(ValueError):
        split("", 0)
    assert texts(split("Hello.", 20)) == ["Hello."]


# --------------------------------------------------------------------------- #
# split: properties
# --------------------------------------------------------------------------- #

MIXED = """\ufeffThe Monkey King\r\n\r\n
Mr. Smith read the story aloud, slowly, to the children.\u00a0They listened!\r
孙悟空大闹天宫。玉帝大怒！谁能降他？他说：“我来了。”\r\n\r\n
* * *\r\n\r\n
A very long sentence follows, with commas, semicolons; colons: and dashes — all of them — \
so that the splitter has to cut it into several pieces that each fit the limit, \
which is the whole point of this test.\r\n\r\n
一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十。
"""


@pytest.mark.parametrize("max_chars", [20, 33, 60, 200])
def test_no_speakable_character_lost_mixed(max_chars: int) -> None:
    assert_invariants(MIXED, split(MIXED, max_chars), max_chars)


def _generated_text(seed: int) -> str:
    """A long, messy, deterministic book: English, Chinese, odd spacing, marks."""
    rng = random.Random(seed)
    english = "the keeper lamp sea storm ship night Mr. Dr. e.g. J. 3.14 1,000 www.a.com " \
        "extraordinarily incomprehensibilities".split()
    chinese = list("孙悟空大闹天宫玉帝大怒谁能降他灯塔守护者海上风暴")
    marks = [".", "!", "?", ",", ";", ":", " —", "...", "。", "！", "？", "，", "、", "……", "”", '"']
    paragraphs = []
    for _ in range(60):
        words = []
        for _ in range(rng.randint(1, 120)):
            roll = rng.random()
            if roll < 0.55:
                words.append(rng.choice(english))
            elif roll < 0.8:
                words.append("".join(rng.choice(chinese) for _ in range(rng.randint(1, 60))))
            elif roll < 0.95:
                words.append(rng.choice(marks))
            else:
                words.append(rng.choice(["\n", "\t", "\u00a0", "\r\n", "* * *"]))
        paragraphs.append(" ".join(words))
    return "\n\n".join(paragraphs)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_chars", [20, 47, 120])
def test_no_speakable_character_lost_generated(seed: int, max_chars: int) -> None:
    text = _generated_text(seed)
    assert len(text) > 10_000
    assert_invariants(text, split(text, max_chars), max_chars)


def test_example_story_splits_cleanly() -> None:
    story = EXAMPLE.read_text(encoding="utf-8")
    words = len(re.findall(r"\S+", story))
    assert 1_100 <= words <= 1_400
    segs = split(story, 200)
    assert_invariants(story, segs, 200)
    assert segs[0].paragraph_end  # the title line is its own paragraph
