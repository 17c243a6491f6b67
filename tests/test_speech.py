"""POST /v1/audio/speech, driven by OpenAI's own Python client as a user would,
against the real stack: audio decoded in every response format, streamed
before the job is done, refusals that enqueue nothing, a listener who leaves
cancelling the job; and captioned speech, read as Kokoro-FastAPI's client reads it."""

from __future__ import annotations

import base64
import io
import json
import time

import av
import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(180)

SLOW = "dawdle"  # the tone stand-in takes 4 s over a segment with this word (tests/voices.toml)


@pytest.fixture(scope="module")
def client(stack: dict[str, str]) -> openai.OpenAI:
    return openai.OpenAI(api_key=stack["CHORUS_API_KEY"], base_url=stack["CHORUS_API_URL"] + "/v1", max_retries=0)


def decoded_seconds(data: bytes) -> float:
    """Length of an encoded stream, decoded by FFmpeg from its own bytes."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


def jobs_of(jobs, owner: str) -> set[str]:
    return {job.decode() for job, who in jobs.redis.hgetall("chorus:jobs:owners").items() if who.decode() == owner}


def test_openai_client_speaks_with_the_real_voice(client: openai.OpenAI, api: httpx.Client) -> None:
    """An OpenAI voice name (mapped to the default voice, Piper), WAV back, and its job done as well."""
    raw = client.audio.speech.with_raw_response.create(
        model="tts-1", voice="alloy", input="The lamp was lit at dusk. It burned until dawn.", response_format="wav",
    )
    audio = raw.parse().content
    samples, rate = sf.read(io.BytesIO(audio), dtype="float32")
    assert rate == 22050 and 1.5 < samples.size / rate < 8, samples.size / rate
    assert np.abs(samples).max() > 0.05  # speech, not silence
    status = wait_for(api, raw.headers["x-chorus-job"])
    assert status["state"] == "done" and status["voice"] == "joe" and status["format"] == "wav"


@pytest.mark.parametrize("response_format", ["mp3", "opus", "aac", "flac", "wav"])
def test_every_response_format_decodes(client: openai.OpenAI, response_format: str) -> None:
    response = client.audio.speech.create(
        model="tts-1", voice="tone", input="One line here. And a second one.", response_format=response_format,
    )
    seconds = decoded_seconds(response.content)
    # The tone stand-in speaks about 65 ms per letter; two segments and a pause.
    assert 1.0 < seconds < 6.0, (response_format, seconds)


def test_pcm_is_raw_16_bit_at_24_khz(client: openai.OpenAI) -> None:
    wav = client.audio.speech.create(model="tts-1", voice="tone", input="Raw samples please.", response_format="wav")
    pcm = client.audio.speech.create(model="tts-1", voice="tone", input="Raw samples please.", response_format="pcm")
    samples, rate = sf.read(io.BytesIO(wav.content), dtype="float32")
    assert len(pcm.content) % 2 == 0
    assert abs(len(pcm.content) / 2 / 24000 - samples.size / rate) < 0.02


def test_audio_streams_before_the_job_is_done(client: openai.OpenAI, api: httpx.Client) -> None:
    """The first bytes come while a later segment is still being spoken."""
    text = f"The first sentence is quick. The second one will {SLOW} a while. So will this {SLOW}."
    started = time.monotonic()
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="tone", input=text, response_format="mp3",
    ) as response:
        job_id = response.headers["x-chorus-job"]
        chunks = response.iter_bytes()
        first = next(chunks)
        first_at = time.monotonic() - started
        during = api.get(f"/v1/jobs/{job_id}").json()
        data = first + b"".join(chunks)
        all_at = time.monotonic() - started
    assert first and during["state"] == "running" and during["segments_done"] < during["segments_total"], during
    assert all_at - first_at > 3.0, (first_at, all_at)  # the slow segments came after the first bytes
    assert decoded_seconds(data) > 2.0
    assert wait_for(api, job_id)["state"] == "done"


def test_a_listener_who_leaves_cancels_the_job(stack: dict[str, str], api: httpx.Client) -> None:
    text = "Quick start. " + " ".join(f"Then {SLOW} number {n}." for n in range(6))
    headers = {"Authorization": f"Bearer {stack['CHORUS_API_KEY']}"}
    with httpx.stream("POST", stack["CHORUS_API_URL"] + "/v1/audio/speech", headers=headers, timeout=30,
                      json={"model": "tts-1", "voice": "tone", "input": text, "response_format": "pcm"}) as response:
        assert response.status_code == 200
        job_id = response.headers["x-chorus-job"]
        next(response.iter_raw())
    assert wait_for(api, job_id, timeout=30)["state"] == "cancelled"


def test_too_long_input_is_refused_and_enqueues_nothing(client: openai.OpenAI, jobs, owner: str, settings) -> None:
    before = jobs_of(jobs, owner)
    with pytest.raises(openai.APIStatusError) as refused:
        client.audio.speech.create(model="tts-1", voice="alloy", input="word " * (settings.speech_max_chars // 5 + 1))
    assert refused.value.status_code == 413 and "/v1/jobs" in refused.value.response.json()["detail"]
    for bad in ({"speed": 3.0}, {"voice": "nobody"}, {"response_format": "ogg"}):
        request = {"model": "tts-1", "voice": "alloy", "input": "Hello.", **bad}
        with pytest.raises(openai.UnprocessableEntityError):
            client.audio.speech.create(**request)
    assert jobs_of(jobs, owner) == before


def test_a_job_that_fails_before_any_audio_is_an_error(client: openai.OpenAI) -> None:
    """'kaboom' fails the tone stand-in for good: no audio, a 502 that says why."""
    with pytest.raises(openai.APIStatusError) as failed:
        client.audio.speech.create(model="tts-1", voice="tone", input="kaboom goes the first segment.")
    assert failed.value.status_code == 502
    assert "failed" in failed.value.response.json()["detail"]


def test_a_wrong_key_is_refused(stack: dict[str, str]) -> None:
    stranger = openai.OpenAI(api_key="chorus_nobody", base_url=stack["CHORUS_API_URL"] + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.audio.speech.create(model="tts-1", voice="alloy", input="Hello.")


# --- captioned speech (Kokoro-FastAPI's shape) ---------------------------------


def captioned(stack: dict[str, str], path: str, **fields) -> httpx.Response:
    """A request as Kokoro's example client makes it: JSON in, JSON out."""
    return httpx.post(stack["CHORUS_API_URL"] + path, headers={"Authorization": f"Bearer {stack['CHORUS_API_KEY']}"},
                      json={"model": "kokoro", "voice": "tone", "speed": 1.0, **fields}, timeout=60)


