"""The ``sim`` stand-in (workers/engines/sim.py): its time follows its cost
model, its takes pass the take check, and a job read by it runs through a real
stack (its own, small: a jobs worker and one sim worker with four simulated
GPUs, started for this module)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from chorus.stack import Stack, StackConfig
from chorus.worker_plan import WorkerSpec
from chorus.configs import load_registry
from chorus.tasks.audio import takes
from chorus.workers.engines.sim import SimEngine

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "bench" / "sim_voices.toml"
# A sleep is never shorter than asked; on a busy host it can be a good deal longer.
LATE_S = 0.25


def engine(**options: float) -> SimEngine:
    model = load_registry(REGISTRY).models["sim"]
    return SimEngine(replace(model, options={**model.options, **options}))


def voice():
    return load_registry(REGISTRY).voices["sim"]


def timed_calls(sim: SimEngine, texts: list[str]) -> list[float]:
    """Each call's seconds, all started at once from threads of their own."""
    seconds = [0.0] * len(texts)
    start = threading.Barrier(len(texts))

    def call(number: int) -> None:
        start.wait()
        began = time.perf_counter()
        sim.synthesize(texts[number], voice())
        seconds[number] = time.perf_counter() - began

    threads = [threading.Thread(target=call, args=(n,)) for n in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seconds


def test_cost_model() -> None:
    sim = engine(fixed_ms=100, ms_per_char=2, batch_alpha=0.5, batch_limit=4)
    assert sim.call_seconds("x" * 50) == pytest.approx(0.2)
    assert sim.call_seconds("x" * 50, n=4) == pytest.approx(0.4)  # four at once: twice as long, twice the throughput
    assert sim.gpu_seconds("x" * 50, n=4) == pytest.approx(0.1)
    assert sim.call_seconds("x" * 50, n=8) == pytest.approx(0.8)  # past the limit, no more gain


def test_one_call_takes_its_time() -> None:
    sim = engine(fixed_ms=60, ms_per_char=1, batch_alpha=0.5)
    (seconds,) = timed_calls(sim, ["a" * 40])
    assert 0.100 <= seconds < 0.100 + LATE_S
    assert sim.slept_s == pytest.approx(0.100)


def test_calls_in_flight_share_a_gpu_by_the_batch_curve() -> None:
    sim = engine(fixed_ms=300, ms_per_char=0, batch_alpha=0.5, devices=1)
    seconds = timed_calls(sim, ["Four at once."] * 4)
    # The n-th call to join sees n in flight: 0.3 x sqrt(n) s each.
    assert sim.slept_s == pytest.approx(0.3 * (1 + 2**0.5 + 3**0.5 + 2))
    assert max(seconds) >= 0.6 and max(seconds) < 0.6 + LATE_S


def test_calls_spread_over_simulated_gpus() -> None:
    sim = engine(fixed_ms=100, ms_per_char=0, batch_alpha=0.5, devices=4)
    seconds = timed_calls(sim, ["One each."] * 4)
    assert sim.slept_s == pytest.approx(0.4)  # one call on each GPU: none waits for another
    assert max(seconds) < 0.1 + LATE_S


@pytest.mark.parametrize("text, speed", [
    ("It is a truth universally acknowledged, that a single man in possession of a good fortune must be in want of a wife.", 1.0),
    ("Yes.", 1.0),
    ("The 3 ships sailed at 10 past 4.", 1.0),
    ("Chapter one, in which nothing happens for quite some time.", 2.0),
    ("Chapter one, in which nothing happens for quite some time.", 0.5),
    ("话说天下大势，分久必合，合久必分。", 1.0),
])
def test_takes_pass_the_take_check(text: str, speed: float) -> None:
    sim = engine(fixed_ms=0, ms_per_char=0)
    samples = sim.synthesize(text, voice(), speed=speed)
    verdict = takes.judge(samples, sim.sample_rate, text, speed=speed)
    assert verdict.ok, verdict.reason()
    assert samples.dtype.name == "float32" and abs(samples).max() < 0.1  # quiet: mastering brings it up


@pytest.fixture(scope="module")
def sim_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    registry = tmp_path_factory.mktemp("sim-registry") / "voices.toml"
    registry.write_text(REGISTRY.read_text().replace("options.devices = 1", "options.devices = 4")
                        .replace("options.fixed_ms = 300.0", "options.fixed_ms = 20.0")
                        .replace("options.ms_per_char = 10.0", "options.ms_per_char = 0.5"))
    stack = Stack(StackConfig.on_free_ports(
        tmp_path_factory.mktemp("sim-stack"),
        workers=[WorkerSpec("sim", inflight=4)],
        jobs_concurrency=1,
        environment={"CHORUS_REGISTRY_FILE": str(registry)},
    ))
    try:
        yield stack.up()
    finally:
        stack.down()


def test_a_sim_job_runs_through_the_stack(sim_stack: dict[str, str]) -> None:
    text = " ".join(f"Sentence number {word} of the simulated book walks along the quay." for word in
                    ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"))
    headers = {"Authorization": f"Bearer {sim_stack['CHORUS_API_KEY']}"}
    with httpx.Client(base_url=sim_stack["CHORUS_API_URL"], headers=headers, timeout=30) as api:
        answer = api.post("/v1/jobs", json={"text": text, "voice": "sim", "format": "wav"})
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        deadline = time.monotonic() + 90
        while (status := api.get(f"/v1/jobs/{job_id}").json())["state"] not in ("done", "failed", "cancelled"):
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
    assert status["state"] == "done", status.get("error")
    assert status["segments_done"] == status["segments_total"] == 10


# What Redis does for one segment, all processes together, from the split's
# send to the chord's join, those run inside scripts included: Celery's
# delivery and acknowledgement (about 10 commands), its chord part (8), the
# start (3) and the completion (12) of tasks/state. bench/scale_sim.py gives
# the breakdown; this is its ceiling, with room for heartbeats and polls.
SEGMENT_TOLL = 42


def test_a_segment_costs_redis_a_bounded_number_of_commands(sim_stack: dict[str, str]) -> None:
    import redis

    client = redis.Redis.from_url(sim_stack["CHORUS_REDIS_URL"])

    def calls() -> dict[str, int]:
        return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()}

    text = " ".join(f"Sentence {n} of the tolled book walks along the quay and back." for n in range(60))
    headers = {"Authorization": f"Bearer {sim_stack['CHORUS_API_KEY']}"}
    with httpx.Client(base_url=sim_stack["CHORUS_API_URL"], headers=headers, timeout=30) as api:
        before = calls()
        job_id = api.post("/v1/jobs", json={"text": text, "voice": "sim", "format": "wav"}).json()["id"]
        deadline = time.monotonic() + 120
        while (status := api.get(f"/v1/jobs/{job_id}").json())["state"] not in ("done", "failed", "cancelled"):
            assert time.monotonic() < deadline, status
            time.sleep(1)
        after = calls()
    assert status["state"] == "done" and status["segments_total"] == 60, status
    spent = {name: after[name] - before.get(name, 0) for name in after}
    per_segment = {name: count / 60 for name, count in spent.items() if count}
    total = sum(per_segment.values())
    print(f"{total:.1f} Redis commands per segment: " + ", ".join(
        f"{name} {count:.2f}" for name, count in sorted(per_segment.items(), key=lambda item: -item[1])))
    assert total <= SEGMENT_TOLL, per_segment
    # Nothing renews an expiry, publishes an event, stores a result or
    # subscribes to one per segment.
    for name in ("expire", "publish", "setex", "subscribe", "unsubscribe"):
        assert per_segment.get(name, 0) < 0.5, (name, per_segment)
