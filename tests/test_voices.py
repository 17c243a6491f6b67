"""Voices: the language guard, and speakers registered from reference audio —
stored once, registered once per worker, deleted everywhere."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.conftest import submit, wait_for

pytestmark = pytest.mark.stack

CHINESE = "孙悟空大闹天宫。玉帝大怒，派天兵天将捉拿他。"


def clip(seconds: float = 5.0, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.2 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), rate, format="WAV")
    return buffer.getvalue()


def register(api: httpx.Client, audio: bytes, model: str = "tone", **fields: str) -> httpx.Response:
    form = {"transcript": "Hello, this is my voice.", "name": "Narrator", "model": model, **fields}
    return api.post("/v1/voices", files={"audio": ("me.wav", audio, "audio/wav")}, data=form)


def test_chinese_text_to_an_english_voice_is_422_naming_the_voices_that_fit(api: httpx.Client) -> None:
    response = api.post("/v1/jobs", json={"text": CHINESE, "voice": "joe"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "'en'" in detail and "Chinese" in detail and "tone-zh" in detail
    assert api.post("/v1/jobs", json={"text": CHINESE, "voice": "tone-zh"}).status_code == 202


def test_registered_voice_lives_and_dies(api: httpx.Client, storage, settings) -> None:
    from chorus.tasks.state.fleet import Fleet

    response = register(api, clip())
    assert response.status_code == 201, response.text
    voice = response.json()
    assert voice["model"] == "tone" and voice["name"] == "Narrator" and voice["engine"] == "tone"
    assert voice["id"] in {v["id"] for v in api.get("/v1/voices").json()}
    assert storage.list_keys(f"voices/{voice['id']}/") == [f"voices/{voice['id']}/prompt.wav"]

    fleet = Fleet(storage_redis(settings), ttl_s=60)

    def count(field: str) -> int:
        """Summed over every tone worker the fleet knows (other tests may have started one)."""
        return sum(int(fleet.get(node).get(field, 0)) for node in fleet.nodes_of("tone"))

    before = count("speaker_registrations")
    for _ in range(2):
        status = wait_for(api, submit(api, "One line. Another line. A third line.", voice=voice["id"]))
        assert status["state"] == "done", status["error"]
    # The speaker was registered once on the worker, for six segments in two jobs.
    assert count("speaker_registrations") == before + 1

    forgotten = count("speakers_forgotten")
    assert api.delete(f"/v1/voices/{voice['id']}").status_code == 204
    assert voice["id"] not in {v["id"] for v in api.get("/v1/voices").json()}
    assert storage.list_keys(f"voices/{voice['id']}/") == []
    assert api.post("/v1/jobs", json={"text": "Hello.", "voice": voice["id"]}).status_code == 422
    deadline = time.monotonic() + 10
    while count("speakers_forgotten") == forgotten and time.monotonic() < deadline:
        time.sleep(0.1)
    assert count("speakers_forgotten") == forgotten + 1


def storage_redis(settings):
    import redis

    return redis.Redis.from_url(settings.redis_url)


@pytest.mark.parametrize("audio, fragment", [
    (clip(seconds=1.0), "must last"),
    (clip(seconds=45.0), "must last"),
    (clip(rate=8000), "at least 16000 Hz"),
])
def test_bad_reference_audio_is_422(api: httpx.Client, audio: bytes, fragment: str) -> None:
    response = register(api, audio)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]


def test_reference_that_is_not_audio_is_415(api: httpx.Client) -> None:
    assert register(api, b"this is plain text, not a recording").status_code == 415


def test_a_model_that_cannot_clone_is_422(api: httpx.Client) -> None:
    response = register(api, clip(), model="piper-joe")
    assert response.status_code == 422
    assert "models that can: tone" in response.json()["detail"]


def test_deleting_a_registry_voice_is_409_and_an_unknown_one_404(api: httpx.Client) -> None:
    assert api.delete("/v1/voices/joe").status_code == 409
    assert api.delete("/v1/voices/vdoesnotexist").status_code == 404


def wav_header(rate: int, channels: int, seconds: float, present_bytes: int = 4096) -> bytes:
    """A real 16-bit PCM WAV header claiming ``rate``, ``channels`` and ``seconds``,
    followed by only ``present_bytes`` of silence."""
    data = int(rate * seconds) * channels * 2
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt " + fmt + b"data" + struct.pack("<I", data) + b"\0" * present_bytes


def flac_of_silence(rate: int, channels: int, seconds: int) -> bytes:
    """A real FLAC file: silence compresses to almost nothing, so a small upload
    can decode to hundreds of megabytes."""
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", samplerate=rate, channels=channels, format="FLAC", subtype="PCM_16") as out:
        second = np.zeros((rate, channels), dtype=np.int16)
        for _ in range(seconds):
            out.write(second)
    return buffer.getvalue()


@pytest.mark.parametrize("rate, channels, fragment", [
    (655_350, 8, "48000 Hz"),
    (96_000, 1, "48000 Hz"),
    (48_000, 8, "2 channels"),
])
def test_a_clip_header_over_the_limits_is_refused_before_decoding(rate: int, channels: int, fragment: str) -> None:
    from chorus.tasks.audio.formats import ClipTooLarge, read_clip

    with pytest.raises(ClipTooLarge, match=fragment):
        read_clip(wav_header(rate, channels, 30.0), max_seconds=30.0, max_rate=48_000, max_channels=2)


def test_a_small_flac_that_would_decode_to_630_mb_is_refused_without_decoding() -> None:
    from chorus.tasks.audio.formats import ClipTooLarge, read_clip

    bomb = flac_of_silence(655_350, 8, 30)  # 8 channels x 30 s x 655 kHz: about 630 MB as float32
    assert len(bomb) < 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(ClipTooLarge, match="48000 Hz"):
            read_clip(bomb, max_seconds=30.0, max_rate=48_000, max_channels=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


def test_a_clip_sampled_above_the_limit_is_422_naming_it_and_stores_nothing(api: httpx.Client, storage, settings) -> None:
    before = storage.list_keys("voices/")
    response = register(api, wav_header(655_350, 8, 5.0))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert f"{settings.voice_clip_max_rate} Hz" in detail and "2 channels" in detail
    assert storage.list_keys("voices/") == before
