"""The Celery app every Chorus process shares.

Delivery follows the design's rules: late acks and requeue on a lost worker so a
segment survives a crash, prefetch 1 so a long book does not park segments on
one busy worker, and one visibility timeout, set everywhere Redis reads it,
above the longest time a segment can be reserved, run and retried.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import celeryd_init, worker_init

from chorus.configs import get_settings
from chorus.tasks.names import (
    ASSEMBLE_CHAPTER_TASK, ASSEMBLE_TASK, CONTROL_QUEUE, JOB_FAILED_TASK, JOBS_QUEUE, SPLIT_TASK, SYNTHESIZE_TASK,
    WATCHDOG_SCHEDULE, WATCHDOG_TASK, WEBHOOK_SCHEDULE, WEBHOOK_TASK, WEBHOOKS_QUEUE,
)

# Every chord is stamped with its job's id under this header: cancelling a job
# revokes its segments by this stamp (revoke_by_stamped_headers).
JOB_STAMP = "chorus_job"
# Ten priority levels (0 first): a job's first segments outrank later segments of
# any job, so a short job is not stuck behind a long one (see tasks/pipeline.py).
PRIORITY_STEPS = list(range(10))

settings = get_settings()


def _limits(soft_s: float) -> dict[str, float]:
    """A task's soft time limit and, task_kill_grace_s above it, its hard one."""
    return {"soft_time_limit": soft_s, "time_limit": soft_s + settings.task_kill_grace_s}


# Each kind of task's time limits (configs/settings.py), and each lane's queue.
TIME_LIMITS = {
    SPLIT_TASK: _limits(settings.split_time_limit_s),
    SYNTHESIZE_TASK: _limits(settings.synthesize_time_limit_s),
    ASSEMBLE_TASK: _limits(settings.assemble_time_limit_s),
    ASSEMBLE_CHAPTER_TASK: _limits(settings.assemble_time_limit_s),
    JOB_FAILED_TASK: _limits(settings.split_time_limit_s),
    WEBHOOK_TASK: _limits(settings.webhook_time_limit_s),
    WATCHDOG_TASK: _limits(settings.watchdog_time_limit_s),
}
# A segment sends no task events: three events a segment, each digested by
# Flower, for a list of thousands of tasks per book. Flower still shows the
# workers and every job-level task; a job's segments are counted in its
# status, the worker records (tasks/state/fleet.py) and /metrics.
ANNOTATIONS = {**TIME_LIMITS, SYNTHESIZE_TASK: {**TIME_LIMITS[SYNTHESIZE_TASK], "send_events": False}}
LANES = frozenset({JOBS_QUEUE, WEBHOOKS_QUEUE, CONTROL_QUEUE})
ROUTES = {WEBHOOK_TASK: {"queue": WEBHOOKS_QUEUE}, WATCHDOG_TASK: {"queue": CONTROL_QUEUE}}

# A message whose worker went away (killed, or its host cut off) stays in
# Redis's unacknowledged set until the visibility timeout has passed; a sweep
# then puts it back on its queue. kombu sweeps every interval x throttle
# seconds (100 by default), under a lock that a sweeper lost mid-sweep holds
# until it expires (300 s by default). Here the lanes' workers (jobs, webhooks,
# control), few and always running, sweep every REDELIVERY_SWEEP_S, so a lost
# segment is back within the visibility timeout plus that; the model workers,
# many, sweep every FALLBACK_SWEEP_S (each sweep costs three Redis commands).
REDELIVERY_SWEEP_S = 5
FALLBACK_SWEEP_S = 60
SWEEP_LOCK_S = 30  # longer than a sweep takes; what a lost sweeper delays the next by, at most
_transport = {
    "visibility_timeout": settings.visibility_timeout_s,
    "priority_steps": PRIORITY_STEPS,
    "queue_order_strategy": "priority",
    "unacked_restore_interval": REDELIVERY_SWEEP_S,
    "unacked_restore_throttle": 1,
    "unacked_mutex_expire": SWEEP_LOCK_S,
}

app = Celery(
    "chorus",
    broker=settings.redis_url,
    backend=settings.redis_url,
    # Every process registers the pipeline tasks: chord error callbacks run in
    # whichever worker sees the last header part return. Every worker reports
    # its heartbeat (tasks/heartbeat.py) so deadlines can count live workers.
    include=["chorus.tasks.pipeline", "chorus.tasks.assemble", "chorus.tasks.watchdog", "chorus.tasks.heartbeat", "chorus.tasks.webhooks"],
)
app.conf.update(
    task_default_queue=JOBS_QUEUE,
    task_routes=ROUTES,
    task_annotations=ANNOTATIONS,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options=_transport,
    result_backend_transport_options=_transport,
    visibility_timeout=settings.visibility_timeout_s,
    # No task stores a result of its own: a chord's header reports to its body
    # through the chord's list in the result backend (on_chord_part_return),
    # which needs no per-task result. Every task runs with ignore_result, and
    # whoever sends one by name passes ignore_result=True, so no process
    # subscribes to a result channel it would never read.
    result_expires=settings.job_ttl_s,
    # A chord's keys get no expiry, so no part's return renews five of them:
    # Celery deletes them once every part has returned, and the sweeper
    # deletes what a chord that lost a part left, with its job
    # (tasks/state/jobs.py, CHORD_KEY_PREFIX).
    result_chord_expires=0,
    # Each worker also listens on its own queue, so memory release for a job can
    # reach the pool process that holds the model.
    worker_direct=True,
    # Flower sees tasks only when workers send events. Not when they are sent:
    # a book's split would publish one event per segment at once, which Flower
    # and Redis then digest while synthesis waits for the CPU; a task shows in
    # Flower from when a worker receives it, and queue depths are in /metrics.
    worker_send_task_events=True,
    # A TTS model can take far longer than Celery's 4 s default to load.
    worker_proc_alive_timeout=settings.worker_load_timeout_s,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    # The beat (a process of its own) sends the watchdog (tasks/watchdog.py) to
    # the control lane and the webhooks' delivery (tasks/webhooks.py) to the
    # webhooks lane. A delivery run not started before the next is sent
    # expires: runs do not pile up while every delivery thread is busy.
    beat_schedule={
        WATCHDOG_SCHEDULE: {"task": WATCHDOG_TASK, "schedule": settings.watchdog_interval_s,
                            "options": {"ignore_result": True}},
        WEBHOOK_SCHEDULE: {"task": WEBHOOK_TASK, "schedule": settings.webhook_poll_s,
                            "options": {"ignore_result": True, "expires": settings.webhook_poll_s}},
    },
)


@celeryd_init.connect
def _sweep_for_lost_messages(options: dict, **_: object) -> None:
    """A worker that serves a model's queue sweeps for lost messages only as
    a fallback (see REDELIVERY_SWEEP_S); the lanes' workers sweep often."""
    queues = options.get("queues") or []
    if isinstance(queues, str):
        queues = queues.split(",")
    if queues and not set(queues) <= LANES:
        app.conf.broker_transport_options = {**_transport, "unacked_restore_interval": FALLBACK_SWEEP_S}


@worker_init.connect
def _yield_the_cpu(**_: object) -> None:
    """Synthesis and assembly are batch work: every worker runs nicer than the
    API (its pool processes inherit this), so on a shared host status polls and
    health checks never wait behind them."""
    os.nice(get_settings().worker_nice)
