"""Each input that once froze the text path, planned again within a time bound.

Bounds are generous (these machines are noisy): each is many times what the
input takes now, and far below what it took before (80 KB of blank lines
took 23 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from chorus.tasks.text import clean, epub, sentences
from chorus.tasks.text.plan import Plan, make_plan
from chorus.tasks.text.read import read_book, read_text
from chorus.tasks.text.spoken import spoken_form
from chorus.tasks.text.spoken.common import protect
from tests.conftest import JOE, JOE_MODEL


@pytest.fixture(scope="module")
def plan_of() -> Callable[[str, str], Plan]:
    make_plan(read_text("Warm up: 1, 2, 3."), JOE, JOE_MODEL, "test")  # lazy imports out of the timings

    def plan(text: str, filename: str = "input.txt") -> Plan:
        return make_plan(read_text(text, filename), JOE, JOE_MODEL, "test")

    return plan


def timed(bound_s: float, work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - started
    assert elapsed < bound_s, f"took {elapsed:.2f} s (bound {bound_s} s)"
    return result


@pytest.mark.parametrize("lines", [40_000, 60_000])
def test_blank_lines_json_body(plan_of: Callable[[str], Plan], lines: int) -> None:
    """80 KB and 120 KB of " \\n" and one letter: 23 s and 50 s before."""
    plan = timed(1.0, lambda: plan_of(" \n" * lines + "a"))
    assert [s.text for s in plan.segments] == ["a"]


def test_blank_lines_around_gutenberg_markers(plan_of: Callable[[str], Plan]) -> None:
    text = "*** START OF THE PROJECT GUTENBERG EBOOK X ***" + " \n" * 50_000 + "Words." + "\n \n" * 50_000
    plan = timed(1.0, lambda: plan_of(text))
    assert [s.text for s in plan.segments] == ["Words."]


def test_dot_runs_and_dot_leaders(plan_of: Callable[[str], Plan]) -> None:
    timed(1.0, lambda: plan_of("a" + "." * 200_000 + " 1"))
    leaders = ("Chapter I" + "." * 60 + " 12\n") * 3000 + "\nThe story.\n"
    plan = timed(2.0, lambda: plan_of(leaders))
    assert plan.segments


def test_many_full_stops_in_one_paragraph() -> None:
    """sentences.py copied the rest of the paragraph at every full stop."""
    text = "It was. " * 60_000
    segments = timed(2.0, lambda: sentences.split(text, 300))
    assert len(segments) == 60_000


def test_combining_marks_do_not_cut_one_character_at_a_time() -> None:
    text = "a" + "\u0301\u0316" * 100_000 + " b"
    segments = timed(1.0, lambda: sentences.split(text, 100))
    # Stream-safe: 30 marks kept, in canonical order, one composed into the letter.
    assert [s.text for s in segments] == ["á" + "\u0316" * 15 + "\u0301" * 14 + " b"]
    long_piece = timed(1.0, lambda: sentences.split("a" + "\u0301" * 100_000 + "b" * 300, 100))
    assert [len(s.text) for s in long_piece] == [100, 100, 100, 30]


def test_one_long_word_is_cut_into_full_pieces() -> None:
    segments = timed(1.0, lambda: sentences.split("a" * 200_000, 400))
    assert len(segments) == 500 and all(len(s.text) == 400 for s in segments)


def test_marks_run_longer_than_a_piece_still_moves_on() -> None:
    pieces = sentences._cut_long("x" + "\u0301" * 29 + "y" * 100, 20)
    assert "".join(pieces) == "x" + "\u0301" * 29 + "y" * 100
    assert all(len(piece) >= 10 for piece in pieces[:-1])


def test_normalise_two_million_characters() -> None:
    text = ("Some words,\tand  more\u00a0words \u200bhere.\n" * 50_000)[:2_000_000]
    assert timed(2.0, lambda: clean.normalise(text)).startswith("Some words, and more words here. Some")


def test_thousands_of_tiny_chapters(plan_of: Callable[[str], Plan]) -> None:
    text = "".join(f"Chapter {n}\n\nWord.\n\n" for n in range(1, 3001))
    plan = timed(2.0, lambda: plan_of(text))
    assert len(plan.chapters) == 3000


def test_deeply_nested_markdown_is_read(plan_of: Callable[[str, str], Plan]) -> None:
    quotes = timed(1.0, lambda: plan_of("> " * 500 + "deep words\n\nshallow words\n", "deep.md"))
    assert [s.text for s in quotes.segments] == ["deep words", "shallow words"]
    lists = "".join("  " * depth + f"- item {depth}\n" for depth in range(300))
    plan = timed(2.0, lambda: plan_of(lists, "lists.md"))
    assert "item 299" in " ".join(s.text for s in plan.segments)
    emphasis = "*a _b **c __d " * 2000
    timed(5.0, lambda: plan_of(emphasis, "emphasis.md"))


def test_spoken_rules_do_not_rescan_the_rest() -> None:
    """Rules that looked at what follows a match by slicing the rest."""
    timed(1.0, lambda: spoken_form("Mr. Smith and Dr. Who, etc. " * 5000, "en"))
    timed(1.0, lambda: spoken_form("Wait... " * 10_000, "en"))
    timed(1.0, lambda: spoken_form("价格￥20元，" * 10_000, "zh"))
    timed(0.5, lambda: protect("a" * 200_000))  # the e-mail pattern started at every letter


def test_epub_line_breaks_between_cjk_characters() -> None:
    text = "中" + " \n" * 100_000 + "a"
    assert timed(0.5, lambda: epub._CJK_BREAK.sub("", text)) == text
    assert epub._CJK_BREAK.sub("", "中 \n \n 文") == "中文"


def test_upload_of_blank_lines_in_utf16(plan_of: Callable[[str], Plan]) -> None:
    data = (" \n" * 40_000 + "a").encode("utf-16")
    assert timed(1.0, lambda: read_book(data, "blank.txt")).chapters[0].text == "a"


def test_a_run_of_empty_headings_lends_its_titles_in_linear_time(plan_of: Callable[[str], Plan]) -> None:
    """Each empty heading's title was glued onto all the previous ones."""
    text = "".join(f"Chapter {n}\n\n" for n in range(1, 20_001)) + "Word.\n"
    plan = timed(3.0, lambda: plan_of(text))
    assert plan.chapters[0].title.startswith("Chapter 1 — Chapter 2 — ")
    assert plan.chapters[0].title.endswith("— Chapter 20000")
