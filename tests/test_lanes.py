"""The lanes: each kind of work has its queue and its worker process, so one
kind never waits behind another; every task has time limits from settings.

Fast: the routes, the time limits, and the programs `chorus up` hands
supervisord (one per lane, the beat its own, no embedded beat). Against the
real stack: the workers answer as jobs@, webhooks@ and control@, each
consuming its lane's queue; and a second stack, started beside the session's
on ports of its own (SeaweedFS's included), fails a job whose segment runs past
its soft time limit, with that reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from celery import Celery

from chorus.configs import Settings
from chorus.stack import Stack, StackConfig
from chorus.tasks.app import ROUTES, TIME_LIMITS, app
from chorus.tasks.names import (
    ASSEMBLE_TASK, CONTROL_QUEUE, JOBS_QUEUE, SPLIT_TASK, SYNTHESIZE_TASK, WATCHDOG_TASK, WEBHOOK_TASK, WEBHOOKS_QUEUE,
)
from chorus.worker_plan import WorkerSpec
from tests.conftest import TESTS, wait_for


def test_each_lane_has_its_queue() -> None:
    router = app.amqp.router
    assert router.route({}, WEBHOOK_TASK)["queue"].name == WEBHOOKS_QUEUE
    assert router.route({}, WATCHDOG_TASK)["queue"].name == CONTROL_QUEUE
    for name in (SPLIT_TASK, ASSEMBLE_TASK):
        assert router.route({}, name)["queue"].name == JOBS_QUEUE
    assert set(ROUTES) == {WEBHOOK_TASK, WATCHDOG_TASK}


def test_every_kind_of_task_has_time_limits_from_settings() -> None:
    settings = Settings()
    assert TIME_LIMITS[SPLIT_TASK]["soft_time_limit"] == settings.split_time_limit_s
    assert TIME_LIMITS[SYNTHESIZE_TASK]["soft_time_limit"] == settings.synthesize_time_limit_s
    assert TIME_LIMITS[WEBHOOK_TASK]["soft_time_limit"] == settings.webhook_time_limit_s
    for limits in TIME_LIMITS.values():
        assert limits["time_limit"] == limits["soft_time_limit"] + settings.task_kill_grace_s
    app.loader.import_default_modules()
    for name in (SPLIT_TASK, ASSEMBLE_TASK, WEBHOOK_TASK, WATCHDOG_TASK):
        assert app.tasks[name].soft_time_limit == TIME_LIMITS[name]["soft_time_limit"]
        assert app.tasks[name].time_limit == TIME_LIMITS[name]["time_limit"]


def test_a_visibility_timeout_below_a_time_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="longest task time limit"):
        Settings(assemble_time_limit_s=20_000, visibility_timeout_s=15_000)


def test_the_stack_runs_one_worker_per_lane_under_supervisord(tmp_path: Path) -> None:
    stack = Stack(StackConfig(tmp_path, workers=[WorkerSpec("tone")], environment={"CHORUS_WEBHOOK_CONCURRENCY": "7"}))
    stack._plan(stack.environment())
    stack._write_supervisor_conf()
    conf = stack.supervisor_conf.read_text()
    programs = [line[len("[program:"):-1] for line in conf.splitlines() if line.startswith("[program:")]
    assert programs == ["redis", "s3", "worker-jobs", "worker-webhooks", "worker-control", "beat", "worker-tone-1",
                        "api", "flower"]
    commands = {name: section.split("command=", 1)[1].splitlines()[0]
                for name, section in zip(programs, conf.split("[program:")[1:], strict=True)}
    assert "-Q chorus.jobs -n jobs@%%h" in commands["worker-jobs"] and " -B" not in commands["worker-jobs"]
    assert "-Q chorus.webhooks -n webhooks@%%h -P threads -c 7" in commands["worker-webhooks"]
    assert "-Q chorus.control -n control@%%h -P solo" in commands["worker-control"]
    assert " beat -s " in commands["beat"]
    for section in conf.split("[program:")[1:]:
        assert "autorestart=true" in section and "stopasgroup=true" in section and "killasgroup=true" in section
    secrets = [stack.environment()[name] for name in ("CHORUS_S3_SECRET_KEY", "CHORUS_FLOWER_PASSWORD")]
    assert not any(secret in command for command in commands.values() for secret in secrets)


# -- against the real stack --------------------------------------------------------


@pytest.mark.stack
def test_the_lanes_answer_and_consume_their_queues(stack: dict[str, str]) -> None:
    probe = Celery("lanes-probe", broker=stack["CHORUS_REDIS_URL"])
    try:
        queues = probe.control.inspect(timeout=5).active_queues() or {}
    finally:
        probe.close()
    by_lane = {node.split("@")[0]: {q["name"] for q in consumed} for node, consumed in queues.items()}
    assert JOBS_QUEUE in by_lane["jobs"] and WEBHOOKS_QUEUE not in by_lane["jobs"]
    assert WEBHOOKS_QUEUE in by_lane["webhooks"] and JOBS_QUEUE not in by_lane["webhooks"]
    assert CONTROL_QUEUE in by_lane["control"] and JOBS_QUEUE not in by_lane["control"]
    auth = (stack["CHORUS_FLOWER_USER"], stack["CHORUS_FLOWER_PASSWORD"])
    workers = httpx.get(f"{stack['CHORUS_FLOWER_URL']}/api/workers", auth=auth, timeout=30).json()
    assert {name.split("@")[0] for name in workers} >= {"jobs", "webhooks", "control"}


@pytest.fixture(scope="module")
def second_stack(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, dict[str, str]]]:
    """A second stack beside the session's, whose segments have a 1.5 s soft limit."""
    second = Stack(StackConfig.on_free_ports(
        tmp_path_factory.mktemp("chorus-second"), workers=[WorkerSpec("tone")], jobs_concurrency=1,
        environment={"CHORUS_REGISTRY_FILE": str(TESTS / "voices.toml"), "CHORUS_SYNTHESIZE_TIME_LIMIT_S": "1.5",
                     "CHORUS_TASK_KILL_GRACE_S": "10"},
    ))
    try:
        yield second, second.up()
    finally:
        second.down()


@pytest.mark.stack
def test_a_segment_past_its_soft_limit_fails_its_job(stack: dict[str, str], second_stack) -> None:
    second, env = second_stack
    assert env["CHORUS_REDIS_URL"] != stack["CHORUS_REDIS_URL"]
    headers = {"Authorization": f"Bearer {env['CHORUS_API_KEY']}"}
    with httpx.Client(base_url=env["CHORUS_API_URL"], headers=headers, timeout=30) as api:
        started = time.monotonic()
        slow = api.post("/v1/jobs", json={"text": "This one will dawdle.", "voice": "tone"}).json()["id"]
        status = wait_for(api, slow, timeout=60)
        print(f"\nthe segment past its 1.5 s soft limit failed its job in {time.monotonic() - started:.1f} s")
        assert status["state"] == "failed"
        assert "segment 0 failed" in status["error"] and "SoftTimeLimitExceeded" in status["error"], status["error"]
        # Both stacks carry on: a quick job finishes on each.
        assert wait_for(api, api.post("/v1/jobs", json={"text": "Quick.", "voice": "tone"}).json()["id"])["state"] == "done"
    with httpx.Client(base_url=stack["CHORUS_API_URL"], headers={"Authorization": f"Bearer {stack['CHORUS_API_KEY']}"},
                      timeout=30) as api:
        assert wait_for(api, api.post("/v1/jobs", json={"text": "Quick.", "voice": "tone"}).json()["id"])["state"] == "done"
