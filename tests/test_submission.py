"""``api.submission.prepare``: the one place a submission is read, checked and
planned (pure: no Redis, no S3), so what the API accepts is exactly what the
tasks will run."""

from __future__ import annotations

import json
import time

import pytest

from chorus.api.submission import Received, Submission
from chorus.tasks.errors import EmptyText, InputError, TextTooLarge, UnknownVoice, UnsupportedMedia
from chorus.tasks.state.keys import ApiKey
from tests.conftest import plan_of, submission_of
BOOK = "The Keeper\n\nChapter 1\n\nThe lamp was lit at 7 pm. It burned.\n\nChapter 2\n\nDawn came."


def caller(**limits: int) -> ApiKey:
    values = {"max_text_chars": 1_000_000, "max_segments": 50_000, "max_concurrent_jobs": 10} | limits
    return ApiKey("owner0001", "test", **values)


def json_request(text: str, **fields: str) -> Received:
    return Received("json", json.dumps({"text": text, **fields}).encode())


def run(received: Received, key: ApiKey | None = None) -> Submission:
    return submission_of(received, key or caller())


def test_json_and_upload_make_the_same_plan() -> None:
    from_json = run(json_request(BOOK, title="The Keeper"))
    uploaded = run(Received("upload", BOOK.encode("utf-16"), "keeper.txt", {"title": "The Keeper"}))
    assert plan_of(from_json) == plan_of(uploaded)
    plan = plan_of(from_json)
    assert [c.title for c in plan.chapters] == ["Chapter 1", "Chapter 2"]
    assert from_json.segments == len(plan.segments) and from_json.chapter_titles == ["Chapter 1", "Chapter 2"]
    assert any("seven p.m." in s.spoken for s in plan.segments)  # spoken form made once, here


def test_cache_keys_are_per_key() -> None:
    mine = plan_of(run(json_request("Hello there.")))
    theirs = plan_of(run(json_request("Hello there."), ApiKey("other0002", "x", 1_000_000, 50_000, 10)))
    assert mine.segments[0].spoken == theirs.segments[0].spoken
    assert mine.segments[0].cache_key != theirs.segments[0].cache_key


def test_control_characters_are_removed_not_refused() -> None:
    plan = plan_of(run(json_request("Bell\x07 and NUL\x00 here.\u202e Done.", title="Ti\x00tle\u200b")))
    assert plan.title == "Title"
    assert [s.text for s in plan.segments] == ["Title", "Bell and NUL here.", "Done."]  # the title opens the book


@pytest.mark.parametrize("received, error, words", [
    (json_request("  \n\n ... "), EmptyText, "nothing speakable"),
    (json_request("Hello.", voice="nobody"), UnknownVoice, "tone-zh"),
    (json_request("Hello.", format="midi"), InputError, "format"),
    (json_request("Hello.", title="x" * 300), InputError, "title longer"),
    (json_request("孙悟空大闹天宫。玉帝大怒。", voice="tone"), InputError, "voices that fit: tone-zh"),
    (Received("json", b'{"text": '), InputError, "invalid request"),
    (Received("upload", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "cover.png"), UnsupportedMedia, "cover.png"),
    (Received("upload", b"word " * 300_000, "big.txt"), TextTooLarge, "the limit is 1,000,000"),
])
def test_refusals_say_why(received: Received, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        run(received)


def test_segment_limit_counts_titles_and_is_checked_early() -> None:
    assert run(json_request(BOOK), caller(max_segments=6)).segments == 6  # book title, 2 chapter titles, 3 sentences
    with pytest.raises(TextTooLarge, match="makes 6 segments"):
        run(json_request(BOOK), caller(max_segments=5))
    chapters = "".join(f"Chapter {n}\n\nWord.\n\n" for n in range(1, 5001))  # at least 10,000 segments
    started = time.perf_counter()
    with pytest.raises(TextTooLarge, match="at least 10000 segments"):
        run(json_request(chapters), caller(max_segments=9_999))
    assert time.perf_counter() - started < 2


def test_key_text_limit() -> None:
    with pytest.raises(TextTooLarge, match="this key's limit of 10"):
        run(json_request("More than ten characters here."), caller(max_text_chars=10))
