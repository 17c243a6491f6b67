"""Contract tests of the CosyVoice2 engine against a stand-in of CosyVoice's
Python API (tests/standins/cosyvoice: numpy only, no torch, no speech).

What they pin down is how the engine calls CosyVoice: the constructor options,
reference speakers extracted once (never per segment), the arguments of each
inference mode, the sample rate of what comes out, and that the engine module
imports without torch. That real CosyVoice2 speaks is checked by
scripts/gpu_smoke.sh on a GPU machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile

from configs.registry import Model, Voice
from tasks.errors import EngineError, ModelLoadError
from workers.engines import cosyvoice as engine_module
from workers.engines.cosyvoice import CosyVoiceEngine, Resampler, resampler

ROOT = Path(__file__).resolve().parent.parent
STANDINS = Path(__file__).resolve().parent / "standins"
PROMPT_TEXT = "希望你以后能够做的比我还好呦。"


def _drop_cosyvoice_modules() -> None:
    for name in list(sys.modules):
        if name == "cosyvoice" or name.startswith("cosyvoice."):
            del sys.modules[name]


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch):
    """The stand-in importable as ``cosyvoice`` for one test only."""
    _drop_cosyvoice_modules()
    monkeypatch.syspath_prepend(str(STANDINS))
    import cosyvoice
    from cosyvoice.utils import file_utils

    assert getattr(cosyvoice, "STAND_IN", False), f"a real cosyvoice was imported: {cosyvoice.__file__}"
    yield SimpleNamespace(file_utils=file_utils)
    _drop_cosyvoice_modules()


def make_model(tmp_path: Path, device: str = "cuda", sample_rate: int = 24000, **options: object) -> Model:
    return Model(
        name="cosy", engine="cosyvoice2", device=device, version="test", sample_rate=sample_rate,
        max_segment_chars=120, files={"model_dir": str(tmp_path)}, options=dict(options),
    )


def make_voice(voice_id: str, mode: str, sample_rate: int = 24000, **fields: object) -> Voice:
    return Voice(id=voice_id, model="cosy", engine="cosyvoice2", language="zh", sample_rate=sample_rate, mode=mode, **fields)


@pytest.fixture
def prompt_wav(tmp_path: Path) -> Path:
    rate = 22050
    t = np.arange(rate) / rate
    path = tmp_path / "prompt.wav"
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path


def stand_in_speech(text: str, rate: int = 24000) -> np.ndarray:
    """What the stand-in yields for text, both chunks joined."""
    from cosyvoice.cli import cosyvoice as cli

    n = 2 * cli.SAMPLES_PER_CHAR * max(1, len(text))
    return (0.5 * np.sin(2 * np.pi * cli.TONE_HZ * np.arange(n) / rate)).astype(np.float32)


# -- load ---------------------------------------------------------------------------


def test_load_passes_model_dir_and_options(standin, tmp_path: Path) -> None:
    engine = CosyVoiceEngine.load(make_model(tmp_path, device="cuda", load_jit=True))
    assert engine.cosyvoice.init_args["model_dir"] == str(tmp_path)
    assert engine.cosyvoice.init_args["load_jit"] is True
    assert engine.cosyvoice.init_args["load_trt"] is False
    assert engine.cosyvoice.init_args["fp16"] is True  # default on cuda
    assert engine.cosyvoice.init_args["load_vllm"] is False  # not passed: the constructor's default
    assert engine.uses_cuda is True
    assert engine.sample_rate == 24000 and engine.native_rate == 24000

    cpu = CosyVoiceEngine.load(make_model(tmp_path, device="cpu", load_trt=True))
    assert cpu.cosyvoice.init_args["fp16"] is False  # default on cpu
    assert cpu.cosyvoice.init_args["load_trt"] is True
    assert cpu.uses_cuda is False

    explicit = CosyVoiceEngine.load(make_model(tmp_path, device="cuda", fp16=False))
    assert explicit.cosyvoice.init_args["fp16"] is False


def test_load_refuses_a_missing_model_dir(standin, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    model = Model(name="cosy", engine="cosyvoice2", device="cuda", version="t", sample_rate=24000,
                  max_segment_chars=120, files={"model_dir": str(missing)})
    with pytest.raises(ModelLoadError, match="model_dir not found") as caught:
        CosyVoiceEngine.load(model)
    assert str(missing) in str(caught.value)
    assert "'cosy'" in str(caught.value)


def test_load_names_the_missing_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _drop_cosyvoice_modules()
    monkeypatch.setitem(sys.modules, "cosyvoice", None)  # not importable, even if one is installed
    try:
        with pytest.raises(ModelLoadError) as caught:
            CosyVoiceEngine.load(make_model(tmp_path))
    finally:
        monkeypatch.delitem(sys.modules, "cosyvoice", raising=False)
    message = str(caught.value)
    assert "'cosyvoice'" in message
    assert "pip install .[cosyvoice]" in message
    assert "CosyVoice" in message and "PYTHONPATH" in message


def test_load_refuses_cuda_when_torch_sees_none(standin, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_torch = SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: False), set_num_threads=lambda n: None)
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    with pytest.raises(ModelLoadError, match="no CUDA device"):
        CosyVoiceEngine.load(make_model(tmp_path, device="cuda"))
    assert CosyVoiceEngine.load(make_model(tmp_path, device="cpu")).uses_cuda is False


# -- reference speakers ---------------------------------------------------------------


def test_register_speaker_extracts_once(standin, tmp_path: Path, prompt_wav: Path) -> None:
    engine = CosyVoiceEngine.load(make_model(tmp_path))
    engine.register_speaker("narrator", PROMPT_TEXT, prompt_wav)
    engine.register_speaker("narrator", PROMPT_TEXT, prompt_wav)
    assert engine.cosyvoice.add_calls == 1
    assert engine.speaker_registrations == 1
    assert standin.file_utils.load_calls == [(str(prompt_wav), 16000)]
    assert engine.has_speaker("narrator")
    entry = engine.cosyvoice.frontend.spk2info["narrator"]
    assert entry["prompt_text"] == PROMPT_TEXT
    assert entry["prompt_samples"] == 16000  # one second, loaded at 16 kHz


def test_register_speaker_fails_when_cosyvoice_refuses(standin, tmp_path: Path, prompt_wav: Path) -> None:
    engine = CosyVoiceEngine.load(make_model(tmp_path))
    engine.cosyvoice.add_zero_shot_spk = lambda *args: False
    with pytest.raises(EngineError, match="refused"):
        engine.register_speaker("narrator", PROMPT_TEXT, prompt_wav)
    assert not engine.has_speaker("narrator")
    assert engine.speaker_registrations == 0
    with pytest.raises(EngineError, match="not found"):
        engine.register_speaker("other", PROMPT_TEXT, tmp_path / "missing.wav")
    with pytest.raises(EngineError, match="built-in"):
        engine.register_speaker("中文女", PROMPT_TEXT, prompt_wav)


def test_register_voice(standin, tmp_path: Path, prompt_wav: Path) -> None:
    engine = CosyVoiceEngine.load(make_model(tmp_path))
    engine.register_voice(make_voice("cosy-sft", "sft", speaker="中文女"))  # nothing to register
    assert engine.cosyvoice.add_calls == 0
    engine.register_voice(make_voice("clone", "zero_shot", prompt_text=PROMPT_TEXT, prompt_audio=str(prompt_wav)))
    engine.register_voice(make_voice("clone", "zero_shot", prompt_text=PROMPT_TEXT, prompt_audio=str(prompt_wav)))
    assert engine.has_speaker("clone") and engine.cosyvoice.add_calls == 1
    with pytest.raises(EngineError, match="needs prompt_text and prompt_audio"):
        engine.register_voice(make_voice("bare", "instruct2", instruct="用四川话说"))
    with pytest.raises(EngineError, match="not installed"):
        engine.register_voice(make_voice("pkg", "zero_shot", prompt_text=PROMPT_TEXT, prompt_audio="package:no_such_pkg_x/a.wav"))


def test_forget_speaker(standin, tmp_path: Path, prompt_wav: Path) -> None:
    engine = CosyVoiceEngine.load(make_model(tmp_path))
    engine.register_speaker("narrator", PROMPT_TEXT, prompt_wav)
    engine.forget_speaker("narrator")
    assert not engine.has_speaker("narrator")
    assert "narrator" not in engine.cosyvoice.frontend.spk2info
    engine.forget_speaker("中文女")  # not ours: built-in speakers stay
    assert "中文女" in engine.cosyvoice.frontend.spk2info
    with pytest.raises(EngineError, match="not registered"):
        engine.synthesize("你好。", make_voice("narrator", "zero_shot"))
    engine.register_speaker("narrator", PROMPT_TEXT, prompt_wav)  # can come back
    assert engine.cosyvoice.add_calls == 2


# -- synthesis ------------------------------------------------------------------------


def test_zero_shot_segments_reuse_the_registered_speaker(standin, tmp_path: Path, prompt_wav: Path) -> None:
    engine = CosyVoiceEngine.load(make_model(tmp_path))
    voice = make_voice("narrator", "zero_shot", prompt_text=PROMPT_TEXT, prompt_audio=str(prompt_wav))
    engine.register_voice(voice)
    segments = ["第一句。", "第二句话。", "第三句话在这里。", "第四。", "最后一句话了。"]
    for text in segments:
        audio = engine.synthesize(text, voice)
        assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size > 0
    assert engine.cosyvoice.add_calls == 1
    assert len(standin.file_utils.load_calls) == 1
    calls = [args for name, args in engine.cosyvoice.calls]
    assert [name for name, _ in engine.cosyvoice.calls] == ["inference_zero_shot"] * 5
    assert [c["tts_text"] for c in calls] == segments
    for call in calls:
        assert call["prompt_text"] == ""
        assert call["prompt_speech_16k"] == ""
        assert call["zero_shot_spk_id"] == "narrator"
        assert call["stream"] is False


def test_sft_passes_the_speaker(standin, tmp_path: Path) -> None:
    engine = CosyVoiceEngine.load(make_model(tmp_path))
    audio = engine.synthesize("你好，世界。", make_voice("cosy-zh", "sft", speaker="中文女"))
    assert engine.cosyvoice.calls == [("inference_sft", {"tts_text": "你好，世界。", "spk_id": "中文女", "stream": False, "speed": 1.0})]
    assert audio.size == stand_in_speech("你好，世界。").size
    engine.synthesize("Hello.", make_voice("cosy-en", "default", speaker="英文男"))
    assert engine.cosyvoice.calls[-1][1]["spk_id"] == "英文男"
    with pytest.raises(EngineError, match="unknown"):
        engine.synthesize("你好。", make_voice("cosy-x", "sft", speaker="nobody"))
    with pytest.raises(EngineError, match="unknown"):
        engine.synthesize("你好。", make_voice("cosy-none", "sft"))


def test_instruct2_passes_instruct_and_speaker(standin, tmp_path: Path, prompt_wav: Path) -> None:
    engine = CosyVoiceEngine.load(make_model(tmp_path))
    voice = make_voice("sichuan", "instruct2", instruct="用四川话说这句话", prompt_text=PROMPT_TEXT, prompt_audio=str(prompt_wav))
    engine.register_voice(voice)
    # Twice: the real frontend_instruct2 deletes keys from the speaker's spk2info
    # entry in place; the engine must keep the entry whole for the next segment.
    for text in ("收到好友的礼物。", "我很高兴。"):
        engine.synthesize(text, voice)
    name, call = engine.cosyvoice.calls[-1]
    assert name == "inference_instruct2"
    assert call["instruct_text"] == "用四川话说这句话"
    assert call["zero_shot_spk_id"] == "sichuan"
    assert call["prompt_speech_16k"] == ""
    assert "llm_prompt_speech_token" in engine.cosyvoice.frontend.spk2info["sichuan"]
    # a zero-shot voice on the same speaker still works afterwards
    engine.synthesize("再说一句。", make_voice("sichuan", "zero_shot"))
    assert engine.cosyvoice.add_calls == 1


def test_unregistered_and_unknown_modes_fail(standin, tmp_path: Path) -> None:
    engine = CosyVoiceEngine.load(make_model(tmp_path))
    with pytest.raises(EngineError, match="not registered"):
        engine.synthesize("你好。", make_voice("stranger", "zero_shot"))
    with pytest.raises(EngineError, match="not registered"):
        engine.synthesize("你好。", make_voice("stranger", "instruct2", instruct="大声"))
    with pytest.raises(EngineError, match="unknown CosyVoice mode"):
        engine.synthesize("你好。", make_voice("odd", "cross_lingual"))
    assert engine.cosyvoice.calls == []


def test_cosyvoice_errors_become_engine_errors(standin, tmp_path: Path, prompt_wav: Path) -> None:
    engine = CosyVoiceEngine.load(make_model(tmp_path))
    engine.register_speaker("narrator", PROMPT_TEXT, prompt_wav)
    del engine.cosyvoice.frontend.spk2info["narrator"]  # CosyVoice lost it: KeyError inside
    with pytest.raises(EngineError, match="KeyError"):
        engine.synthesize("你好。", make_voice("narrator", "zero_shot"))


# -- sample rates and resampling ----------------------------------------------------------


def test_native_rate_output_is_not_resampled(standin, tmp_path: Path) -> None:
    engine = CosyVoiceEngine.load(make_model(tmp_path, sample_rate=24000))
    text = "这是一个测试句子。"
    audio = engine.synthesize(text, make_voice("cosy-zh", "sft", speaker="中文女"))
    np.testing.assert_array_equal(audio, stand_in_speech(text))


def test_output_is_resampled_to_the_registry_rate(standin, tmp_path: Path) -> None:
    engine = CosyVoiceEngine.load(make_model(tmp_path, sample_rate=22050))
    assert engine.sample_rate == 22050 and engine.native_rate == 24000
    text = "这是一个测试句子。"
    audio = engine.synthesize(text, make_voice("cosy-zh", "sft", speaker="中文女", sample_rate=22050))
    native = stand_in_speech(text)
    assert audio.dtype == np.float32
    assert abs(audio.size - native.size * 22050 / 24000) <= 2
    assert np.abs(audio).max() <= 1.0
    # the stand-in's tone survives at its own frequency
    from cosyvoice.cli import cosyvoice as cli

    assert abs(peak_hz(audio, 22050) - cli.TONE_HZ) < 22050 / audio.size * 1.5


def test_resampler_built_once_per_rate_pair(standin, tmp_path: Path) -> None:
    resampler.cache_clear()
    before = Resampler.constructed
    first = CosyVoiceEngine.load(make_model(tmp_path, sample_rate=22050))
    second = CosyVoiceEngine.load(make_model(tmp_path, sample_rate=22050))
    voice = make_voice("cosy-zh", "sft", speaker="中文女", sample_rate=22050)
    for _ in range(3):
        first.synthesize("一二三。", voice)
        second.synthesize("四五六。", voice)
    assert Resampler.constructed - before == 1
    assert resampler.cache_info().misses == 1
    CosyVoiceEngine.load(make_model(tmp_path, sample_rate=16000)).synthesize("七。", voice)
    assert Resampler.constructed - before == 2
    CosyVoiceEngine.load(make_model(tmp_path, sample_rate=24000))  # native rate: none needed
    assert Resampler.constructed - before == 2


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize(("source", "target"), [(24000, 22050), (24000, 16000), (16000, 24000), (22050, 48000)])
def test_resampler_keeps_frequency_and_scales_length(source: int, target: int) -> None:
    t = np.arange(source) / source  # one second
    sine = (0.8 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = Resampler(source, target)(sine)
    assert out.dtype == np.float32
    assert abs(out.size - sine.size * target / source) <= 2
    assert abs(peak_hz(out, target) - 1000) <= 2  # 1 Hz bins
    # amplitude kept (away from the edges), nothing aliased in
    middle = out[target // 10 : -target // 10]
    assert abs(np.abs(middle).max() - 0.8) < 0.02


def test_resampler_is_reusable_segment_after_segment() -> None:
    segment = np.sin(np.arange(24000) / 24000 * 2 * np.pi * 440).astype(np.float32)
    resample = Resampler(24000, 22050)
    first, second = resample(segment), resample(segment)
    assert np.array_equal(first, second)  # no state carried from one segment to the next


def test_resampler_removes_what_the_target_cannot_hold() -> None:
    source, target = 24000, 16000
    t = np.arange(source) / source
    above_nyquist = np.sin(2 * np.pi * 10000 * t)  # 10 kHz: above 8 kHz, would alias to 6 kHz
    out = Resampler(source, target)(above_nyquist)
    assert np.sqrt(np.mean(out[1000:-1000] ** 2)) < 0.01


# -- imports --------------------------------------------------------------------------


def test_engine_module_imports_without_torch() -> None:
    code = (
        "import sys\n"
        "import workers.engines.cosyvoice\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert not any(m == 'cosyvoice' or m.startswith('cosyvoice.') for m in sys.modules), 'cosyvoice imported'\n"
        "assert not [m for m in sys.modules if m.startswith('tasks.') and m != 'tasks.errors'], 'tasks imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert engine_module.__name__ == "workers.engines.cosyvoice"
