"""``JobTask``: what every task that works for one job does the same way.

    @app.task(base=JobTask, name=SYNTHESIZE_TASK, unit="segment {index}", ...)
    def synthesize(self, job_id: str, index: int, ...) -> dict: ...

A job task has a ``job_id`` parameter, and ``unit`` names its unit of work,
formatted with the task's arguments ("segment 3", "assembly"). The base class:

- skips a task whose job is done, failed, cancelled or gone: it returns
  ``{"job": id, "skipped": state}``, never raises ``Ignore`` (a chord waits
  forever for a header part that raised it);
- counts each start of the unit in Redis and compares at once: a unit that
  kills its worker process (a segfault, the OOM killer) is redelivered by
  Redis without passing through Celery's retry counter, so after
  ``max_attempts`` starts its job fails, whatever ended the earlier ones;
- retries transient errors (``RETRYABLE``) with Celery's own autoretry:
  exponential backoff with full jitter, capped, while attempts remain; any
  other error is permanent and fails the job at once. A retry is a new message
  sent through the broker before this one is acknowledged, and Celery rejects
  the task for good (``Reject(requeue=False)``: a chord fails) when that send
  fails, so the send keeps trying while Redis is away (``redis_retry_s``);
- records a failure on the job, ``"<unit> failed[ after N attempts]: <Type>:
  <message>"``; the first reason wins;
- stops quietly when the job ends while the task works (``JobSettled``);
- given a ``run`` argument (the job's ``redrives`` when its chord was
  launched), skips a task left from an earlier run of a job that has been
  re-driven since, and never lets such a task fail the job's current run.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import redis
from celery import Task
from celery.exceptions import Retry

from chorus.configs import get_settings
from chorus.tasks import clients
from chorus.tasks.errors import AttemptsExhausted, JobSettled, TransientError

log = logging.getLogger(__name__)

# What a task retries: errors that may pass on another try.
RETRYABLE: tuple[type[BaseException], ...] = (
    TransientError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
)

_settings = get_settings()


class JobTask(Task):
    unit = ""  # e.g. "segment {index}": formatted with the task's arguments; "" counts no attempts
    max_attempts = _settings.segment_attempts
    autoretry_for = RETRYABLE
    retry_backoff = _settings.retry_backoff_s
    retry_backoff_max = _settings.retry_backoff_max_s
    retry_jitter = True
    max_retries = None  # the attempt count decides (it also counts lost workers): see retry()
    retry_kwargs = {"retry_policy": clients.publish_retry_policy()}
    ignore_result = True  # nobody reads these results; chorus.synthesize, whose chord does, says so
    _signature: inspect.Signature | None = None

    def arguments(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        if self._signature is None:
            self._signature = inspect.signature(self.run)
        return dict(self._signature.bind(*args, **kwargs).arguments)

    def describe(self, arguments: dict[str, Any]) -> str:
        return self.unit.format(**arguments) if self.unit else self.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Celery's docs: an overriding __call__ runs the body with self.run; the
        # worker has already pushed this request.
        arguments = self.arguments(args, kwargs)
        job_id = arguments["job_id"]
        run = arguments.get("run")
        unit = self.unit.format(**arguments) if self.unit else ""
        state, attempts, stale = clients.jobs().begin(job_id, unit, run)
        if stale:
            log.info("%s for job %s skipped: left from run %s, the job was re-driven since", self.describe(arguments), job_id, run)
            return {"job": job_id, "skipped": "stale"}
        if state is None or state.final:
            log.info("%s for job %s skipped: the job is %s", self.describe(arguments), job_id, state or "gone")
            return {"job": job_id, "skipped": state.value if state else "gone"}
        self.request.chorus_attempt = attempts
        try:
            if unit and attempts > self.max_attempts:
                raise AttemptsExhausted(
                    f"{unit} failed after {self.max_attempts} attempts: the worker process running it died "
                    "(killed, out of memory or crashed)"
                )
            return self.run(*args, **kwargs)
        except JobSettled as exc:
            log.info("%s for job %s stopped: %s", self.describe(arguments), job_id, exc)
            return {"job": job_id, "skipped": "settled"}
        except Retry:
            raise
        except Exception as exc:
            # Recorded here, not only in on_failure: Celery marks the task failed
            # first, and for the last part of a chord that already runs the
            # chord's error callback, whose reason is vaguer (no unit).
            self.record_failure(exc, arguments)
            raise

    def retry(self, *args: Any, exc: BaseException | None = None, **options: Any) -> Any:
        """Celery's retry, while this unit has attempts left."""
        attempt = getattr(self.request, "chorus_attempt", 0)
        if exc is not None and self.unit and attempt >= self.max_attempts:
            raise exc
        return super().retry(*args, exc=exc, **options)

    def on_failure(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        self.record_failure(exc, self.arguments(args, kwargs))

    def record_failure(self, exc: BaseException, arguments: dict[str, Any]) -> None:
        """Mark the job failed with this task's reason; the first reason wins."""
        if isinstance(exc, AttemptsExhausted):
            reason = str(exc)
        else:
            attempts = getattr(self.request, "chorus_attempt", 0)
            tried = f" after {attempts} attempts" if isinstance(exc, RETRYABLE) and attempts > 1 else ""
            reason = f"{self.describe(arguments)} failed{tried}: {type(exc).__name__}: {exc}"
        try:
            clients.jobs().fail(arguments["job_id"], reason, run=arguments.get("run"))
        except redis.RedisError as error:  # the watchdog fails it at its deadline
            log.error("job %s: could not record its failure (%s): %s", arguments["job_id"], error, reason)
