"""The CosyVoice2 engine, against upstream CosyVoice's own code.

Two kinds of test:

- unmarked, in the main environment (no torch): the engine module imports
  without torch; load refuses what it can see before importing upstream; the
  registry refuses sft voices on a model directory without stored speakers;
  the resampler; the worker's ``--inflight`` pool and option.
- marked ``upstream_cosyvoice``, in ``.venv-cosyvoice`` (``make test`` runs
  them there; elsewhere they skip and say why): upstream's real code at commit
  ace7c47 from ``../shared/vendor/cosyvoice-ace7c47`` (or
  ``CHORUS_COSYVOICE_SOURCE``), with a tiny, randomly initialised CosyVoice2
  model built from upstream's own classes (tests/upstream_cosyvoice.py). First
  the engine in this process, then Chorus's real worker processes (prefork and
  ``--inflight 2``) on a real stack: registration once per process, several
  segments, instruct2, sft refused, a cloned voice forgotten, memory released
  once per job. The audio is noise; every call runs upstream's code.
  Where no CPU torchaudio exists, ``tests/standins/torchaudio_shim`` stands in
  for it (the only stand-in).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import upstream_cosyvoice as up

from chorus.configs.registry import Model, RegistryError, Voice, load_registry
from chorus.tasks.errors import EngineError, ModelLoadError, VoiceMismatch
from chorus.workers.engines import cosyvoice as engine_module
from chorus.workers.engines.cosyvoice import CosyVoiceEngine, Resampler, instruction_prompt, resampler

ROOT = Path(__file__).resolve().parent.parent
PROMPT_TEXT = "希望你以后能够做的比我还好呦。"
INSTRUCTION = "用四川话说这句话"
upstream = pytest.mark.upstream_cosyvoice


def make_model(model_dir: Path, device: str = "cpu", sample_rate: int = 24000, source: bool = True, **options: object) -> Model:
    files = {"model_dir": str(model_dir)}
    if source:
        files["source"] = str(up.source_dir())
    return Model(
        name="cosy", engine="cosyvoice2", device=device, version="test", sample_rate=sample_rate,
        max_segment_chars=120, files=files, options=dict(options),
    )


def make_voice(voice_id: str, mode: str, sample_rate: int = 24000, **fields: object) -> Voice:
    return Voice(id=voice_id, model="cosy", engine="cosyvoice2", language="zh", sample_rate=sample_rate, mode=mode, **fields)


# == without upstream (main environment) ==================================================


def test_engine_module_imports_without_torch() -> None:
    code = (
        "import sys\n"
        "import chorus.workers.engines.cosyvoice, chorus.workers.inflight\n"
        "from chorus.workers.engines import import_paths\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert not any(m == 'cosyvoice' or m.startswith('cosyvoice.') for m in sys.modules), 'cosyvoice imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert engine_module.UPSTREAM_COMMIT == "ace7c47"


def test_load_refuses_what_it_sees_before_importing_upstream(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model_dir not found") as caught:
        CosyVoiceEngine.load(make_model(tmp_path / "missing"))
    assert str(tmp_path / "missing") in str(caught.value) and "'cosy'" in str(caught.value)
    with pytest.raises(ModelLoadError, match="no cosyvoice2.yaml"):
        CosyVoiceEngine.load(make_model(tmp_path))
    (tmp_path / "cosyvoice2.yaml").write_text("# not read before the checks below\n")
    with pytest.raises(ModelLoadError, match="token_hop_len"):
        CosyVoiceEngine.load(make_model(tmp_path, stream=True))
    with pytest.raises(ModelLoadError, match='load_trt, fp16 need.* device = "cuda"'):
        CosyVoiceEngine.load(make_model(tmp_path, fp16=True, load_trt=True))
    with pytest.raises(ModelLoadError, match="runs on cpu or cuda"):
        CosyVoiceEngine.load(make_model(tmp_path, device="mps"))
    model = Model(name="cosy", engine="cosyvoice2", device="cpu", version="t", sample_rate=24000, max_segment_chars=120,
                  files={"model_dir": str(tmp_path), "source": str(tmp_path / "no-checkout")})
    with pytest.raises(ModelLoadError, match="files.source.*not a directory.*ace7c47.*gpu_install.sh"):
        CosyVoiceEngine.load(model)


def test_load_names_what_is_not_importable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "cosyvoice2.yaml").write_text("# not read\n")
    monkeypatch.setitem(sys.modules, "cosyvoice", None)  # not importable, whatever is installed
    with pytest.raises(ModelLoadError) as caught:
        CosyVoiceEngine.load(make_model(tmp_path, source=False))
    message = str(caught.value)
    assert "needs 'cosyvoice', which is not importable" in message
    assert "pip install '.[gpu]'" in message and "ace7c47" in message and "files.source" in message


def write_registry(path: Path, model_dir: Path | None, voices: str) -> Path:
    model_dir_line = f'files.model_dir = "{model_dir}"\n' if model_dir else ""
    path.write_text(
        '[models.cosy]\nengine = "cosyvoice2"\ndevice = "cuda"\nsample_rate = 24000\n' + model_dir_line + voices,
        encoding="utf-8",
    )
    return path


SFT_VOICE = '[[models.cosy.voices]]\nid = "cosy-zh"\nlanguage = "zh"\nmode = "sft"\nspeaker = "中文女"\n'


def test_registry_refuses_sft_voices_on_a_model_without_stored_speakers(tmp_path: Path) -> None:
    model_dir = tmp_path / "CosyVoice2-0.5B"
    model_dir.mkdir()
    with pytest.raises(RegistryError) as caught:
        load_registry(write_registry(tmp_path / "voices.toml", model_dir, SFT_VOICE))
    message = str(caught.value)
    assert "voice 'cosy-zh'" in message and "'中文女'" in message and "no spk2info.pt" in message
    assert 'mode = "zero_shot" with prompt_audio and prompt_text' in message  # what to do instead
    assert "save_spkinfo()" in message
    # "default" is the old name of sft, and is refused alike
    with pytest.raises(RegistryError, match="names no speaker"):
        load_registry(write_registry(tmp_path / "voices.toml", model_dir, '[[models.cosy.voices]]\nid = "d"\n'))

    (model_dir / "spk2info.pt").write_bytes(b"")  # only its presence is checked here; the engine reads it
    assert "cosy-zh" in load_registry(write_registry(tmp_path / "voices.toml", model_dir, SFT_VOICE)).voices
    # where the directory is not on this host (an API host), nothing can be known: accepted
    registry = load_registry(write_registry(tmp_path / "voices.toml", tmp_path / "elsewhere", SFT_VOICE))
    assert "cosy-zh" in registry.voices
    # cloned voices need no stored speakers
    clone = '[[models.cosy.voices]]\nid = "c"\nmode = "zero_shot"\nprompt_text = "t"\nprompt_audio = "/x.wav"\n'
    (model_dir / "spk2info.pt").unlink()
    assert "c" in load_registry(write_registry(tmp_path / "voices.toml", model_dir, clone)).voices


def test_instruction_prompt_ends_with_endofprompt() -> None:
    assert instruction_prompt("用四川话说这句话") == "用四川话说这句话<|endofprompt|>"
    assert instruction_prompt("  Speak slowly.<|endofprompt|> ") == "Speak slowly.<|endofprompt|>"


# -- the worker's --inflight pool ------------------------------------------------------------


def test_inflight_pool_loads_once_then_runs_tasks_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from chorus.workers import inflight
    from chorus.workers import model as worker_model

    loads = []
    monkeypatch.setattr(worker_model, "engine", lambda: loads.append(1) or SimpleNamespace(model=SimpleNamespace(name="m")))
    pool = inflight.SharedModelPool(limit=3)
    pool.start()
    try:
        assert loads == [1]
        together = threading.Barrier(3, timeout=10)  # passes only if three tasks run at the same time
        done: list[int] = []
        for _ in range(3):
            pool.on_apply(together.wait, args=(), callback=done.append)
        deadline = time.monotonic() + 20
        while len(done) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(done) == [0, 1, 2]
    finally:
        pool.stop()


def test_inflight_pool_exits_when_the_model_cannot_load() -> None:
    code = (
        "from workers import inflight, model\n"
        "def boom():\n    raise RuntimeError('no weights here')\n"
        "model.engine = boom\n"
        "inflight.SharedModelPool(limit=2).start()\n"
        "print('still running')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "still running" not in result.stdout


def test_worker_option_inflight_excludes_concurrency(tmp_path: Path) -> None:
    registry = tmp_path / "voices.toml"
    registry.write_text('[models.t]\nengine = "tone"\nsample_rate = 24000\n[[models.t.voices]]\nid = "t"\n')
    env = {**os.environ, "CHORUS_REGISTRY_FILE": str(registry)}
    result = subprocess.run(
        [sys.executable, "-m", "chorus.cli", "worker", "--model", "t", "--inflight", "2", "--concurrency", "2"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )
    assert result.returncode == 1
    assert "exclude each other" in result.stderr


# -- resampling ------------------------------------------------------------------------------


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
    middle = out[target // 10 : -target // 10]
    assert abs(np.abs(middle).max() - 0.8) < 0.02


def test_resampler_is_reusable_and_built_once_per_pair_and_thread() -> None:
    segment = np.sin(np.arange(24000) / 24000 * 2 * np.pi * 440).astype(np.float32)
    first = resampler(24000, 22050)
    assert resampler(24000, 22050) is first
    assert np.array_equal(first(segment), first(segment))  # no state carried between segments
    others: list[Resampler] = []
    thread = threading.Thread(target=lambda: others.append(resampler(24000, 22050)))
    thread.start()
    thread.join()
    assert others[0] is not first  # a soxr stream is never shared between threads


def test_resampler_removes_what_the_target_cannot_hold() -> None:
    source, target = 24000, 16000
    t = np.arange(source) / source
    out = Resampler(source, target)(np.sin(2 * np.pi * 10000 * t))  # above the new Nyquist
    assert np.sqrt(np.mean(out[1000:-1000] ** 2)) < 0.01


# == upstream's own code (.venv-cosyvoice) ==================================================


@pytest.fixture(scope="session")
def upstream_code() -> None:
    reason = up.skip_reason()
    if reason:
        pytest.skip(reason)
    up.put_on_path()


@pytest.fixture(scope="session")
def tiny_model(upstream_code: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return up.build_tiny_model(tmp_path_factory.mktemp("cosyvoice2-tiny"))


@pytest.fixture(scope="session")
def prompt_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return up.write_prompt(tmp_path_factory.mktemp("prompt") / "prompt.wav", seconds=3.0, rate=22050)


@pytest.fixture(scope="module")
def engine(tiny_model: Path, prompt_wav: Path) -> CosyVoiceEngine:
    loaded = CosyVoiceEngine.load(make_model(tiny_model), threads=2)
    loaded.register_speaker("narrator", PROMPT_TEXT, prompt_wav)
    return loaded


def model_inputs(engine: CosyVoiceEngine, monkeypatch: pytest.MonkeyPatch, run) -> list[dict]:
    """What upstream's frontend hands its model (CosyVoice2Model.tts) while run() runs."""
    calls: list[dict] = []
    real = engine.cosyvoice.model.tts

    def spy(**kwargs):
        calls.append(kwargs)
        yield from real(**kwargs)

    monkeypatch.setattr(engine.cosyvoice.model, "tts", spy)
    try:
        run()
    finally:
        monkeypatch.undo()
    return calls


