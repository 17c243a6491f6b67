"""One typed settings object for every Chorus process.

Every field can be set from the environment with the ``CHORUS_`` prefix, e.g.
``CHORUS_REDIS_URL=redis://:secret@10.0.0.5:6379/0``. ``chorus up`` writes the
values of the local stack to ``.chorus/stack.env``; worker machines joining a
cluster get the same variables.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

AudioFormat = Literal["wav", "flac", "mp3", "opus", "m4b", "epub"]

DEFAULT_REGISTRY = Path(__file__).with_name("voices.toml")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHORUS_", extra="ignore")

    # Where the shared services are. Workers on other machines point here.
    redis_url: str = "redis://127.0.0.1:16379/0"
    s3_endpoint: str = "http://127.0.0.1:18333"
    # Endpoint written into presigned URLs, when clients reach S3 under another
    # name than the workers do (a proxy, a container network).
    s3_public_endpoint: str | None = None
    s3_bucket: str = "chorus"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"
    presign_seconds: int = Field(3600, gt=0)
    # How long a service may be away before a call to it fails. A Redis
    # command, and a task's retry sent through the broker, keep reconnecting
    # with backoff for up to redis_retry_s; an S3 request is tried up to
    # s3_max_attempts times by botocore ("standard": exponential backoff with
    # jitter; "adaptive" adds client-side rate limiting), and the task's own
    # retries go on after that.
    redis_retry_s: float = Field(30.0, ge=0)
    s3_max_attempts: int = Field(10, ge=1)
    s3_retry_mode: Literal["standard", "adaptive"] = "standard"

    # Which voices exist and which model serves each.
    registry_file: Path = DEFAULT_REGISTRY
    default_voice: str = "joe"
    default_format: AudioFormat = "mp3"

    # Limits on what a job may ask for (defaults of new API keys).
    max_text_chars: int = Field(2_000_000, gt=0)
    max_segments_per_job: int = Field(50_000, gt=0)
    max_concurrent_jobs: int = Field(20, gt=0)
    max_title_chars: int = Field(200, gt=0)
    # The largest request body POST /v1/jobs reads (a JSON text or an uploaded
    # book, EPUB pictures included); bodies are cut off at this size as they arrive.
    max_request_bytes: int = Field(32 * 1024 * 1024, gt=0)
    max_batch_books: int = Field(20, ge=1)  # books in one POST /v1/batches (all within max_request_bytes)
    # The highest sample rate of a voice's reference clip (POST /v1/voices). The
    # header is checked before decoding: rate x channels (at most 2) x length (at
    # most 30 s) is what decoding allocates, about 11 MB at 48 kHz.
    voice_clip_max_rate: int = Field(48_000, ge=16_000)

    # How the book sounds.
    sentence_pause_ms: int = Field(250, ge=0)
    paragraph_pause_ms: int = Field(700, ge=0)
    chapter_pause_ms: int = Field(2000, ge=0)
    target_lufs: float = Field(-18.0, ge=-40, le=-5)
    max_true_peak_dbfs: float = Field(-3.0, ge=-20, le=0)
    # FFmpeg's AAC rate control for M4B: "fast" takes a fifth of the CPU of
    # "twoloop" (the encode is most of an M4B assembly's time) at some quality.
    aac_coder: Literal["twoloop", "fast"] = "twoloop"

    # The segment cache (content-addressed segment audio in S3).
    cache_max_bytes: int = Field(20 * 1024**3, ge=0)
    cache_min_age_s: int = Field(2 * 24 * 3600, ge=0)  # never evict what a job in flight may still read

    # Delivery. The visibility timeout must exceed the longest time a segment can
    # sit reserved plus run plus retry, or Redis redelivers it while it runs
    # (checked below against the retry cap, the model load and the base deadline).
    visibility_timeout_s: int = Field(4 * 3600, gt=0)
    # Starts of one unit of work (a segment; also a job's split, chapter render
    # and assembly) before its job fails. A start whose worker process died
    # (killed, out of memory, crashed) counts like one that raised.
    segment_attempts: int = Field(3, ge=1)
    # Transient errors (S3, Redis, an engine hiccup) are retried after a random
    # wait of up to retry_backoff_s x 2^retries, capped at retry_backoff_max_s
    # (Celery's full jitter). Celery counts whole seconds: 0 retries at once,
    # anything between 0 and 1 waits up to 1 s at first.
    retry_backoff_s: float = Field(2.0, ge=0)
    retry_backoff_max_s: int = Field(60, ge=1)
    # A segment's take that does not sound like its text (far too long or short
    # for it, mostly silence, clipped: tasks/audio/takes.py) is spoken again,
    # with another seed where the engine has one, up to this many times within
    # the same attempt; then the take closest to the bounds is kept, and the
    # manifest marks the segment suspect. A bad take is no error: the book goes
    # on. 0 judges and marks, never retries. Each retry costs one synthesis.
    take_retries: int = Field(2, ge=0, le=10)
    job_ttl_s: int = Field(14 * 24 * 3600, gt=0)  # a job's record and its objects live this long
    worker_load_timeout_s: float = Field(120.0, gt=0)
    # A queued job's split must start within job_deadline_base_s; a started job
    # must finish by started + job_deadline_base_s + job_deadline_per_segment_s x
    # (its segments + the segments queued ahead of it per live worker of its
    # model). Past that, while nothing is queued ahead of it any more, the
    # watchdog re-drives it once, then fails it.
    job_deadline_base_s: float = Field(600.0, gt=0)
    job_deadline_per_segment_s: float = Field(20.0, gt=0)
    watchdog_interval_s: float = Field(60.0, gt=0)
    # Time limits of each kind of task. Past its soft limit a task is
    # interrupted (SoftTimeLimitExceeded) and its job fails with that reason;
    # task_kill_grace_s later its pool process is killed (the hard limit) and
    # the message redelivered, its start counted against segment_attempts.
    # Enforced by prefork pools (jobs, synthesis); the webhook lane bounds each
    # attempt itself (webhook_timeout_s), the watchdog is bounded by its checks.
    split_time_limit_s: float = Field(600.0, gt=0)
    synthesize_time_limit_s: float = Field(600.0, gt=0)
    assemble_time_limit_s: float = Field(3600.0, gt=0)  # assembly and chapter renders: a whole book's encode
    webhook_time_limit_s: float = Field(300.0, gt=0)
    watchdog_time_limit_s: float = Field(300.0, gt=0)
    task_kill_grace_s: float = Field(30.0, gt=0)
    # Multipart uploads begun this long ago and never completed (their process
    # died) are aborted by the watchdog, so their parts stop taking space.
    abandoned_upload_s: int = Field(24 * 3600, gt=0)

    # Worker processes on this host.
    model: str | None = None  # the model a synthesis worker loads (set by `chorus worker`)
    worker_name: str | None = None  # its Celery node name (set by `chorus worker`)
    onnx_threads: int = Field(0, ge=0)  # 0: let onnxruntime decide
    # Synthesis and assembly are batch work: on a host shared with the API every
    # worker runs this much nicer, so status polls and health checks never queue behind them.
    worker_nice: int = Field(10, ge=0, le=19)

    # The embedded stack (`chorus up`), data under data_dir: on loopback, unless host
    # (`chorus up --listen`) is the address worker hosts reach it at.
    data_dir: Path = Path(".chorus")
    host: str = "127.0.0.1"
    api_port: int = 8700
    flower_port: int = 5555
    redis_port: int = 16379
    s3_port: int = 18333
    # SeaweedFS's own ports (each also needs its port + 10000 free, for gRPC):
    # on loopback only, and distinct per stack so that two stacks share a host.
    weed_master_port: int = 19333
    weed_volume_port: int = 18080
    weed_filer_port: int = 18888
    weed_admin_port: int = 13646
    piper_workers: int = Field(0, ge=0)  # 0: one per CPU core
    flower_user: str = "chorus"
    flower_password: str = ""

    # Processes of the API that read and plan submitted books (CPU work kept
    # off the event loop); each holds the text rules, about 60 MB.
    api_planners: int = Field(2, ge=1)
    # Planner processes kept for small work: a JSON text of at most
    # api_fast_lane_bytes, and every /v1/audio/speech request. A big upload
    # being planned never delays them.
    api_fast_planners: int = Field(1, ge=1)
    api_fast_lane_bytes: int = Field(256 * 1024, gt=0)
    # Planner processes of one lane that one API key may hold at once; its
    # other submissions wait, in order, for its own share (a batch's books
    # too), at most api_planner_key_queue of them (more: 429 with Retry-After).
    api_planner_key_slots: int = Field(1, ge=1)
    api_planner_key_queue: int = Field(32, ge=0)
    # Each planner process's address space (RLIMIT_AS); a book that needs more
    # is refused (413) and the process goes on serving. 0: no limit.
    api_planner_memory_bytes: int = Field(2 * 1024**3, ge=0)
    # The time one submission may take to be planned: api_planner_deadline_s plus
    # api_planner_deadline_per_mib_s for each MiB of its body. A planner past it
    # is killed and replaced, and the submission refused (413).
    api_planner_deadline_s: float = Field(30.0, gt=0)
    api_planner_deadline_per_mib_s: float = Field(5.0, ge=0)

    # Readers of uploaded books stop at these bounds while they read (413).
    # One XHTML document of an EPUB, inflated: a whole novel in one file is a few MiB.
    epub_max_document_bytes: int = Field(16 * 1024 * 1024, gt=0)
    # One PDF stream, inflated (a page's content is tens of KiB), and the
    # content of all pages together (a stream drawn by several pages counts for each).
    pdf_max_stream_bytes: int = Field(4 * 1024 * 1024, gt=0)
    pdf_max_content_bytes: int = Field(64 * 1024 * 1024, gt=0)

    # POST /v1/audio/speech (OpenAI's speech API): the longest input it speaks
    # (OpenAI's own limit is 4,096; longer texts belong in /v1/jobs), and which
    # Chorus voice each of OpenAI's voice names is, e.g.
    # CHORUS_OPENAI_VOICES='{"alloy": "joe", "nova": "my-clone"}'. A name not
    # mapped is the default voice; a Chorus voice id is taken as it is.
    speech_max_chars: int = Field(4096, gt=0)
    openai_voices: dict[str, str] = Field(default_factory=dict)

    # Webhooks: a job's webhook_url gets its status document when the job ends (tasks/webhooks.py).
    webhook_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Where webhooks may go, comma-separated (or a JSON list): host names (hooks.example.com), "
        "wildcards (*.example.com), addresses or networks (10.0.0.0/8) and URL prefixes "
        "(https://hooks.example.com/chorus/). Empty: any host whose addresses are all public. A host named "
        "exactly (a name, an address, a network, a URL prefix) may be private; a wildcard never lets one through.",
    )
    webhook_allow_private: bool = Field(
        False, description="Let webhooks reach loopback, private, link-local and other non-public addresses "
        "on any allowed host (a closed network where every receiver is internal).",
    )
    webhook_max_url_chars: int = Field(2048, ge=16, le=8192, description="Longest webhook URL a job may carry.")
    webhook_timeout_s: float = Field(10.0, gt=0, le=120, description="Time allowed to each delivery attempt.")
    webhook_attempts: int = Field(8, ge=1, le=50, description="Delivery attempts before a webhook is given up.")
    webhook_backoff_s: float = Field(
        30.0, gt=0, description="After failed attempt n, the next waits between half and all of "
        "webhook_backoff_s x 2^(n-1), capped at webhook_backoff_max_s.",
    )
    webhook_backoff_max_s: float = Field(3600.0, gt=0, description="The longest wait between two attempts.")
    webhook_poll_s: float = Field(
        2.0, gt=0, le=60, description="How often the beat looks for webhooks due; the delay "
        "between a job's end and its first delivery attempt.",
    )
    webhook_concurrency: int = Field(
        4, ge=1, le=256, description="Delivery runs at once in the webhooks worker (its threads): "
        "how many slow receivers it takes to hold up the others.",
    )

    # GET /metrics (Prometheus) wants `Authorization: Bearer <this>`; empty:
    # /metrics answers 404. Operators' figures, not a tenant's: no API key opens it.
    metrics_token: str = ""

    api_url: str = "http://127.0.0.1:8700"
    api_key: str = ""  # what clients (`chorus submit`) send as `Authorization: Bearer`

    @field_validator("webhook_allow", mode="before")
    @classmethod
    def _allow_list(cls, value: object) -> object:
        """A comma- or space-separated list from the environment; a JSON list as well."""
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [p for p in re.split(r"[\s,]+", text) if p]
        return value

    @model_validator(mode="after")
    def _visibility_outlasts_a_reservation(self) -> Settings:
        """Refuse a visibility timeout that Redis would pass while a message is
        legitimately held: reserved while a pool process loads its model, then
        run, then kept through its longest retry wait. Redis would deliver it a
        second time and the work would run twice."""
        held = self.worker_load_timeout_s + self.job_deadline_base_s + self.retry_backoff_max_s
        if self.visibility_timeout_s <= held:
            raise ValueError(
                f"visibility_timeout_s ({self.visibility_timeout_s}) must exceed worker_load_timeout_s + "
                f"job_deadline_base_s + retry_backoff_max_s ({held:.0f}): Redis would redeliver messages still held"
            )
        longest = max(self.split_time_limit_s, self.synthesize_time_limit_s, self.assemble_time_limit_s) + self.task_kill_grace_s
        if self.visibility_timeout_s <= longest:
            raise ValueError(
                f"visibility_timeout_s ({self.visibility_timeout_s}) must exceed the longest task time limit plus "
                f"task_kill_grace_s ({longest:.0f}): Redis would redeliver a task still within its limit"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
