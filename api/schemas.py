"""Request and response documents."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from chorus.configs.settings import AudioFormat
from chorus.tasks.errors import InputError
from chorus.tasks.state.status import ChapterStatus, JobStatus, WebhookStatus  # noqa: F401  (beside their builder)
from chorus.tasks.text.casting import MAX_CHARACTERS, MAX_NAME_CHARS
from chorus.tasks.text.plan import NORMAL_SPEED, SPEED_RANGE
from chorus.tasks.text.spoken.lexicon import MAX_ENTRIES, MAX_SIDE_CHARS
from chorus.tasks.text.spoken.lexicon import entry as lexicon_entry


def _checked_entry(value: LexiconEntry) -> LexiconEntry:
    """The matcher's own checks (letters in the word, no control characters),
    normalised as the matcher stores it."""
    try:
        checked = lexicon_entry(value.word, value.say, value.case_sensitive)
    except InputError as exc:
        raise ValueError(str(exc)) from None
    return LexiconEntry(word=checked.word, say=checked.say, case_sensitive=checked.case_sensitive)


def _entries(value: object) -> object:
    """{word: respelling} as a list of entries; a multipart form sends the lexicon as JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("lexicon: not JSON") from None
    if isinstance(value, dict):
        return [{"word": word, "say": say} for word, say in value.items()]
    return value


class LexiconSaying(BaseModel):
    """How one word is said: PUT /v1/lexicon/{word}."""

    say: str = Field(min_length=1, max_length=MAX_SIDE_CHARS, description="The respelling the voice reads instead")
    case_sensitive: bool = Field(False, description="Match only as written; otherwise any case matches")


class LexiconEntry(BaseModel):
    """One word and how it is said: GET /v1/lexicon lists them, a job may bring its own."""

    word: str = Field(min_length=1, max_length=MAX_SIDE_CHARS, description="A word or phrase as written in texts")
    say: str = Field(min_length=1, max_length=MAX_SIDE_CHARS, description="The respelling the voice reads instead")
    case_sensitive: bool = Field(False, description="Match only as written; otherwise any case matches")


