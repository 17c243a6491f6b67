"""One error root for Chorus, grouped by how callers react. The API maps these
to HTTP status codes; the CLI prints them as ``Type: message``; tasks retry a
``TransientError`` with backoff and fail their job at once on anything else.

    ChorusError
    ├── PermanentError          retrying cannot help: the job fails now
    │   ├── InputError          a request asks for something Chorus cannot do (422)
    │   │   ├── EmptyText
    │   │   ├── UnknownVoice    (also in a worker: the voice was deleted meanwhile)
    │   │   ├── TextTooLarge    (413)
    │   │   ├── UnsupportedMedia (415)
    │   │   ├── WebhookRefused  a webhook URL the operator has not allowed (also at delivery)
    │   │   ├── NoTextLayer     a PDF of page images (a scan): Chorus does no OCR
    │   │   └── PasswordProtected  a PDF that needs a password to open
    │   ├── VoiceMismatch       a segment reached a model that cannot speak its voice
    │   ├── ModelLoadError
    │   ├── AssemblyError
    │   ├── ObjectMissing       an object a job needs is not in S3 (deleted with its job)
    │   └── AttemptsExhausted   a unit of work used up its attempts (crash loops too)
    ├── TransientError          may pass on another try: retried with backoff
    │   ├── StorageError        S3 refused or failed a request (503 in the API)
    │   └── EngineError         the engine failed on a segment (memory pressure, ...)
    ├── JobSettled              a job ended (or vanished) while a task worked for it
    └── answered by the API only
        ├── NotAuthenticated (401) ── KeyRevoked
        ├── TooManyJobs (429)
        ├── JobNotFound (404) ── BatchNotFound, VoiceNotFound (404), WordNotFound (404)
        ├── JobNotReady (409), JobConflict (409), VoiceInUse (409)
        └── SpeechFailed (502)  a speech request's job ended before its audio was sent

Redis connection errors are transient too (``tasks/base.py`` lists what a
task retries); any other exception is a bug, and is not retried.
"""


class ChorusError(Exception):
    """Root of every error Chorus raises on purpose."""


class PermanentError(ChorusError):
    """Retrying cannot help: the same input fails the same way."""


class TransientError(ChorusError):
    """May pass on another try: a service hiccup, a passing lack of memory."""


class InputError(PermanentError):
    """A request asks for something Chorus cannot do (HTTP 422)."""


class EmptyText(InputError):
    """The text has nothing speakable in it."""


class UnknownVoice(InputError):
    """No voice of that id is registered."""


class TextTooLarge(InputError):
    """The text is longer than the configured limit (HTTP 413)."""


class UnsupportedMedia(InputError):
    """An upload that is not UTF-8 text (HTTP 415)."""


class NoTextLayer(InputError):
    """A PDF with no text to read: pages of images, as a scanner makes them."""


class PasswordProtected(InputError):
    """An encrypted PDF that does not open without its password."""


class WebhookRefused(InputError):
    """A webhook URL Chorus will not call: not http(s), credentials in it, too
    long, not on the operator's allow-list, or a host with a non-public address."""


class VoiceMismatch(PermanentError):
    """A segment reached a worker whose model cannot speak its voice (another
    model's voice, or a cloned voice without its reference)."""


class ModelLoadError(PermanentError):
    """A worker could not load its model: a file or a dependency is missing."""


class AssemblyError(PermanentError):
    """The segments of a job could not be joined into an audiobook."""


class ObjectMissing(PermanentError):
    """An object a job needs is not in S3: deleted with its job, or never written."""


class AttemptsExhausted(PermanentError):
    """A unit of work (a segment, an assembly) started more often than allowed:
    it failed, or its worker process died, every time."""


class StorageError(TransientError):
    """S3 refused or failed a request."""


class EngineError(TransientError):
    """A TTS engine failed to synthesise a segment."""


class JobSettled(ChorusError):
    """The job reached a final state, or its record is gone, while a task was
    working for it: the task stops and takes back what it uploaded."""


class NotAuthenticated(ChorusError):
    """No API key, or one that is not known (HTTP 401)."""


class KeyRevoked(NotAuthenticated):
    """The API key was revoked (HTTP 401)."""


class TooManyJobs(ChorusError):
    """The key has as many jobs running as it may (HTTP 429)."""


class JobNotFound(ChorusError):
    """No job of that id (HTTP 404)."""


class BatchNotFound(JobNotFound):
    """No batch of that id (HTTP 404)."""


class VoiceNotFound(ChorusError):
    """No registered voice of that id (HTTP 404)."""


class WordNotFound(ChorusError):
    """The key's lexicon has no entry for that word (HTTP 404)."""


class VoiceInUse(ChorusError):
    """The voice cannot be deleted through the API (HTTP 409)."""


class JobNotReady(ChorusError):
    """The job has no audio yet (HTTP 409)."""


class JobConflict(ChorusError):
    """The job's state does not allow what was asked: resume a done or
    cancelled job, cancel a finished one (HTTP 409)."""


class SpeechFailed(ChorusError):
    """The job behind a speech request ended before its audio could be sent (HTTP 502)."""
