"""GET /metrics against the real stack (figures that move with real jobs, the
token `chorus up` makes, off without one), and the deployment examples checked against what reads them: the
Compose file against the Compose Specification's schema, the KEDA objects
against the fields KEDA needs and against the queue they scale on."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import httpx
import jsonschema
import pytest
import redis
import yaml
from kombu.transport.redis import Channel
from prometheus_client.parser import text_string_to_metric_families

from chorus.ports import free_port
from chorus.configs import load_registry
from chorus.tasks.app import PRIORITY_STEPS
from chorus.tasks.state.backlog import STALE_S, Backlog
from chorus.tasks.state.jobs import JobStore
from chorus.tasks.state.metrics import Metrics, bucket_field
from tests.conftest import TESTS, submit, wait_for

pytest_plugins = ["tests.fresh_redis"]  # its fixtures: redis_server, r
ROOT = TESTS.parent


# -- the counts in Redis ---------------------------------------------------------


def test_counts_in_redis(r: redis.Redis) -> None:
    store, backlog = JobStore(r, ttl_s=3600), Backlog(r, PRIORITY_STEPS)
    metrics = Metrics(r, backlog)
    _queued, running, assembling, cancelled, failed = (
        store.create("tone", "wav", "A title", owner="alice", segments_total=2).id for _ in range(5))
    store.start(running, cache_hits=0, deadline_at=time.time() + 60)
    store.start(assembling, cache_hits=0, deadline_at=time.time() + 60)
    store.start_assembly(assembling)
    store.cancel(cancelled)
    assert not store.fail(cancelled, "too late")  # refused: not a second ending
    store.fail(failed, "once")
    store.resume(failed)
    store.fail(failed, "twice")  # each ending counts
    # Messages at priority 0 and 3; one live worker, one silent too long.
    r.rpush("chorus.synth.m", "a")
    r.rpush(f"chorus.synth.m{Channel.sep}3", "b", "c")
    backlog.beat("live@h", ["chorus.synth.m"])
    backlog.beat("gone@h", ["chorus.synth.m"], now=time.time() - STALE_S - 1)
    for seconds, audio in ((0.07, 1.0), (0.3, 2.0), (500.0, 3.0)):
        metrics.segment_spoken("m", seconds, audio)

    snap = metrics.read(["m", "unused"], ["chorus.synth.m", "chorus.jobs"])
    assert snap.queued == {"chorus.synth.m": 3, "chorus.jobs": 0}
    assert snap.workers == {"chorus.synth.m": 1, "chorus.jobs": 0}
    assert snap.jobs == {"assembling": 1, "queued": 1, "running": 1}
    assert snap.finished == {"cancelled": 1, "done": 0, "failed": 2}
    m = snap.models["m"]
    assert (m.segments, m.audio_seconds, m.synthesis_seconds) == (3, 6.0, pytest.approx(500.37))
    latency = dict(m.latency)
    assert (latency[0.05], latency[0.1], latency[0.5], latency[120.0], latency[float("inf")]) == (0, 1, 2, 2, 3)
    assert snap.models["unused"].segments == 0 and snap.models["unused"].latency[-1] == (float("inf"), 0)
    assert bucket_field(0.1) == "le:0.1" and bucket_field(0.1001) == "le:0.25"  # le: at most the bound


# -- the endpoint ----------------------------------------------------------------


@pytest.fixture(scope="module")
def metrics_api(stack: dict[str, str]) -> Iterator[httpx.Client]:
    """The stack's own API, which `chorus up` gives a metrics token
    (CHORUS_METRICS_TOKEN in its environment); no API key on this client."""
    with httpx.Client(base_url=stack["CHORUS_API_URL"], timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def tokenless_api(stack: dict[str, str]) -> Iterator[httpx.Client]:
    """A second API process on the test stack, as a deployment that set no
    metrics token runs it."""
    port = free_port()
    env = {**os.environ, **stack, "CHORUS_METRICS_TOKEN": "", "CHORUS_API_PLANNERS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "chorus.api.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the tokenless API exited"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the tokenless API did not answer"
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client
    finally:
        process.terminate()
        process.wait(timeout=15)


def scrape(client: httpx.Client, token: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, labels) -> value."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def histogram(samples: dict, name: str, model: str) -> list[tuple[float, float]]:
    buckets = [(float(dict(labels)["le"]), v) for (n, labels), v in samples.items()
               if n == f"{name}_bucket" and dict(labels)["model"] == model]
    return sorted(buckets)


@pytest.mark.stack
def test_on_with_the_token_chorus_up_made(metrics_api: httpx.Client, stack: dict[str, str]) -> None:
    token = stack["CHORUS_METRICS_TOKEN"]
    data_dir = Path(stack["CHORUS_DATA_DIR"])
    assert len(token) >= 32 and json.loads((data_dir / "secrets.json").read_text())["metrics_token"] == token
    exported = subprocess.run([sys.executable, "-m", "chorus.cli", "env"], capture_output=True, text=True, check=True,
                              env={**os.environ, "CHORUS_DATA_DIR": str(data_dir)}).stdout
    assert f"export CHORUS_METRICS_TOKEN={token}\n" in exported
    samples = scrape(metrics_api, token)
    assert value(samples, "chorus_jobs_workers") >= 1
    # Operators' alone: worker hosts never get it.
    assert "CHORUS_METRICS_TOKEN" not in (data_dir / "join.env").read_text()


@pytest.mark.stack
def test_refused_without_the_token(
    metrics_api: httpx.Client, tokenless_api: httpx.Client, stack: dict[str, str]
) -> None:
    token = stack["CHORUS_METRICS_TOKEN"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"},
                    {"Authorization": f"Bearer {stack['CHORUS_API_KEY']}"}):  # a tenant's key is not the token
        response = metrics_api.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
    # An API without a token publishes nothing, whatever the caller sends.
    off = tokenless_api.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert off.status_code == 404 and "CHORUS_METRICS_TOKEN" in off.json()["detail"]
    assert "/metrics" not in metrics_api.get("/openapi.json").json()["paths"]


@pytest.mark.stack
def test_figures_move_with_jobs(metrics_api: httpx.Client, api: httpx.Client, stack: dict[str, str]) -> None:
    token = stack["CHORUS_METRICS_TOKEN"]
    before = scrape(metrics_api, token)
    tag = uuid.uuid4().hex[:8]  # text never spoken before: no cache hits
    done = {}
    for voice, model in (("tone", "tone"), ("joe", "piper-joe")):
        text = " ".join(f"Sentence {n} of batch {tag} for {voice}." for n in range(6))
        status = wait_for(api, submit(api, text, voice=voice, format="wav"))
        assert status["state"] == "done", status
        assert status["cache_hits"] == 0
        done[model] = status
    # A cancelled ending counts too.
    slow = " ".join(f"Sentence {n} of {tag} will dawdle before it ends." for n in range(30))
    cancelled = submit(api, slow, voice="tone")
    assert api.delete(f"/v1/jobs/{cancelled}").json()["state"] == "cancelled"
    after = scrape(metrics_api, token)

    for queue in ("chorus.jobs", "chorus.synth.tone", "chorus.synth.piper-joe"):
        assert value(after, "chorus_queue_depth", queue=queue) >= 0
    assert value(after, "chorus_jobs_workers") >= 1
    for model, status in done.items():
        assert value(after, "chorus_workers", model=model) >= 1

        def grew(name: str, m: str = model) -> float:
            return value(after, name, model=m) - before.get((name, (("model", m),)), 0.0)

        segments = grew("chorus_segments_total")
        assert segments >= status["segments_total"] > 0
        # Segments are trimmed of silence and joined with pauses: their audio is
        # most of the book's, never more than it by much.
        assert 0.3 * status["audio_seconds"] < grew("chorus_audio_seconds_total") < 1.5 * status["audio_seconds"] + 1
        assert grew("chorus_synthesis_seconds_total") > 0
        assert grew("chorus_segment_latency_seconds_count") == segments

        buckets = histogram(after, "chorus_segment_latency_seconds", model)
        counts = [count for _, count in buckets]
        assert buckets[-1][0] == float("inf") and counts == sorted(counts)
        assert counts[-1] == value(after, "chorus_segment_latency_seconds_count", model=model)
        assert value(after, "chorus_segment_latency_seconds_sum", model=model) == pytest.approx(
            value(after, "chorus_synthesis_seconds_total", model=model))

    def ended(state: str) -> float:
        return value(after, "chorus_jobs_finished_total", state=state) - before.get(
            ("chorus_jobs_finished_total", (("state", state),)), 0.0)

    assert ended("done") >= 2 and ended("cancelled") >= 1
    assert ("chorus_jobs_finished_total", (("state", "failed"),)) in after
    for state in ("queued", "running", "assembling"):
        assert value(after, "chorus_jobs", state=state) >= 0
    # No label names a key or a job.
    labels = {key for (_, pairs) in after for key, _ in pairs}
    assert labels <= {"queue", "model", "state", "le"}


# -- the deployment examples ----------------------------------------------------


def compose_schema() -> dict:
    """The Compose Specification's JSON schema (compose-spec/compose-spec,
    schema/compose-spec.json, Apache-2.0), as check-jsonschema ships it."""
    return json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())


def test_compose_file_follows_the_specification() -> None:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    validator = jsonschema.Draft202012Validator(compose_schema())
    assert [error.message for error in validator.iter_errors(document)] == []
    # The schema does reject what is wrong (it is not checking nothing).
    broken = json.loads(json.dumps(document))
    broken["services"]["worker-cosyvoice2"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] = "gpu"
    assert not validator.is_valid(broken)


def test_compose_gpu_worker() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    service = yaml.safe_load(text)["services"]["worker-cosyvoice2"]
    [device] = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"] and device["device_ids"] == ["0"]
    command = service["command"]
    assert command[:3] == ["chorus", "worker", "--model"] and command[-2:] == ["--gpu", "0"]
    assert service["profiles"] == ["gpu"]  # a host without a GPU starts without it
    assert (ROOT / service["build"]["dockerfile"]).is_file()
    # No secret has a default: each is required (:?) or, the metrics token, off when unset.
    for name, default in re.findall(r"\$\{(CHORUS_\w*(?:PASSWORD|SECRET|KEY|TOKEN)\w*)(:[-?][^}]*)?\}", text):
        assert default.startswith(":?") or (name == "CHORUS_METRICS_TOKEN" and default == ":-"), name


def test_keda_scales_a_model_worker_on_its_queue() -> None:
    registry = load_registry(ROOT / "configs" / "voices.toml")
    for path in sorted((ROOT / "deploy" / "keda").glob("*.yaml")):
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
        scaled = [d for d in documents if d["kind"] == "ScaledObject"]
        assert scaled, path
        for item in scaled:
            assert item["apiVersion"] == "keda.sh/v1alpha1"
            spec = item["spec"]
            target = deployments[spec["scaleTargetRef"]["name"]]  # the worker Deployment is in the example
            assert target["apiVersion"] == "apps/v1"
            assert spec["minReplicaCount"] <= spec["maxReplicaCount"]
            [container] = target["spec"]["template"]["spec"]["containers"]
            command = container["command"]
            assert command[:3] == ["chorus", "worker", "--model"]
            model = registry.models[command[3]]
            assert target["spec"]["selector"]["matchLabels"].items() <= target["spec"]["template"]["metadata"]["labels"].items()
            assert spec["triggers"]
            for trigger in spec["triggers"]:
                assert trigger["type"] == "prometheus"
                meta = trigger["metadata"]
                assert meta["serverAddress"].startswith("http")
                assert f'chorus_queue_depth{{queue="{model.queue}"}}' in meta["query"]
                assert float(meta["threshold"]) > 0 and isinstance(meta["threshold"], str)  # KEDA wants strings
