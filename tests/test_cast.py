"""Several voices in one book, on the real stack: the real Piper voice narrates,
the tone stand-in (another model, another queue, another sample rate) reads
the dialogue or a named character, and the book comes out at one loudness."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(240)

BOOK = """Chapter 1

The keeper climbed the stairs. “Is the lamp lit?” asked Anna from below.
“Not yet,” he called back, “but soon.” The wind rose over the water.

Chapter 2

Night came down on the pier. “Now it is,” said the keeper. The light turned.
"""


def finished(api: httpx.Client, **fields) -> tuple[dict, dict, np.ndarray, int]:
    response = api.post("/v1/jobs", json={"text": BOOK, "voice": "joe", "format": "wav", **fields})
    assert response.status_code == 202, response.text
    status = wait_for(api, response.json()["id"], timeout=200)
    assert status["state"] == "done", status["error"]
    manifest = httpx.get(status["manifest_url"]).json()
    audio, rate = sf.read(io.BytesIO(httpx.get(status["result_url"]).content), dtype="float32")
    return status, manifest, audio, rate


def readers(manifest: dict) -> list[tuple[str, str]]:
    return [(segment.get("voice", manifest["voice"]), segment["text"]) for segment in manifest["segments"]]


def loudness_of(manifest: dict, audio: np.ndarray, rate: int, voice: str) -> float:
    parts = [audio[round(s["start"] * rate) : round(s["end"] * rate)]
             for s in manifest["segments"] if s.get("voice", manifest["voice"]) == voice]
    return pyloudnorm.Meter(rate).integrated_loudness(np.concatenate(parts))


def test_a_dialogue_voice_of_another_model_reads_the_quotations(api: httpx.Client) -> None:
    _, manifest, audio, rate = finished(api, dialogue_voice="tone")
    spoken = readers(manifest)
    assert ("tone", "“Is the lamp lit?”") in spoken and ("tone", "“Not yet,”") in spoken
    assert ("joe", "asked Anna from below.") in spoken and ("joe", "The light turned.") in spoken
    assert all(voice == "tone" for voice, text in spoken if text.startswith("“"))
    assert manifest["voices"] == {"joe": "piper-joe", "tone": "tone"}
    # Piper speaks at 22,050 Hz, the stand-in at 16,000: the book is at the higher rate.
    assert rate == manifest["sample_rate"] == 22050
    # Each voice brought to the target on its own: the two sound equally loud.
    joe, tone = loudness_of(manifest, audio, rate, "joe"), loudness_of(manifest, audio, rate, "tone")
    assert abs(joe - tone) < 1.5, (joe, tone)
    assert abs(manifest["loudness_lufs"] - (-18.0)) < 1.5


def test_characters_are_read_by_their_own_voice(api: httpx.Client) -> None:
    _, manifest, _, _ = finished(api, characters={"Anna": "tone"})
    spoken = readers(manifest)
    assert ("tone", "“Is the lamp lit?”") in spoken  # "asked Anna" follows it
    # No dialogue voice: the narrator reads the rest, quotations and all, in one piece.
    assert ("joe", "“Not yet,” he called back, “but soon.”") in spoken and ("joe", "“Now it is,” said the keeper.") in spoken


def test_inline_tags_choose_a_voice_and_are_not_spoken(api: httpx.Client, storage) -> None:
    text = "The keeper spoke. [voice:tone]A line for the stand-in.[/voice] Then quiet."
    response = api.post("/v1/jobs", json={"text": text, "voice": "joe", "format": "wav"})
    status = wait_for(api, response.json()["id"])
    manifest = httpx.get(status["manifest_url"]).json()
    assert readers(manifest) == [("joe", "The keeper spoke."), ("tone", "A line for the stand-in."),
                                 ("joe", "Then quiet.")]
    plan = json.loads(storage.get_bytes(f"jobs/{status['id']}/plan.json"))
    assert "[voice" not in json.dumps(plan["segments"])


@pytest.mark.parametrize("fields, expected", [
    ({"dialogue_voice": "nobody"}, "unknown voice 'nobody'"),
    ({"characters": {"Anna": "nobody"}}, "unknown voice 'nobody'"),
    ({"dialogue_voice": "tone-zh"}, "voice 'tone-zh' speaks 'zh'"),
    ({"text": "Plain. [voice:ghost]Who?[/voice]"}, "unknown voice 'ghost'"),
    ({"characters": {"": "tone"}}, "characters"),
])
def test_voices_a_book_cannot_use_are_refused(api: httpx.Client, fields: dict, expected: str) -> None:
    response = api.post("/v1/jobs", json={"text": BOOK, "voice": "joe", **fields})
    assert response.status_code == 422 and expected in response.json()["detail"], response.text


def test_a_multipart_upload_takes_a_character_map(api: httpx.Client) -> None:
    response = api.post("/v1/jobs", data={"voice": "joe", "format": "wav", "characters": json.dumps({"Anna": "tone"})},
                        files={"file": ("book.txt", BOOK.encode(), "text/plain")})
    assert response.status_code == 202, response.text
    manifest = httpx.get(wait_for(api, response.json()["id"], timeout=200)["manifest_url"]).json()
    assert ("tone", "“Is the lamp lit?”") in readers(manifest)
