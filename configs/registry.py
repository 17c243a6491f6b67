"""The model/voice registry, read from a TOML file (``configs/voices.toml``).

A *model* is what one synthesis worker process loads: an engine plus its files.
A *voice* is what a job asks for; each voice belongs to one model, and the
model's name decides the queue its segments go to.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib.resources import files as package_files
from pathlib import Path
from typing import Any

PACKAGE_PREFIX = "package:"
SPEAKER_MODES = ("zero_shot", "instruct2")
# CosyVoice voices that speak a speaker stored in the model directory's
# SPEAKER_FILE ("default" is the old name of "sft").
SFT_MODES = ("sft", "default")
SPEAKER_FILE = "spk2info.pt"
# Engines whose sft voices need SPEAKER_FILE in their model_dir.
STORED_SPEAKER_ENGINES = ("cosyvoice2",)
# Engines that can speak with a speaker registered from reference audio. "tone"
# is the test stand-in, which imitates the bookkeeping without any speech.
CLONING_ENGINES = ("cosyvoice2", "tone")


class RegistryError(ValueError):
    """The registry file is missing or malformed."""


def resolve_path(spec: str, needed_for: str) -> Path:
    """A file path; ``package:pkg/rel/path`` is read from an installed package
    without importing anything heavy."""
    if spec.startswith(PACKAGE_PREFIX):
        package, _, relative = spec[len(PACKAGE_PREFIX) :].partition("/")
        try:
            root = package_files(package)
        except ModuleNotFoundError:
            raise RegistryError(f"{needed_for}: package {package!r} is not installed") from None
        return Path(str(root.joinpath(relative)))
    return Path(spec).expanduser()


@dataclass(frozen=True)
class Voice:
    id: str
    model: str
    engine: str
    language: str
    sample_rate: int
    # Engine-specific: a Piper speaker index or a CosyVoice SFT speaker name.
    speaker: str | int | None = None
    # CosyVoice: "sft", "zero_shot" (a registered reference speaker) or "instruct2".
    mode: str = "default"
    instruct: str | None = None
    # A reference speaker: its transcript and its audio (a path, "package:"
    # path, or, for voices registered through the API, an S3 key).
    prompt_text: str | None = None
    prompt_audio: str | None = None
    name: str | None = None  # display name of a voice registered through the API
    owner: str | None = None  # the API key that registered it

    @property
    def needs_speaker(self) -> bool:
        """Speaks with a reference speaker the engine must register first."""
        return self.mode in SPEAKER_MODES


@dataclass(frozen=True)
class Model:
    name: str
    engine: str
    device: str
    version: str
    sample_rate: int
    max_segment_chars: int
    files: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def clones_voices(self) -> bool:
        return self.engine in CLONING_ENGINES

    @property
    def queue(self) -> str:
        return f"chorus.synth.{self.name}"

    def file(self, name: str) -> Path:
        """Resolve one of the model's files."""
        try:
            spec = self.files[name]
        except KeyError:
            raise RegistryError(f"model {self.name!r} names no file {name!r}") from None
        return resolve_path(spec, f"model {self.name!r} ({name})")


@dataclass(frozen=True)
class Registry:
    models: dict[str, Model]
    voices: dict[str, Voice]

    def voice(self, voice_id: str) -> Voice:
        return self.voices[voice_id]

    def model_of(self, voice_id: str) -> Model:
        return self.models[self.voices[voice_id].model]


def load_registry(path: Path) -> Registry:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"registry file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"registry file {path} is not valid TOML: {exc}") from None

    models: dict[str, Model] = {}
    voices: dict[str, Voice] = {}
    for name, entry in data.get("models", {}).items():
        try:
            model = Model(
                name=name,
                engine=entry["engine"],
                device=entry.get("device", "cpu"),
                version=str(entry.get("version", "1")),
                sample_rate=int(entry["sample_rate"]),
                max_segment_chars=int(entry.get("max_segment_chars", 300)),
                files=dict(entry.get("files", {})),
                options=dict(entry.get("options", {})),
            )
            for item in entry.get("voices", []):
                voice = Voice(
                    id=item["id"],
                    model=name,
                    engine=model.engine,
                    language=item.get("language", "en"),
                    sample_rate=model.sample_rate,
                    speaker=item.get("speaker"),
                    mode=item.get("mode", "default"),
                    instruct=item.get("instruct"),
                    prompt_text=item.get("prompt_text"),
                    prompt_audio=item.get("prompt_audio"),
                )
                if voice.id in voices:
                    raise RegistryError(f"voice {voice.id!r} is defined twice in {path}")
                voices[voice.id] = voice
        except KeyError as exc:
            raise RegistryError(f"model {name!r} in {path} lacks the field {exc}") from None
        models[name] = model
    if not voices:
        raise RegistryError(f"registry file {path} defines no voices")
    registry = Registry(models=models, voices=voices)
    check_stored_speakers(registry)
    return registry


def sft_refusal(model: str, voice: str, speaker: str | None, model_dir: object, available: list[str]) -> str:
    """Why an sft voice cannot be spoken, and what to do instead."""
    if available:
        missing = f"its {SPEAKER_FILE} has no speaker {speaker!r} (it has: {', '.join(available)})"
    else:
        missing = f"it has no stored speakers (no {SPEAKER_FILE} in {model_dir}; CosyVoice2-0.5B ships none)"
    named = "names no speaker" if speaker is None else f"asks for speaker {speaker!r}"
    return (
        f"voice {voice!r} (mode \"sft\") {named} on model {model!r}, but {missing}. "
        f"Clone a voice instead (mode = \"zero_shot\" with prompt_audio and prompt_text), "
        f"or add a {SPEAKER_FILE} that names the speaker (CosyVoice2.add_zero_shot_spk then save_spkinfo() writes one)"
    )


def check_stored_speakers(registry: Registry) -> None:
    """Refuse sft voices on a CosyVoice model whose directory has no stored
    speakers. Only where the directory is on this host (a worker's, or an API
    sharing its disk): elsewhere nothing here can know, and the worker refuses
    the voice when it loads the model. A stat of one file, nothing imported;
    whether the file names the voice's speaker needs torch to read, so the
    engine checks that when it is asked for the voice (the worker's warm-up or
    a segment), with a message that names the speakers the file has."""
    for voice in registry.voices.values():
        model = registry.models[voice.model]
        if voice.mode not in SFT_MODES or model.engine not in STORED_SPEAKER_ENGINES or "model_dir" not in model.files:
            continue
        try:
            model_dir = model.file("model_dir")
        except RegistryError:
            continue  # a package: path to a package not installed here
        if model_dir.is_dir() and not (model_dir / SPEAKER_FILE).is_file():
            raise RegistryError(sft_refusal(model.name, voice.id, voice.speaker, model_dir, []))
