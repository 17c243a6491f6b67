"""Chapter headings in plain text: the forms real books use, standing alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from chorus.tasks.text.plain import parse_text
from chorus.tasks.text.read import read_book


def titles(text: str) -> list[str]:
    return [chapter.title for chapter in parse_text(text).chapters]


@pytest.mark.parametrize(
    "heading",
    ["Letter 1", "LETTER IV.", "Letter the Third", "Book III", "Part Two", "PART TWO: The Return", "Volume 2",
     "Prologue", "Epilogue", "PREFACE.", "Preface", "Introduction", "Foreword", "Afterword",
     "Chapter 12345"],
)
def test_heading_forms_standing_alone(heading: str) -> None:
    assert titles(f"Some words first.\n\n{heading}\n\nThe words of it.\n") == ["", heading]


@pytest.mark.parametrize(
    "line",
    ["Chapter one was dull.", "Letter 1 never came, she said.", "Part two of the plan was worse.",
     "Introduction to the family was brief.", "Prologue, epilogue and all."],
)
def test_prose_starting_with_a_heading_word_is_prose(line: str) -> None:
    assert titles(f"Some words first.\n\n{line}\n\nMore words.\n") == [""]


def test_heading_words_inside_a_paragraph_are_not_headings() -> None:
    assert titles("It was dark.\nLetter 1\nwas on the table.\n") == [""]


def test_epistolary_book_letters_then_chapters() -> None:
    text = ("Letter 1\n\nDear sister, I arrived.\n\nLetter 2\n\nStill here.\n\n"
            "Chapter 1\n\nI was born.\n\nChapter 2\n\nI grew up.\n")
    assert titles(text) == ["Letter 1", "Letter 2", "Chapter 1", "Chapter 2"]


def test_preface_after_the_contents_is_a_chapter() -> None:
    text = ("A Book\n\nContents\n\nPreface\nChapter 1\nChapter 2\n\n"
            "Preface\n\nWhy I wrote it.\n\nChapter 1\n\nOne.\n\nChapter 2\n\nTwo.\n")
    book = parse_text(text)
    assert [c.title for c in book.chapters] == ["Preface", "Chapter 1", "Chapter 2"]
    assert book.chapters[0].text == "Why I wrote it."


def test_editors_preface_before_the_contents_is_front_matter() -> None:
    """As in Gutenberg's Pride and Prejudice: a preface, then the list of
    contents, then the story; everything up to the contents goes."""
    text = ("Preface\n\nAn editor's words.\n\nContents\n\nChapter 1 ...... 1\nChapter 2 ...... 9\n\n"
            "Chapter 1\n\nOne.\n\nChapter 2\n\nTwo.\n")
    assert titles(text) == ["Chapter 1", "Chapter 2"]


def test_frankenstein_opens_with_four_letters(corpus: Path) -> None:
    book = read_book((corpus / "frankenstein.txt").read_bytes(), "frankenstein.txt")
    names = [chapter.title for chapter in book.chapters]
    assert names == [f"Letter {n}" for n in range(1, 5)] + [f"Chapter {n}" for n in range(1, 25)]
    assert book.chapters[0].text.startswith("To Mrs. Saville, England.")


def test_pride_and_prejudice_keeps_its_61_chapters(corpus: Path) -> None:
    book = read_book((corpus / "pride_and_prejudice.txt").read_bytes(), "pride_and_prejudice.txt")
    assert len(book.chapters) == 61
    assert book.chapters[0].title == "Chapter I." and book.chapters[-1].title == "CHAPTER LXI."
