"""Pure code: audio encoding, settings, the registry, the import layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chorus.configs import RegistryError, Settings, load_registry
from chorus.tasks.audio import formats
from tests.readback import read_audio_file

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("audio_format", formats.FORMATS)
def test_encoder_round_trip_keeps_length(tmp_path: Path, audio_format: str) -> None:
    rate = 22050
    tone = (0.3 * np.sin(np.arange(rate) * 2 * np.pi * 220 / rate)).astype(np.float32)
    path = tmp_path / f"book.{audio_format}"
    with formats.Encoder(path, audio_format, rate) as encoder:
        encoder.write(tone)
        encoder.write(np.zeros(rate // 2, np.float32))
        encoder.write(tone)
    assert encoder.seconds == pytest.approx(2.5)
    decoded, decoded_rate = read_audio_file(path)
    assert decoded_rate == encoder.output_rate
    assert len(decoded) / decoded_rate == pytest.approx(2.5, abs=0.01)


def test_segment_wav_round_trip() -> None:
    samples = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    decoded, rate = formats.read_audio(formats.to_wav_bytes(samples, 16000))
    assert rate == 16000
    assert np.abs(decoded - samples).max() < 1e-4


def test_settings_read_the_chorus_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHORUS_REDIS_URL", "redis://example:1/2")
    monkeypatch.setenv("CHORUS_MAX_TEXT_CHARS", "123")
    settings = Settings()
    assert settings.redis_url == "redis://example:1/2"
    assert settings.max_text_chars == 123


def test_settings_refuse_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHORUS_DEFAULT_FORMAT", "midi")
    with pytest.raises(ValueError):
        Settings()


def test_default_registry_resolves_the_packaged_voice() -> None:
    registry = load_registry(Settings().registry_file)
    model = registry.model_of("joe")
    assert model.queue == "chorus.synth.piper-joe"
    assert model.file("model").is_file() and model.file("config").is_file()


def test_registry_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="not found"):
        load_registry(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('[models.x]\nengine = "piper"\n[[models.x.voices]]\nid = "v"\n')
    with pytest.raises(RegistryError, match="sample_rate"):
        load_registry(bad)


def test_api_never_imports_an_ml_runtime_nor_the_audio_stack() -> None:
    """Accepting a job needs neither a model nor audio: the API reads, plans and enqueues."""
    heavy = ("torch", "onnxruntime", "piper", "scipy", "soundfile", "av", "pyloudnorm", "soxr", "chorus.tasks.pipeline",
             "chorus.tasks.assemble", "chorus.tasks.audio.formats", "chorus.tasks.audio.mastering")
    code = f"import sys, chorus.api.main; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


LAYERS = ("api", "configs", "tasks", "workers")  # chorus.<layer>; any other chorus.* is the command's


def imported_layer(line: str) -> str | None:
    """The layer an import line reaches: ``from chorus.tasks.x import y`` is "tasks",
    ``from chorus import configs`` is "configs", ``from chorus.stack import z`` is "cli"."""
    words = line.replace(",", " ").split()
    if len(words) < 2 or words[0] not in ("import", "from"):
        return None
    parts = words[1].split(".")
    if parts[0] != "chorus":
        return None
    if len(parts) == 1:  # from chorus import configs
        name = words[3] if len(words) > 3 and words[2] == "import" else ""
        return name if name in LAYERS else "cli"
    return parts[1] if parts[1] in LAYERS else "cli"


@pytest.mark.parametrize("layer, forbidden", [("configs", ("tasks", "workers", "api", "cli")),
                                              ("tasks", ("workers", "api", "cli")),
                                              ("workers", ("api", "cli")),
                                              ("api", ("workers", "cli"))])
def test_imports_point_one_way(layer: str, forbidden: tuple[str, ...]) -> None:
    offenders = []
    for path in (ROOT / layer).rglob("*.py"):
        for line in path.read_text().splitlines():
            if imported_layer(line.strip()) in forbidden:
                offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert offenders == []


def test_the_layer_check_sees_every_spelling_of_an_import() -> None:
    assert imported_layer("from chorus.tasks.state.jobs import JobStore") == "tasks"
    assert imported_layer("import chorus.workers.engines") == "workers"
    assert imported_layer("from chorus import configs") == "configs"
    assert imported_layer("from chorus.worker_plan import plan_workers") == "cli"
    assert imported_layer("from celery import Celery") is None


@pytest.mark.parametrize("text, script", [
    ("It was a dark and stormy night.", "latin"),
    ("孙悟空大闹天宫。玉帝大怒！", "han"),
    ("The monkey king, 孙悟空, was born from a stone on the Mountain of Flowers and Fruit.", "latin"),
    ("第一回 灵根育孕源流出 心性修持大道生 (Chapter 1)", "han"),
    ("Война и мир", "cyrillic"),
    ("1234 ... !!!", None),
])
def test_dominant_script(text: str, script: str | None) -> None:
    from chorus.tasks.text.script import dominant_script

    assert dominant_script(text) == script


def test_language_can_read() -> None:
    from chorus.tasks.text.script import can_read

    assert can_read("en", "latin") and can_read("fr", "latin") and can_read("en", None)
    assert not can_read("en", "han")
    assert can_read("zh", "han") and can_read("zh-CN", "han") and not can_read("zh", "latin")
    assert can_read("ja", "kana") and can_read("ja", "han")


def test_plan_workers_on_a_cpu_host_divides_the_cores() -> None:
    from chorus.worker_plan import plan_workers

    registry = load_registry(Settings().registry_file)
    [spec] = plan_workers(registry, gpus=[], cores=4)
    assert (spec.model, spec.count, spec.threads, spec.gpu) == ("piper-joe", 4, 1, None)
    [spec] = plan_workers(registry, gpus=[], cores=4, cpu_workers=2)
    assert (spec.count, spec.threads) == (2, 2)
    assert [name for name, _ in spec.commands()] == ["piper-joe-1", "piper-joe-2"]


def test_free_ports_stay_out_of_the_range_outgoing_connections_use() -> None:
    """A stack's API once failed to bind: its port, picked by bind(0) inside the
    kernel's ephemeral range, had been taken meanwhile by an outgoing
    connection. Ports below that range cannot be taken that way."""
    from chorus.ports import GRPC_OFFSET, LISTEN_LOW, _ephemeral_low, free_port

    low = _ephemeral_low()
    plain = [free_port() for _ in range(20)]
    paired = [free_port(with_grpc=True) for _ in range(20)]
    assert all(LISTEN_LOW <= port < low for port in plain)
    assert all(LISTEN_LOW <= port and port + GRPC_OFFSET < low for port in paired)
    every = plain + paired + [port + GRPC_OFFSET for port in paired]
    assert len(set(every)) == len(every)  # one stack's ports never collide


def test_plan_workers_puts_one_worker_on_each_gpu(tmp_path: Path) -> None:
    from chorus.worker_plan import plan_workers

    registry_file = tmp_path / "voices.toml"
    registry_file.write_text(
        '[models.cosy]\nengine = "cosyvoice2"\ndevice = "cuda"\nsample_rate = 24000\n'
        '[[models.cosy.voices]]\nid = "c"\nlanguage = "zh"\n'
        '[models.piper]\nengine = "piper"\nsample_rate = 22050\n[[models.piper.voices]]\nid = "p"\n'
    )
    plan = plan_workers(load_registry(registry_file), gpus=[0, 1, 2], cores=2)
    commands = [command for spec in plan for command in spec.commands()]
    names = [name for name, _ in commands]
    assert names == ["cosy-gpu0", "cosy-gpu1", "cosy-gpu2", "piper-1", "piper-2"]
    assert commands[1][1][-4:] == ["--gpu", "1", "--name", "cosy-gpu1"]
    assert plan_workers(load_registry(registry_file), gpus=[], cores=2)[0].model == "piper"  # no GPU, no cosy


def test_cuda_model_worker_needs_a_gpu(tmp_path: Path) -> None:
    registry_file = tmp_path / "voices.toml"
    registry_file.write_text('[models.cosy]\nengine = "tone"\ndevice = "cuda"\nsample_rate = 24000\n[[models.cosy.voices]]\nid = "c"\n')
    import os

    result = subprocess.run(
        [sys.executable, "-m", "chorus.cli", "worker", "--model", "cosy"], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "CHORUS_REGISTRY_FILE": str(registry_file)},
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "ModelLoadError: model 'cosy' runs on cuda: pass --gpu N to pin its worker to one GPU"


def test_piper_providers_follow_the_device() -> None:
    import onnxruntime

    from chorus.workers.engines.piper import providers_for

    assert providers_for("cpu") == ["CPUExecutionProvider"]
    expected = "CUDAExecutionProvider" if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else "CPUExecutionProvider"
    assert providers_for("cuda")[0] == expected