def _json_object(value: object) -> object:
    """A multipart form sends a mapping as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError("not JSON") from None
    return value


Characters = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)], Annotated[str, Field(min_length=1, max_length=64)]],
    Field(max_length=MAX_CHARACTERS),
    BeforeValidator(_json_object),
]

JobLexicon = Annotated[
    list[Annotated[LexiconEntry, AfterValidator(_checked_entry)]],
    Field(max_length=MAX_ENTRIES),
    BeforeValidator(_entries),
]


class JobRequest(BaseModel):
    text: str = Field(description="The text to read, UTF-8. Paragraphs are separated by blank lines.")
    voice: str | None = Field(None, description="A voice id from GET /v1/voices; the default voice if omitted.")
    format: AudioFormat | None = Field(None, description="Audiobook format; the configured default if omitted.")
    title: str = Field("", description="Book title (tags, file name); from the book's metadata if omitted.")
    author: str = Field("", description="Author (tags); from the book's metadata if omitted.")
    speed: float = Field(NORMAL_SPEED, ge=SPEED_RANGE[0], le=SPEED_RANGE[1],
                         description="Speaking rate, 0.5 to 2.0 (2.0 reads in half the time)")
    lexicon: JobLexicon = Field(
        default_factory=list, description="Pronunciation entries for this job, over the key's own (GET /v1/lexicon) "
        "for the same words: a list of entries, or an object {word: respelling}")
    dialogue_voice: str | None = Field(
        None, description="A voice for quoted speech (“…”, \"…\", 「…」); the narrator (`voice`) reads the rest")
    characters: Characters = Field(
        default_factory=dict, description="Speaker name -> voice: a quotation whose speaker is named beside it "
        "(“…,” said Anna) gets that voice; others get dialogue_voice. Inline [voice:ID]…[/voice] tags in the text win")
    webhook_url: str | None = Field(
        None, description="Where to POST the job's status document when it ends (done, failed or cancelled), "
        "signed with the API key's webhook secret (X-Chorus-Signature); http or https, on a host the operator allows")


class JobAccepted(BaseModel):
    id: str
    status_url: str


class VoiceInfo(BaseModel):
    id: str
    engine: str
    model: str
    language: str
    sample_rate: int
    name: str | None = Field(None, description="Display name of a voice registered from reference audio")


class Health(BaseModel):
    status: str
    redis: str
    s3: str


class ErrorDocument(BaseModel):
    detail: str


class JobList(BaseModel):
    jobs: list[JobStatus] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


class BatchAccepted(BaseModel):
    id: str
    status_url: str
    jobs: list[JobAccepted] = Field(description="One job per book, in the order of the request")


class BatchJob(BaseModel):
    id: str
    filename: str
    status: JobStatus | None = Field(description="The job's status; null once the job is deleted or expired")


class BatchStatus(BaseModel):
    id: str
    created_at: str
    finished: bool = Field(description="Every job of the batch has ended (done, failed, cancelled or gone)")
    counts: dict[str, int] = Field(description="Jobs per state; 'gone' for deleted or expired ones")
    jobs: list[BatchJob]


class SpeechRequest(BaseModel):
    """OpenAI's speech request (``client.audio.speech.create``); fields it has
    that Chorus does not use (``instructions``) are accepted and ignored."""

    model: str = Field(description="Accepted for compatibility (tts-1, tts-1-hd, gpt-4o-mini-tts, ...); "
                                   "the voice decides which Chorus model speaks")
    input: str = Field(min_length=1, description="The text to speak; longer texts go to POST /v1/jobs")
    voice: str = Field(description="An OpenAI voice name (mapped by CHORUS_OPENAI_VOICES, else the default voice) "
                                   "or a Chorus voice id")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = Field(
        "mp3", description="pcm: raw 16-bit little-endian mono at 24 kHz; opus in Ogg; aac in ADTS")
    speed: float = Field(1.0, ge=0.5, le=2.0, description="Speaking rate, 0.5 to 2.0 (Chorus's range)")
    stream_format: Literal["audio"] = Field("audio", description="Only 'audio' (the bytes, streamed); no 'sse'")


class CaptionedSpeechRequest(BaseModel):
    """Kokoro-FastAPI's captioned speech request (``/dev/captioned_speech``);
    its other fields (``lang_code``, ``volume_multiplier``,
    ``normalization_options``, ``return_download_link``) are accepted and ignored."""

    model: str = Field("kokoro", description="Accepted for compatibility; the voice decides which Chorus model speaks")
    input: str = Field(min_length=1, description="The text to speak; longer texts go to POST /v1/jobs")
    voice: str = Field("alloy", description="A name CHORUS_OPENAI_VOICES maps, an OpenAI voice name (the default "
                                            "voice) or a Chorus voice id")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = Field(
        "mp3", description="As for POST /v1/audio/speech")
    speed: float = Field(1.0, ge=0.5, le=2.0, description="Speaking rate, 0.5 to 2.0 (Chorus's range)")
    stream: bool = Field(True, description="true: one JSON object per line as each sentence is spoken; "
                                           "false: one JSON object once all is spoken")
    return_timestamps: bool = Field(True, description="false: every `timestamps` list is empty")


class WordTimestamp(BaseModel):
    word: str = Field(description="A word; the whole sentence, as written, where the voice gives no word timings")
    start_time: float = Field(description="Seconds from the start of the response's audio")
    end_time: float = Field(description="Seconds from the start of the response's audio")


class CaptionedSpeechResponse(BaseModel):
    audio: str = Field(description="Audio bytes in base64: the whole file, or the next bytes of the stream")
    audio_format: str = Field(description="The audio's media type")
    timestamps: list[WordTimestamp]
