"""Worker hosts on other machines, with real network isolation (tests/netns.py):
a control host runs ``chorus up --listen ADDR --no-workers`` (Redis, S3, the
API, the jobs worker, Flower) in a network namespace of its own; hosts a and b,
each in its own namespace, run ``chorus worker --join FILE`` with the join file
the control host wrote. The test process is a fourth machine on the same
switch and uses the API from there.

Proven here: the control host faces the network with the four credentialled
services and nothing else; a book's segments are spoken on both worker hosts;
a worker host cut off mid-job loses nothing (its segment is redelivered after
the visibility timeout, within 10 s of it, and the job finishes on the other
host, each segment once); a host with a wrong password cannot join.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from chorus.stack import read_env_file
from chorus.tasks.app import REDELIVERY_SWEEP_S
from chorus.tasks.state.fleet import Fleet
from tests import netns
from tests.conftest import TESTS, wait_for
from tests.test_faults import assert_each_segment_once

pytestmark = [pytest.mark.multihost, pytest.mark.timeout(900)]

# Short delivery timeouts, so that a cut-off host's segment comes back within
# the test (the defaults: 4 h). The settings validator wants the visibility
# timeout above load + base deadline + longest retry wait: 20 + 15 + 1 < 40,
# and above the longest task time limit plus the kill grace: 30 + 5 < 40.
CLUSTER = {
    "CHORUS_REGISTRY_FILE": str(TESTS / "voices.toml"),
    "CHORUS_VISIBILITY_TIMEOUT_S": "40",
    "CHORUS_WORKER_LOAD_TIMEOUT_S": "20",
    "CHORUS_JOB_DEADLINE_BASE_S": "15",
    "CHORUS_JOB_DEADLINE_PER_SEGMENT_S": "20",
    "CHORUS_RETRY_BACKOFF_S": "0.1",
    "CHORUS_RETRY_BACKOFF_MAX_S": "1",
    **{f"CHORUS_{kind}_TIME_LIMIT_S": "30" for kind in ("SPLIT", "SYNTHESIZE", "ASSEMBLE", "WEBHOOK", "WATCHDOG")},
    "CHORUS_TASK_KILL_GRACE_S": "5",
}
WORKER_HOSTS = ("a", "b")
MODEL = "piper-joe"


def _chorus(*args: str) -> list[str]:
    return [sys.executable, "-m", "chorus.cli", *args]


def _bare_env() -> dict[str, str]:
    """This machine's environment without any CHORUS_* setting: each host gets
    only what it is given."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}


def node(host: str) -> str:
    # Namespaces share the host name: the worker's --name tells the hosts apart.
    return f"{MODEL}-{host}@{socket.gethostname()}"


@pytest.fixture(scope="module")
def network() -> Iterator[netns.Network]:
    reason = netns.unavailable()
    if reason:
        pytest.skip(f"no network namespaces: {reason}")
    network = netns.Network(["control", *WORKER_HOSTS])
    try:
        yield network
    finally:
        network.close()


