"""Voices: list them, register a speaker from reference audio, delete one.

A registered voice is stored as a clip in S3 and a record in Redis; each worker
of its model registers the speaker once, on first use, and forgets it when the
voice is deleted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from celery.utils.nodenames import worker_direct
from fastapi import APIRouter, File, Form, Response, UploadFile, status

from chorus.api.deps import CallerDep, FleetDep, RegistryDep, SettingsDep, StorageDep, VoicesDep
from chorus.api.schemas import ErrorDocument, VoiceInfo
from chorus.configs import Voice
from chorus.tasks.app import app as celery_app
from chorus.tasks.errors import (
    InputError,
    UnknownVoice,
    UnsupportedMedia,
    VoiceInUse,
    VoiceNotFound,
)
from chorus.tasks.names import FORGET_SPEAKER_TASK
from chorus.tasks.state.storage import speaker_key
from chorus.tasks.state.voices import S3_PREFIX
from chorus.tasks.text.clean import has_speakable

if TYPE_CHECKING:
    import numpy as np

router = APIRouter(prefix="/v1/voices", tags=["voices"])

CLIP_SECONDS = (3.0, 30.0)
CLIP_MIN_RATE = 16_000
CLIP_MAX_CHANNELS = 2  # mono or stereo; the clip is mixed down to mono
CLIP_MAX_BYTES = 10 * 1024 * 1024
UPLOAD_MAX_BYTES = CLIP_MAX_BYTES + 64 * 1024  # the clip and the form fields around it


def _info(voice: Voice) -> VoiceInfo:
    return VoiceInfo(
        id=voice.id, engine=voice.engine, model=voice.model, language=voice.language,
        sample_rate=voice.sample_rate, name=voice.name,
    )


@router.get("", response_model=list[VoiceInfo])
def list_voices(caller: CallerDep, voices: VoicesDep) -> list[VoiceInfo]:
    return [_info(v) for v in voices.all(owner=caller.id)]


def _read_clip(raw: bytes, filename: str, max_rate: int) -> tuple[np.ndarray, int]:
    """Decode the reference clip, its rate, channels and length checked from the
    header first. The audio stack is imported here, not with the API: only this
    route needs it."""
    import soundfile as sf

    from chorus.tasks.audio.formats import AudioTooLong, ClipTooLarge, read_clip

    try:
        samples, rate = read_clip(raw, max_seconds=CLIP_SECONDS[1], max_rate=max_rate, max_channels=CLIP_MAX_CHANNELS)
    except AudioTooLong as exc:
        raise InputError(f"reference audio is {exc} long; it must last {CLIP_SECONDS[0]:.0f} to {CLIP_SECONDS[1]:.0f} s") from None
    except ClipTooLarge as exc:
        raise InputError(f"reference audio has {exc}") from None
    except (sf.LibsndfileError, RuntimeError, TypeError):
        raise UnsupportedMedia(f"{filename!r} is not audio that can be read (WAV, FLAC, OGG or MP3)") from None
    seconds = len(samples) / rate
    if seconds < CLIP_SECONDS[0]:
        raise InputError(f"reference audio is {seconds:.1f} s long; it must last {CLIP_SECONDS[0]:.0f} to {CLIP_SECONDS[1]:.0f} s")
    if rate < CLIP_MIN_RATE:
        raise InputError(f"reference audio is sampled at {rate} Hz; at least {CLIP_MIN_RATE} Hz is needed")
    return samples, rate


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=VoiceInfo,
    responses={415: {"model": ErrorDocument}, 422: {"model": ErrorDocument}},
    summary="Register a speaker from reference audio and its transcript",
)
def register_voice(
    caller: CallerDep,
    registry: RegistryDep,
    voices: VoicesDep,
    storage: StorageDep,
    settings: SettingsDep,
    audio: Annotated[UploadFile, File(description="3 to 30 s of one speaker, WAV/FLAC/OGG/MP3, mono or stereo, "
                                                   "16 kHz up to CHORUS_VOICE_CLIP_MAX_RATE (48 kHz)")],
    transcript: Annotated[str, Form(description="What is said in the audio")],
    name: Annotated[str, Form(max_length=64, description="A display name")],
    model: Annotated[str, Form(description="The model that will speak with this voice")],
    language: Annotated[str | None, Form(max_length=16)] = None,
) -> VoiceInfo:
    target = registry.models.get(model)
    cloning = [m.name for m in registry.models.values() if m.clones_voices]
    if target is None or not target.clones_voices:
        raise InputError(f"model {model!r} cannot speak with a registered speaker; models that can: {', '.join(cloning) or 'none'}")
    if not has_speakable(transcript) or len(transcript) > 1000:
        raise InputError("the transcript must say what the audio says (1 to 1000 characters)")
    if not name.strip():
        raise InputError("the voice needs a name")
    samples, rate = _read_clip(audio.file.read(), audio.filename or "upload", settings.voice_clip_max_rate)

    model_languages = [v.language for v in registry.voices.values() if v.model == target.name]
    voice_id = voices.new_id()
    voice = Voice(
        id=voice_id,
        model=target.name,
        engine=target.engine,
        language=language or (model_languages[0] if model_languages else "en"),
        sample_rate=target.sample_rate,
        mode="zero_shot",
        prompt_text=transcript.strip(),
        prompt_audio=S3_PREFIX + speaker_key(voice_id),
        name=name.strip(),
        owner=caller.id,
    )
    from chorus.tasks.audio.formats import to_wav_bytes

    storage.put_bytes(speaker_key(voice_id), to_wav_bytes(samples, rate), "audio/wav")
    voices.add(voice)
    return _info(voice)


@router.delete(
    "/{voice_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": ErrorDocument}, 409: {"model": ErrorDocument}},
    summary="Delete a registered voice everywhere",
)
def delete_voice(
    voice_id: str, caller: CallerDep, registry: RegistryDep, voices: VoicesDep, storage: StorageDep, fleet: FleetDep
) -> Response:
    if voice_id in registry.voices:
        raise VoiceInUse(f"voice {voice_id!r} is defined in the registry file; remove it there")
    try:
        voice = voices.get(voice_id, owner=caller.id)
    except UnknownVoice:
        raise VoiceNotFound(f"no registered voice with id {voice_id!r}") from None
    voices.remove(voice_id)
    storage.delete_keys([speaker_key(voice_id)])
    # Each worker of the model drops the speaker from the process holding it.
    for node in fleet.nodes_of(voice.model):
        celery_app.send_task(FORGET_SPEAKER_TASK, args=(voice_id,), queue=worker_direct(node), ignore_result=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
