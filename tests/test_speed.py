"""Speed: validated at submission, part of the plan and of each segment's
cache key (1.0 keeps the keys there were before speed existed), applied by
each engine in its own terms, expected by the take check; and, against the
real stack, a job at 2.0 on the real Piper voice is clearly shorter than one
at 1.0."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from chorus.api.submission import Received
from chorus.configs import Model, Voice
from chorus.tasks.audio import takes
from chorus.tasks.errors import InputError
from chorus.tasks.text.plan import Plan, job_speed, segment_key, segment_keys
from tests.conftest import JOE, JOE_MODEL, REGISTRY, plan_of, plan_text, submission_of, wait_for
from tests.test_text_plan_keys import key_as_first_written
from tests.test_cosyvoice import engine, make_voice, prompt_wav, tiny_model, upstream, upstream_code  # noqa: F401
from chorus.workers.engines.cosyvoice import CosyVoiceEngine
from chorus.workers.engines.piper import PiperEngine
from chorus.workers.engines.tone import ToneEngine

STORY = ("The keeper climbed the stairs at dusk and wound the clockwork before the storm came in. "
         "Far below, the sea threw itself against the rocks, and the lamp turned on through the night.")


# -- plan and keys --------------------------------------------------------------------


def test_normal_speed_keeps_the_keys_there_were() -> None:
    for spoken in ("Hello there.", "", "中文。"):
        expected = key_as_first_written(spoken, "ns")
        assert segment_key(spoken, JOE, JOE_MODEL, "ns", speed=1.0) == expected
        assert segment_keys(JOE, JOE_MODEL, "ns", 1.0)(spoken) == expected


def test_every_other_speed_has_keys_of_its_own() -> None:
    keys = {speed: segment_key("Hello there.", JOE, JOE_MODEL, "ns", speed) for speed in (0.5, 0.75, 1.0, 1.5, 2.0)}
    assert len(set(keys.values())) == len(keys)
    assert segment_key("Hello there.", JOE, JOE_MODEL, "ns", 1.5) == keys[1.5]  # and they are stable


def test_the_plan_holds_the_speed_and_only_the_keys_change() -> None:
    normal, fast = plan_text(STORY), plan_text(STORY, speed=2.0)
    assert (normal.speed, fast.speed) == (1.0, 2.0)
    assert [(s.text, s.spoken) for s in normal.segments] == [(s.text, s.spoken) for s in fast.segments]
    assert not {s.cache_key for s in normal.segments} & {s.cache_key for s in fast.segments}
    assert plan_text(STORY, speed=1).segments == normal.segments  # 1 and 1.0 are one speed
    assert Plan.from_dict(json.loads(json.dumps(fast.to_dict()))) == fast


def test_a_plan_stored_before_speed_existed_still_reads() -> None:
    document = plan_text(STORY).to_dict()
    del document["speed"], document["lexicon"]
    old = Plan.from_dict(document)
    assert old.speed == 1.0 and old.lexicon == ()


def test_speed_is_kept_to_three_decimals() -> None:
    assert job_speed(1.23456) == 1.235 and job_speed(2) == 2.0
    assert plan_text(STORY, speed=1.0001).segments == plan_text(STORY).segments


@pytest.mark.parametrize("speed", [0.49, 2.01, 0, -1, "fast", None])
def test_speed_out_of_range_is_refused(speed: object) -> None:
    with pytest.raises(InputError, match="speed"):
        plan_text(STORY, speed=speed)


def test_a_form_field_carries_the_speed() -> None:
    fields = {"voice": "tone", "speed": "0.5"}
    submission = submission_of(Received("upload", STORY.encode(), "a.txt", fields))
    assert plan_of(submission).speed == 0.5
    with pytest.raises(InputError, match="speed"):
        submission_of(Received("upload", STORY.encode(), "a.txt", {"speed": "3"}))


# -- the take check -------------------------------------------------------------------


def test_the_take_check_expects_the_speed() -> None:
    normal, fast, slow = takes.expected(STORY), takes.expected(STORY, 2.0), takes.expected(STORY, 0.5)
    assert fast.high_s == pytest.approx((normal.high_s - takes.SLACK_HIGH_S) / 2 + takes.SLACK_HIGH_S)
    assert slow.high_s == pytest.approx((normal.high_s - takes.SLACK_HIGH_S) * 2 + 2 * takes.SLACK_HIGH_S)
    assert fast.low_s < normal.low_s < slow.low_s


def test_a_loop_at_double_speed_is_caught_only_when_the_judge_knows_the_speed() -> None:
    tone = ToneEngine(REGISTRY.models["tone"])
    voice = REGISTRY.voices["tone"]
    fast = tone.synthesize(STORY, voice, speed=2.0)
    assert takes.judge(fast, tone.sample_rate, STORY, speed=2.0).ok
    looped = np.tile(fast, 3)
    assert takes.judge(looped, tone.sample_rate, STORY).ok  # as long as a normal take would be: missed
    assert "too long" in takes.judge(looped, tone.sample_rate, STORY, speed=2.0).reason()


# -- engines --------------------------------------------------------------------------


def test_the_tone_stand_in_scales_its_duration() -> None:
    tone = ToneEngine(REGISTRY.models["tone"])
    voice = REGISTRY.voices["tone"]
    sizes = {speed: tone.synthesize(STORY, voice, speed=speed).size for speed in (0.5, 1.0, 2.0)}
    assert sizes[2.0] == pytest.approx(sizes[1.0] / 2, rel=0.01)
    assert sizes[0.5] == pytest.approx(sizes[1.0] * 2, rel=0.01)


@pytest.fixture(scope="module")
def piper() -> PiperEngine:
    return PiperEngine.load(JOE_MODEL, threads=1)


def test_piper_divides_the_voices_length_scale(piper: PiperEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    configs_seen = []
    real = piper.voice.synthesize
    monkeypatch.setattr(piper.voice, "synthesize", lambda text, config: configs_seen.append(config) or real(text, config))
    for speed in (1.0, 2.0, 0.5):
        piper.synthesize("Hello.", JOE, speed=speed)
    own = piper.voice.config.length_scale
    assert [c.length_scale for c in configs_seen] == [None, own / 2.0, own / 0.5]  # None: the voice's own
    assert all(c.normalize_audio is False for c in configs_seen)


def test_piper_at_double_speed_is_clearly_shorter_and_passes_the_take_check(piper: PiperEngine) -> None:
    audio = {speed: piper.synthesize(STORY, JOE, speed=speed) for speed in (1.0, 2.0)}
    seconds = {speed: samples.size / piper.sample_rate for speed, samples in audio.items()}
    assert seconds[2.0] < 0.75 * seconds[1.0], seconds
    for speed, samples in audio.items():
        assert takes.judge(samples, piper.sample_rate, STORY, speed=speed).ok, seconds


class FakeCosyVoice:
    """Upstream's CosyVoice2 as the engine calls it: the calls recorded."""

    sample_rate = 24000

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.frontend = SimpleNamespace(spk2info={"narrator": {}}, _extract_text_token=lambda text: ([1], 1))

    def list_available_spks(self) -> list[str]:
        return []

    def _speak(self, name: str, kwargs: dict):
        self.calls.append((name, kwargs))
        yield {"tts_speech": np.zeros((1, int(self.sample_rate / kwargs["speed"])), dtype=np.float32) + 0.1}

    def inference_zero_shot(self, *args, **kwargs):
        return self._speak("inference_zero_shot", kwargs)

    def inference_instruct2(self, *args, **kwargs):
        return self._speak("inference_instruct2", kwargs)