@pytest.fixture(scope="module")
def control(network: netns.Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`chorus up --listen` on the control host; its stack.env."""
    data_dir = tmp_path_factory.mktemp("control") / "chorus"
    env = {**_bare_env(), **CLUSTER, "CHORUS_DATA_DIR": str(data_dir)}
    try:
        started = network["control"].run(
            _chorus("up", "--listen", network["control"].address, "--no-workers"), env=env, timeout=300,
        )
        assert started.returncode == 0, started.stdout + started.stderr
        yield read_env_file(data_dir)
    finally:
        subprocess.run(_chorus("down"), env=env, capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def join_file(control: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The control host's join file, copied to the worker hosts' side (scp, in life)."""
    copy = tmp_path_factory.mktemp("worker-hosts") / "join.env"
    copy.write_text((Path(control["CHORUS_DATA_DIR"]) / "join.env").read_text())
    return copy


@pytest.fixture(scope="module")
def fleet(control: dict[str, str]) -> Fleet:
    return Fleet(redis.Redis.from_url(control["CHORUS_REDIS_URL"]), ttl_s=3600)


@pytest.fixture(scope="module")
def workers(network: netns.Network, join_file: Path, fleet: Fleet) -> Iterator[dict[str, subprocess.Popen]]:
    """`chorus worker --join` on hosts a and b, each with the model loaded."""
    processes: dict[str, subprocess.Popen] = {}
    try:
        for host in WORKER_HOSTS:
            argv = _chorus("worker", "--model", MODEL, "--join", str(join_file), "--name", f"{MODEL}-{host}",
                           "--threads", "1")
            processes[host] = network[host].start(argv, join_file.with_name(f"worker-{host}.log"), _bare_env())
        deadline = time.monotonic() + 180
        while not all(fleet.get(node(host)).get("loads") for host in WORKER_HOSTS):
            for host, process in processes.items():
                log = join_file.with_name(f"worker-{host}.log")
                assert process.poll() is None, f"worker on {host} exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the worker hosts did not load their model in time"
            time.sleep(0.5)
        yield processes
    finally:
        for process in processes.values():
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:  # a host cut off mid-task never finishes it
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def api(control: dict[str, str]) -> Iterator[httpx.Client]:
    """The API from the test's own machine, across the network."""
    headers = {"Authorization": f"Bearer {control['CHORUS_API_KEY']}"}
    with httpx.Client(base_url=control["CHORUS_API_URL"], timeout=30, headers=headers) as client:
        yield client


def _book(sentences: int, words: int = 8) -> str:
    """Sentences never spoken before (the segment cache would skip them)."""
    tag = uuid.uuid4().hex[:6]
    filler = " ".join(["and the lamp burned on"] * max(1, words // 5))
    return " ".join(f"Line {n} of book {tag} begins, {filler} through the night." for n in range(sentences))


def _spoken(fleet: Fleet) -> dict[str, int]:
    return {host: int(fleet.get(node(host)).get("segments", 0)) for host in WORKER_HOSTS}


def _held(client: redis.Redis, job_id: str) -> dict[int, float]:
    """Segments of a job delivered to a worker and not yet acknowledged:
    index -> seconds since delivery (Celery's Redis transport keeps them in
    ``unacked``, delivery times in ``unacked_index``)."""
    held = {}
    for tag, raw in client.hgetall("unacked").items():
        message = json.loads(raw)[0]
        if message["headers"].get("task") != "chorus.synthesize":
            continue
        kwargs = json.loads(base64.b64decode(message["body"]))[1]
        delivered = client.zscore("unacked_index", tag)
        if kwargs["job_id"] == job_id and delivered is not None:
            held[kwargs["index"]] = time.time() - delivered
    return held


# -- the control host on the network --------------------------------------------------------


def test_join_file_holds_what_a_worker_needs(network: netns.Network, control: dict[str, str]) -> None:
    path = Path(control["CHORUS_DATA_DIR"]) / "join.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    joined = read_env_file(path.parent, path.name)
    address = network["control"].address
    assert joined["CHORUS_REDIS_URL"] == control["CHORUS_REDIS_URL"] and f"@{address}:" in joined["CHORUS_REDIS_URL"]
    assert joined["CHORUS_S3_ENDPOINT"] == f"http://{address}:{control['CHORUS_S3_ENDPOINT'].rsplit(':', 1)[1]}"
    assert joined["CHORUS_S3_SECRET_KEY"] == control["CHORUS_S3_SECRET_KEY"]
    assert joined["CHORUS_VISIBILITY_TIMEOUT_S"] == CLUSTER["CHORUS_VISIBILITY_TIMEOUT_S"]
    assert joined["CHORUS_REGISTRY_FILE"] == CLUSTER["CHORUS_REGISTRY_FILE"]
    text = path.read_text()
    for secret in ("CHORUS_API_KEY", "CHORUS_FLOWER_PASSWORD", "CHORUS_WEBHOOK_SECRET"):
        assert secret not in joined and control[secret] not in text, secret
    # `chorus env --join` prints the same file.
    env = {**_bare_env(), "CHORUS_DATA_DIR": control["CHORUS_DATA_DIR"]}
    printed = subprocess.run(_chorus("env", "--join"), env=env, capture_output=True, text=True, timeout=60, check=True)
    assert printed.stdout == text


def test_only_the_credentialled_services_face_the_network(network: netns.Network, control: dict[str, str]) -> None:
    """Every port that listens on the control host, tried from worker host a:
    only Redis, the S3 gateway, the API and Flower answer; SeaweedFS's master,
    volume, filer and admin ports and their gRPC twins listen on loopback only."""
    def port(url: str) -> int:
        return int(url.rsplit(":", 1)[1].split("/")[0])

    listed = {port(control[name]) for name in ("CHORUS_REDIS_URL", "CHORUS_S3_ENDPOINT", "CHORUS_API_URL",
                                                 "CHORUS_FLOWER_URL")}
    listening = network["control"].listeners()
    ports = sorted({p for _, p in listening})
    assert len(ports) > len(listed) + 4, listening  # SeaweedFS's own ports are there, on loopback
    outward = {address for address, p in listening if p not in listed}
    assert outward <= {"127.0.0.1", "::1"}, listening

    address = network["control"].address
    assert network["a"].reachable(address, ports) == listed
    # Each of the four still wants its credentials from across the network.
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=address, port=port(control["CHORUS_REDIS_URL"]), password="wrong", socket_timeout=5).ping()
    assert httpx.get(f"{control['CHORUS_S3_ENDPOINT']}/chorus/", timeout=10).status_code == 403
    assert httpx.get(f"{control['CHORUS_API_URL']}/v1/voices", timeout=10).status_code == 401
    assert httpx.get(f"{control['CHORUS_FLOWER_URL']}/api/workers", timeout=10).status_code == 401


def test_a_wrong_password_cannot_join(network: netns.Network, join_file: Path) -> None:
    values = read_env_file(join_file.parent, join_file.name)
    password = values["CHORUS_REDIS_URL"].split("@")[0].rsplit(":", 1)[1]
    bad = join_file.with_name("bad-join.env")
    bad.write_text(join_file.read_text().replace(password, "not-the-password"))
    started = time.monotonic()
    done = network["b"].run(_chorus("worker", "--model", MODEL, "--join", str(bad), "--name", "intruder"),
                            env=_bare_env(), timeout=120)
    assert done.returncode != 0
    assert "cannot join: Redis at" in done.stderr and "refused the join file's password" in done.stderr, done.stderr
    assert time.monotonic() - started < 60


# -- a book across two worker hosts --------------------------------------------------------


def test_a_book_spreads_over_both_worker_hosts(api: httpx.Client, workers, fleet: Fleet) -> None:
    before = _spoken(fleet)
    started = time.monotonic()
    job_id = api.post("/v1/jobs", json={"text": _book(20), "voice": "joe", "format": "wav"}).json()["id"]
    status = wait_for(api, job_id, timeout=300)
    assert_each_segment_once(api, status)
    spoken = {host: count - before[host] for host, count in _spoken(fleet).items()}
    print(f"{status['segments_total']} Piper segments in {time.monotonic() - started:.1f} s, by host: {spoken}")
    assert sum(spoken.values()) == status["segments_total"] == 20
    assert all(spoken[host] > 0 for host in WORKER_HOSTS), spoken


def test_a_host_cut_off_mid_job_loses_nothing(
    network: netns.Network, api: httpx.Client, workers, fleet: Fleet, control: dict[str, str],
) -> None:
    """Host a's link goes down while both hosts hold a segment. Host b speaks
    the rest; a's segment stays unacknowledged in Redis until the visibility
    timeout, comes back and is spoken by b; the book has every segment once."""
    client = redis.Redis.from_url(control["CHORUS_REDIS_URL"])
    before = _spoken(fleet)
    job_id = api.post("/v1/jobs", json={"text": _book(20, words=20), "voice": "joe", "format": "wav"}).json()["id"]

    deadline = time.monotonic() + 180
    while not (_spoken(fleet)["a"] > before["a"] and len(_held(client, job_id)) == 2):
        assert time.monotonic() < deadline, "host a never held a segment of the job"
        time.sleep(0.02)
    network["a"].cut()
    cut = time.monotonic()
    time.sleep(1)  # a write of a's already on the wire lands now, or never
    spoken_by_a = _spoken(fleet)["a"]

    # A segment that stays held well past the time b needs for one is a's;
    # it is redelivered when it leaves Redis's unacknowledged set.
    stranded: set[int] = set()
    redelivered: float | None = None
    while api.get(f"/v1/jobs/{job_id}").json()["state"] not in ("done", "failed", "cancelled"):
        held = _held(client, job_id)
        stranded |= {index for index, age in held.items() if age > 10}
        if stranded and redelivered is None and not stranded & held.keys():
            redelivered = time.monotonic() - cut
        assert time.monotonic() - cut < 400, f"job not finished {time.monotonic() - cut:.0f} s after the cut"
        time.sleep(0.5)
    finished = time.monotonic() - cut
    status = wait_for(api, job_id, timeout=10)
    assert_each_segment_once(api, status)

    spoken = {host: count - before[host] for host, count in _spoken(fleet).items()}
    print(f"host a cut off after {spoken_by_a - before['a']} segments; segment(s) {sorted(stranded)} held there "
          f"redelivered {redelivered or finished:.1f} s after the cut (visibility timeout "
          f"{CLUSTER['CHORUS_VISIBILITY_TIMEOUT_S']} s); the job finished {finished:.1f} s after the cut; by host: {spoken}")
    assert _spoken(fleet)["a"] == spoken_by_a  # nothing more from a
    assert stranded, "no segment of the job was left with host a"
    # a's segment came back only after the visibility timeout, and b spoke it;
    # the lanes' workers sweep for it every REDELIVERY_SWEEP_S, so it came back
    # within 10 s of the timeout.
    visibility = float(CLUSTER["CHORUS_VISIBILITY_TIMEOUT_S"])
    back = redelivered or finished  # the job may end between two looks
    assert visibility - 1 <= back <= visibility + REDELIVERY_SWEEP_S + 5, back
    assert spoken["b"] >= status["segments_total"] - (spoken_by_a - before["a"])