def same_tensors(a: dict, b: dict, keys: list[str]) -> list[str]:
    import torch

    return [k for k in keys if not (k in a and k in b and torch.equal(a[k].cpu(), b[k].cpu()))]


MODEL_KEYS = ["text", "text_len", "prompt_text", "prompt_text_len", "flow_prompt_speech_token", "prompt_speech_feat",
              "llm_embedding", "flow_embedding"]


@upstream
def test_loads_upstream_at_the_pinned_commit(engine: CosyVoiceEngine, tiny_model: Path) -> None:
    import cosyvoice.cli.cosyvoice as cli
    import cosyvoice.cli.model as model_module

    assert Path(cli.__file__).resolve().is_relative_to(up.source_dir())
    assert type(engine.cosyvoice).__name__ == "CosyVoice2"
    assert engine.provider == "cpu" and engine.native_rate == 24000 and engine.sample_rate == 24000
    assert engine.builtin_speakers == frozenset()  # like CosyVoice2-0.5B: no spk2info.pt
    # the per-call cache release is off; everything else model.py uses still reaches torch
    assert isinstance(model_module.torch, engine_module._TorchWithoutPerCallRelease)
    assert model_module.torch.zeros(2).shape == (2,) and model_module.torch.cuda.is_available() is False


@upstream
def test_refuses_another_api_generation(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cosyvoice.cli.cosyvoice import CosyVoice2

    def add_zero_shot_spk(self, prompt_text, prompt_speech_16k, zero_shot_spk_id):  # the API before ace7c47
        raise AssertionError("never called")

    monkeypatch.setattr(CosyVoice2, "add_zero_shot_spk", add_zero_shot_spk)
    with pytest.raises(ModelLoadError) as caught:
        CosyVoiceEngine.load(make_model(tiny_model))
    message = str(caught.value)
    assert "another API generation" in message and "ace7c47" in message
    assert "add_zero_shot_spk(prompt_text, prompt_speech_16k, zero_shot_spk_id)" in message


@upstream
def test_refuses_cuda_where_torch_sees_none(tiny_model: Path) -> None:
    with pytest.raises(ModelLoadError, match="torch sees no CUDA device"):
        CosyVoiceEngine.load(make_model(tiny_model, device="cuda"))


@upstream
def test_zero_shot_registers_once_and_matches_upstreams_example(
    engine: CosyVoiceEngine, prompt_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frontend = engine.cosyvoice.frontend
    extractions: list[str] = []
    for name in ("_extract_speech_token", "_extract_spk_embedding", "_extract_speech_feat"):
        real = getattr(frontend, name)
        monkeypatch.setattr(frontend, name, lambda wav, real=real, name=name: extractions.append(name) or real(wav))
    engine.register_speaker("narrator", PROMPT_TEXT, prompt_wav)  # again: nothing happens
    voice = make_voice("narrator", "zero_shot")
    texts = ["The keeper climbed the stairs.", "收到好友的礼物。", "One, two, three."]
    lengths = [engine.synthesize(text, voice).size for text in texts]
    assert extractions == []  # the clip was read once, at registration, never per segment
    assert engine.speaker_registrations == 1
    tokens = [len(frontend.tokenizer.encode(text)) for text in texts]
    # the tiny model says two speech tokens per text token, 960 samples (40 ms) each
    assert lengths == [2 * n * 960 for n in tokens]
    monkeypatch.undo()

    ours = model_inputs(engine, monkeypatch, lambda: engine.synthesize(texts[0], voice))
    theirs = model_inputs(engine, monkeypatch, lambda: list(engine.cosyvoice.inference_zero_shot(texts[0], PROMPT_TEXT, str(prompt_wav))))
    assert len(ours) == len(theirs) == 1
    assert same_tensors(ours[0], theirs[0], MODEL_KEYS + ["llm_prompt_speech_token"]) == []
    assert ours[0]["stream"] is False


@upstream
def test_instruct2_speaks_the_instruction_as_upstreams_example_does(
    engine: CosyVoiceEngine, prompt_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    voice = make_voice("narrator", "instruct2", instruct=INSTRUCTION)
    text = "春天来了，公园里的花都开了。"
    ours = model_inputs(engine, monkeypatch, lambda: engine.synthesize(text, voice))
    example = model_inputs(
        engine, monkeypatch, lambda: list(engine.cosyvoice.inference_instruct2(text, INSTRUCTION + "<|endofprompt|>", str(prompt_wav)))
    )
    assert same_tensors(ours[0], example[0], MODEL_KEYS) == []
    assert "llm_prompt_speech_token" not in ours[0]  # instruct2 keeps the clip's tokens out of the LLM
    tokenizer = engine.cosyvoice.frontend.tokenizer
    assert ours[0]["prompt_text"][0].tolist() == tokenizer.encode(INSTRUCTION + "<|endofprompt|>")
    # what upstream does with a registered speaker: the transcript, not the instruction (issue #1400)
    direct = model_inputs(
        engine, monkeypatch, lambda: list(engine.cosyvoice.inference_instruct2(text, INSTRUCTION, "", zero_shot_spk_id="narrator"))
    )
    assert direct[0]["prompt_text"][0].tolist() == tokenizer.encode(PROMPT_TEXT)
    # the registered speaker stays whole: zero-shot segments still get their prompt
    entry = engine.cosyvoice.frontend.spk2info["narrator"]
    assert "llm_prompt_speech_token" in entry and entry["prompt_text"][0].tolist() == tokenizer.encode(PROMPT_TEXT)
    assert engine.synthesize("再说一句。", make_voice("narrator", "zero_shot")).size > 0
    with pytest.raises(VoiceMismatch, match="no instruction"):
        engine.synthesize(text, make_voice("narrator", "instruct2"))


@upstream
def test_forgetting_a_speaker_drops_it_and_its_instruct2_entries(engine: CosyVoiceEngine, prompt_wav: Path) -> None:
    engine.register_speaker("passing", PROMPT_TEXT, prompt_wav)
    engine.synthesize("你好。", make_voice("passing", "instruct2", instruct="Speak slowly."))
    spk2info = engine.cosyvoice.frontend.spk2info
    assert [k for k in spk2info if k.startswith("passing")] == ["passing", next(k for k in spk2info if k.startswith("passing#"))]
    engine.forget_speaker("passing")
    assert not [k for k in spk2info if k.startswith("passing")]
    assert not engine.has_speaker("passing")
    with pytest.raises(VoiceMismatch, match="not registered"):
        engine.synthesize("你好。", make_voice("passing", "zero_shot"))
    engine.register_speaker("passing", PROMPT_TEXT, prompt_wav)  # can come back
    assert engine.synthesize("你好。", make_voice("passing", "zero_shot")).size > 0
    engine.forget_speaker("passing")


@upstream
def test_sft_needs_stored_speakers(engine: CosyVoiceEngine, tiny_model: Path, prompt_wav: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    with pytest.raises(VoiceMismatch) as caught:
        engine.synthesize("你好。", make_voice("cosy-zh", "sft", speaker="中文女"))
    assert "no spk2info.pt" in str(caught.value) and "zero_shot" in str(caught.value)

    # A model directory with stored speakers: one saved by upstream's own
    # save_spkinfo() (a zero-shot entry), one as an SFT model stores them.
    stored = tmp_path / "with-speakers"
    stored.mkdir()
    for item in tiny_model.iterdir():
        (stored / item.name).symlink_to(item)
    monkeypatch.setattr(engine.cosyvoice, "model_dir", str(stored))  # where save_spkinfo() writes
    engine.cosyvoice.add_zero_shot_spk(PROMPT_TEXT, str(prompt_wav), "saved")
    engine.cosyvoice.save_spkinfo()
    engine.cosyvoice.frontend.spk2info.pop("saved")
    speakers = torch.load(stored / "spk2info.pt", weights_only=True)
    speakers["sft-speaker"] = {"embedding": speakers["saved"]["flow_embedding"]}
    torch.save(speakers, stored / "spk2info.pt")

    with_speakers = CosyVoiceEngine.load(make_model(stored))
    assert with_speakers.builtin_speakers >= {"saved", "sft-speaker"}
    calls = []
    for method in ("inference_sft", "inference_zero_shot"):
        real = getattr(with_speakers.cosyvoice, method)
        monkeypatch.setattr(with_speakers.cosyvoice, method, lambda *a, real=real, method=method, **k: calls.append(method) or real(*a, **k))
    assert with_speakers.synthesize("你好。", make_voice("v1", "sft", speaker="sft-speaker")).size > 0
    assert with_speakers.synthesize("你好。", make_voice("v2", "default", speaker="saved")).size > 0
    assert calls == ["inference_sft", "inference_zero_shot"]
    with pytest.raises(VoiceMismatch, match=r"has no speaker 'nobody' \(it has: .*sft-speaker"):
        with_speakers.synthesize("你好。", make_voice("v3", "sft", speaker="nobody"))
    with pytest.raises(VoiceMismatch, match="would replace a speaker stored"):
        with_speakers.register_speaker("saved", PROMPT_TEXT, prompt_wav)


@upstream
def test_prompts_upstream_would_assert_on_are_refused(engine: CosyVoiceEngine, tmp_path: Path) -> None:
    low = up.write_prompt(tmp_path / "8k.wav", seconds=3.0, rate=8000)
    with pytest.raises(VoiceMismatch, match="8000 Hz; CosyVoice needs at least 16000 Hz"):
        engine.register_speaker("low", PROMPT_TEXT, low)
    long = up.write_prompt(tmp_path / "long.wav", seconds=31.0, rate=16000)
    with pytest.raises(VoiceMismatch, match="31.0 s; CosyVoice takes at most 30 s"):
        engine.register_speaker("long", PROMPT_TEXT, long)
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(VoiceMismatch, match="not readable audio"):
        engine.register_speaker("text", PROMPT_TEXT, tmp_path / "text.wav")
    assert not engine.has_speaker("low") and not engine.has_speaker("long")


@upstream
def test_punctuation_only_is_silence_and_words_without_audio_fail(engine: CosyVoiceEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    voice = make_voice("narrator", "zero_shot")
    assert engine.synthesize("……！", voice).size == 0  # upstream drops it: nothing to say
    monkeypatch.setattr(engine.cosyvoice, "inference_zero_shot", lambda *a, **k: iter(()))
    with pytest.raises(EngineError, match="no audio"):
        engine.synthesize("Words with no audio.", voice)


@upstream
def test_a_seed_decides_the_take(engine: CosyVoiceEngine) -> None:
    """Another take of a bad segment is drawn with another seed (workers/synthesize.py):
    upstream's LLM samples from torch's generator, so the seed decides the take."""
    voice = make_voice("narrator", "zero_shot")
    text = "The keeper climbed the stairs."
    first, again, other = (engine.synthesize(text, voice, seed=seed) for seed in (7, 7, 8))
    assert np.array_equal(first, again)
    assert first.size == other.size and not np.array_equal(first, other)  # the tiny model's length is fixed


@upstream
def test_output_is_resampled_to_the_registry_rate(tiny_model: Path, prompt_wav: Path) -> None:
    at_22k = CosyVoiceEngine.load(make_model(tiny_model, sample_rate=22050))
    at_22k.register_speaker("narrator", PROMPT_TEXT, prompt_wav)
    text = "The keeper climbed the stairs."
    audio = at_22k.synthesize(text, make_voice("narrator", "zero_shot", sample_rate=22050))
    native = 2 * len(at_22k.cosyvoice.frontend.tokenizer.encode(text)) * 960
    assert abs(audio.size - native * 22050 / 24000) <= 2
    assert audio.dtype == np.float32 and np.abs(audio).max() <= 1.0


@upstream
def test_several_segments_in_flight_share_one_model(engine: CosyVoiceEngine) -> None:
    voice = make_voice("narrator", "zero_shot")
    texts = ["The keeper climbed the stairs.", "He wound the clock.", "收到好友的礼物。", "Storms came in from the west."]
    expected = [2 * len(engine.cosyvoice.frontend.tokenizer.encode(t)) * 960 for t in texts]
    results: dict[tuple[int, int], int] = {}
    errors: list[BaseException] = []

    def speak(worker: int) -> None:
        try:
            for round_ in range(2):
                text_index = (worker + round_) % len(texts)
                results[(worker, round_)] = engine.synthesize(texts[text_index], voice).size
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=speak, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert {key: size for key, size in results.items()} == {
        (w, r): expected[(w + r) % len(texts)] for w in range(4) for r in range(2)
    }
    model = engine.cosyvoice.model
    assert model.token_hop_len == 25  # never streamed: the shared hop length is untouched
    assert model.tts_speech_token_dict == {} and model.hift_cache_dict == {}  # every call cleaned up after itself


@upstream
def test_per_call_release_is_off_and_release_memory_is_once(engine: CosyVoiceEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    import cosyvoice.cli.model as model_module
    import torch

    emptied = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
    model_module.torch.cuda.empty_cache()  # what tts() calls at its end on CUDA
    assert emptied == []
    assert engine_module.keep_release_out_of_tts(model_module) is False  # already off, not wrapped twice
    engine.release_memory()  # on the CPU: nothing to release, and nothing fails


# -- Chorus's real worker processes on a real stack ---------------------------------------


def _wait(predicate, timeout: float, what: str, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise AssertionError(f"{what}: the process exited with {process.returncode}\n{tail}")
        time.sleep(0.25)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"{what}: not within {timeout:.0f} s\n{tail}")


@pytest.fixture(scope="module")
def cosy_stack(tiny_model: Path, prompt_wav: Path, tmp_path_factory: pytest.TempPathFactory):
    """A stack whose registry has the tiny model; its workers are started by the tests."""
    from chorus.stack import Stack, StackConfig

    base = tmp_path_factory.mktemp("cosy-stack")
    registry = base / "voices.toml"
    registry.write_text(
        "[models.cosy-tiny]\n"
        'engine = "cosyvoice2"\ndevice = "cpu"\nversion = "tiny-random"\nsample_rate = 24000\nmax_segment_chars = 120\n'
        f'files.model_dir = "{tiny_model}"\nfiles.source = "{up.source_dir()}"\n\n'
        '[[models.cosy-tiny.voices]]\nid = "tiny-narrator"\nlanguage = "en"\nmode = "zero_shot"\n'
        f'prompt_text = "{PROMPT_TEXT}"\nprompt_audio = "{prompt_wav}"\n\n'
        '[[models.cosy-tiny.voices]]\nid = "tiny-sichuan"\nlanguage = "zh"\nmode = "instruct2"\n'
        f'instruct = "{INSTRUCTION}"\nprompt_text = "{PROMPT_TEXT}"\nprompt_audio = "{prompt_wav}"\n',
        encoding="utf-8",
    )
    extra = {"CHORUS_REGISTRY_FILE": str(registry), "CHORUS_RETRY_BACKOFF_S": "0.1", "PYTHONPATH": up.pythonpath()}
    stack = Stack(StackConfig.on_free_ports(base / "stack", workers=[], jobs_concurrency=1, environment=extra))
    try:
        env = stack.up()
        yield {"env": {**os.environ, **env, **extra}, "registry": registry, "logs": base / "stack" / "logs"}
    finally:
        stack.down()


def _start_worker(stack: dict, name: str, *options: str) -> tuple[subprocess.Popen, Path]:
    log = stack["logs"] / f"test-{name}.log"
    handle = log.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "chorus.cli", "worker", "--model", "cosy-tiny", "--name", name, "--threads", "1", *options],
        env=stack["env"], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
    )
    return process, log


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _clients(stack: dict):
    import httpx
    import redis

    from chorus.tasks.state.fleet import Fleet
    from chorus.tasks.state.jobs import JobStore

    env = stack["env"]
    client = redis.Redis.from_url(env["CHORUS_REDIS_URL"])
    api = httpx.Client(base_url=env["CHORUS_API_URL"], timeout=60, headers={"Authorization": f"Bearer {env['CHORUS_API_KEY']}"})
    return api, Fleet(client, ttl_s=3600), JobStore(client, ttl_s=3600)


def _job(api, voice: str, text: str, timeout: float = 300) -> dict:
    response = api.post("/v1/jobs", json={"text": text, "voice": voice, "format": "wav"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    status = _wait(lambda: (s := api.get(f"/v1/jobs/{job_id}").json())["state"] in ("done", "failed", "cancelled") and s,
                   timeout, f"job {job_id}")
    assert status["state"] == "done", status
    import httpx

    audio = httpx.get(status["result_url"], timeout=60, follow_redirects=True)
    audio.raise_for_status()
    assert soundfile.info(io.BytesIO(audio.content)).duration > 0.5
    return status


BOOK = ("The lighthouse keeper climbed the stairs at dusk. He wound the clockwork and trimmed the wick. "
        "Storms came in from the west. The lamp never failed.")


@upstream
def test_real_worker_registers_once_speaks_segments_forgets_and_releases(cosy_stack: dict, prompt_wav: Path) -> None:
    api, fleet, jobs = _clients(cosy_stack)
    node = "cosy-tiny-prefork"
    process, log = _start_worker(cosy_stack, node)
    node_name = None
    try:
        node_name = _wait(lambda: next(iter(fleet.nodes_of("cosy-tiny")), None), 240, "worker start", process, log)
        record = fleet.get(node_name)
        assert record["loads"] == "1" and record["provider"] == "cpu"
        assert record["speaker_registrations"] == "2"  # both registry voices, once, at start
        assert int(record["pid"]) != process.pid  # the prefork pool's child holds the model

        first = _job(api, "tiny-narrator", BOOK)
        second = _job(api, "tiny-sichuan", "春天来了，公园里的花都开了。孩子们在草地上奔跑。")
        assert first["segments_total"] >= 3
        _wait(lambda: fleet.get(node_name).get("releases") == "2", 60, "one memory release per job", process, log)
        assert sum(jobs.releases(first["id"]).values()) == 1 and sum(jobs.releases(second["id"]).values()) == 1

        # a voice cloned through the API: registered on first use, forgotten when deleted
        clip = io.BytesIO()
        data, rate = soundfile.read(prompt_wav)
        soundfile.write(clip, data, rate, format="WAV")
        form = {"transcript": PROMPT_TEXT, "name": "clip", "model": "cosy-tiny", "language": "zh"}
        created = api.post("/v1/voices", files={"audio": ("me.wav", clip.getvalue(), "audio/wav")}, data=form)
        assert created.status_code == 201, created.text
        voice_id = created.json()["id"]
        _job(api, voice_id, "你好，世界。这是第二句话。")
        assert api.delete(f"/v1/voices/{voice_id}").status_code == 204
        _wait(lambda: fleet.get(node_name).get("speakers_forgotten") == "1", 60, "speaker forgotten", process, log)

        record = fleet.get(node_name)
        assert record["loads"] == "1" and record["speaker_registrations"] == "3"
        assert int(record["segments"]) >= first["segments_total"] + second["segments_total"] + 2
    finally:
        _stop(process)
        if node_name:
            fleet.redis.delete(f"chorus:worker:{node_name}")


@upstream
def test_real_worker_with_segments_in_flight(cosy_stack: dict) -> None:
    api, fleet, jobs = _clients(cosy_stack)
    process, log = _start_worker(cosy_stack, "cosy-tiny-inflight", "--inflight", "2")
    try:
        node_name = _wait(lambda: next(iter(fleet.nodes_of("cosy-tiny")), None), 240, "worker start", process, log)
        record = fleet.get(node_name)
        assert record["loads"] == "1"
        assert int(record["pid"]) == process.pid  # loaded in the worker's own process: no pool children
        # a text of its own: segments spoken before come from the segment cache
        status = _job(api, "tiny-narrator", "Ships passed in the night. The keeper counted them. " * 2 + "Then he slept.")
        _wait(lambda: fleet.get(node_name).get("releases") == "1", 60, "memory released once", process, log)
        assert fleet.get(node_name)["loads"] == "1"
        assert int(fleet.get(node_name)["segments"]) >= status["segments_total"]
        assert "segments in flight" in log.read_text(errors="replace")
    finally:
        _stop(process)


@upstream
def test_worker_refuses_an_sft_voice_on_a_model_without_stored_speakers(cosy_stack: dict, tmp_path: Path) -> None:
    registry = tmp_path / "voices.toml"
    registry.write_text(cosy_stack["registry"].read_text() + '\n[[models.cosy-tiny.voices]]\nid = "tiny-sft"\nmode = "sft"\nspeaker = "中文女"\n')
    env = {**cosy_stack["env"], "CHORUS_REGISTRY_FILE": str(registry)}
    result = subprocess.run([sys.executable, "-m", "chorus.cli", "worker", "--model", "cosy-tiny"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "RegistryError" in result.stderr and "tiny-sft" in result.stderr and "zero_shot" in result.stderr
