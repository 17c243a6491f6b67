"""One error root for Chorus. The API maps these to HTTP status codes; the CLI
prints them as ``Type: message``."""


class ChorusError(Exception):
    """Root of every error Chorus raises on purpose."""


class InputError(ChorusError):
    """A request asks for something Chorus cannot do (HTTP 422)."""


class EmptyText(InputError):
    """The text has nothing speakable in it."""


class UnknownVoice(InputError):
    """No voice of that id is registered."""


class TextTooLarge(InputError):
    """The text is longer than the configured limit (HTTP 413)."""


class UnsupportedMedia(InputError):
    """An upload that is not UTF-8 text (HTTP 415)."""


class NotAuthenticated(ChorusError):
    """No API key, or one that is not known (HTTP 401)."""


class TooManyJobs(ChorusError):
    """The key has as many jobs running as it may (HTTP 429)."""


class JobNotFound(ChorusError):
    """No job of that id (HTTP 404)."""


class VoiceNotFound(ChorusError):
    """No registered voice of that id (HTTP 404)."""


class VoiceInUse(ChorusError):
    """The voice cannot be deleted through the API (HTTP 409)."""


class JobNotReady(ChorusError):
    """The job has no audio yet (HTTP 409)."""


class EngineError(ChorusError):
    """A TTS engine failed to synthesise a segment."""


class ModelLoadError(ChorusError):
    """A worker could not load its model: a file or a dependency is missing."""


class StorageError(ChorusError):
    """S3 refused or failed a request."""


class AssemblyError(ChorusError):
    """The segments of a job could not be joined into an audiobook."""