def assert_ordered_within(timestamps: list[dict], seconds: float) -> None:
    starts = [t["start_time"] for t in timestamps]
    assert starts == sorted(starts), timestamps
    for t in timestamps:
        assert 0 <= t["start_time"] < t["end_time"] <= seconds + 0.001, (t, seconds)
    for before, after in zip(timestamps, timestamps[1:]):
        assert before["end_time"] <= after["start_time"], (before, after)


@pytest.mark.parametrize("path", ["/dev/captioned_speech", "/v1/audio/captioned_speech"])
def test_captioned_speech_as_kokoros_client_reads_it(stack: dict[str, str], api: httpx.Client, path: str) -> None:
    """Not streamed: one JSON object, its audio in base64, one timestamp per
    sentence (the tone stand-in gives no word timings), in the audio's time."""
    text = "The first line is here. The second line follows it."
    response = captioned(stack, path, input=text, response_format="wav", stream=False)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["audio_format"] == "audio/wav"
    samples, rate = sf.read(io.BytesIO(base64.b64decode(document["audio"])), dtype="float32")
    seconds = samples.size / rate
    assert [t["word"] for t in document["timestamps"]] == ["The first line is here.", "The second line follows it."]
    assert_ordered_within(document["timestamps"], seconds)
    assert document["timestamps"][0]["start_time"] == 0.0
    assert seconds - document["timestamps"][-1]["end_time"] < 0.05  # the last sentence ends the audio
    assert wait_for(api, response.headers["x-chorus-job"])["state"] == "done"