def test_cosyvoice_passes_the_speed_to_upstream() -> None:
    model = Model(name="cosy", engine="cosyvoice2", device="cpu", version="t", sample_rate=24000, max_segment_chars=100)
    fake = FakeCosyVoice()
    cosy = CosyVoiceEngine(model, fake, uses_cuda=False)
    cosy._speakers.add("narrator")
    zero_shot = Voice(id="narrator", model="cosy", engine="cosyvoice2", language="zh", sample_rate=24000, mode="zero_shot")
    instruct = Voice(id="narrator", model="cosy", engine="cosyvoice2", language="zh", sample_rate=24000,
                     mode="instruct2", instruct="Slowly.")
    assert cosy.synthesize("你好。", zero_shot).size == 24000
    assert cosy.synthesize("你好。", zero_shot, speed=2.0).size == 12000
    cosy.synthesize("你好。", instruct, speed=0.5)
    assert [(name, kwargs["speed"], kwargs["stream"]) for name, kwargs in fake.calls] == [
        ("inference_zero_shot", 1.0, False), ("inference_zero_shot", 2.0, False), ("inference_instruct2", 0.5, False)]


@upstream
def test_cosyvoice_upstream_speaks_faster(engine: CosyVoiceEngine) -> None:  # noqa: F811
    """Upstream's own code: the mel spectrogram is stretched before the vocoder."""
    voice = make_voice("narrator", "zero_shot")
    text = "The keeper climbed the stairs."
    normal, fast = (engine.synthesize(text, voice, seed=7, speed=speed) for speed in (1.0, 2.0))
    assert fast.size == pytest.approx(normal.size / 2, rel=0.1)


# -- against the real stack -----------------------------------------------------------


@pytest.mark.stack
def test_a_job_at_double_speed_on_piper_is_clearly_shorter(api) -> None:
    seconds = {}
    for speed in (1.0, 2.0):
        response = api.post("/v1/jobs", json={"text": STORY, "voice": "joe", "speed": speed, "format": "wav"})
        assert response.status_code == 202, response.text
        status = wait_for(api, response.json()["id"], timeout=180)
        assert status["state"] == "done", status["error"]
        assert status["suspect_segments"] == 0
        seconds[speed] = status["audio_seconds"]
    assert seconds[2.0] < 0.75 * seconds[1.0], seconds
    print(f"piper joe, {len(STORY)} characters: {seconds[1.0]:.2f} s at 1.0, {seconds[2.0]:.2f} s at 2.0")


@pytest.mark.stack
def test_speed_out_of_range_is_422(api) -> None:
    for speed in (0.25, 2.5, "fast"):
        response = api.post("/v1/jobs", json={"text": STORY, "voice": "tone", "speed": speed})
        assert response.status_code == 422, response.text
        assert "speed" in response.json()["detail"]
    upload = api.post("/v1/jobs", files={"file": ("a.txt", STORY.encode())}, data={"voice": "tone", "speed": "9"})
    assert upload.status_code == 422 and "speed" in upload.json()["detail"]
