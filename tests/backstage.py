"""What tests do behind the API's back, against the running test stack:
record a planned job whose split message was never sent (as if it was lost),
send tasks by name, run the watchdog and wait for its report."""

from __future__ import annotations

import json

import redis
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout

from chorus.api.submission import Received, prepare, record, store_plan
from chorus.configs import Settings, load_registry
from chorus.tasks.names import JOBS_QUEUE, SPLIT_TASK, WATCHDOG_TASK
from chorus.tasks.state.jobs import Job, JobStore
from chorus.tasks.state.keys import KeyStore
from chorus.tasks.state.lexicon import LexiconStore
from chorus.tasks.state.storage import Storage
from chorus.tasks.state.voices import VoiceBook
from chorus.tasks.watchdog import LAST_RUN


def celery_client(settings: Settings) -> Celery:
    """A bare client on the stack's broker; no result backend: nothing it sends keeps a result."""
    return Celery("chorus-test", broker=settings.redis_url)


def send(settings: Settings, task: str, *args: object) -> str:
    client = celery_client(settings)
    try:
        return client.send_task(task, args=args, queue=JOBS_QUEUE, ignore_result=True).id
    finally:
        client.close()


def record_unsent_job(settings: Settings, jobs: JobStore, storage: Storage, api_key: str, text: str, **fields: str) -> Job:
    """What POST /v1/jobs records and stores, by the API's own functions
    (``prepare``, ``record``, ``store_plan``), minus the split message: a job
    whose split was lost before it ever ran."""
    caller = KeyStore(jobs.redis).lookup(api_key)
    assert caller is not None
    registry = load_registry(settings.registry_file)
    known = VoiceBook(registry, jobs.redis).by_id(caller.id)
    received = Received("json", json.dumps({"text": text, **fields}).encode())
    submission = prepare(received, caller, known, registry.models, settings,
                         key_lexicon=LexiconStore(jobs.redis).entries(caller.id))
    job = record(submission, caller, jobs)
    store_plan(job, submission, storage)
    return job


def split(settings: Settings, job_id: str) -> str:
    return send(settings, SPLIT_TASK, job_id)


def run_watchdog(settings: Settings, timeout: float = 60) -> dict:
    """Send the watchdog by name and wait for the report of that very run: its
    return value, through the result backend for this one call. The record it
    leaves for operators (LAST_RUN) cannot tell: a run from the beat, queued
    right behind this one, overwrites it within milliseconds."""
    client = Celery("chorus-test", broker=settings.redis_url, backend=settings.redis_url)
    try:
        result = client.send_task(WATCHDOG_TASK, queue=JOBS_QUEUE, ignore_result=False)
        try:
            report = result.get(timeout=timeout)
        except CeleryTimeout:
            raise AssertionError(f"the watchdog run {result.id} did not report within {timeout} s") from None
        finally:
            result.forget()
    finally:
        client.close()
    assert report["task"] == result.id
    recorded = redis.Redis.from_url(settings.redis_url).get(LAST_RUN)
    assert recorded and "task" in json.loads(recorded)  # some run, this one or a later, left its record
    return report
