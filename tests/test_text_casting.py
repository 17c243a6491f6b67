"""Casting a chapter's text: narrator, dialogue, characters, inline tags."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chorus.tasks.errors import InputError
from chorus.tasks.text.casting import TAG, Casting, Part, cast, tagged_voices

NARRATOR, DIALOGUE = "joe", "tone"


def voices(parts: list[Part]) -> list[tuple[str, str]]:
    return [(part.voice, part.text) for part in parts]


def test_without_dialogue_voice_or_characters_the_narrator_reads_everything() -> None:
    text = "“Hello,” she said.\n\nThe end."
    assert voices(cast(text, Casting(NARRATOR))) == [(NARRATOR, "“Hello,” she said."), (NARRATOR, "The end.")]


def test_quoted_speech_goes_to_the_dialogue_voice() -> None:
    text = '“Is it far?” she asked. He said, "Not very." Then silence.\n\nNext paragraph.'
    parts = cast(text, Casting(NARRATOR, DIALOGUE))
    assert voices(parts) == [
        (DIALOGUE, "“Is it far?”"), (NARRATOR, "she asked. He said,"), (DIALOGUE, '"Not very."'),
        (NARRATOR, "Then silence."), (NARRATOR, "Next paragraph."),
    ]
    assert [part.paragraph_end for part in parts] == [False, False, False, True, True]


def test_a_quotation_open_at_the_end_of_its_paragraph_ends_there() -> None:
    text = "“It went on and on,\n\n“and on.” Done."
    assert voices(cast(text, Casting(NARRATOR, DIALOGUE))) == [
        (DIALOGUE, "“It went on and on,"), (DIALOGUE, "“and on.”"), (NARRATOR, "Done."),
    ]


def test_chinese_quotation_marks() -> None:
    text = "他说：“你好。”然后走了。「再见。」"
    assert voices(cast(text, Casting(NARRATOR, DIALOGUE))) == [
        (NARRATOR, "他说："), (DIALOGUE, "“你好。”"), (NARRATOR, "然后走了。"), (DIALOGUE, "「再见。」"),
    ]


def test_characters_are_found_by_their_speech_tags() -> None:
    casting = Casting(NARRATOR, DIALOGUE, {"Elizabeth": "liz", "Mr. Darcy": "darcy", "伊丽莎白": "liz-zh"})
    text = ("“Indeed,” said Elizabeth. Mr. Darcy replied, “Quite so.” “Who knows,” he added. "
            "“Not I,” Elizabeth said.\n\n伊丽莎白说：“好的。”")
    assert voices(cast(text, casting)) == [
        ("liz", "“Indeed,”"), (NARRATOR, "said Elizabeth. Mr. Darcy replied,"), ("darcy", "“Quite so.”"),
        (DIALOGUE, "“Who knows,”"), (NARRATOR, "he added."), ("liz", "“Not I,”"), (NARRATOR, "Elizabeth said."),
        (NARRATOR, "伊丽莎白说："), ("liz-zh", "“好的。”"),
    ]


def test_inline_tags_win_and_are_removed() -> None:
    text = "Plain. [voice:tone]Tagged “quote” here.[/voice] Back.\n\n[voice:x]Two\n\nparagraphs[/voice]"
    parts = cast(text, Casting(NARRATOR, "other"))
    assert voices(parts) == [
        (NARRATOR, "Plain."), (DIALOGUE, "Tagged “quote” here."), (NARRATOR, "Back."), ("x", "Two"), ("x", "paragraphs"),
    ]
    assert tagged_voices(text) == {"tone", "x"}


def test_character_maps_are_bounded() -> None:
    with pytest.raises(InputError):
        cast("x", Casting(NARRATOR, characters={f"n{i}": "v" for i in range(101)}))
    with pytest.raises(InputError):
        cast("x", Casting(NARRATOR, characters={" ": "v"}))


def test_casting_is_linear() -> None:
    casting = Casting(NARRATOR, DIALOGUE, {f"Name{i}": "v" for i in range(100)})
    unit = "“Quote,” said Name7. Narration follows here. "

    def timed(n: int) -> float:
        text = unit * n
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            cast(text, casting)
            best = min(best, time.perf_counter() - started)
        return best

    small, large = timed(5_000), timed(10_000)
    assert large < 3.5 * small, (small, large)
    open_quotes = "“" * 200_000  # one paragraph of unclosed quotations
    started = time.perf_counter()
    cast(open_quotes, casting)
    assert time.perf_counter() - started < 2.0


_PIECES = st.sampled_from(["“", "”", '"', "「", "」", "[voice:tone]", "[/voice]", "\n\n", " said Anna", "Anna said ",
                           "word", ". ", ", ", "说：", "伊丽莎白"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=60))
def test_casting_keeps_every_character_but_tags_and_paragraph_breaks(pieces: list[str]) -> None:
    """Whatever the marks and tags, nothing is lost, added or reordered: the
    parts, joined, are the text without its tags (whitespace aside)."""
    text = "".join(pieces)
    parts = cast(text, Casting(NARRATOR, DIALOGUE, {"Anna": "anna", "伊丽莎白": "liz"}))
    assert "".join("".join(part.text.split()) for part in parts) == "".join(TAG.sub("", text).split())
    assert all(part.text.strip() for part in parts)
