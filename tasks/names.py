"""The names of Chorus's Celery tasks and queues, in one place.

Processes send tasks by these names, and messages already queued carry them:
a name never changes once released. This module imports nothing, so the API
can send work by name without importing the pipeline. Each model's synthesis
queue, ``chorus.synth.<model>``, is named by the registry (``Model.queue``).
"""

from __future__ import annotations

# The lanes: each kind of work has a queue and a worker of its own, so one
# kind never waits behind another (docs/architecture.md, "Lanes").
# Splits, chapter renders, assemblies and job failures: worker-jobs (jobs@).
JOBS_QUEUE = "chorus.jobs"
# Webhook deliveries: worker-webhooks (webhooks@), a pool of threads.
WEBHOOKS_QUEUE = "chorus.webhooks"
# The watchdog: worker-control (control@), one task at a time.
CONTROL_QUEUE = "chorus.control"
# Every Chorus queue's name starts so (the heartbeat reports only these).
QUEUE_PREFIX = "chorus."

SPLIT_TASK = "chorus.split"
SYNTHESIZE_TASK = "chorus.synthesize"
ASSEMBLE_TASK = "chorus.assemble"
ASSEMBLE_CHAPTER_TASK = "chorus.assemble_chapter"
JOB_FAILED_TASK = "chorus.job_failed"
RELEASE_MEMORY_TASK = "chorus.release_memory"
FORGET_SPEAKER_TASK = "chorus.forget_speaker"
WATCHDOG_TASK = "chorus.watchdog"
WEBHOOK_TASK = "chorus.webhook"

# Entries of the beat's schedule.
WATCHDOG_SCHEDULE = "chorus-watchdog"
WEBHOOK_SCHEDULE = "chorus-webhooks"