def test_captioned_speech_names_the_words_of_the_input(stack: dict[str, str], api: httpx.Client) -> None:
    """The real Piper voice aligns the words it says ("Doctor", "eighteen
    eighteen"); a Kokoro client gets the words it sent ("Dr.", "1818,"): one
    timestamp per written word, in order, inside the audio, a number said as
    two words spanning both."""
    text = "Dr. Smith came home in 1818, after the war. It was late."
    response = captioned(stack, "/dev/captioned_speech", input=text, voice="joe", response_format="wav", stream=False)
    assert response.status_code == 200, response.text
    document = response.json()
    samples, rate = sf.read(io.BytesIO(base64.b64decode(document["audio"])), dtype="float32")
    seconds = samples.size / rate
    timestamps = document["timestamps"]
    assert [t["word"] for t in timestamps] == text.split()
    assert_ordered_within(timestamps, seconds)
    year = timestamps[text.split().index("1818,")]
    assert year["end_time"] - year["start_time"] > 0.4, year  # "eighteen eighteen", not one short word
    assert wait_for(api, response.headers["x-chorus-job"])["state"] == "done"


def test_captioned_speech_streams_a_line_per_sentence(stack: dict[str, str]) -> None:
    """Streamed (Kokoro's default): one JSON object per line as each sentence
    is spoken; the lines' audio joined is one MP3, the timestamps its own."""
    text = "One short line. Then another one. And a third to end."
    headers = {"Authorization": f"Bearer {stack['CHORUS_API_KEY']}"}
    with httpx.stream("POST", stack["CHORUS_API_URL"] + "/dev/captioned_speech", headers=headers, timeout=60,
                      json={"model": "kokoro", "input": text, "voice": "tone", "response_format": "mp3"}) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert len(lines) >= 3 and all(line["audio_format"] == "audio/mpeg" for line in lines)
    timestamps = [t for line in lines for t in line["timestamps"]]
    assert [t["word"] for t in timestamps] == ["One short line.", "Then another one.", "And a third to end."]
    seconds = decoded_seconds(b"".join(base64.b64decode(line["audio"]) for line in lines))
    assert_ordered_within(timestamps, seconds)


def test_captioned_speech_refuses_bad_input_and_enqueues_nothing(stack: dict[str, str], jobs, owner: str) -> None:
    before = jobs_of(jobs, owner)
    for bad in ({"speed": 4.0}, {"voice": "nobody"}, {"response_format": "m4a"}, {"input": ""}):
        response = captioned(stack, "/dev/captioned_speech", **{"input": "Hello.", **bad})
        assert response.status_code == 422, (bad, response.text)
    assert jobs_of(jobs, owner) == before


def test_captioned_speech_that_fails_midway_is_an_error(stack: dict[str, str]) -> None:
    """Not streamed, nothing is sent before the end: a job whose later sentence
    fails (its first one is quick, the failing one retried first) is a 502
    that says why, not half the audio."""
    response = captioned(stack, "/dev/captioned_speech", input="A fine start. Then kaboom goes the rest.", stream=False)
    assert response.status_code == 502, response.text
    assert "failed" in response.json()["detail"]


def test_word_timings_from_the_record_are_placed_in_the_stream() -> None:
    """A segment whose cached record carries spoken-word timings gets one
    timestamp per WRITTEN word, moved to where the segment starts in the
    stream: "1818." said as two words spans both; without, one for the sentence."""
    from chorus.api.routes.captions import segment_timestamps
    from chorus.tasks.audio import formats
    from chorus.tasks.audio.takes import wav_with_record

    wav = formats.to_wav_bytes(np.zeros(22050, np.float32), 22050)
    segment = {"text": "It was 1818.", "spoken": "it was eighteen eighteen", "words": [1, 2, 4]}
    timed = wav_with_record(wav, {"takes": 1, "spoken_words": [[0.0, 0.1], [0.1, 0.3], [0.3, 0.6], [0.6, 0.9]]})
    assert segment_timestamps(segment, timed, 2.5, 1.0) == [
        {"word": "It", "start_time": 2.5, "end_time": 2.6}, {"word": "was", "start_time": 2.6, "end_time": 2.8},
        {"word": "1818.", "start_time": 2.8, "end_time": 3.4}]
    planned_before = {k: v for k, v in segment.items() if k != "words"}  # a plan without the correspondence
    assert segment_timestamps(planned_before, timed, 2.5, 1.0) == segment_timestamps(segment, timed, 2.5, 1.0)
    assert segment_timestamps(segment, wav, 2.5, 1.0) == [{"word": "It was 1818.", "start_time": 2.5, "end_time": 3.5}]
    short = wav_with_record(wav, {"takes": 1, "spoken_words": [[0.0, 0.1]]})  # times for a different spoken form
    assert [t["word"] for t in segment_timestamps(segment, short, 0.0, 1.0)] == ["It was 1818."]
